"""Per-task metric objects, updated inside the compiled step and read once per epoch."""

from __future__ import annotations

from typing import Mapping, Sequence

import keras
import tensorflow as tf


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
        """``{task: {"loss": ..., metric: ...}}``."""
        results = {}
        for task in self.tasks:
            values = {"loss": float(self.losses[task.name].result())}
            values.update({name: float(m.result()) for name, m in self.metrics[task.name].items()})
            results[task.name] = values
        return results

    def task_weights(self) -> dict[str, float]:
        return {task.name: float(self.weights[task.name].result()) for task in self.tasks}
