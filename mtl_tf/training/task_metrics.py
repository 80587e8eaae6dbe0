"""Per-task metric objects, updated inside the compiled step and read once per epoch.

A metric the data cannot define is undefined (NaN), never 0: every metric of a task with no
labelled row, and an AUC (ROC or PR) when the labelled rows hold only one class, which is
read from the metric's own true/false positive/negative counts. Keras would report 0.0 (ROC)
or 1.0 (PR, all positive) there. A multi-label AUC is the mean over the classes that have
both values among the labelled rows; it is undefined when no class has.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

NO_LABELS = "no labelled rows"
ONE_CLASS = "only one class"


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on the data it was computed on (see :data:`NO_LABELS`, :data:`ONE_CLASS`)."""


class TaskMetrics:
    """Loss trackers and Keras metrics for every task.

    Build it inside ``strategy.scope()``: the metric variables sum their updates across
    replicas, so the values read at the end of an epoch cover the global data.

    Args:
        tasks: TaskType objects.
        with_metrics: also keep each task's ``make_metrics()`` (AUC and the like).
    """

    def __init__(self, tasks: Sequence, with_metrics: bool = True):
        self.tasks = list(tasks)
        self.losses = {t.name: keras.metrics.Mean(name=f"{t.name}_loss") for t in self.tasks}
        self.weights = {t.name: keras.metrics.Mean(name=f"{t.name}_weight") for t in self.tasks}
        self.metrics = {t.name: t.make_metrics() if with_metrics else {} for t in self.tasks}
        self.total = keras.metrics.Mean(name="loss")
        self.regularization = keras.metrics.Mean(name="regularization")
        self.undefined: dict[str, dict[str, str]] = {}

    def update(self, labels: Mapping[str, tf.Tensor], masks: Mapping[str, tf.Tensor],
               outputs: Mapping[str, tf.Tensor], per_example: Sequence[tf.Tensor]) -> None:
        """Updates the loss trackers and metrics with one replica's batch (replica context)."""
        for task, rows in zip(self.tasks, per_example):
            mask = tf.cast(masks[task.name], tf.float32)
            self.losses[task.name].update_state(rows, sample_weight=mask)
            if not self.metrics[task.name]:
                continue
            y_true, y_pred = task.metric_inputs(labels[task.name], outputs[task.name])
            for metric in self.metrics[task.name].values():
                metric.update_state(y_true, y_pred, sample_weight=mask)

    def update_objective(self, weights: tf.Tensor, total: tf.Tensor, regularization: tf.Tensor) -> None:
        """Records the task weights and the objective (replica context).

        Each is a mean over replicas: ``weights`` and ``regularization`` are the same on every
        replica; ``total`` is the replica's share of the objective times the replica count.
        """
        for i, task in enumerate(self.tasks):
            self.weights[task.name].update_state(weights[i])
        self.total.update_state(total)
        self.regularization.update_state(regularization)

    def reset(self) -> None:
        for tracker in self._all():
            tracker.reset_state()

    def _all(self) -> list[keras.metrics.Metric]:
        trackers = [*self.losses.values(), *self.weights.values(), self.total, self.regularization]
        return trackers + [m for metrics in self.metrics.values() for m in metrics.values()]

    def task_results(self) -> dict[str, dict[str, float]]:
        """``{task: {"loss": ..., metric: ...}}``, NaN where a value is undefined.

        Also sets :attr:`undefined` to ``{task: {name: why}}`` for those values (``why`` is
        :data:`NO_LABELS` or :data:`ONE_CLASS`).
        """
        results, undefined = {}, {}
        for task in self.tasks:
            tracker = self.losses[task.name]
            labelled = float(tracker.count.numpy())
            values, why = {"loss": float(tracker.result()) if labelled > 0 else math.nan}, {}
            if labelled <= 0:
                why["loss"] = NO_LABELS
            for name, metric in self.metrics[task.name].items():
                values[name], reason = metric_value(metric, labelled)
                if reason:
                    why[name] = reason
            results[task.name] = values
            if why:
                undefined[task.name] = why
        self.undefined = undefined
        return results

    def task_weights(self) -> dict[str, float]:
        return {task.name: float(self.weights[task.name].result()) for task in self.tasks}


