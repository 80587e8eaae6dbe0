"""Per-finding evaluation on the test split: what a clinical reader of a model asks.

For every binary task and every class of a multi-label task ("finding"): positives and
negatives, ROC AUC, average precision, sensitivity at the task's specificity, expected
calibration error and a reliability diagram; the task's means over its findings (rank scores
over the findings that have both classes). A finding with no positives (or no negatives) in
the split is reported as such: its rank scores are ``null`` with the reason, never a number.
For every segmentation task: IoU and Dice per class from the pixels of the whole split.
With ``evaluation.by_key``, the named tasks are also scored per split key (per patient): a
key's probability is the mean (or max) of its rows', its label the largest of its rows'.

:func:`evaluate_findings` computes it all from :class:`~mtl_tf.evaluation.predictions.Predictions`;
the result's ``section`` goes to report.json (``findings``), its ``metrics`` to MLflow and
:func:`findings_lines` to report.md; :meth:`Findings.plots` writes the diagrams.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mtl_tf.evaluation.calibration import plot_name, plot_reliability
from mtl_tf.evaluation.predictions import Predictions, TaskPredictions
from mtl_tf.evaluation.scores import (DEFAULT_BINS, average_precision, reliability_bins, roc_auc,
                                      sensitivity_at_specificity, why_undefined)

RANK_SCORES = ("auc", "average_precision", "sensitivity_at_specificity")


@dataclass
class Findings:
    """The evaluation's report section, its MLflow metrics and what the diagrams need."""

    section: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    _curves: list[tuple[str, Any, str, str]] = field(default_factory=list, repr=False)

    def plots(self, folder: str | Path) -> list[Path]:
        """Writes one reliability diagram per finding into ``folder``; returns their paths."""
        return [plot_reliability(reliability, Path(folder) / name, title, note)
                for name, reliability, title, note in self._curves]

    def summary(self) -> dict[str, Any]:
        """The section without the reliability bins (what baselines.json keeps)."""
        def strip(node: Any) -> Any:
            if isinstance(node, dict):
                return {k: strip(v) for k, v in node.items() if k != "reliability"}
            return node

        return strip(self.section)

    @property
    def undefined(self) -> list[str]:
        """``<task>/<finding>`` of every finding whose rank scores are undefined."""
        names = []
        for section in (self.section.get("tasks", {}), self.section.get("by_key", {}).get("tasks", {})):
            for task, entry in section.items():
                names += [f"{task}/{label}" for label, row in entry["classes"].items() if row.get("undefined")]
        return sorted(set(names))


def evaluate_findings(predictions: Predictions, tasks: Sequence[Any], bins: int = DEFAULT_BINS,
                      by_key: Any = None, key_name: str | None = None, split: str = "test") -> Findings:
    """The per-finding section of a split's predictions.

    Args:
        predictions: the model's pass over the split.
        tasks: the TaskType objects (binary and multi-label ones are scored per finding,
            segmentation ones per class).
        bins: equal-width probability bins of the calibration error and the diagrams.
        by_key: the recipe's ``evaluation.by_key`` (``tasks``, ``aggregate``), or None.
        key_name: what the keys are (``data.split.key``), for the report.
        split: the split's name, for the reasons.
    """
    section: dict[str, Any] = {"split": split, "calibration_bins": bins, "tasks": {}, "segmentation": {}}
    findings = Findings(section)
    for task in tasks:
        if task.name in predictions.tasks:
            entry = _task_entry(task, predictions.tasks[task.name], bins, split, findings, "")
            section["tasks"][task.name] = entry
        elif task.name in predictions.confusion:
            section["segmentation"][task.name] = segmentation_entry(task, predictions.confusion[task.name])
    if by_key is not None and by_key.tasks:
        section["by_key"] = _by_key_section(predictions, tasks, by_key, key_name, bins, split, findings)
    findings.metrics = _metrics(section)
    return findings


def _task_entry(task: Any, rows: TaskPredictions, bins: int, split: str, findings: Findings, scope: str,
                keys: int | None = None) -> dict[str, Any]:
    labels = task.classes if task.registered_type == "multilabel" else [task.name]
    labelled = rows.labelled
    specificity = getattr(task, "specificity", 0.9)
    entry: dict[str, Any] = {"type": task.registered_type, "labelled": int(labelled.sum()),
                             "specificity": specificity, "classes": {}}
    if keys is not None:
        entry["keys"] = keys
    for c, label in enumerate(labels):
        y, p = rows.labels[labelled, c], rows.probabilities[labelled, c]
        row, reliability = finding_scores(y, p, specificity, bins, split)
        entry["classes"][label] = row
        title = f"{task.name}: {label}" if label != task.name else task.name
        name = plot_name(f"{task.name}{scope}", label)
        findings._curves.append((name, reliability, title + (" (per key)" if scope else ""),
                                 f"{row['positives']} positives of {row['positives'] + row['negatives']}"))
    entry.update(_means(entry["classes"]))
    return entry


