"""Architectures compared on an image recipe: per-task test metrics, size, cost, time per epoch.

For each architecture it runs the recipe end to end with :func:`mtl_tf.runner.run_recipe`
(train, evaluate on the test split, export and skew check; nothing registered). The Beam
preprocessing runs once, before the first run; the others reuse its dataset. Each entry
records every test metric, the trainable parameters (shared and task-specific; ETR-NLP's
fixed primitives apart), multiply-adds per example, seconds per epoch and the epochs run;
``--baselines`` trains the single-task baselines once (:func:`mtl_tf.runner.run_baselines`:
one hps model per task, the recipe's trunk, decoder, tower and training settings, best
epoch on validation), and from then on every entry carries delta_m against them, in both
forms (primary metrics; every metric averaged per task, then over tasks). A reference row
gives the test metrics of constant predictions from the train split (the most frequent
class of every pixel, the mean depth everywhere, no detection, the majority class), so a
reader can tell learning from chance.

Results are merged into ``bench/results/<recipe>.json`` after every run (one entry per
architecture, so runs can be made at different times and an interrupted one keeps what it
finished) and printed as markdown tables. ``--baseline-tasks`` retrains some baselines
only; ``--load-baselines`` reads those trained before. Runs are tracked in
``artifacts/bench/<recipe>/mlflow.db``: each run's prediction grid is its artifact
``report/predictions.png`` (and ``artifacts/bench/<recipe>/<entry>/predictions.png``); the
grid of the first architecture run is copied to ``bench/results/<recipe>_predictions.png``.

    python bench/real_images.py driving_perception --baselines --arch hps mtan
    python bench/real_images.py camvid --arch etr_nlp --name etr_nlp_wide --set model.trunk.filters=[24,48,96,144]
    python bench/real_images.py pennfudan --arch hps cross_stitch --set training.epochs=20

Run it from the repository root: the real-data recipes read ``../shared/data``
(``--set data.source.path=...`` reads the files elsewhere); driving_perception reads the
synthetic scenes of ``mtl data synth driving_perception --rows 2000 --out data/driving_perception/raw``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import RESULTS, machine  # noqa: E402
from real_data import architecture_override, check_data, load_bench_recipe, train_architecture  # noqa: E402

# Architecture options used in the comparison; each run also takes the recipe's trunk and decoder.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "hps": {},
    "mtan": {},
    "cross_stitch": {},
    "mmoe": {"experts": 4},
    "etr_nlp": {"gamma": 0.5},
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="recipe name under recipes/ (driving_perception, camvid, pennfudan) or a YAML")
    parser.add_argument("--arch", nargs="+", default=None,
                        help=f"architectures (default hps, none with --baselines); presets: {', '.join(ARCHITECTURES)}")
    parser.add_argument("--name", default=None, help="the entry's name in the results (default: the architecture); "
                                                     "with one --arch only")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override applied to every run, e.g. training.epochs=4")
    parser.add_argument("--baselines", action="store_true", help="train the single-task baselines")
    parser.add_argument("--baseline-tasks", nargs="+", default=None, metavar="TASK",
                        help="with --baselines: train only these tasks' baselines, keep the others")
    parser.add_argument("--load-baselines", action="store_true",
                        help="read the baselines trained before (artifacts/bench/<recipe>/baselines) into the results")
    parser.add_argument("--skip-preprocess", action="store_true", help="reuse the dataset already written")
    parser.add_argument("--verbose", type=int, default=0, help="1 shows a progress bar per epoch")
    args = parser.parse_args(argv)
    if args.name and len(args.arch or []) != 1:
        parser.error("--name names one entry: give exactly one --arch with it")
    return args


def tracking(recipe) -> str:
    """A sqlite store under ``artifacts/bench/<recipe>`` whose runs keep their artifacts beside it."""
    from mlflow import MlflowClient

    folder = ROOT / "artifacts" / "bench" / recipe.name
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder}/mlflow.db"
    client = MlflowClient(uri)
    experiment = recipe.tracking.experiment or recipe.name
    if client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment, artifact_location=(folder / "mlruns").as_uri())
    return uri


def rounded(metrics: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {task: {m: round(float(v), 4) for m, v in values.items()} for task, values in metrics.items()}


def run_one(path: Path, arch: str, entry: str, overrides: Sequence[str], skip_preprocess: bool, uri: str,
            verbose: int) -> dict[str, Any]:
    """Trains, evaluates and exports one architecture; returns its results entry."""
    recipe, result, report, wall = train_architecture(path, arch, entry, overrides, skip_preprocess, uri, verbose)
    training, parameters = report["training"], report["parameters"]
    return {
        "architecture": recipe.model.architecture.as_dict(),
        "trunk": recipe.model.trunk.as_dict(),
        "decoder": recipe.model.decoder.as_dict(),
        "overrides": list(overrides),
        "test": rounded(result.test_metrics),
        "trainable_parameters": parameters["trainable"],
        "shared_trainable": parameters.get("shared_trainable"),
        "task_trainable": parameters.get("task_trainable"),
        "fixed_primitives": parameters.get("fixed_primitives", 0),
        "multiply_adds_per_example": report["flops_per_example"],
        "epochs_run": training["epochs_run"],
        "best_epoch": training["best_epoch"],
        "seconds_per_epoch": round(training["seconds"] / max(training["epochs_run"], 1), 1),
        "seconds_total": round(wall, 1),
        "mlflow_run_id": result.run_id,
        "prediction_grid": report.get("prediction_grid"),
    }


def run_baselines_entry(path: Path, overrides: Sequence[str], skip_preprocess: bool, uri: str,
                        verbose: int, tasks: Sequence[str] | None = None, train: bool = True) -> dict[str, Any]:
    """One single-task hps model per task (``tasks``: only those, the others kept; ``train``
    False: none, the stored ones read); returns the results file's baselines entry, read from
    ``artifacts/bench/<recipe>/baselines/baselines.json``."""
    from mtl_tf.recipe import load_recipe
    from mtl_tf.runner import run_baselines

    base = load_recipe(path, overrides, check=False)
    recipe = load_recipe(path, [*overrides, architecture_override("hps"),
                                f"output_dir=artifacts/bench/{base.name}/baselines"])
    start = time.perf_counter()
    if train:
        run_baselines(recipe, tasks=tasks, tracking_uri=uri, skip_preprocess=skip_preprocess, verbose=verbose,
                      echo=lambda line: None)
    stored = json.loads((Path(recipe.run_dir) / "baselines.json").read_text())["tasks"]
    return {
        "architecture": "hps, one model per task",
        "overrides": list(overrides),
        "test": rounded({task: entry["test"] for task, entry in stored.items()}),
        "primary_metric": {task: entry.get("primary_metric") for task, entry in stored.items()},
        "epochs": {task: {"run": entry.get("epochs_run"), "best": entry.get("best_epoch")}
                   for task, entry in stored.items()},
        "seconds_total": round(time.perf_counter() - start, 1) if train else None,
    }


def constant_predictions(recipe) -> dict[str, dict[str, float]]:
    """Test metrics of constant predictions made from the train split's label statistics."""
    import numpy as np
    import tensorflow as tf

    from mtl_tf.data.reader import make_dataset
    from mtl_tf.data.spec import DatasetSpec
    from mtl_tf.tasks import build_tasks
    from mtl_tf.tasks.base import find_task_spec
    from mtl_tf.training.task_metrics import metric_value

    spec = DatasetSpec.read(recipe.data.output_dir)
    tasks = build_tasks(recipe.tasks, spec)
    metrics = {task.name: task.make_metrics() for task in tasks}
    train = {task.name: [] for task in tasks if not task.dense}
    for _, labels, masks in make_dataset(spec, "train", tasks, 256):
        for name in train:
            keep = masks[name].numpy() > 0
            train[name].append(labels[name].numpy()[keep])
    train = {name: np.concatenate(values) for name, values in train.items()}
    labelled = {task.name: 0.0 for task in tasks}
    for _, labels, masks in make_dataset(spec, "test", tasks, 64):
        for task in tasks:
            label, mask = labels[task.name], masks[task.name]
            labelled[task.name] += float(tf.reduce_sum(mask))
            output = constant_output(task, find_task_spec(spec, task.name), train.get(task.name), label)
            y_true, y_pred = task.metric_inputs(label, output)
            for metric in metrics[task.name].values():
                metric.update_state(y_true, y_pred, sample_weight=mask)
    # As the trainer reports them: a multi-label AUC over the classes with both values.
    return {name: {m: round(metric_value(metric, labelled[name])[0], 4) for m, metric in values.items() if m != "loss"}
            for name, values in metrics.items()}


