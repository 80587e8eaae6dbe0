"""The main job: one recipe from raw data to a registered, servable multi-task model.

preprocess (Beam) -> train (Trainer) -> evaluate (test split) -> export (SavedModel)
-> skew check (reloaded export vs in-memory model) -> register (MLflow), all tracked in one
MLflow run. Each stage is a library call; this module only wires them in order.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mtl_tf.recipe import Recipe, flatten
from mtl_tf.recipe.loader import resolved_yaml


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

    def summary(self) -> str:
        lines = ["test metrics:"]
        for task, metrics in self.test_metrics.items():
            values = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            lines.append(f"  {task}: {values}")
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


def preprocess(recipe: Recipe, beam_args: Sequence[str] = (), skip: bool = False, echo: Callable = print):
    """Runs the Beam pipeline (or reuses its output) and returns the DatasetSpec."""
    from mtl_tf.data.spec import DatasetSpec

    if skip:
        spec = DatasetSpec.read(recipe.data.output_dir)
        echo(f"reusing {Path(spec.root) / 'dataset.json'}")
    else:
        from pipelines.csv_to_tfrecords import run as run_pipeline

        from mtl_tf.cli.data import summary

        result = run_pipeline(recipe, list(beam_args))
        echo(summary(result))
        spec = result.spec
    problems = spec.label_problems()
    if problems:
        raise ValueError("; ".join(problems))
    return spec


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
        strategy=strategy,
        epochs=training.epochs,
        steps_per_epoch=training.steps_per_epoch,
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
    spec = preprocess(recipe, beam_args, skip=skip_preprocess, echo=echo)
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
        tracked.log_artifact(Path(spec.root) / "dataset.json", "data")

        start = time.perf_counter()
        data = datasets(recipe, spec, tasks)
        trainer = make_trainer(recipe, spec, tasks, run_dir, strategy, verbose)
        batch = recipe.training.batch_size
        history = trainer.fit(data["train"], data["validation"], resume=resume,
                              on_epoch_end=lambda epoch, logs: tracked.log_epoch(epoch, logs),
                              expected_steps=-(-spec.splits["train"].num_examples // batch))
        timings["train"] = time.perf_counter() - start

        start = time.perf_counter()
        test_metrics = trainer.evaluate(data["test"])
        tracked.log_metrics({f"{task}/test_{metric}": value
                             for task, metrics in test_metrics.items() for metric, value in metrics.items()})
        timings["evaluate"] = time.perf_counter() - start
        if not chief:
            return RunResult(run_dir=run_dir, dataset_path=Path(spec.root) / "dataset.json",
                             report_path=run_dir / "report.md", test_metrics=test_metrics, timings=timings)

        start = time.perf_counter()
        export_dir, skew = export_and_check(recipe, spec, tasks, trainer.model, run_dir, tracked.run_id)
        timings["export"] = time.perf_counter() - start

        report_path = write_run_report(recipe, spec, tasks, trainer, history, test_metrics, export_dir,
                                       skew, run_dir, tracked)
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
                         model_name=name if register else None, model_version=version, timings=timings)


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


def write_run_report(recipe, spec, tasks, trainer, history, test_metrics, export_dir, skew, run_dir, tracked) -> Path:
    """report.json, report.md and the training-curve plot; all logged to the run."""
    from mtl_tf.evaluation import build_report, plot_history, write_report
    from mtl_tf.models import parameter_counts

    extra = {
        "parameters": parameter_counts(trainer.model),
        "export": {"dir": str(export_dir)},
        "skew": {"max_abs_diff": getattr(skew, "max_abs_diff", None), "examples": recipe.export.skew_examples,
                 "tolerance": recipe.export.skew_tolerance},
        "mlflow": {"run_id": tracked.run_id, "experiment": recipe.tracking.experiment or recipe.name},
    }
    report = build_report(recipe, spec, tasks, test_metrics, history, extra)
    json_path, md_path = write_report(report, run_dir)
    plot = plot_history(history, tasks, run_dir / "training_curves.png")
    for path in (json_path, md_path, plot):
        tracked.log_artifact(path, "report")
    tracked.log_artifacts(export_dir, "export")
    return md_path
