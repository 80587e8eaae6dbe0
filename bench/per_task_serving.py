"""Per-task serving: a multi-task model against its one-task sub-model and against T single-task models.

    python bench/per_task_serving.py                 # writes bench/results/per_task_serving.json
    python bench/per_task_serving.py --only hps mmoe --skip submodel --repeats 10

1. Sub-model. A per-task signature (``predict_<task>`` in the SavedModel) runs the sub-model
that holds only the layers the task's output depends on. This measures what that saves: for each
architecture, the inference rate of the full model (every task) and of the first task's
sub-model, on the same batches of preprocessed tabular features, plus the multiply-adds per
example of each (``mtl_tf.models.flops_per_example``).

Both models run as a ``tf.function`` with ``training=False`` (as TF Serving runs the
SavedModel). Calls of the two alternate, so a change in machine load hits both alike; each
rate is the median over ``--repeats`` timed calls after a warm-up, and the speed-up is the
median of the per-round ratios.

2. One model against T single-task models. For each architecture, the multi-task model and
the T single-task models ``mtl baseline`` trains (:func:`mtl_tf.runner.single_task_recipe`
then :func:`mtl_tf.models.build_model`, the same trunk, tower and architecture) are built
on a dataset of ``--raw-features`` numeric features (each standardised into a value and a
missing flag, so 2 x that many columns), exported with :func:`mtl_tf.export.export_model`
and reloaded with ``tf.saved_model.load``. Answering every task is one ``serving_default``
call of the multi-task SavedModel, or one call of each single-task SavedModel, on the same
batch of serialized tf.Examples (outputs copied to host). The two sides alternate round by
round; at a small batch each timing covers enough calls for ``--batch`` examples. The
ratio is the median of the per-round ratios (T single-task models' seconds over the
multi-task model's), to compare with T. The same rounds time ``serve_features`` (the features
as named tensors, no tf.Example parsing), which tells how much of the saving is parsing the
batch once instead of T times. Memory: parameters, SavedModel bytes on disk
(``saved_model.pb``, ``variables/``, ``assets/``, ``fingerprint.pb``; not the ``.keras`` file
written beside them), and the resident-set growth of a fresh Python process (TensorFlow
imported and initialised first) that loads the SavedModel(s) and answers one batch.

Every TensorFlow op runs on ``--threads`` threads (intra- and inter-op), in this process and
in the memory subprocesses.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.common import write_result  # noqa: E402
from mtl_tf.data.spec import DatasetSpec  # noqa: E402
from mtl_tf.export import SERVE_FEATURES, SERVING_DEFAULT, export_model  # noqa: E402
from mtl_tf.models import build_model, flops_per_example, parameter_counts, task_submodel  # noqa: E402
from mtl_tf.models.architectures import ARCHITECTURES  # noqa: E402
from mtl_tf.recipe import parse_recipe  # noqa: E402
from mtl_tf.runner import single_task_recipe  # noqa: E402
from mtl_tf.tasks import BinaryTask, build_tasks  # noqa: E402

TRUNK = {"name": "mlp", "units": [256, 128]}
TOWER = {"name": "mlp", "units": [64]}
ARCHITECTURES_MEASURED = {
    "hps": {}, "sps": {}, "cross_stitch": {}, "eds": {}, "mmoe": {"experts": 8},
    "dselect_k": {"experts": 8, "top_k": 2}, "ple": {"task_experts": 2, "shared_experts": 2},
    "mtan": {}, "etr_nlp": {"gamma": 0.5},
}
NOTES = {
    "cross_stitch": "every column is needed by every task (each cross-stitch unit reads all columns)",
    "ple": "the shared gates below the last level read every task's experts",
    "mtan": "cross-task fusion reads every task's attention modules",
    "mmoe": "every expert is shared; only the other gates and towers are left out",
    "dselect_k": "every expert is shared; only the other gates and towers are left out",
}


def build(name: str, options: dict, features: int, tasks: list[BinaryTask]) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((features,), name="features")
    architecture = ARCHITECTURES.get({"name": name, **options}, trunk=TRUNK, tower=TOWER)
    representations = architecture.build(inputs, tasks)
    return keras.Model(inputs, {t.name: t.head(representations[t.name]) for t in tasks}, name=name)


def call_time(serve, data: tf.Tensor) -> float:
    """Seconds of one call, outputs copied to host (as a server returns them)."""
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), serve(data))
    return time.perf_counter() - start


def rates(full: keras.Model, one: keras.Model, batch: np.ndarray, repeats: int) -> tuple[float, float, float]:
    """(full examples/s, one-task examples/s, median per-round speed-up), calls interleaved."""
    serves = [tf.function(lambda x, m=m: m(x, training=False)) for m in (full, one)]
    data = tf.constant(batch)
    for _ in range(3):
        for serve in serves:
            call_time(serve, data)
    full_times, one_times = [], []
    for _ in range(repeats):
        full_times.append(call_time(serves[0], data))
        one_times.append(call_time(serves[1], data))
    ratio = statistics.median(f / o for f, o in zip(full_times, one_times))
    return len(batch) / statistics.median(full_times), len(batch) / statistics.median(one_times), ratio


def measure(name: str, options: dict, args) -> dict:
    tasks = [BinaryTask(f"task_{i}") for i in range(args.tasks)]
    model = build(name, options, args.features, tasks)
    one = task_submodel(model, tasks[0].name)
    batch = np.random.default_rng(0).normal(size=(args.batch, args.features)).astype("float32")
    full_rate, one_rate, speedup = rates(model, one, batch, args.repeats)
    full_flops, one_flops = flops_per_example(model), flops_per_example(one)
    result = {"options": options, "full_examples_per_s": round(full_rate),
              "one_task_examples_per_s": round(one_rate),
              "speedup": round(speedup, 3), "full_multiply_adds": full_flops,
              "one_task_multiply_adds": one_flops, "multiply_add_ratio": round(full_flops / one_flops, 3),
              "layers_full": len(model.layers), "layers_one_task": len(one.layers)}
    if name in NOTES:
        result["note"] = NOTES[name]
    print(f"{name:13s} full {full_rate:10.0f}/s  one task {one_rate:10.0f}/s  x{speedup:.2f}  "
          f"multiply-adds {full_flops} -> {one_flops}", flush=True)
    return result


# ---- One model against T single-task models, as SavedModels --------------------------------

SAVED_MODEL_PARTS = ("saved_model.pb", "fingerprint.pb", "variables", "assets")

# Run in a fresh interpreter: TensorFlow imported and one op run (the runtime's own memory), then
# the SavedModels loaded and each asked once; the growth of VmRSS is what the model(s) cost.
RESIDENT = r"""
import json, sys
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
threads, batch, features, dirs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
rng = np.random.default_rng(1)
examples = tf.constant([tf.train.Example(features=tf.train.Features(feature={
    f"x{i:02d}": tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
    for i, v in enumerate(rng.normal(size=features))})).SerializeToString() for _ in range(batch)])
