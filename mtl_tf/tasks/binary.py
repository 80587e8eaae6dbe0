"""Binary classification: one sigmoid probability per row."""

import keras
import tensorflow as tf

from mtl_tf.tasks import TASK_TYPES
from mtl_tf.tasks.base import TaskType
from mtl_tf.tasks.heads import SqueezeLast


@TASK_TYPES.register("binary")
class BinaryTask(TaskType):
    """Label 0/1 (float); output P(label = 1), shape (batch,)."""

    registered_type = "binary"
    default_metrics = ("auc", "pr_auc", "accuracy")

    def head(self, x):
        logit = keras.layers.Dense(1, activation="sigmoid", name=f"{self.name}_head")(x)
        return SqueezeLast(dtype="float32", name=self.name)(logit)

    def per_example_loss(self, label, output):
        return keras.losses.binary_crossentropy(label[:, None], output[:, None])

    def metric_factories(self):
        return {
            "auc": lambda: keras.metrics.AUC(name="auc", num_thresholds=500),
            "pr_auc": lambda: keras.metrics.AUC(name="pr_auc", curve="PR", num_thresholds=500),
            "accuracy": lambda: keras.metrics.BinaryAccuracy(name="accuracy"),
            "precision": lambda: keras.metrics.Precision(name="precision"),
            "recall": lambda: keras.metrics.Recall(name="recall"),
            "f1": lambda: _F1(name="f1"),
            "loss": lambda: keras.metrics.BinaryCrossentropy(name="loss"),
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
