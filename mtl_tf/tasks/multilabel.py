"""Multi-label classification: one independent sigmoid per class."""

import keras

from mtl_tf.tasks import TASK_TYPES
from mtl_tf.tasks.binary import SigmoidTask
from mtl_tf.tasks.sensitivity import SensitivityAtSpecificity


@TASK_TYPES.register("multilabel")
class MultilabelTask(SigmoidTask):
    """Label: multi-hot float vector of len(classes); output probabilities (batch, C).

    Metrics average over the classes that have both values among the labelled rows: ``auc``,
    ``pr_auc``, ``sensitivity_at_specificity`` (each class at the task's ``specificity``).
    """

    registered_type = "multilabel"
    default_metrics = ("auc", "pr_auc")

    @property
    def units(self):
        return len(self.classes)

    @property
    def label_shape(self):
        return [len(self.classes)]

    def head(self, x):
        return keras.layers.Dense(self.units, activation="sigmoid", dtype="float32", name=self.name)(x)

    def per_example_loss(self, label, output):
        return self.sigmoid_loss(label, output)

    def metric_factories(self):
        n = len(self.classes or [])
        return {
            "auc": lambda: keras.metrics.AUC(name="auc", multi_label=True, num_labels=n),
            "pr_auc": lambda: keras.metrics.AUC(name="pr_auc", curve="PR", multi_label=True, num_labels=n),
            "accuracy": lambda: keras.metrics.BinaryAccuracy(name="accuracy"),
            "loss": lambda: keras.metrics.BinaryCrossentropy(name="loss"),
            "sensitivity_at_specificity": lambda: SensitivityAtSpecificity(self.specificity, multi_label=True,
                                                                           num_labels=n),
        }