(tf.constant(1.0) + 1.0).numpy()
before = rss("VmRSS")
serves = [tf.saved_model.load(d).signatures["serving_default"] for d in dirs]
loaded = rss("VmRSS")
for serve in serves:
    [t.numpy() for t in serve(examples=examples).values()]
print(json.dumps({"before": before, "loaded": loaded, "answered": rss("VmRSS"), "peak": rss("VmHWM")}))
"""


def dataset_spec(features: int, task_names: list[str]) -> DatasetSpec:
    """A dataset.json of ``features`` standard-normal numeric features and binary tasks (no files)."""
    stats = {"count": 100_000, "missing": 0, "mean": 0.0, "variance": 1.0}
    return DatasetSpec.model_validate({
        "name": "per_task_serving", "created": "2024-01-01T00:00:00Z", "rows_in": 100_000,
        "features": [{"name": feature_name(i), "kind": "numeric", "dtype": "float32", "stats": stats}
                     for i in range(features)],
        "tasks": [{"name": name, "type": "binary", "label_key": f"{name}_label", "dtype": "float32",
                   "labelled": {"train": 100_000}} for name in task_names],
        "splits": {"train": {"pattern": "train-*.tfrecord.gz", "num_examples": 100_000, "num_shards": 1}}})


def feature_name(i: int) -> str:
    return f"x{i:02d}"


def recipe_for(name: str, options: dict, spec: DatasetSpec, workdir: Path):
    """The multi-task recipe of an architecture on ``spec``: TRUNK, TOWER, every task binary."""
    return parse_recipe({
        "name": f"serving_{name}", "output_dir": str(workdir / "run"),
        "data": {"source": {"path": "unused/*.csv"}, "output_dir": str(workdir / "dataset"),
                 "split": {"key": "id", "train": 0.8, "validation": 0.1, "test": 0.1},
                 "features": [{"name": f.name, "kind": "numeric"} for f in spec.features]},
        "tasks": [{"name": t.name, "type": "binary", "label": t.label_key} for t in spec.tasks],
        "model": {"architecture": {"name": name, **options}, "trunk": TRUNK, "tower": TOWER}}, check=False)


def batch_values(features: int, rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, features)).astype("float32")


def serialized_examples(values: np.ndarray) -> tf.Tensor:
    """One serialized tf.Example per row of ``values`` (what ``serving_default`` takes)."""
    return tf.constant([tf.train.Example(features=tf.train.Features(feature={
        feature_name(i): tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
        for i, v in enumerate(row)})).SerializeToString() for row in values])


def named_features(values: np.ndarray) -> dict[str, tf.Tensor]:
    """One (batch,) tensor per feature (what ``serve_features`` takes)."""
    return {feature_name(i): tf.constant(values[:, i]) for i in range(values.shape[1])}


def saved_model_bytes(folder: Path) -> int:
    """Bytes TF Serving loads from an export folder (not the .keras file or signatures.json)."""
    total = 0
    for part in SAVED_MODEL_PARTS:
        path = folder / part
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        total += sum(f.stat().st_size for f in files)
    return total


def export(model: keras.Model, spec: DatasetSpec, tasks: list, folder: Path) -> Path:
    return export_model(model, spec, tasks, folder, overwrite=True).saved_model_dir


def answer_every_task(serves: list, inputs: dict[str, tf.Tensor], calls: int) -> float:
    """Seconds for ``calls`` rounds of every signature in ``serves`` on ``inputs``, outputs on host."""
    start = time.perf_counter()
    for _ in range(calls):
        for serve in serves:
            for value in serve(**inputs).values():
                value.numpy()
    return time.perf_counter() - start


def serving_rates(sides: dict[str, tuple], rows: int, calls: int, repeats: int) -> dict:
    """examples/s answering every task, per signature: the multi-task model's vs every single-task
    model's, all interleaved round by round.

    Args:
        sides: signature name -> (multi-task signature, single-task signatures, inputs).
        rows: examples per call; calls: calls per timing; repeats: timed rounds.
    """
    contenders = {(name, side): (serves, inputs) for name, (multi, singles, inputs) in sides.items()
                  for side, serves in (("multi", [multi]), ("singles", singles))}
    for _ in range(3):
        for serves, inputs in contenders.values():
            answer_every_task(serves, inputs, 1)
    times: dict[tuple, list[float]] = {key: [] for key in contenders}
    for _ in range(repeats):
        for key, (serves, inputs) in contenders.items():
            times[key].append(answer_every_task(serves, inputs, calls))
    figures = {"batch": rows, "calls_per_timing": calls, "load_average_1min": round(os.getloadavg()[0], 2)}
    for name in sides:
        multi, singles = times[(name, "multi")], times[(name, "singles")]
        figures[name] = {
            "multi_examples_per_s": round(rows * calls / statistics.median(multi)),
            "single_task_models_examples_per_s": round(rows * calls / statistics.median(singles)),
            "ratio": round(statistics.median(s / m for m, s in zip(multi, singles)), 3),
            "multi_ms_per_call": round(1000 * statistics.median(multi) / calls, 3),
            "single_task_models_ms_per_call": round(1000 * statistics.median(singles) / calls, 3)}
    return figures


def resident_growth(folders: list[Path], batch: int, features: int, threads: int) -> dict:
    """Resident-set growth (bytes) of a fresh process loading ``folders`` and answering one batch."""
    command = [sys.executable, "-c", RESIDENT, str(threads), str(batch), str(features), *map(str, folders)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory subprocess failed ({done.returncode}): {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {"loaded": figures["loaded"] - figures["before"], "answered": figures["answered"] - figures["before"],
            "peak": figures["peak"] - figures["before"], "process_before": figures["before"]}


def against_single_task_models(name: str, options: dict, args, workdir: Path) -> dict:
    """The multi-task SavedModel against the T single-task SavedModels ``mtl baseline`` builds."""
    task_names = [f"task_{i}" for i in range(args.tasks)]
    spec = dataset_spec(args.raw_features, task_names)
    recipe = recipe_for(name, options, spec, workdir)
    keras.utils.set_random_seed(0)
    tasks = build_tasks(recipe.tasks, spec)
    multi = build_model(recipe, spec, tasks)
    singles = {}
    for task in task_names:
        single = single_task_recipe(recipe, task)
        keras.utils.set_random_seed(0)
        singles[task] = (build_model(single, spec, build_tasks(single.tasks, spec)), build_tasks(single.tasks, spec))
    start = time.perf_counter()
    multi_dir = export(multi, spec, tasks, workdir / name / "multi")
    single_dirs = [export(model, spec, single_tasks, workdir / name / task)
                   for task, (model, single_tasks) in singles.items()]
    export_s = time.perf_counter() - start
    multi_adds = flops_per_example(multi)
    single_adds = [flops_per_example(model) for model, _ in singles.values()]
    multi_params = sum(parameter_counts(multi).values())
    single_params = [sum(parameter_counts(model).values()) for model, _ in singles.values()]
    del multi, singles
    keras.backend.clear_session()
    gc.collect()

    loaded = [tf.saved_model.load(str(d)) for d in [multi_dir, *single_dirs]]
    signatures = {name: [model.signatures[name] for model in loaded] for name in (SERVING_DEFAULT, SERVE_FEATURES)}
    throughput = {}
    for batch in (args.batch, args.small_batch):
        values = batch_values(args.raw_features, batch)
        inputs = {SERVING_DEFAULT: {"examples": serialized_examples(values)}, SERVE_FEATURES: named_features(values)}
        sides = {name: (serves[0], serves[1:], inputs[name]) for name, serves in signatures.items()}
        throughput[str(batch)] = serving_rates(sides, batch, max(1, math.ceil(args.batch / batch)), args.repeats)
    del loaded, signatures
    gc.collect()

    multi_resident = resident_growth([multi_dir], args.small_batch, args.raw_features, args.threads)
    singles_resident = resident_growth(single_dirs, args.small_batch, args.raw_features, args.threads)
    target = round(0.8 * args.tasks, 2)
    result = {
        "options": options, "target_ratio": target,
        "met": {batch: figures[SERVING_DEFAULT]["ratio"] >= target for batch, figures in throughput.items()},
        "throughput": throughput,
        "multiply_adds": {"multi": multi_adds, "single_task_models": sum(single_adds), "each_single": single_adds,
                          "ratio": round(sum(single_adds) / multi_adds, 3)},
        "parameters": {"multi": multi_params, "single_task_models": sum(single_params),
                       "ratio": round(sum(single_params) / multi_params, 3)},
        "saved_model_bytes": {"multi": saved_model_bytes(multi_dir),
                              "single_task_models": sum(saved_model_bytes(d) for d in single_dirs)},
        "resident_bytes": {"batch": args.small_batch, "multi": multi_resident,
                           "single_task_models": singles_resident,
                           "ratio_answered": round(singles_resident["answered"] / multi_resident["answered"], 3)},
        "export_s": round(export_s, 1)}
    result["saved_model_bytes"]["ratio"] = round(result["saved_model_bytes"]["single_task_models"]
                                                 / result["saved_model_bytes"]["multi"], 3)
    rates_line = "  ".join(f"b{b} {f[SERVING_DEFAULT]['multi_examples_per_s']}/s vs "
                           f"{f[SERVING_DEFAULT]['single_task_models_examples_per_s']}/s "
                           f"x{f[SERVING_DEFAULT]['ratio']:.2f} (features x{f[SERVE_FEATURES]['ratio']:.2f})"
                           for b, f in throughput.items())
    print(f"{name:13s} vs {args.tasks} single-task: {rates_line}  multiply-adds x{result['multiply_adds']['ratio']}  "
          f"RSS {multi_resident['answered'] / 2**20:.1f} vs {singles_resident['answered'] / 2**20:.1f} MiB",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--small-batch", type=int, default=32, help="the online-serving batch (part 2)")
    parser.add_argument("--features", type=int, default=64, help="width of the preprocessed input (part 1)")
    parser.add_argument("--raw-features", type=int, default=32,
                        help="numeric features of the exported models (part 2; 2 columns each once preprocessed)")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra- and inter-op threads")
    parser.add_argument("--only", nargs="*", default=None, help="architectures to measure")
    parser.add_argument("--skip", nargs="*", default=(), choices=("submodel", "single_task_models"),
                        help="leave a comparison out")
    parser.add_argument("--name", default="per_task_serving", help="results file name")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    names = args.only or list(ARCHITECTURES_MEASURED)
    load_before = os.getloadavg()
    results, against = {}, {}
    if "submodel" not in args.skip:
        results = {name: measure(name, ARCHITECTURES_MEASURED[name], args) for name in names}
    load_between = os.getloadavg()
    if "single_task_models" not in args.skip:
        with tempfile.TemporaryDirectory(prefix="per_task_serving_") as workdir:
            against = {name: against_single_task_models(name, ARCHITECTURES_MEASURED[name], args, Path(workdir))
                       for name in names}
    load_after = os.getloadavg()
    write_result(args.name, {
        "workload": {"batch": args.batch, "small_batch": args.small_batch, "features": args.features,
                     "raw_features": args.raw_features, "tasks": args.tasks, "trunk": TRUNK,
                     "tower": TOWER, "repeats": args.repeats, "threads": args.threads,
                     "device": tf.config.list_logical_devices()[-1].device_type,
                     # Rates are wall-clock: on a shared machine, compare them with the load.
                     "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
                     "load_average_1_5_15min": {"start": [round(v, 2) for v in load_before],
                                                "between_parts": [round(v, 2) for v in load_between],
                                                "end": [round(v, 2) for v in load_after]}},
        "architectures": results,
        "against_single_task_models": against})


if __name__ == "__main__":
    main()
