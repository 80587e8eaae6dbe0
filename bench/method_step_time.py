"""Step time of each multi-task method relative to equal weighting, on the same model and data.

Model: one float input of width 256 -> ``shared_trunk`` MLP (512, 256) -> one ``t<i>_tower``
MLP (64) and binary head per task. Batch 512, T = 3 and T = 8 tasks, CPU, in one run.

Every method trains through the real ``Trainer``. EW is ``static`` weighting with the
``sum`` aggregator (one backward pass). Aggregators run twice: with parameter gradients (the
per-task Jacobian of the shared variables, computed in one vectorised pass) and with
``rep_grad`` (per-task gradients of the shared representation, one backward pass through the
task layers). The first epoch of each method (tracing) is not timed; then every method runs
one epoch of ``--steps`` steps in turn, ``--rounds`` times. Each round gives every method a
ratio to EW's epoch of the same round (measured seconds apart, so a machine whose load
changes over the run slows both alike); the figure is the median of those per-round ratios
(the JSON also holds the ratios of the medians and of the fastest epochs).

References run in the same rounds: ``plain`` and ``plain+xla``, a hand-written
``tf.function`` step of the same Keras model on the same data (GradientTape over the sum of
the per-task binary cross-entropies, Adam ``apply_gradients``; one call per batch, read in
Python), without and with ``jit_compile=True``; ``plain:per_task`` and
``plain:per_task_loop``, the same step computing each task's gradient of the shared trunk
(one vectorised ``tape.jacobian`` pass, or one ``tape.gradient`` per task as LibMTL does) and
applying their sum: the least any method with per-task gradients does, so the limit for them.
EW also runs in epochs five times as long (``ew:<steps>_steps_per_epoch``): an epoch's own
work (its iterator, the metrics' results) then weighs on each step as in a real epoch. ``--xla`` also times every chosen method
with ``Trainer(jit_compile=True)`` (label ``<method>+xla``). Every row has the absolute
ms/step (wall clock: the Trainer's ``epoch_time_s``) and the process CPU ms/step (the whole
``fit`` call or round, so a little per-epoch work is in it), a steadier figure on a machine
that others load; the JSON records the load average at the start and the end.

    python bench/method_step_time.py [--tasks 3 8] [--steps 20] [--rounds 5] [--threads 0]
                                     [--methods pcgrad ...] [--xla] [--output method_step_time]

Targets: rep_grad at most 1.3x EW at T = 3 and 1.6x at T = 8; parameter gradients below 2x
at T = 3 and 4x at T = 8. Results: bench/results/method_step_time.json.
"""

from __future__ import annotations

import argparse
import os
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import write_result  # noqa: E402
from mtl_tf.models.layers.mlp import MLP  # noqa: E402
from mtl_tf.tasks import BinaryTask  # noqa: E402
from mtl_tf.training import Trainer  # noqa: E402

WIDTH, BATCH = 256, 512
AGGREGATORS = ["pcgrad", "gradvac", "cagrad", "mgda", "imtl_g", "nash_mtl", "aligned_mtl", "upgrad"]
WEIGHTINGS = ["uncertainty", "dwa", "rlw", "famo", "gradnorm"]
TARGETS = {"rep_grad": {3: 1.3, 8: 1.6}, "param": {3: 2.0, 8: 4.0}}


def build_model(tasks: list[BinaryTask]) -> keras.Model:
    x = keras.Input(shape=(WIDTH,), name="x")
    shared = MLP(units=[512, 256], name="shared_trunk")(x)
    outputs = {task.name: task.head(MLP(units=[64], name=f"{task.name}_tower")(shared)) for task in tasks}
    return keras.Model({"x": x}, outputs)


def make_dataset(num_tasks: int, seed: int = 0) -> tf.data.Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH * 8, WIDTH)).astype("float32")
    y = (x @ rng.normal(size=(WIDTH, num_tasks)) > 0).astype("float32")
    labels = {f"t{i}": y[:, i] for i in range(num_tasks)}
    masks = {f"t{i}": np.ones(len(x), "float32") for i in range(num_tasks)}
    return tf.data.Dataset.from_tensor_slices(({"x": x}, labels, masks)).batch(BATCH).repeat().prefetch(2)


