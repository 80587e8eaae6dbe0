"""delta_m: how much a multi-task model gains (or loses) over single-task baselines.

For one metric of one task, the relative change is::

    (-1)^l * (M_mt - M_st) / |M_st|        l = 1 when lower is better, else 0

so a positive value always means the multi-task model is better. ``delta_m`` (in percent) is
the mean of these changes over tasks, on each task's primary metric; the second figure,
over all metrics, first averages each task's metrics (the loss excluded: it is what training
minimises, not what a user measures), then averages the tasks, so a task with more metrics
does not weigh more. A metric whose baseline is 0 has no relative change and is left out
(and listed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

EXCLUDED_METRICS = frozenset({"loss"})


@dataclass
class DeltaM:
    """delta_m of a multi-task run against single-task baselines, in percent.

    Attributes:
        primary: mean over tasks of the relative change of the primary metric (None when no
            task could be compared).
        all_metrics: mean over tasks of the mean relative change over their metrics.
        per_task: ``{task: {"metric", "multi_task", "single_task", "higher_is_better",
            "relative_pct"}}`` for the primary metrics.
        per_metric: ``{task: {metric: relative_pct}}`` for every compared metric.
        missing: tasks without a baseline.
        skipped: ``"task/metric"`` entries left out (baseline 0 or not finite).
    """

    primary: float | None
    all_metrics: float | None
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_metric: dict[str, dict[str, float]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """The MLflow metrics: ``delta_m/primary``, ``delta_m/all_metrics``, ``delta_m/<task>``."""
        values = {f"delta_m/{task}": row["relative_pct"] for task, row in self.per_task.items()}
        if self.primary is not None:
            values["delta_m/primary"] = self.primary
        if self.all_metrics is not None:
            values["delta_m/all_metrics"] = self.all_metrics
        return values

    def to_dict(self) -> dict[str, Any]:
        return {"primary_pct": self.primary, "all_metrics_pct": self.all_metrics, "per_task": self.per_task,
                "per_metric": self.per_metric, "missing_baselines": self.missing, "skipped": self.skipped}


def relative_change(multi_task: float, single_task: float, higher_is_better: bool) -> float:
    """``(-1)^l (M_mt - M_st) / |M_st|`` (a fraction, positive when the multi-task model is better).

    Raises:
        ValueError: when the baseline is 0 or a value is not finite.
    """
    values = (float(multi_task), float(single_task))
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"metrics must be finite; received multi-task {multi_task!r}, single-task {single_task!r}")
    if values[1] == 0.0:
        raise ValueError("the single-task value is 0, so a relative change is undefined")
    sign = 1.0 if higher_is_better else -1.0
    return sign * (values[0] - values[1]) / abs(values[1])


def delta_m(multi_task: Mapping[str, Mapping[str, float]], single_task: Mapping[str, Mapping[str, float]],
            tasks: Sequence[Any]) -> DeltaM:
    """delta_m of ``multi_task`` against ``single_task`` test metrics.

    Args:
        multi_task: ``{task: {metric: value}}`` of the multi-task model.
        single_task: the same for the baselines (one single-task model per task).
        tasks: TaskType objects (their ``primary_metric`` and ``higher_is_better``).

    Returns:
        A :class:`DeltaM` (percentages).

    Example:
        >>> delta_m({"a": {"auc": 0.88}}, {"a": {"auc": 0.80}}, tasks).primary
        10.0
    """
    result = DeltaM(primary=None, all_metrics=None)
    primary_changes, task_means = [], []
    for task in tasks:
        mt, st = multi_task.get(task.name, {}), single_task.get(task.name)
        if not st:
            result.missing.append(task.name)
            continue
        changes = {}
        for metric in sorted(set(mt) & set(st) - EXCLUDED_METRICS):
            try:
                changes[metric] = 100.0 * relative_change(mt[metric], st[metric], task.higher_is_better(metric))
            except ValueError:
                result.skipped.append(f"{task.name}/{metric}")
        if changes:
            result.per_metric[task.name] = changes
            task_means.append(sum(changes.values()) / len(changes))
        metric = task.primary_metric
        if metric in changes:
            primary_changes.append(changes[metric])
            result.per_task[task.name] = {"metric": metric, "multi_task": float(mt[metric]),
                                          "single_task": float(st[metric]),
                                          "higher_is_better": task.higher_is_better(metric),
                                          "relative_pct": changes[metric]}
    if primary_changes:
        result.primary = sum(primary_changes) / len(primary_changes)
    if task_means:
        result.all_metrics = sum(task_means) / len(task_means)
    return result