def finding_scores(labels: np.ndarray, scores: np.ndarray, specificity: float = 0.9, bins: int = DEFAULT_BINS,
                   split: str = "test") -> tuple[dict[str, Any], Any]:
    """One finding's scores (``null`` with a reason where undefined) and its reliability bins."""
    positives = int((labels > 0.5).sum())
    row: dict[str, Any] = {"positives": positives, "negatives": int(labels.size - positives),
                           "mean_probability": float(scores.mean()) if scores.size else None}
    why = why_undefined(labels, split)
    values = {"auc": roc_auc(labels, scores), "average_precision": average_precision(labels, scores),
              "sensitivity_at_specificity": sensitivity_at_specificity(labels, scores, specificity)}
    for name, value in values.items():
        row[name] = None if math.isnan(value) else value
    reliability = reliability_bins(labels, scores, bins)
    row["ece"] = None if math.isnan(reliability.ece) else reliability.ece
    row["reliability"] = reliability.as_dict()
    if why:
        row["undefined"] = {name: why for name in RANK_SCORES}
        if labels.size == 0:
            row["undefined"]["ece"] = why
    return row, reliability


def _means(classes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Means over the findings where each score is defined, and which findings were left out."""
    means: dict[str, Any] = {}
    for name in (*RANK_SCORES, "ece"):
        values = [row[name] for row in classes.values() if row.get(name) is not None]
        means[f"mean_{name}"] = float(np.mean(values)) if values else None
    left_out = [label for label, row in classes.items() if row.get("undefined")]
    if left_out:
        means["left_out_of_means"] = left_out
    return means


def segmentation_entry(task: Any, confusion: np.ndarray) -> dict[str, Any]:
    """IoU and Dice per class from a split's confusion matrix (true x predicted pixels), and
    their means over the classes present in the ground truth (``foreground_dice``: without
    class 0)."""
    confusion = np.asarray(confusion, np.float64)
    hits, truth, predicted = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    classes: dict[str, Any] = {}
    for c, label in enumerate(task.classes):
        present = truth[c] > 0
        classes[label] = {"pixels": int(truth[c]), "predicted_pixels": int(predicted[c]),
                          "iou": float(hits[c] / (truth[c] + predicted[c] - hits[c])) if present else None,
                          "dice": float(2 * hits[c] / (truth[c] + predicted[c])) if present else None}
    dice = [row["dice"] for row in classes.values() if row["dice"] is not None]
    iou = [row["iou"] for row in classes.values() if row["iou"] is not None]
    foreground = [row["dice"] for label, row in list(classes.items())[1:] if row["dice"] is not None]
    return {"classes": classes, "mean_dice": float(np.mean(dice)) if dice else None,
            "mean_iou": float(np.mean(iou)) if iou else None,
            "foreground_dice": float(np.mean(foreground)) if foreground else None,
            "absent": [label for label, row in classes.items() if row["dice"] is None]}


def _by_key_section(predictions: Predictions, tasks: Sequence[Any], by_key: Any, key_name: str | None, bins: int,
                    split: str, findings: Findings) -> dict[str, Any]:
    section: dict[str, Any] = {"key": key_name, "aggregate": by_key.aggregate, "tasks": {}}
    if predictions.keys is None:
        section["unavailable"] = ("the examples carry no split key (preprocess again with data.split.key set, so "
                                  "each example stores it)")
        return section
    keys = np.asarray(predictions.keys)
    for task in tasks:
        if task.name not in by_key.tasks or task.name not in predictions.tasks:
            continue
        grouped = group_by_key(predictions.tasks[task.name], keys, by_key.aggregate)
        entry = _task_entry(task, grouped, bins, split, findings, "__by_key", keys=len(grouped.labelled))
        section["tasks"][task.name] = entry
    return section


def group_by_key(rows: TaskPredictions, keys: np.ndarray, aggregate: str = "mean") -> TaskPredictions:
    """One row per key among the labelled rows: the ``mean`` (or ``max``) of its rows'
    probabilities, the largest of its rows' labels (positive when any row is)."""
    labelled = rows.labelled
    keys = np.asarray(keys)[labelled]
    unique, inverse = np.unique(keys, return_inverse=True)
    probabilities, labels = rows.probabilities[labelled], rows.labels[labelled]
    out_p = np.zeros((len(unique), probabilities.shape[1]))
    out_y = np.zeros_like(out_p)
    for i in range(len(unique)):
        members = inverse == i
        out_p[i] = probabilities[members].max(axis=0) if aggregate == "max" else probabilities[members].mean(axis=0)
        out_y[i] = labels[members].max(axis=0)
    return TaskPredictions(out_p, out_y, np.ones(len(unique), bool))


def _metrics(section: Mapping[str, Any]) -> dict[str, float]:
    """MLflow metrics: ``<task>/<split>_<finding>_<score>`` and the task means; per key
    ``<task>/<split>_by_key_...``; segmentation ``<task>/<split>_<class>_dice``. Undefined
    values are left out (MLflow would store a number)."""
    split = section["split"]
    metrics: dict[str, float] = {}
    scopes = [("", section["tasks"])]
    if section.get("by_key"):
        scopes.append(("by_key_", section["by_key"]["tasks"]))
    for scope, tasks in scopes:
        for task, entry in tasks.items():
            for name in (*RANK_SCORES, "ece"):
                _put(metrics, f"{task}/{split}_{scope}mean_{name}", entry.get(f"mean_{name}"))
            for label, row in entry["classes"].items():
                for name in (*RANK_SCORES, "ece"):
                    _put(metrics, f"{task}/{split}_{scope}{_metric_name(label)}_{name}", row.get(name))
    for task, entry in section.get("segmentation", {}).items():
        for label, row in entry["classes"].items():
            _put(metrics, f"{task}/{split}_{_metric_name(label)}_dice", row["dice"])
    return metrics


def _put(metrics: dict[str, float], key: str, value: Any) -> None:
    if value is not None and not math.isnan(float(value)):
        metrics[key] = float(value)


def _metric_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(label))