def methods() -> dict[str, dict]:
    configs = {"ew": {"weighting": "static", "gradient": "sum"}}
    for name in AGGREGATORS:
        configs[name] = {"gradient": name}
        configs[f"{name}+rep_grad"] = {"gradient": {"name": name, "rep_grad": True}}
    for name in WEIGHTINGS:
        configs[name] = {"weighting": name}
    configs["gradnorm+rep_grad"] = {"weighting": {"name": "gradnorm", "rep_grad": True}}
    return configs


def plain_step(tasks: list[BinaryTask], data: tf.data.Dataset, steps: int, jit_compile: bool = False,
               per_task: str | None = None) -> Callable[[], tuple[float, float]]:
    """A round of ``steps`` steps of a hand-written ``tf.function`` train step of the same
    model: ``() -> (wall seconds, CPU seconds)`` per step. Traces the step once up front.

    ``per_task`` makes it the least a method with per-task gradients must do: each task's
    gradient of the shared trunk's variables (``"vectorized"``: one ``tape.jacobian`` pass,
    ``"loop"``: one ``tape.gradient`` per task, as LibMTL does), the towers' from the summed
    loss, and the sum of the per-task gradients applied (no method in between).
    """
    keras.utils.set_random_seed(0)
    model = build_model(tasks)
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    variables = model.trainable_variables
    trunk = model.get_layer("shared_trunk").trainable_variables
    towers = [v for v in variables if all(v is not w for w in trunk)]
    optimizer.build(variables)

    def gradients(tape, losses, stacked, total):
        if per_task is None:
            return tape.gradient(total, variables), variables
        if per_task == "vectorized":
            per_task_grads = [tf.unstack(j) for j in tape.jacobian(stacked, trunk)]
            per_task_grads = list(zip(*per_task_grads))
        else:
            per_task_grads = [tape.gradient(loss, trunk) for loss in losses]
        shared = [tf.add_n(list(g)) for g in zip(*per_task_grads)]
        return shared + tape.gradient(total, towers), trunk + towers

    @tf.function(jit_compile=jit_compile)
    def step(features, labels, masks):
        with tf.GradientTape(persistent=per_task is not None) as tape:
            outputs = model(features, training=True)
            losses = [tf.reduce_mean(keras.losses.binary_crossentropy(labels[t.name][:, None],
                                                                      outputs[t.name][:, None])) for t in tasks]
            stacked = tf.stack(losses)
            total = tf.reduce_sum(stacked)
        grads, updated = gradients(tape, losses, stacked, total)
        optimizer.apply_gradients(zip(grads, updated))
        return total

    iterator = iter(data)
    step(*next(iterator)).numpy()

    def one_round() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            loss = step(*next(iterator))
        loss.numpy()
        return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps

    return one_round


def trainer_round(trainer: Trainer, data: tf.data.Dataset) -> Callable[[], tuple[float, float]]:
    """One more epoch of ``trainer``: ``() -> (wall seconds, CPU seconds)`` per step."""

    def one_round() -> tuple[float, float]:
        trainer.epochs += 1
        cpu = time.process_time()
        logs = trainer.fit(data).epochs[-1]
        return logs["epoch_time_s"] / logs["steps"], (time.process_time() - cpu) / logs["steps"]

    return one_round


class LibMTLCannot(Exception):
    """LibMTL could not run a (tasks, method) pair; the message says why."""


