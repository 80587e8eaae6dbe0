"""The run report: per-task metrics on the test split, as report.json and report.md.

A metric the test split cannot define (NaN from ``Trainer.evaluate``: an AUC with one class
among the labelled rows, any metric of a task without labelled rows) is ``null`` in
report.json, with the reason under the task's ``undefined``, and "undefined (...)" in
report.md, never a number.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from mtl_tf.evaluation.findings import findings_lines


def build_report(recipe: Any, spec: Any, tasks: Sequence[Any], test_metrics: Mapping[str, Mapping[str, float]],
                 history: Any = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Collects what a reader of a run needs: data, per-task test metrics, training summary.

    Args:
        recipe: the Recipe.
        spec: the DatasetSpec the run used.
        tasks: TaskType objects.
        test_metrics: ``{task: {metric: value}}`` from ``Trainer.evaluate`` on the test split.
        history: the Trainer's History (best epoch, stop reason, per-epoch logs).
        extra: more sections (parameter counts, export, skew check, MLflow ids).
    """
    report: dict[str, Any] = {
        "recipe": recipe.name,
        "dataset": {
            "rows_in": spec.rows_in,
            "rejected": spec.rejects.count,
            "splits": {name: split.num_examples for name, split in spec.splits.items()},
        },
        "tasks": {},
    }
    for task in tasks:
        task_spec = spec.task(task.name)
        values = {k: float(v) for k, v in test_metrics.get(task.name, {}).items()}
        report["tasks"][task.name] = {
            "type": task.registered_type,
            "primary_metric": task.primary_metric,
            "higher_is_better": task.higher_is_better(task.primary_metric),
            "labelled_test_rows": task_spec.labelled.get("test"),
            "positives_test": task_spec.positives.get("test"),
            "test": {k: None if math.isnan(v) else v for k, v in values.items()},
        }
        undefined = {k: undefined_reason(task_spec, "test") for k, v in values.items() if math.isnan(v)}
        if undefined:
            report["tasks"][task.name]["undefined"] = undefined
    if history is not None:
        report["training"] = {
            "epochs_run": len(history.epochs),
            "best_epoch": history.best_epoch,
            "best_score": history.best_score,
            "stopped_reason": history.stopped_reason,
            "seconds": sum(e.get("epoch_time_s", 0.0) for e in history.epochs),
        }
    report.update(extra or {})
    return report


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Writes report.json and report.md into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path = out / "report.md"
    md_path.write_text(to_markdown(report))
    return json_path, md_path


def to_markdown(report: Mapping[str, Any]) -> str:
    """A readable report: the test metrics table first, then data and training."""
    lines = [f"# {report['recipe']}: test report", ""]
    metric_names = sorted({m for t in report["tasks"].values() for m in t["test"]})
    lines += ["| task | type | " + " | ".join(metric_names) + " | labelled test rows |",
              "| --- | --- | " + " | ".join("---" for _ in metric_names) + " | --- |"]
    for name, task in report["tasks"].items():
        cells = []
        for metric in metric_names:
            value = task["test"].get(metric)
            why = task.get("undefined", {}).get(metric)
            cell = f"undefined ({why})" if why else "" if value is None else f"{value:.4f}"
            cells.append(f"**{cell}**" if metric == task["primary_metric"] and cell else cell)
        lines.append(f"| {name} | {task['type']} | " + " | ".join(cells) + f" | {task['labelled_test_rows']} |")
    lines += ["", "Primary metrics in bold.", ""]
    data = report["dataset"]
    splits = ", ".join(f"{k} {v}" for k, v in data["splits"].items())
    lines += ["## Data", "", f"{data['rows_in']} rows in, {data['rejected']} rejected; {splits}.", ""]
    if "training" in report:
        t = report["training"]
        lines += ["## Training", "",
                  f"{t['epochs_run']} epochs ({t['stopped_reason']}), best epoch {t['best_epoch']} "
                  f"(validation score {_fmt(t['best_score'])}), {t['seconds']:.1f} s.", ""]
    if "parameters" in report:
        p = report["parameters"]
        lines += ["## Model", ""] + _configuration_lines(report.get("model"))
        lines += [f"{p.get('trainable', 0):,} trainable and {p.get('non_trainable', 0):,} "
                  "non-trainable parameters" + _breakdown(p) + "."]
        if report.get("flops_per_example"):
            lines.append(f"{report['flops_per_example']:,} multiply-adds per example (inference).")
        lines.append("")
        if report.get("expert_utilisation"):
            lines += ["Mean gate weight per expert (validation):", ""]
            lines += [f"- {task}: {_rounded(row)}" for task, row in report["expert_utilisation"].items()] + [""]
    lines += _delta_m_lines(report.get("delta_m"))
    lines += findings_lines(report.get("findings"))
    lines += _relations_lines(report.get("relations"))
    for section in ("export", "skew", "mlflow"):
        if section in report:
            lines += [f"## {section.capitalize() if section != 'mlflow' else 'MLflow'}", ""]
            lines += [f"- {k}: {v}" for k, v in report[section].items()] + [""]
    return "\n".join(lines)


