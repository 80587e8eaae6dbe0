"""Multiclass classification: a softmax over the recipe's classes."""

import keras
import tensorflow as tf

from mtl_tf.tasks import TASK_TYPES
from mtl_tf.tasks.base import TaskType


@TASK_TYPES.register("multiclass")
class MulticlassTask(TaskType):
    """Label: class index (int64, -1 when missing); output class probabilities (batch, C)."""

    registered_type = "multiclass"
    default_metrics = ("accuracy", "loss")
    label_dtype = tf.int64
    losses = {"cross_entropy": ()}
    default_loss = "cross_entropy"

    @property
    def units(self):
        return len(self.classes)

    def head(self, x):
        return keras.layers.Dense(self.units, activation="softmax", dtype="float32", name=self.name)(x)

    def per_example_loss(self, label, output):
        return keras.losses.sparse_categorical_crossentropy(label, output)

    def metric_factories(self):
        return {
            "accuracy": lambda: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            "top3_accuracy": lambda: keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3_accuracy"),
            "loss": lambda: keras.metrics.SparseCategoricalCrossentropy(name="loss"),
        }
