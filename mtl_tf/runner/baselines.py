"""Single-task baselines: one model per task with the recipe's settings, for delta_m."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mtl_tf.recipe import Recipe, flatten
from mtl_tf.runner.evaluate import findings_stage
from mtl_tf.runner.preprocess import preprocess, preprocess_collection
from mtl_tf.runner.tracking import tracking_context
from mtl_tf.runner.train import datasets, epoch_logger, make_trainer


@dataclass
class BaselineResult:
    """What ``run_baselines`` produced: one single-task model per task and their metrics."""

    path: Path
    test_metrics: dict[str, dict[str, float]]
    run_ids: dict[str, str | None]
    tracking_uri: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = ["single-task baselines (test split, best validation epoch):"]
        for task, metrics in self.test_metrics.items():
            values = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            run = f"  [mlflow run {self.run_ids[task]}]" if self.run_ids.get(task) else ""
            lines.append(f"  {task}: {values}{run}")
        lines.append(f"baselines: {self.path} (every `mtl run` of this recipe now reports delta_m)")
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        lines.append(f"time: {stages}")
        return "\n".join(lines)


def single_task_recipe(recipe: Recipe, task: str) -> Recipe:
    """The recipe reduced to one task: same data, trunk, tower, architecture and training settings.

    The weighting, gradient aggregation and task sampling become static / sum / joint (they
    only mean something for several tasks), the task weight 1, the relation measurements
    off, and run outputs go to ``<output_dir>/baselines/<task>``. Runs are tracked in the
    recipe's experiment.
    """
    from mtl_tf.recipe.loader import parse_recipe

    if task not in recipe.task_names:
        raise ValueError(f"recipe '{recipe.name}' has no task '{task}'; its tasks: {', '.join(recipe.task_names)}")
    if recipe.datasets:
        from mtl_tf.data.collection import dataset_recipe_dict

        # A task of a recipe with several datasets is trained on its own dataset alone.
        raw = dataset_recipe_dict(recipe, recipe.task(task).dataset_name)
    else:
        raw = recipe.model_dump(mode="json")
    raw["name"] = f"{recipe.name}_baseline_{task}"
    raw["output_dir"] = str(Path(recipe.run_dir) / "baselines" / task)
    raw["tasks"] = [{**entry, "weight": 1.0} for entry in raw["tasks"] if entry["name"] == task]
    raw["training"].update({"weighting": {"name": "static"}, "gradient": {"name": "sum"},
                            "sampling": {"name": "joint"}})
    raw["tracking"]["experiment"] = recipe.tracking.experiment or recipe.name
    raw["analysis"] = {"conflict_batches": 0, "affinity_batches": 0}
    by_key = (raw.get("evaluation") or {}).get("by_key")
    if by_key:  # scored per key only when the kept task is among them
        kept = [name for name in by_key["tasks"] if name == task]
        raw["evaluation"]["by_key"] = {**by_key, "tasks": kept} if kept else None
    return parse_recipe(raw)


def run_baselines(recipe: Recipe, tasks: Sequence[str] | None = None, tracking_uri: str | None = None,
                  skip_preprocess: bool = False, beam_args: Sequence[str] = (), verbose: int = 1,
                  echo: Callable = print) -> BaselineResult:
    """Trains one single-task model per task and writes ``<output_dir>/baselines.json``.

    Each model is the recipe with only that task (:func:`single_task_recipe`), trained on the
    same data with the same settings and evaluated on the test split with the weights of its
    best validation epoch. Each is an MLflow run tagged ``mtl.baseline=true`` and
    ``mtl.task=<task>``; nothing is exported or registered. Training a subset of the tasks
    updates their entries and keeps the others.

    Args:
        recipe: the multi-task recipe.
        tasks: the task names to train; default every task.
        tracking_uri: MLflow tracking URI (else MLFLOW_TRACKING_URI, the recipe, sqlite:///mlflow.db).
        skip_preprocess: reuse the dataset already written to ``data.output_dir``.
        beam_args: Beam pipeline options.
        verbose: 1 shows a progress bar per epoch.
        echo: where progress lines go.
    """
    from mtl_tf.evaluation.baselines import Baselines, baselines_path, dataset_fingerprint, shared_settings
    from mtl_tf.tasks import build_tasks
    from mtl_tf.training.strategy import is_chief, recipe_strategy

    names = list(tasks or recipe.task_names)
    singles = {name: single_task_recipe(recipe, name) for name in names}
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if recipe.datasets:
        collection = preprocess_collection(recipe, beam_args, skip=skip_preprocess, echo=echo)
        spec = collection.combined
        task_specs = {name: collection.spec(recipe.task(name).dataset_name) for name in names}
    else:
        spec = preprocess(recipe, beam_args, skip=skip_preprocess, echo=echo)
        task_specs = {name: spec for name in names}
    timings["preprocess"] = time.perf_counter() - start
    strategy = recipe_strategy(recipe.training.distribution)
    chief = is_chief(strategy)
    entries, run_ids, uri = {}, {}, None
    for name, single in singles.items():
        echo(f"baseline {name}: training a single-task model")
        start = time.perf_counter()
        task_list = build_tasks(single.tasks, task_specs[name])
        uri, tracked_run = tracking_context(single, tracking_uri, chief, Path(single.run_dir), echo=echo)
        with tracked_run as tracked:
            entries[name] = _train_baseline(single, task_specs[name], task_list, strategy, tracked, recipe.name,
                                            verbose)
            run_ids[name] = tracked.run_id
        timings[name] = time.perf_counter() - start
    path = baselines_path(recipe)
    fresh = Baselines(recipe=recipe.name, dataset=dataset_fingerprint(spec), settings=shared_settings(recipe),
                      tasks=entries)
    if chief:
        if path.is_file():
            previous = Baselines.read(path)
            fresh = previous.merge(fresh) if previous.mismatch(fresh.dataset) is None else fresh
        fresh.write(path)
    return BaselineResult(path=path, test_metrics={n: e["test"] for n, e in entries.items()}, run_ids=run_ids,
                          tracking_uri=uri, timings=timings)


def _train_baseline(single: Recipe, spec: Any, tasks: Sequence[Any], strategy: Any, tracked: Any,
                    parent: str, verbose: int) -> dict[str, Any]:
    """Trains and evaluates one single-task model inside its MLflow run; returns its baselines.json entry."""
    task = tasks[0]
    tracked.set_tags({"mtl.baseline": "true", "mtl.baseline_of": parent, "mtl.task": task.name,
                      "mtl.recipe": parent, "mtl.tasks": task.name})
    tracked.log_params(flatten(single))
    run_dir = Path(single.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = datasets(single, spec, tasks)
    trainer = make_trainer(single, spec, tasks, run_dir, strategy, verbose)
    history = trainer.fit(data["train"], data["validation"], on_epoch_end=epoch_logger(tracked),
                          expected_steps=-(-spec.splits["train"].num_examples // single.training.batch_size))
    test = trainer.evaluate(data["test"])[task.name]
    tracked.log_metrics({f"{task.name}/test_{metric}": value for metric, value in test.items()})
    entry = {"test": {k: float(v) for k, v in test.items()}, "primary_metric": task.primary_metric,
             "higher_is_better": {m: task.higher_is_better(m) for m in test},
             "best_epoch": history.best_epoch, "epochs_run": len(history.epochs),
             "stopped_reason": history.stopped_reason, "run_id": tracked.run_id}
    findings = findings_stage(single, spec, tasks, trainer.model, data["test"], tracked)
    if findings is not None:
        entry["findings"] = findings.summary()
    return entry
