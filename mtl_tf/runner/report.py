"""Stage 5: the run report (JSON, Markdown), its plots, and their MLflow artifacts.

Runs of one recipe share its ``output_dir`` (runs of other architectures too), so each run's
report and plots go to a folder of its own, ``<output_dir>/runs/<export version>-<architecture>/``
(the version is the name of the run's export folder), and are copied to ``<output_dir>``,
where the latest run's report is always found.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

RUNS_DIR = "runs"
# What a run's folder holds, copied to <output_dir> for the latest run.
RUN_FILES = ("report.json", "report.md", "training_curves.png", "expert_utilisation.png", "predictions.png")
PREDICTIONS_FILE = "predictions.png"


def run_folder(run_dir: Path, export_dir: Path, architecture: str) -> Path:
    """A new folder for one run's report: ``<run_dir>/runs/<export version>-<architecture>``."""
    base = Path(run_dir) / RUNS_DIR / f"{Path(export_dir).name}-{architecture}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    folder.mkdir(parents=True)
    return folder


def publish_latest(folder: Path, run_dir: Path) -> None:
    """Copies a run's report files to ``run_dir``; drops those an earlier run left that this one lacks."""
    for name in RUN_FILES:
        source, target = Path(folder) / name, Path(run_dir) / name
        if source.is_file():
            shutil.copy2(source, target)
        elif target.is_file():
            target.unlink()


def write_run_report(recipe, spec, tasks, trainer, history, test_metrics, export_dir, skew, run_dir, tracked,
                     monitor: Any = None, delta: dict[str, Any] | None = None,
                     utilisation_batches: Any = None, test_batches: Any = None, findings: Any = None) -> Path:
    """report.json, report.md, the training-curve plot and the relation plots; all logged to the run.

    With an image feature and ``test_batches`` (the test split), also ``predictions.png``: a
    few test images with each task's truth and served prediction (:func:`prediction_grid`),
    logged under ``report/``. ``findings`` (:class:`mtl_tf.evaluation.findings.Findings`) adds
    the per-finding section and its reliability diagrams (``<run folder>/calibration/``,
    MLflow ``calibration/``).

    Returns the run's own report.md (under ``<run_dir>/runs/``); ``<run_dir>/report.md`` is its copy.
    """
    from mtl_tf.evaluation import build_report, plot_history, write_report
    from mtl_tf.models import flops_per_example, parameter_breakdown

    model = recipe.model
    extra = {
        "model": {"architecture": model.architecture.as_dict(), "trunk": model.trunk.as_dict(),
                  "tower": model.tower.as_dict()},
        "parameters": parameter_breakdown(trainer.model),
        "flops_per_example": flops_per_example(trainer.model),
        "export": {"dir": str(export_dir)},
        "skew": {"max_abs_difference": skew.max_abs_difference, "examples": skew.num_examples,
                 "tolerance": skew.tolerance},
        "mlflow": {"run_id": tracked.run_id, "experiment": recipe.tracking.experiment or recipe.name},
    }
    if delta is not None:
        extra["delta_m"] = delta
    if findings is not None:
        extra["findings"] = findings.section
    plots = []
    if monitor is not None and monitor.skipped:
        extra["relations"] = monitor.summary()
    elif monitor is not None and (monitor.conflict["epochs"] or monitor.affinity["epochs"]):
        extra["relations"] = relations_summary(monitor)
        plots = monitor.plots()
    folder = run_folder(run_dir, export_dir, recipe.model.architecture.name)
    extra["run_folder"] = str(folder)
    if utilisation_batches is not None:
        utilisation, heatmap = expert_usage(trainer.model, utilisation_batches, folder)
        if heatmap is not None:
            extra["expert_utilisation"] = utilisation
            plots.append(heatmap)
    grid = predictions_grid(spec, tasks, trainer.model, test_batches, folder)
    if grid is not None:
        extra["prediction_grid"] = str(grid)
    report = build_report(recipe, spec, tasks, test_metrics, history, extra)
    json_path, md_path = write_report(report, folder)
    plot = plot_history(history, tasks, folder / "training_curves.png")
    for path in (json_path, md_path, plot, grid):
        if path is not None:
            tracked.log_artifact(path, "report")
    for path in findings.plots(folder / "calibration") if findings is not None else []:
        tracked.log_artifact(path, "calibration")
    publish_latest(folder, run_dir)
    for path in [*plots, *(monitor.files() if monitor is not None else [])]:
        tracked.log_artifact(path, "analysis")
    tracked.log_artifacts(export_dir, "export")
    return md_path


def predictions_grid(spec: Any, tasks: Any, model: Any, test_batches: Any, folder: Path) -> Path | None:
    """``<folder>/predictions.png`` for a dataset with an image feature, else None."""
    images = [f for f in spec.features if f.kind == "image"]
    if test_batches is None or not images:
        return None
    from mtl_tf.evaluation.prediction_grid import prediction_grid

    return prediction_grid(model, tasks, test_batches, images[0].name, Path(folder) / PREDICTIONS_FILE)


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