def findings_lines(section: Mapping[str, Any] | None) -> list[str]:
    """report.md's per-finding tables."""
    if not section:
        return []
    split = section["split"]
    lines = ["## Findings", "",
             f"Per finding on the {split} split: ROC AUC, average precision (AP), sensitivity at the task's specificity, "
             f"expected calibration error over {section['calibration_bins']} bins (ECE); reliability diagrams are in "
             "the run's calibration/ folder.", ""]
    lines += _finding_tables(section["tasks"])
    by_key = section.get("by_key")
    if by_key:
        lines += ["## Findings per split key", "",
                  f"Each value of the split key `{by_key.get('key')}` (a patient) is one row: the {by_key['aggregate']} "
                  "of its rows' probabilities against the largest of their labels.", ""]
        lines += [by_key["unavailable"] + ".", ""] if by_key.get("unavailable") else _finding_tables(by_key["tasks"])
    for task, entry in section.get("segmentation", {}).items():
        lines += [f"### {task} (segmentation, pixels of the whole split)", "",
                  "| class | pixels | IoU | Dice |", "| --- | --- | --- | --- |"]
        for label, row in entry["classes"].items():
            lines.append(f"| {label} | {row['pixels']:,} | {_cell(row['iou'])} | {_cell(row['dice'])} |")
        lines += ["", f"Mean Dice {_cell(entry['mean_dice'])}, foreground Dice {_cell(entry['foreground_dice'])}, "
                      f"mean IoU {_cell(entry['mean_iou'])} (classes present in the ground truth)"
                  + (f"; absent: {', '.join(entry['absent'])}" if entry["absent"] else "") + ".", ""]
    return lines


def _finding_tables(tasks: Mapping[str, Any]) -> list[str]:
    lines = []
    for task, entry in tasks.items():
        count = f"{entry['keys']} keys" if "keys" in entry else f"{entry['labelled']} labelled rows"
        lines += [f"### {task} ({entry['type']}, {count})", "",
                  f"| finding | positives | AUC | AP | sensitivity at specificity {entry['specificity']:g} | ECE |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for label, row in entry["classes"].items():
            why = (row.get("undefined") or {}).get("auc")
            scores = [f"undefined ({why})" if why else _cell(row[name]) for name in RANK_SCORES]
            label = "positive" if entry["type"] == "binary" else label  # a binary task's one finding
            lines.append(f"| {label} | {row['positives']} of {row['positives'] + row['negatives']} | "
                         + " | ".join(scores) + f" | {_cell(row['ece'])} |")
        lines.append(f"| **mean** | | **{_cell(entry['mean_auc'])}** | {_cell(entry['mean_average_precision'])} | "
                     f"{_cell(entry['mean_sensitivity_at_specificity'])} | {_cell(entry['mean_ece'])} |")
        if entry.get("left_out_of_means"):
            lines += ["", f"Left out of the rank-score means (one class only): {', '.join(entry['left_out_of_means'])}."]
        lines.append("")
    return lines


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"