def constant_output(task, task_spec, train_labels, label):
    """The task's output for a batch when every row gets the same prediction."""
    import numpy as np
    import tensorflow as tf

    rows = tf.shape(label)[0]
    kind = task.registered_type
    if kind == "segmentation":
        probs = tf.one_hot(int(np.argmax(task_spec.stats.pixels)), len(task.classes))
        return tf.broadcast_to(probs, tf.concat([tf.shape(label), [len(task.classes)]], 0))
    if kind == "depth":
        return tf.fill(tf.shape(label), float(task_spec.stats.mean))
    if kind == "detection":  # nothing detected: every heatmap cell 0
        height, width = task.image_size
        stride = task.output_stride
        return tf.zeros([rows, height // stride, width // stride, len(task.classes) + 4])
    if kind == "multiclass":
        counts = np.bincount(train_labels.astype(int), minlength=len(task.classes))
        return tf.tile(tf.one_hot(int(np.argmax(counts)), len(task.classes))[None], [rows, 1])
    if kind == "multilabel":
        return tf.tile(tf.constant(train_labels.mean(axis=0), tf.float32)[None], [rows, 1])
    return tf.fill([rows], float(train_labels.mean()))  # binary (the positive rate), regression (the mean)


def add_delta_m(results: dict[str, Any], recipe) -> None:
    """Each entry's delta_m (%, primary metrics and every metric) against the stored baselines."""
    from mtl_tf.data.spec import DatasetSpec
    from mtl_tf.evaluation.delta_m import delta_m
    from mtl_tf.tasks import build_tasks

    baselines = results.get("baselines")
    if not baselines:
        return
    tasks = build_tasks(recipe.tasks, DatasetSpec.read(recipe.data.output_dir))
    for entry in results["architectures"].values():
        result = delta_m(entry["test"], baselines["test"], tasks)
        entry["delta_m_pct"] = None if result.primary is None else round(result.primary, 2)
        entry["delta_m_all_metrics_pct"] = None if result.all_metrics is None else round(result.all_metrics, 2)
        entry["delta_m_per_task_pct"] = {t: round(row["relative_pct"], 2) for t, row in result.per_task.items()}


# The metrics the tables show per task type (the primary one among them or first).
HEADLINE = {"segmentation": ("miou",), "depth": ("abs_err", "delta1"), "detection": ("map", "map_50"),
            "multiclass": ("accuracy",), "multilabel": ("auc",), "binary": ("auc",), "regression": ("mae",)}


def markdown_tables(results: dict[str, Any]) -> str:
    """The metrics table (headline metrics of each task, then delta_m) and the cost table."""
    entries, baselines = results["architectures"], results.get("baselines")
    columns = [(t, m) for t, kind in results["types"].items() for m in HEADLINE.get(kind, (results["tasks"][t],))]
    header = ["model", *[f"{t} {m}" for t, m in columns], "delta_m primary / all (%)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]

    def cells(test):
        return [f"{test[t][m]:.4f}" if t in test and m in test[t] else "" for t, m in columns]

    if results.get("constant"):
        lines.append("| " + " | ".join(["constant prediction (train statistics)", *cells(results["constant"]), ""])
                     + " |")
    if baselines:
        lines.append("| " + " | ".join(["single-task baselines", *cells(baselines["test"]), "0 / 0"]) + " |")
    for name, entry in entries.items():
        delta = ""
        if entry.get("delta_m_pct") is not None:
            delta = f"{entry['delta_m_pct']:+.2f} / {entry['delta_m_all_metrics_pct']:+.2f}"
        lines.append("| " + " | ".join([name, *cells(entry["test"]), delta]) + " |")
    cost = ["| model | trainable params (shared + task) | fixed primitives | multiply-adds / example | s / epoch | "
            "epochs (best) |", "| --- | --- | --- | --- | --- | --- |"]
    for name, entry in entries.items():
        cost.append(f"| {name} | {entry['trainable_parameters']:,} ({entry['shared_trainable']:,} + "
                    f"{entry['task_trainable']:,}) | {entry['fixed_primitives']:,} | "
                    f"{entry['multiply_adds_per_example'] / 1e6:,.1f} M | {entry['seconds_per_epoch']:.1f} | "
                    f"{entry['epochs_run']} ({entry['best_epoch']}) |")
    return "\n".join(lines) + "\n\n" + "\n".join(cost)


def merge_results(name: str, recipe, new: dict[str, Any], baselines: dict[str, Any] | None,
                  constant: dict[str, Any] | None) -> dict[str, Any]:
    """The results file's contents with the new entries (and baselines) merged in."""
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    image = next(f for f in recipe.data.features if f.kind == "image")
    merged = {
        "benchmark": name,
        "recipe": f"recipes/{name}.yaml",
        "machine": machine(),
        "protocol": {"image": [image.height, image.width, image.channels],
                     "splits": _split_counts(recipe),
                     "augment": recipe.data.augment.model_dump() if recipe.data.augment else None},
        "tasks": {t.name: _primary(t) for t in recipe.tasks},
        "types": {t.name: t.type for t in recipe.tasks},
        "training": {"epochs": recipe.training.epochs, "batch_size": recipe.training.batch_size,
                     "optimizer": recipe.training.optimizer.as_dict(),
                     "early_stopping": recipe.training.early_stopping.model_dump()
                     if recipe.training.early_stopping else None},
        "constant": constant or old.get("constant"),
        "architectures": {**old.get("architectures", {}), **new},
    }
    if baselines or old.get("baselines"):
        merged["baselines"] = baselines or old["baselines"]
    add_delta_m(merged, recipe)
    return merged


def _primary(task) -> str:
    from mtl_tf.tasks import TASK_TYPES

    return task.primary_metric or (task.metrics or TASK_TYPES.lookup(task.type, "type").default_metrics)[0]


def _split_counts(recipe) -> dict[str, int]:
    from mtl_tf.data.spec import DatasetSpec

    spec = DatasetSpec.read(recipe.data.output_dir)
    return {split: entry.num_examples for split, entry in spec.splits.items()}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    path, recipe, error = load_bench_recipe(args.recipe, args.overrides)
    if error:
        print(error, file=sys.stderr)
        return 2
    problem = check_data(recipe)
    if problem:
        if recipe.data.source.kind == "manifest":
            problem = (problem.splitlines()[0] + f"\nmake the synthetic scenes with: mtl data synth {recipe.name} "
                       f"--rows 2000 --out {Path(recipe.data.source.patterns[0]).parent}")
        print(f"error: {problem}", file=sys.stderr)
        return 2
    uri = tracking(recipe)
    archs = args.arch if args.arch is not None else ([] if args.baselines or args.load_baselines else ["hps"])
    skip = args.skip_preprocess
    results_path = RESULTS / f"{recipe.name}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)

    def save(new: dict[str, Any], baselines: dict[str, Any] | None = None) -> dict[str, Any]:
        """Merges and writes the results after every stage, so an interrupted run keeps what it did."""
        known = json.loads(results_path.read_text()) if results_path.is_file() else {}
        constant = known.get("constant") or constant_predictions(recipe)
        results = merge_results(recipe.name, recipe, new, baselines, constant)
        results_path.write_text(json.dumps(results, indent=2) + "\n")
        return results

    results = None
    if args.baselines or args.load_baselines:
        print(f"{recipe.name}: single-task baselines ...", flush=True)
        baselines = run_baselines_entry(path, args.overrides, skip, uri, args.verbose, args.baseline_tasks,
                                        train=args.baselines)
        print(json.dumps(baselines["test"]), flush=True)
        skip = skip or args.baselines
        results = save({}, baselines)
    for arch in archs:
        entry = args.name or arch
        print(f"{recipe.name}: {entry} ...", flush=True)
        done = run_one(path, arch, entry, args.overrides, skip, uri, args.verbose)
        print(json.dumps(done["test"]), f"{done['seconds_per_epoch']} s/epoch", flush=True)
        skip = True
        results = save({entry: done})
        example = RESULTS / f"{recipe.name}_predictions.png"
        if done.get("prediction_grid") and not example.is_file():
            shutil.copy2(done["prediction_grid"], example)
    if results is None:
        results = save({})
    print(markdown_tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