def metric_value(metric: keras.metrics.Metric, labelled: float) -> tuple[float, str | None]:
    """(value, why it is undefined or None) of a metric updated on ``labelled`` (weighted) rows."""
    if labelled <= 0:
        return math.nan, NO_LABELS
    if isinstance(metric, keras.metrics.AUC):
        return _auc_value(metric)
    return float(metric.result()), None


def _auc_value(metric: keras.metrics.AUC) -> tuple[float, str | None]:
    """The AUC where positives and negatives were both seen (per class when multi-label)."""
    if not getattr(metric, "_built", True):
        return math.nan, NO_LABELS
    # At any threshold TP + FN is every positive and FP + TN every negative (per class).
    counts = [np.asarray(keras.ops.convert_to_numpy(v))[0] for v in
              (metric.true_positives, metric.false_negatives, metric.false_positives, metric.true_negatives)]
    positives, negatives = counts[0] + counts[1], counts[2] + counts[3]
    both = np.atleast_1d((positives > 0) & (negatives > 0))
    if not both.any():
        return math.nan, ONE_CLASS if np.any(positives + negatives > 0) else NO_LABELS
    if both.all() or not metric.multi_label:
        return float(metric.result()), None
    return _mean_over(metric, both.astype("float32")), None


def _mean_over(metric: keras.metrics.AUC, classes: np.ndarray) -> float:
    """A multi-label AUC averaged over ``classes`` (a 0/1 mask) only.

    Keras reads ``label_weights`` only in ``result()`` when ``multi_label``, so the mask is
    put there for this one read.
    """
    saved = metric.label_weights
    weights = classes if saved is None else classes * np.asarray(saved, "float32")
    metric.label_weights = keras.ops.convert_to_tensor(weights)
    try:
        return float(metric.result())
    finally:
        metric.label_weights = saved


def epoch_summary(logs: Mapping[str, float], undefined: Mapping[str, Mapping[str, str]] | None = None,
                  split: str = "validation", epochs: int | None = None) -> str:
    """The one line printed per epoch: losses and validation metrics, undefined ones named so.

    ``epoch 2/5: loss=... val_loss=... <task>/val_<metric>=... (1.2s, 310.5 steps/s)``

    Args:
        logs: the epoch's logs (``epoch``, ``loss``, ``val_loss``, ``<task>/val_<metric>``...).
        undefined: ``{task: {metric: why}}`` for the validation values (see :attr:`TaskMetrics.undefined`).
        split: the split the validation values come from.
        epochs: the run's last epoch, shown as ``epoch e/E``.
    """
    keys = ["loss", "val_loss"] + [k for k in logs if "/val_" in k and not k.endswith("/val_loss")]
    parts = []
    for key in keys:
        if key not in logs:
            continue
        task, _, name = key.partition("/")
        why = (undefined or {}).get(task, {}).get(name.removeprefix("val_")) if name else None
        parts.append(f"{key}={format_metric(logs[key], why, split)}")
    of = f"/{epochs}" if epochs else ""
    timing = f"{logs['epoch_time_s']:.1f}s"
    if "steps_per_s" in logs:
        timing += f", {logs['steps_per_s']:.1f} steps/s"
    return f"epoch {logs['epoch']}{of}: " + " ".join(parts) + f" ({timing})"


def format_metric(value: float, why: str | None = None, split: str | None = None, digits: int = 4) -> str:
    """``0.8123``, or ``undefined (only one class in validation)`` for a value the data cannot define."""
    if why:
        return f"undefined ({why}{f' in {split}' if split else ''})"
    if math.isnan(float(value)):
        return "undefined"
    return f"{value:.{digits}f}"
