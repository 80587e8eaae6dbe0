"""The main job: one recipe from raw data to a registered, servable multi-task model.

preprocess (Beam) -> train (Trainer) -> evaluate (test split) -> export (SavedModel)
-> skew check (reloaded export vs in-memory model) -> register (MLflow), all tracked in one
MLflow run. Each stage is a module of this package; :func:`run_recipe` only wires them in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mtl_tf.recipe import Recipe, flatten
from mtl_tf.recipe.loader import resolved_yaml
from mtl_tf.runner.evaluate import delta_m_line, delta_m_section, findings_stage
from mtl_tf.runner.export import export_and_check
from mtl_tf.runner.preprocess import dataset_artifacts, preprocess, preprocess_collection
from mtl_tf.runner.report import write_run_report
from mtl_tf.runner.tracking import tracking_context
from mtl_tf.runner.train import datasets, epoch_logger, make_monitor, make_trainer, mixed_training_recipe

# Validation batches over which mixture-of-experts gate weights are averaged for the report.
UTILISATION_BATCHES = 8


@dataclass
class RunResult:
    """What a run produced, and where."""

    run_dir: Path
    dataset_path: Path
    report_path: Path | None  # None on a worker that is not the chief (the chief writes it)
    test_metrics: dict[str, dict[str, float]]
    export_dir: Path | None = None
    run_id: str | None = None
    tracking_uri: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    delta_m: dict[str, Any] | None = None
    tracking_pending: int = 0

    def summary(self) -> str:
        from mtl_tf.training.task_metrics import format_metric

        lines = ["test metrics:"]
        for task, metrics in self.test_metrics.items():
            values = ", ".join(f"{k} {format_metric(v)}" for k, v in metrics.items())
            lines.append(f"  {task}: {values}")
        if self.report_path is None:
            lines.append("this worker is not the chief: the chief writes the report, exports and registers")
        else:
            lines.append(delta_m_line(self.delta_m))
            lines.append(f"report: {self.report_path}")
        if self.export_dir:
            lines.append(f"export: {self.export_dir}")
        if self.run_id:
            lines.append(f"mlflow run: {self.run_id} ({self.tracking_uri})")
        if self.model_version is not None:
            lines.append(f"registered: {self.model_name} version {self.model_version} "
                         f"(promote with: mtl models promote {self.model_name} {self.model_version} --alias champion)")
        elif self.model_name is not None:
            lines.append(f"registration of {self.model_name}: waits in {self.run_dir / 'tracking'} with "
                         f"{self.tracking_pending} tracking entries (the tracking server did not answer); send them "
                         f"with: mtl tracking sync {self.run_dir}")
        elif self.tracking_pending:
            lines.append(f"tracking: {self.tracking_pending} entries wait in {self.run_dir / 'tracking'}; send them "
                         f"with: mtl tracking sync {self.run_dir}")
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        lines.append(f"time: {stages}")
        return "\n".join(lines)


def fit(trainer: Any, data: dict[str, Any], resume: bool, on_epoch_end: Callable, expected_steps: int) -> Any:
    """Trains; checkpoints of another model configuration are refused in the CLI's terms."""
    from mtl_tf.training.fingerprint import IncompatibleCheckpoint

    try:
        return trainer.fit(data["train"], data["validation"], resume=resume, on_epoch_end=on_epoch_end,
                           expected_steps=expected_steps)
    except IncompatibleCheckpoint as err:
        raise err.advise("use another output_dir or drop --resume") from None


def log_missing_epochs(tracked: Any, history: Any) -> None:
    """Logs the committed epochs a resumed run's MLflow run lacks (a process killed between an
    epoch's checkpoint and its MLflow log): each epoch is logged once."""
    logged = tracked.logged_steps("loss") or set()
    for logs in history.epochs:
        if int(logs["epoch"]) not in logged:
            tracked.log_epoch(int(logs["epoch"]), logs)


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
    from mtl_tf.tasks.segmentation import SegmentationTask
    from mtl_tf.training.strategy import is_chief, recipe_strategy

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

    tasks = build_tasks(recipe.tasks, spec)
    for task in tasks:
        if isinstance(task, SegmentationTask):  # its signatures' per-pixel probabilities (export option)
            task.probabilities = recipe.export.dense_probabilities
    strategy = recipe_strategy(recipe.training.distribution)
    # Every worker trains and evaluates (collective ops); only the chief tracks, exports, registers.
    chief = is_chief(strategy)
    uri, tracked_run = tracking_context(recipe, tracking_uri, chief, run_dir, resume, echo)
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

            # From step 0 even when resuming: the Trainer reads the mix up to its checkpoint.
            data = mixed_datasets(recipe, collection, tasks)
            trainer = make_trainer(mixed_training_recipe(recipe, data["steps_per_epoch"]), spec, tasks, run_dir,
                                   strategy, verbose)
        monitor = make_monitor(recipe, spec, tasks, trainer, run_dir, resume, collection) if chief else None
        history = fit(trainer, data, resume, epoch_logger(tracked, monitor),
                      expected_steps=-(-spec.splits["train"].num_examples // recipe.training.batch_size))
        if chief and resume:
            log_missing_epochs(tracked, history)
        timings["train"] = time.perf_counter() - start

        start = time.perf_counter()
        test_metrics = trainer.evaluate(data["test"])
        tracked.log_metrics({f"{task}/test_{metric}": value
                             for task, metrics in test_metrics.items() for metric, value in metrics.items()})
        delta = delta_m_section(recipe, spec, tasks, test_metrics, tracked) if chief else None
        findings = findings_stage(recipe, spec, tasks, trainer.model, data["test"], tracked) if chief else None
        timings["evaluate"] = time.perf_counter() - start
        if not chief:
            return RunResult(run_dir=run_dir, dataset_path=Path(spec.root) / "dataset.json", report_path=None,
                             test_metrics=test_metrics, timings=timings)

        start = time.perf_counter()
        export_dir, skew = export_and_check(recipe, spec, tasks, trainer.model, run_dir, tracked.run_id)
        timings["export"] = time.perf_counter() - start

        report_path = write_run_report(recipe, spec, tasks, trainer, history, test_metrics, export_dir,
                                       skew, run_dir, tracked, monitor=monitor, delta=delta,
                                       utilisation_batches=data["validation"].take(UTILISATION_BATCHES),
                                       test_batches=data["test"], findings=findings)
        version = None
        name = recipe.tracking.register_as or recipe.name
        if register:
            start = time.perf_counter()
            primary = {t.name: (t.primary_metric, t.higher_is_better(t.primary_metric)) for t in tasks}
            flat = {f"{task}/{metric}": value for task, metrics in test_metrics.items()
                    for metric, value in metrics.items()}
            version = tracked.register_export(export_dir, name, flat, primary, tags={"mtl.recipe": recipe.name})
            timings["register"] = time.perf_counter() - start
    return RunResult(run_dir=run_dir, dataset_path=Path(spec.root) / "dataset.json", report_path=report_path,
                     test_metrics=test_metrics, export_dir=export_dir, run_id=tracked.run_id, tracking_uri=uri,
                     model_name=name if register else None, model_version=version, timings=timings,
                     delta_m=delta, tracking_pending=tracked.pending)
