"""The main job: one recipe from raw data to a registered, servable multi-task model.

preprocess (Beam) -> train (Trainer) -> evaluate (test split) -> export (SavedModel)
-> skew check (reloaded export vs in-memory model) -> register (MLflow), all tracked in one
MLflow run. Each stage is a library call; this module only wires them in order.

Around training, the chief measures task relationships at epoch ends (gradient conflict and
inter-task affinity, :mod:`mtl_tf.analysis`), and after evaluation it reports delta_m against
the recipe's single-task baselines when ``mtl baseline`` has made them (:func:`run_baselines`).

A recipe with ``datasets`` (tasks whose labels live in different datasets) preprocesses every
dataset, builds the model from their combined spec (:mod:`mtl_tf.data.collection`), trains on
batches mixed per dataset by the recipe's sampler (:mod:`mtl_tf.data.mixing`), evaluates on
every dataset's test rows and checks the export on the main dataset's test examples.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from mtl_tf.recipe import Recipe, flatten
from mtl_tf.recipe.loader import resolved_yaml


# Validation batches over which mixture-of-experts gate weights are averaged for the report.
UTILISATION_BATCHES = 8


@dataclass
class RunResult:
    """What a run produced, and where."""

    run_dir: Path
    dataset_path: Path
    report_path: Path
    test_metrics: dict[str, dict[str, float]]
    export_dir: Path | None = None
    run_id: str | None = None
    tracking_uri: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    delta_m: dict[str, Any] | None = None

    def summary(self) -> str:
        from mtl_tf.training.task_metrics import format_metric

        lines = ["test metrics:"]
        for task, metrics in self.test_metrics.items():
            values = ", ".join(f"{k} {format_metric(v)}" for k, v in metrics.items())
            lines.append(f"  {task}: {values}")
        lines.append(_delta_m_line(self.delta_m))
        lines.append(f"report: {self.report_path}")
        if self.export_dir:
            lines.append(f"export: {self.export_dir}")
        if self.run_id:
            lines.append(f"mlflow run: {self.run_id} ({self.tracking_uri})")
        if self.model_version is not None:
            lines.append(f"registered: {self.model_name} version {self.model_version} "
                         f"(promote with: mtl models promote {self.model_name} {self.model_version} --alias champion)")
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        lines.append(f"time: {stages}")
        return "\n".join(lines)


def _delta_m_line(section: dict[str, Any] | None) -> str:
    from mtl_tf.evaluation.report import delta_m_summary

    return delta_m_summary(section)


def preprocess(recipe: Recipe, beam_args: Sequence[str] = (), skip: bool = False, echo: Callable = print):
    """Runs the Beam pipeline (or reuses its output) and returns the DatasetSpec."""
    from mtl_tf.data.spec import DatasetSpec

    if skip:
        spec = DatasetSpec.read(recipe.data.output_dir)
        echo(f"reusing {Path(spec.root) / 'dataset.json'}")
    else:
        from pipelines.csv_to_tfrecords import run as run_pipeline

        result = run_pipeline(recipe, list(beam_args))
        echo(result.summary())
        spec = result.spec
    problems = spec.label_problems()
    if problems:
        raise ValueError("; ".join(problems))
    for warning in spec.label_warnings():
        echo(f"warning: {warning}")
    return spec


def preprocess_collection(recipe: Recipe, beam_args: Sequence[str] = (), skip: bool = False,
                          echo: Callable = print) -> Any:
    """A recipe with ``datasets``: runs the Beam pipeline once per dataset (or reuses their
    output) and returns the :class:`~mtl_tf.data.collection.DatasetCollection`."""
    from mtl_tf.data.collection import preprocess_datasets

    collection = preprocess_datasets(recipe, beam_args, skip=skip, echo=echo)
    echo(collection.summary())
    return collection


def dataset_artifacts(spec: Any, collection: Any = None) -> list[tuple[str, Path]]:
    """(artifact folder, dataset.json path) of every dataset a run reads."""
    if collection is None:
        return [("data", Path(spec.root) / "dataset.json")]
    return [(f"data/{name}", Path(collection.spec(name).root) / "dataset.json") for name in collection.names]


def mixed_training_recipe(recipe: Recipe, steps_per_epoch: int) -> Recipe:
    """The recipe the Trainer sees when several datasets are mixed: the sampler already chose
    the datasets (:mod:`mtl_tf.data.mixing`) and each batch's masks say which tasks learn
    from it, so the Trainer samples jointly; an epoch is ``steps_per_epoch`` steps of the
    endless mix."""
    from mtl_tf.recipe.schema import Component

    training = recipe.training.model_copy(update={"sampling": Component(name="joint"),
                                                  "steps_per_epoch": steps_per_epoch})
    return recipe.model_copy(update={"training": training})


def epochs_done(checkpoint_dir: Path) -> int:
    """Epochs a run has checkpointed (its history file's epochs; 0 when there is none)."""
    from mtl_tf.training.history import History
    from mtl_tf.training.trainer import HISTORY_FILE

    path = Path(checkpoint_dir) / HISTORY_FILE
    return len(History.read(path).epochs) if path.is_file() else 0


def make_trainer(recipe: Recipe, spec: Any, tasks: Sequence[Any], run_dir: Path, strategy: Any, verbose: int = 1):
    """The Trainer for a recipe: model factory, methods and checkpoints under ``strategy``."""
    from mtl_tf.models import build_model
    from mtl_tf.training import Trainer

    training = recipe.training
    stopping = training.early_stopping.model_dump() if training.early_stopping else None
    return Trainer(
        model_fn=lambda: build_model(recipe, spec, tasks),
        tasks=tasks,
        optimizer=training.optimizer.as_dict(),
        weighting=training.weighting.as_dict(),
        gradient=training.gradient.as_dict(),
        sampling=training.sampling.as_dict(),
        task_optimizer=training.task_optimizer.as_dict() if training.task_optimizer else None,
        task_sizes={task.name: task.labelled.get("train", 0) for task in spec.tasks},
        strategy=strategy,
        epochs=training.epochs,
        steps_per_epoch=training.steps_per_epoch,
        steps_per_execution=training.steps_per_execution,
        early_stopping=stopping,
        checkpoint_dir=str(run_dir / "checkpoints"),
        seed=training.seed,
        verbose=verbose,
    )


def datasets(recipe: Recipe, spec: Any, tasks: Sequence[Any]) -> dict[str, Any]:
    """train (shuffled), validation and test tf.data pipelines."""
    from mtl_tf.data.reader import make_dataset

    training = recipe.training
    common = {"spec": spec, "tasks": tasks, "batch_size": training.batch_size}
    return {
        "train": make_dataset(split="train", shuffle=True, shuffle_buffer=training.shuffle_buffer,
                              seed=training.seed, **common),
        "validation": make_dataset(split="validation", **common),
        "test": make_dataset(split="test", **common),
    }


def run_recipe(recipe: Recipe, recipe_path: str | None = None, tracking_uri: str | None = None,
               resume: bool = False, skip_preprocess: bool = False, register: bool = True,
               beam_args: Sequence[str] = (), verbose: int = 1, echo: Callable = print) -> RunResult:
    """Runs a recipe end to end; see the module docstring for the stages.

    Args:
        recipe: the validated Recipe.
        recipe_path: the YAML file, logged as an artifact.
        tracking_uri: MLflow tracking URI (else MLFLOW_TRACKING_URI, the recipe, sqlite:///mlflow.db).
        resume: continue training from the last checkpoint in ``<run_dir>/checkpoints``.
        skip_preprocess: reuse the dataset already written to ``data.output_dir``.
        register: register the checked export as a new model version.
        beam_args: Beam pipeline options.
        verbose: 1 shows a progress bar per epoch.
        echo: where progress lines go.
    """
    from mtl_tf.tasks import build_tasks
    from mtl_tf.training import make_strategy
    from mtl_tf.training.strategy import is_chief

    timings: dict[str, float] = {}
    run_dir = Path(recipe.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.resolved.yaml").write_text(resolved_yaml(recipe))

    start = time.perf_counter()
    if recipe.datasets:
        collection = preprocess_collection(recipe, beam_args, skip=skip_preprocess, echo=echo)
        spec = collection.combined
    else:
        collection, spec = None, preprocess(recipe, beam_args, skip=skip_preprocess, echo=echo)
    timings["preprocess"] = time.perf_counter() - start

    tasks = build_tasks(recipe.tasks)
    strategy = make_strategy(recipe.training.distribution.strategy)
    # Every worker trains and evaluates (collective ops); only the chief tracks, exports, registers.
    chief = is_chief(strategy)
    uri, tracked_run = _tracking(recipe, tracking_uri, chief)
    with tracked_run as tracked:
        tracked.log_params(flatten(recipe))
        tracked.set_tags({"mtl.recipe": recipe.name, "mtl.tasks": ",".join(recipe.task_names)})
        if recipe_path:
            tracked.log_artifact(recipe_path, "recipe")
        tracked.log_artifact(run_dir / "recipe.resolved.yaml", "recipe")
        for folder, path in dataset_artifacts(spec, collection):
            tracked.log_artifact(path, folder)

        start = time.perf_counter()
        if collection is None:
            data = datasets(recipe, spec, tasks)
            trainer = make_trainer(recipe, spec, tasks, run_dir, strategy, verbose)
        else:
            from mtl_tf.data.mixing import mixed_datasets

            data = mixed_datasets(recipe, collection, tasks,
                                  start_epoch=epochs_done(run_dir / "checkpoints") if resume else 0)
            trainer = make_trainer(mixed_training_recipe(recipe, data["steps_per_epoch"]), spec, tasks, run_dir,
                                   strategy, verbose)
        monitor = make_monitor(recipe, spec, tasks, trainer, run_dir, resume, collection) if chief else None
        batch = recipe.training.batch_size
        history = trainer.fit(data["train"], data["validation"], resume=resume,
                              on_epoch_end=epoch_logger(tracked, monitor),
                              expected_steps=-(-spec.splits["train"].num_examples // batch))
        timings["train"] = time.perf_counter() - start

        start = time.perf_counter()
        test_metrics = trainer.evaluate(data["test"])
        tracked.log_metrics({f"{task}/test_{metric}": value
                             for task, metrics in test_metrics.items() for metric, value in metrics.items()})
        delta = _delta_m(recipe, spec, tasks, test_metrics, tracked) if chief else None
        timings["evaluate"] = time.perf_counter() - start
        if not chief:
            return RunResult(run_dir=run_dir, dataset_path=Path(spec.root) / "dataset.json",
                             report_path=run_dir / "report.md", test_metrics=test_metrics, timings=timings)

        start = time.perf_counter()
        export_dir, skew = export_and_check(recipe, spec, tasks, trainer.model, run_dir, tracked.run_id)
        timings["export"] = time.perf_counter() - start

        report_path = write_run_report(recipe, spec, tasks, trainer, history, test_metrics, export_dir,
                                       skew, run_dir, tracked, monitor=monitor, delta=delta,
                                       utilisation_batches=data["validation"].take(UTILISATION_BATCHES))
        version = None
        name = recipe.tracking.register_as or recipe.name
        if register:
            from mtl_tf.tracking.registry import register_export

            start = time.perf_counter()
            primary = {t.name: (t.primary_metric, t.higher_is_better(t.primary_metric)) for t in tasks}
            flat = {f"{task}/{metric}": value for task, metrics in test_metrics.items()
                    for metric, value in metrics.items()}
            version = register_export(tracked.run_id, export_dir, name, flat, primary,
                                      tags={"mtl.recipe": recipe.name})
            timings["register"] = time.perf_counter() - start
        return RunResult(run_dir=run_dir, dataset_path=Path(spec.root) / "dataset.json", report_path=report_path,
                         test_metrics=test_metrics, export_dir=export_dir, run_id=tracked.run_id, tracking_uri=uri,
                         model_name=name if register else None, model_version=version, timings=timings,
                         delta_m=delta)


def make_monitor(recipe: Recipe, spec: Any, tasks: Sequence[Any], trainer: Any, run_dir: Path,
                 resume: bool = False, collection: Any = None) -> Any:
    """The epoch-end task-relationship monitor of a run, or None (one task, or turned off).

    It runs on the chief alone, on the chief's local copy of the weights and on a few
    training batches read once (shuffled with a fixed seed); it writes no variable and runs
    no collective op, so the other workers are not involved (see :mod:`mtl_tf.analysis.probe`).
    With a ``collection`` (a recipe with ``datasets``) the batches are joint batches of every
    dataset, so every task is present in each.
    """
    analysis = recipe.analysis
    count = max(analysis.conflict_batches, analysis.affinity_batches)
    if len(tasks) < 2 or count == 0:
        return None
    from mtl_tf.analysis.monitor import RelationsMonitor, probe_batches
    from mtl_tf.data.reader import make_dataset

    training = recipe.training
    buffer = min(training.shuffle_buffer, 4 * count * training.batch_size)
    if collection is None:
        source = make_dataset(spec, "train", tasks, training.batch_size, shuffle=True, shuffle_buffer=buffer,
                              seed=training.seed + 1)
    else:
        from mtl_tf.data.mixing import probe_source

        source = probe_source(recipe, collection, tasks, count)
    rate = analysis.affinity_lr or (lambda: current_learning_rate(trainer.optimizer))
    return RelationsMonitor(trainer.model, tasks, probe_batches(source, count), run_dir / "analysis",
                            conflict_batches=analysis.conflict_batches, affinity_batches=analysis.affinity_batches,
                            learning_rate=rate, every=analysis.every, resume=resume)


def current_learning_rate(optimizer: Any) -> float:
    """The optimizer's learning rate now (a schedule evaluated at the current step)."""
    import numpy as np

    return float(np.asarray(optimizer.learning_rate))


def epoch_logger(tracked: Any, monitor: Any = None) -> Callable[[int, dict], None]:
    """The Trainer's epoch-end callback: relations measured (when due) and the epoch logged."""

    def on_epoch_end(epoch: int, logs: dict) -> None:
        if monitor is not None:
            logs.update(monitor.on_epoch_end(epoch))
            for path in monitor.files():
                tracked.log_artifact(path, "analysis")
        tracked.log_epoch(epoch, logs)

    return on_epoch_end


def _delta_m(recipe: Recipe, spec: Any, tasks: Sequence[Any], test_metrics: Any, tracked: Any) -> dict[str, Any]:
    """The delta_m section (compared with baselines.json when it exists), logged to MLflow."""
    from mtl_tf.evaluation.baselines import compare

    section = compare(recipe, spec, tasks, test_metrics)
    if section["available"]:
        tracked.log_metrics(section.pop("metrics"))
        tracked.set_tags({"mtl.delta_m.baselines": section["baselines"]})
    return section


def _tracking(recipe: Recipe, tracking_uri: str | None, chief: bool) -> tuple[str | None, Any]:
    """(tracking URI, run context): a real MLflow run on the chief, a silent one elsewhere."""
    if not chief:
        return None, contextlib.nullcontext(_Untracked())
    from mtl_tf.tracking.run import TrackedRun
    from mtl_tf.tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri, recipe.tracking.tracking_uri)
    return uri, TrackedRun(recipe.tracking.experiment or recipe.name, run_name=recipe.name, tracking_uri=uri)


class _Untracked:
    """Stands where a TrackedRun would on non-chief workers: they log nothing."""

    run_id = None

    def __getattr__(self, name: str) -> Callable:
        return lambda *args, **kwargs: None


def export_and_check(recipe: Recipe, spec: Any, tasks: Sequence[Any], model: Any, run_dir: Path,
                     run_id: str | None) -> tuple[Path, Any]:
    """Exports the model and compares the reloaded export with it on real test examples.

    A mismatch raises (SkewError) before anything is registered.
    """
    from mtl_tf.data.reader import raw_examples
    from mtl_tf.export.exporter import export_model
    from mtl_tf.export.skew import check_skew

    base = Path(recipe.export.dir) if recipe.export.dir else run_dir / "export"
    export_dir = base / str(int(time.time()))
    result = export_model(model, spec, tasks, export_dir)
    examples = raw_examples(spec, "test", recipe.export.skew_examples)
    skew = check_skew(model, result.saved_model_dir, examples, spec, recipe.export.skew_tolerance)
    return export_dir, skew


def write_run_report(recipe, spec, tasks, trainer, history, test_metrics, export_dir, skew, run_dir, tracked,
                     monitor: Any = None, delta: dict[str, Any] | None = None,
                     utilisation_batches: Any = None) -> Path:
    """report.json, report.md, the training-curve plot and the relation plots; all logged to the run."""
    from mtl_tf.evaluation import build_report, plot_history, write_report
    from mtl_tf.models import flops_per_example, parameter_breakdown

    extra = {
        "parameters": parameter_breakdown(trainer.model),
        "flops_per_example": flops_per_example(trainer.model),
        "export": {"dir": str(export_dir)},
        "skew": {"max_abs_difference": skew.max_abs_difference, "examples": skew.num_examples,
                 "tolerance": skew.tolerance},
        "mlflow": {"run_id": tracked.run_id, "experiment": recipe.tracking.experiment or recipe.name},
    }
    if delta is not None:
        extra["delta_m"] = delta
    plots = []
    if monitor is not None and (monitor.conflict["epochs"] or monitor.affinity["epochs"]):
        extra["relations"] = relations_summary(monitor)
        plots = monitor.plots()
    if utilisation_batches is not None:
        utilisation, heatmap = expert_usage(trainer.model, utilisation_batches, run_dir)
        if heatmap is not None:
            extra["expert_utilisation"] = utilisation
            plots.append(heatmap)
    report = build_report(recipe, spec, tasks, test_metrics, history, extra)
    json_path, md_path = write_report(report, run_dir)
    plot = plot_history(history, tasks, run_dir / "training_curves.png")
    for path in (json_path, md_path, plot):
        tracked.log_artifact(path, "report")
    for path in [*plots, *(monitor.files() if monitor is not None else [])]:
        tracked.log_artifact(path, "analysis")
    tracked.log_artifacts(export_dir, "export")
    return md_path


def expert_usage(model: Any, batches: Any, run_dir: Path) -> tuple[Any, Path | None]:
    """Mean gate weight per task and expert (mixture-of-experts models) and its heatmap PNG."""
    from mtl_tf.models import expert_columns, expert_utilisation, utilisation_heatmap
    from mtl_tf.models.experts import gates

    if not gates(model):
        return None, None
    utilisation = expert_utilisation(model, batches)
    path = utilisation_heatmap(utilisation, run_dir / "expert_utilisation.png", columns=expert_columns(model))
    return {task: np.asarray(row).tolist() for task, row in utilisation.items()}, path


def relations_summary(monitor: Any, groups: int = 2) -> dict[str, Any]:
    """The report's task-relationship section: last matrices, cost, and a grouping suggestion
    (``groups`` groups, from the affinity averaged over epochs) when there are more tasks than groups."""
    summary = monitor.summary()
    if monitor.affinity["epochs"] and len(monitor.names) > groups:
        from mtl_tf.analysis.grouping import recommend_groups
        from mtl_tf.analysis.records import select_matrix

        matrix, _ = select_matrix(monitor.affinity)
        grouping = recommend_groups(matrix, monitor.names, groups)
        summary["grouping"] = {"groups": grouping.groups, "score": grouping.score, "exhaustive": grouping.exhaustive}
    return summary


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
    from mtl_tf.training import make_strategy
    from mtl_tf.training.strategy import is_chief

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
    strategy = make_strategy(recipe.training.distribution.strategy)
    chief = is_chief(strategy)
    entries, run_ids, uri = {}, {}, None
    for name, single in singles.items():
        echo(f"baseline {name}: training a single-task model")
        start = time.perf_counter()
        task_list = build_tasks(single.tasks)
        uri, tracked_run = _tracking(single, tracking_uri, chief)
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
    return {"test": {k: float(v) for k, v in test.items()}, "primary_metric": task.primary_metric,
            "higher_is_better": {m: task.higher_is_better(m) for m in test},
            "best_epoch": history.best_epoch, "epochs_run": len(history.epochs),
            "stopped_reason": history.stopped_reason, "run_id": tracked.run_id}