class LibMTL:
    """``bench/libmtl_contender.py`` running under another Python (with PyTorch and LibMTL):
    one long-lived process, asked for one round at a time so its rounds interleave with ours."""

    def __init__(self, python: str, threads: int):
        script = Path(__file__).resolve().parent / "libmtl_contender.py"
        self.process = subprocess.Popen([python, str(script), str(threads or os.cpu_count() or 1)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, num_tasks: int, method: str, steps: int) -> tuple[float, float]:
        self.process.stdin.write(json.dumps({"tasks": num_tasks, "method": method, "steps": steps}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the LibMTL contender stopped (see its error above)")
        answer = json.loads(line)
        if "error" in answer:
            raise LibMTLCannot(answer["error"])
        return answer["wall_s"], answer["cpu_s"]

    def round(self, num_tasks: int, method: str, steps: int) -> Callable[[], tuple[float, float]]:
        self.ask(num_tasks, method, 1)  # builds the model and warms it up, untimed
        return lambda: self.ask(num_tasks, method, steps)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


LONG_EPOCH = 5  # EW is also timed in epochs of this many times --steps
LIBMTL_METHODS = ["ew", "pcgrad", "cagrad", "mgda", "gradvac", "imtl_g", "gradnorm", "uncertainty", "dwa", "rlw"]
LIBMTL_TARGET = 0.8  # ours at most this times LibMTL's wall-clock ms per step


def time_methods(num_tasks: int, steps: int, rounds: int, only: list[str] | None,
                 xla: bool = False, libmtl: LibMTL | None = None) -> dict[str, dict]:
    tasks = [BinaryTask(f"t{i}", metrics=["auc"]) for i in range(num_tasks)]
    data = make_dataset(num_tasks)
    chosen = {k: v for k, v in methods().items() if not only or k == "ew" or k in only}
    runs: dict[str, Callable[[], tuple[float, float]]] = {}
    for jit in (False, True) if xla else (False,):
        for label, config in chosen.items():
            trainer = Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 1e-3},
                              epochs=1, steps_per_epoch=steps, verbose=0, jit_compile=jit, **config)
            trainer.fit(data)  # traces the step
            label = f"{label}+xla" if jit else label
            runs[label] = trainer_round(trainer, data)
            print(f"T={num_tasks} {label}: compiled", flush=True)
    # EW in epochs five times longer: an epoch's own work (its iterator, the metrics' results)
    # is spread over more steps, as in a real epoch of hundreds of steps.
    trainer = Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 1e-3}, epochs=1,
                      steps_per_epoch=LONG_EPOCH * steps, verbose=0, **methods()["ew"])
    trainer.fit(data)
    runs[f"ew:{LONG_EPOCH * steps}_steps_per_epoch"] = trainer_round(trainer, data)
    runs["plain"] = plain_step(tasks, data, steps, jit_compile=False)
    runs["plain+xla"] = plain_step(tasks, data, steps, jit_compile=True)
    runs["plain:per_task"] = plain_step(tasks, data, steps, per_task="vectorized")
    runs["plain:per_task_loop"] = plain_step(tasks, data, steps, per_task="loop")
    libmtl_failures = {}
    if libmtl is not None:
        for method in (m for m in chosen if m in LIBMTL_METHODS):
            try:
                runs[f"libmtl:{method}"] = libmtl.round(num_tasks, method, steps)
            except LibMTLCannot as error:
                libmtl_failures[method] = str(error)
                print(f"T={num_tasks} libmtl:{method}: cannot run ({error})", flush=True)
                continue
            print(f"T={num_tasks} libmtl:{method}: built", flush=True)
    seconds: dict[str, list[float]] = {label: [] for label in runs}
    cpu_seconds: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(rounds):
        for label, one_round in runs.items():
            wall, cpu = one_round()
            seconds[label].append(wall)
            cpu_seconds[label].append(cpu)
    base, fastest_base = statistics.median(seconds["ew"]), min(seconds["ew"])
    results = {}
    for label, values in seconds.items():
        median, fastest = statistics.median(values), min(values)
        ratio = statistics.median(v / e for v, e in zip(values, seconds["ew"]))
        cpu_ratio = statistics.median(v / e for v, e in zip(cpu_seconds[label], cpu_seconds["ew"]))
        method = label.removesuffix("+xla")
        kind = "reference" if method.startswith("plain") else "libmtl" if method.startswith("libmtl:") else (
            "rep_grad" if method.endswith("+rep_grad") else
            "param" if method.split("+")[0] in AGGREGATORS or method == "gradnorm" else "weighting")
        target = TARGETS.get(kind, {}).get(num_tasks)
        results[label] = {"ms_per_step": round(1000 * median, 3), "ratio_to_ew": round(ratio, 3),
                          "ratio_of_medians": round(median / base, 3),
                          "ratio_of_fastest": round(fastest / fastest_base, 3),
                          "cpu_ms_per_step": round(1000 * statistics.median(cpu_seconds[label]), 3),
                          "cpu_ratio_to_ew": round(cpu_ratio, 3),
                          "kind": kind, "jit_compile": label.endswith("+xla"), "target": target,
                          "meets_target": None if target is None else bool(ratio <= target),
                          "ms_per_step_all_rounds": [round(1000 * v, 3) for v in values],
                          "cpu_ms_per_step_all_rounds": [round(1000 * v, 3) for v in cpu_seconds[label]]}
    for label, row in results.items():
        theirs = f"libmtl:{label}"
        if theirs in seconds:
            # Per round: rounds run seconds apart, so a load change slows both alike.
            ratio = statistics.median(v / w for v, w in zip(seconds[label], seconds[theirs]))
            row.update(ratio_to_libmtl=round(ratio, 3), libmtl_target=LIBMTL_TARGET,
                       meets_libmtl_target=bool(ratio <= LIBMTL_TARGET))
        elif label in libmtl_failures:
            row["libmtl_cannot_run"] = libmtl_failures[label]
    return results


