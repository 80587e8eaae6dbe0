"""The TaskType interface.

A task type knows the shape and dtype of its label in a tf.Example, how to tell a missing
label (the presence mask), its head, its per-example loss, its metrics and whether higher is
better for each metric. The Trainer combines per-example losses with the mask; a row without
a label contributes nothing to that task.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import tensorflow as tf

from mtl_tf.errors import did_you_mean


class TaskType:
    """Base class for task types.

    Args:
        name: the task name (the output key everywhere).
        classes: class names (multiclass, multilabel).
        metrics: metric names; default ``default_metrics``.
        primary_metric: the metric early stopping and promotion use; default the first metric.
        weight: the static loss weight.
    """

    default_metrics: tuple[str, ...] = ()
    lower_is_better: frozenset[str] = frozenset({"loss", "mae", "mse", "rmse"})
    label_dtype: tf.DType = tf.float32

    def __init__(self, name: str, classes: Sequence[str] | None = None,
                 metrics: Sequence[str] | None = None, primary_metric: str | None = None,
                 weight: float = 1.0):
        self.name = name
        self.classes = list(classes) if classes else None
        self.metric_names = list(metrics or self.default_metrics)
        known = self.metric_factories()
        for metric in self.metric_names:
            if metric not in known:
                raise ValueError(f"task '{name}': unknown metric '{metric}'{did_you_mean(metric, known)}; "
                                 f"allowed for {self.registered_type}: {', '.join(sorted(known))}")
        self.primary_metric = primary_metric or self.metric_names[0]
        if self.primary_metric not in self.metric_names:
            raise ValueError(f"task '{name}': primary_metric '{self.primary_metric}' is not among "
                             f"its metrics {self.metric_names}")
        self.weight = float(weight)

    registered_type = "task"

    # --- data -------------------------------------------------------------------------
    @property
    def label_shape(self) -> list[int]:
        return []

    def parse_feature(self) -> tf.io.FixedLenFeature:
        """The parsing spec of this task's label; a missing label parses as the default."""
        default = -1 if self.label_dtype == tf.int64 else float("nan")
        size = 1
        for dim in self.label_shape:
            size *= dim
        return tf.io.FixedLenFeature(self.label_shape, self.label_dtype, default_value=[default] * size
                                     if self.label_shape else default)

    def mask(self, label: tf.Tensor) -> tf.Tensor:
        """1.0 where the row has a label for this task, else 0.0; shape (batch,)."""
        if self.label_dtype == tf.int64:
            present = label >= 0
        else:
            present = tf.logical_not(tf.math.is_nan(label))
        if self.label_shape:
            present = tf.reduce_all(present, axis=-1)
        return tf.cast(present, tf.float32)

    def clean(self, label: tf.Tensor) -> tf.Tensor:
        """The label with missing entries replaced by a harmless value (masked out later)."""
        if self.label_dtype == tf.int64:
            return tf.maximum(label, 0)
        return tf.where(tf.math.is_nan(label), tf.zeros_like(label), label)

    # --- model ------------------------------------------------------------------------
    @property
    def units(self) -> int:
        return 1

    def head(self, x: Any) -> Any:
        """The output layer(s) on top of the task's tower; returns the task's output."""
        raise NotImplementedError

    def per_example_loss(self, label: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
        """Loss per row, shape (batch,); ``label`` already cleaned."""
        raise NotImplementedError

    def serving_outputs(self, output: tf.Tensor) -> dict[str, tf.Tensor]:
        """What the serving signatures return for this task, keyed ``<task>`` or
        ``<task>_<part>``, computed in the graph from the model's output; default: the
        output itself under the task's name."""
        return {self.name: output}

    # --- metrics ----------------------------------------------------------------------
    def metric_factories(self) -> dict[str, Callable[[], keras.metrics.Metric]]:
        raise NotImplementedError

    def make_metrics(self) -> dict[str, keras.metrics.Metric]:
        """Fresh metric objects, updated with ``update_state(label, output, sample_weight=mask)``."""
        factories = self.metric_factories()
        return {name: factories[name]() for name in self.metric_names}

    def metric_inputs(self, label: tf.Tensor, output: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(y_true, y_pred) in the form this type's metrics expect."""
        return label, output

    def higher_is_better(self, metric: str) -> bool:
        return metric not in self.lower_is_better

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.registered_type, "classes": self.classes,
                "metrics": self.metric_names, "primary_metric": self.primary_metric,
                "weight": self.weight}


def build_tasks(recipe_tasks: Sequence[Any]) -> list[TaskType]:
    """Task objects from the recipe's ``tasks`` section."""
    from mtl_tf.tasks import TASK_TYPES

    tasks = []
    for i, task in enumerate(recipe_tasks):
        cls = TASK_TYPES.lookup(task.type, f"tasks.{i}.type")
        tasks.append(cls(name=task.name, classes=task.classes, metrics=task.metrics,
                         primary_metric=task.primary_metric, weight=task.weight))
    return tasks
