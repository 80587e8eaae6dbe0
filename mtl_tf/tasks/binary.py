"""Binary classification: one sigmoid probability per row."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mtl_tf.tasks import TASK_TYPES
from mtl_tf.tasks.base import TaskType
from mtl_tf.tasks.heads import SqueezeLast
from mtl_tf.tasks.imbalance import binary_focal_loss, focal_options, positive_weights, weighted_binary_crossentropy
from mtl_tf.tasks.sensitivity import DEFAULT_SPECIFICITY, SensitivityAtSpecificity

# The losses of the sigmoid types (binary, multilabel) and their options (mtl_tf.tasks.imbalance).
SIGMOID_LOSSES = {"cross_entropy": ("pos_weight",), "focal": ("gamma", "alpha")}


class SigmoidTask(TaskType):
    """What binary and multi-label tasks share: sigmoid probabilities, their losses for rare
    positives (``pos_weight``, focal) and the sensitivity at a fixed specificity.

    Args:
        specificity: where metric ``sensitivity_at_specificity`` reads the sensitivity
            (default :data:`~mtl_tf.tasks.sensitivity.DEFAULT_SPECIFICITY`, 0.9).
        (others): see :class:`~mtl_tf.tasks.base.TaskType`; ``loss`` is ``cross_entropy``
            (``pos_weight``: none, auto, a number or one per class) or ``focal`` (``gamma``,
            default 2; ``alpha``).
    """

    losses = SIGMOID_LOSSES
    default_loss = "cross_entropy"

    def __init__(self, name: str, classes=None, *, specificity: float | None = None, **options: Any):
        self.specificity = DEFAULT_SPECIFICITY if specificity is None else float(specificity)
        super().__init__(name, classes=classes, **options)
        where = self._where("loss")
        self.pos_weight = None
        self.focal = None
        if self.loss_name == "focal":
            self.focal = focal_options(self.loss_options, where)
        else:
            self.pos_weight = positive_weights(self.loss_options.get("pos_weight"), self.units, self.spec,
                                               f"{where}.pos_weight")

    @classmethod
    def recipe_options(cls, task, spec, path):
        return {**super().recipe_options(task, spec, path), "specificity": task.specificity}

    def sigmoid_loss(self, label: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
        """The row loss of (B, C) labels and probabilities: plain, positive-weighted or focal."""
        if self.focal is not None:
            return binary_focal_loss(label, output, *self.focal)
        if self.pos_weight is not None:
            return weighted_binary_crossentropy(label, output, self.pos_weight)
        return keras.losses.binary_crossentropy(label, output)

    def describe(self):
        described = {**super().describe(), "specificity": self.specificity}
        if self.pos_weight is not None:
            described["pos_weight"] = self.pos_weight
        if self.focal is not None:
            described["focal"] = {"gamma": self.focal[0], "alpha": self.focal[1]}
        return described


@TASK_TYPES.register("binary")
class BinaryTask(SigmoidTask):
    """Label 0/1 (float); output P(label = 1), shape (batch,)."""

    registered_type = "binary"
    default_metrics = ("auc", "pr_auc", "accuracy")

    def head(self, x):
        logit = keras.layers.Dense(1, activation="sigmoid", name=f"{self.name}_head")(x)
        return SqueezeLast(dtype="float32", name=self.name)(logit)

    def per_example_loss(self, label, output):
        return self.sigmoid_loss(label[:, None], output[:, None])

    def metric_factories(self):
        return {
            "auc": lambda: keras.metrics.AUC(name="auc", num_thresholds=500),
            "pr_auc": lambda: keras.metrics.AUC(name="pr_auc", curve="PR", num_thresholds=500),
            "accuracy": lambda: keras.metrics.BinaryAccuracy(name="accuracy"),
            "precision": lambda: keras.metrics.Precision(name="precision"),
            "recall": lambda: keras.metrics.Recall(name="recall"),
            "f1": lambda: _F1(name="f1"),
            "loss": lambda: keras.metrics.BinaryCrossentropy(name="loss"),
            "sensitivity_at_specificity": lambda: SensitivityAtSpecificity(self.specificity),
        }

    def metric_inputs(self, label, output):
        return label[:, None], output[:, None]


class _F1(keras.metrics.F1Score):
    def __init__(self, name="f1"):
        super().__init__(threshold=0.5, name=name)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(tf.cast(y_true, tf.float32), y_pred, sample_weight)

    def result(self):
        return tf.reduce_mean(super().result())