def _libmtl_versions(python: str) -> dict:
    code = "import importlib.metadata as m; print(m.version('torch'), m.version('LibMTL'))"
    torch_version, libmtl_version = subprocess.run([python, "-c", code], capture_output=True, text=True,
                                                   check=True).stdout.split()
    return {"torch": torch_version, "LibMTL": libmtl_version, "target": f"ours <= {LIBMTL_TARGET}x LibMTL ms/step",
            "contender": "bench/libmtl_contender.py (HPS, its weighting classes, their default arguments)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per method")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: default)")
    parser.add_argument("--methods", nargs="*", help="only these methods (EW always runs)")
    parser.add_argument("--xla", action="store_true", help="also time every method with jit_compile=True")
    parser.add_argument("--libmtl", metavar="PYTHON", help="a Python with PyTorch and LibMTL 1.1.5: also time "
                        "LibMTL's EW, PCGrad, CAGrad, MGDA ... in the same rounds (bench/libmtl_contender.py)")
    parser.add_argument("--output", default="method_step_time", help="result name under bench/results")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    by_tasks = {}
    libmtl = LibMTL(args.libmtl, args.threads) if args.libmtl else None
    for num_tasks in args.tasks:
        by_tasks[f"T={num_tasks}"] = time_methods(num_tasks, args.steps, args.rounds, args.methods, args.xla,
                                                  libmtl)
        print(f"\nT = {num_tasks}: step time relative to EW ({by_tasks[f'T={num_tasks}']['ew']['ms_per_step']} ms)")
        for label, row in by_tasks[f"T={num_tasks}"].items():
            flag = "" if row["target"] is None else (
                " ok" if row["meets_target"] else f" ABOVE target {row['target']}x")
            versus = "" if "ratio_to_libmtl" not in row else (
                f", {row['ratio_to_libmtl']:.2f}x LibMTL" + ("" if row["meets_libmtl_target"] else " ABOVE 0.8x"))
            print(f"  {label:<22} {row['ratio_to_ew']:>6.2f}x {row['ms_per_step']:>8.2f} ms "
                  f"(CPU {row['cpu_ms_per_step']:.2f} ms, {row['cpu_ratio_to_ew']:.2f}x){flag}{versus}")
    if libmtl is not None:
        libmtl.close()
    load_at_end = os.getloadavg()
    write_result(args.output, {
        "model": "x(256) -> shared MLP(512, 256) -> per task MLP(64) -> sigmoid", "batch": BATCH,
        "steps_per_round": args.steps, "rounds": args.rounds, "threads": args.threads or "default",
        "device": "CPU", "xla_rows": args.xla,
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (oneDNN kernels on)"),
        "libmtl": None if not args.libmtl else _libmtl_versions(args.libmtl),
        "machine_load": {"loadavg_1_5_15_min_at_start": [round(v, 2) for v in load_at_start],
                         "loadavg_1_5_15_min_at_end": [round(v, 2) for v in load_at_end],
                         "note": "load average of the whole machine (other jobs included); "
                                 "above the CPU count the wall-clock figures are inflated"},
        "targets": {k: {f"T={t}": v for t, v in d.items()} for k, d in TARGETS.items()},
        "results": by_tasks})


if __name__ == "__main__":
    main()