def undefined_reason(task_spec: Any, split: str) -> str:
    """Why a task's metric is undefined on ``split``, from dataset.json's label counts."""
    if not task_spec.labelled.get(split, 0):
        return f"no labelled rows in {split}"
    if task_spec.one_class(split):
        return f"only one class in {split}"
    return f"not a number on {split}"


def _configuration_lines(model: Mapping[str, Any] | None) -> list[str]:
    """``architecture hps; trunk mlp (units [64, 32]); tower mlp`` from the report's model section."""
    if not model:
        return []
    parts = []
    for key, component in model.items():
        options = ", ".join(f"{k} {v}" for k, v in component.items() if k != "name")
        parts.append(f"{key} {component.get('name')}" + (f" ({options})" if options else ""))
    return ["; ".join(parts) + ".", ""]


def _breakdown(parameters: Mapping[str, Any]) -> str:
    parts = [f"{parameters[key]:,} {label}" for key, label in (
        ("shared_trainable", "shared"), ("task_trainable", "task-specific"),
        ("fixed_primitives", "in fixed non-learnable primitives")) if parameters.get(key)]
    return f" ({', '.join(parts)})" if parts else ""


def _rounded(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return round(float(value), 3)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else str(value)


def _delta_m_lines(section: Mapping[str, Any] | None) -> list[str]:
    """The delta_m section: the two figures and the per-task table, or how to get them."""
    if not section:
        return []
    lines = ["## delta_m against single-task baselines", ""]
    if not section.get("available"):
        return lines + [f"Not computed: {section['reason']}; {section['how']}.", ""]
    lines += [f"delta_m on the primary metrics: **{section['primary_pct']:+.2f}%**; over all metrics: "
              f"{_pct(section.get('all_metrics_pct'))} (positive: the multi-task model is better; test split, "
              "each model at its best validation epoch).", "",
              "| task | metric | multi-task | single-task | change |", "| --- | --- | --- | --- | --- |"]
    for task, row in section["per_task"].items():
        lines.append(f"| {task} | {row['metric']} | {row['multi_task']:.4f} | {row['single_task']:.4f} | "
                     f"{row['relative_pct']:+.2f}% |")
    lines.append("")
    warnings = section.get("baseline_warnings") or {}
    if warnings:
        lines += ["**Weak baselines**: delta_m is a relative change, so a baseline that never learned makes it "
                  "large without the multi-task model being good; read the per-task changes above and rerun "
                  "`mtl baseline` for these tasks:", ""]
        lines += [f"- {task}: {'; '.join(notes)}" for task, notes in warnings.items()] + [""]
    if section.get("skipped"):
        lines += [f"Left out (baseline value 0 or a value undefined, no relative change): "
                  f"{', '.join(section['skipped'])}.", ""]
    if section.get("missing_baselines"):
        lines += [f"No baseline for: {', '.join(section['missing_baselines'])}.", ""]
    if section.get("stale_settings"):
        lines += [f"The baselines were trained with different {', '.join(section['stale_settings'])}; "
                  "rerun `mtl baseline` for a like-for-like comparison.", ""]
    return lines


def delta_m_summary(section: Mapping[str, Any] | None) -> str:
    """The run summary's delta_m lines: both figures, the change per task, weak baselines."""
    if not section:
        return "delta_m: not computed"
    if not section.get("available"):
        return f"delta_m: not computed ({section['reason']}; {section['how']})"
    per_task = ", ".join(f"{task} {row['metric']} {row['relative_pct']:+.2f}%"
                         for task, row in section.get("per_task", {}).items())
    lines = [f"delta_m vs single-task baselines: {section['primary_pct']:+.2f}% (primary metrics), "
             f"{_pct(section.get('all_metrics_pct'))} (all metrics); per task: {per_task or 'none'}"]
    for task, notes in (section.get("baseline_warnings") or {}).items():
        lines.append(f"  warning: the {task} baseline is weak ({'; '.join(notes)}): its change inflates delta_m")
    return "\n".join(lines)


def _relations_lines(section: Mapping[str, Any] | None) -> list[str]:
    """The task-relationship section: the last measured matrices and what they cost."""
    if not section:
        return []
    tasks = section["tasks"]
    lines = ["## Task relationships", ""]
    if section.get("skipped"):
        return lines + [f"Not measured: {section['skipped']}.", ""]
    for kind, caption in (("conflict", "Gradient cosine on the shared parameters (negative: conflict)"),
                          ("affinity", "Inter-task affinity, row task's step onto column task's loss")):
        if kind not in section:
            continue
        entry = section[kind]
        lines += [f"{caption}, epoch {entry['epoch']}:", "", "| | " + " | ".join(f"*{t}*" for t in tasks) + " |",
                  "| --- |" + " --- |" * len(tasks)]
        for name, row in zip(tasks, entry["matrix"]):
            lines.append(f"| *{name}* | " + " | ".join("n/a" if v is None else f"{v:.3g}" for v in row) + " |")
        lines.append("")
    if section.get("grouping"):
        lines += [f"Suggested grouping ({len(section['grouping']['groups'])} groups, mean affinity over epochs): "
                  + " | ".join(", ".join(g) for g in section["grouping"]["groups"]) + ".", ""]
    if section.get("seconds_per_epoch") is not None:
        batches = section["probe_batches"]
        lines += [f"Measured at epoch ends on fixed training batches ({batches['conflict']} for conflict, "
                  f"{batches['affinity']} for affinity): {section['seconds_per_epoch']:.2f} s per measured epoch "
                  f"({section.get('first_seconds') or 0:.2f} s the first time, which compiles the probe).", ""]
    return lines


def _pct(value: Any) -> str:
    return f"{value:+.2f}%" if isinstance(value, (int, float)) else "n/a"


def plot_history(history: Any, tasks: Sequence[Any], path: str | Path) -> Path:
    """Per-task training/validation loss and validation primary metric per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = list(range(1, len(history.epochs) + 1))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for task in tasks:
        for key, style in ((f"{task.name}/loss", "-"), (f"{task.name}/val_loss", "--")):
            values = [e.get(key) for e in history.epochs]
            if any(v is not None for v in values):
                axes[0].plot(epochs, values, style, label=key)
        key = f"{task.name}/val_{task.primary_metric}"
        axes[1].plot(epochs, [e.get(key) for e in history.epochs], marker="o", label=key)
    axes[0].set(title="loss per task", xlabel="epoch")
    axes[1].set(title="validation primary metric", xlabel="epoch")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
