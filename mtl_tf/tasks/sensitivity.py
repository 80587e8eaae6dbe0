"""Sensitivity at a fixed specificity, per class, for binary and multi-label tasks.

Screening reads a model at an operating point: "how many findings does it catch when it
raises a false alarm on at most 10% of the normal scans". ``keras.metrics.SensitivityAtSpecificity``
answers that for one class; this metric answers it for every class of a multi-label task at
once and averages, as the multi-label AUC does.
"""

from __future__ import annotations

import keras
from keras import ops

DEFAULT_SPECIFICITY = 0.9


@keras.saving.register_keras_serializable(package="mtl_tf")
class SensitivityAtSpecificity(keras.metrics.AUC):
    """The best sensitivity (true positive rate) among the thresholds whose specificity (true
    negative rate) is at least ``specificity``, accumulated over the split.

    It keeps the confusion counts of :class:`keras.metrics.AUC` at ``num_thresholds`` evenly
    spaced thresholds (a row is positive when its probability is above the threshold), per
    class when ``multi_label``; the result is then the mean over classes (weighted by
    ``label_weights`` when set, which is how a multi-label mean leaves out classes without
    both values; see :mod:`mtl_tf.training.task_metrics`). Being an AUC subclass, it is
    undefined where AUC is: a class without positives or without negatives.

    Args:
        specificity: the specificity to hold, in (0, 1).
        num_thresholds: thresholds tried (the operating point is read to 1 / (num_thresholds - 1)).
        multi_label: one result per class (``num_labels`` of them), averaged.
        num_labels: classes of a multi-label task.
        name, dtype: as for Keras metrics.
    """

    def __init__(self, specificity: float = DEFAULT_SPECIFICITY, num_thresholds: int = 500,
                 name: str = "sensitivity_at_specificity", dtype=None, multi_label: bool = False,
                 num_labels: int | None = None, label_weights=None, **kwargs):
        if not 0.0 < float(specificity) < 1.0:
            raise ValueError(f"specificity must be in (0, 1); received {specificity!r}")
        super().__init__(num_thresholds=num_thresholds, name=name, dtype=dtype, multi_label=multi_label,
                         num_labels=num_labels, label_weights=label_weights, **kwargs)
        self.specificity = float(specificity)

    def per_class(self):
        """The sensitivity at the specificity for each class (a scalar when not multi-label)."""
        tp, fn = self.true_positives, self.false_negatives
        fp, tn = self.false_positives, self.true_negatives
        specificity = ops.divide_no_nan(tn, ops.add(tn, fp))
        sensitivity = ops.divide_no_nan(tp, ops.add(tp, fn))
        feasible = ops.greater_equal(specificity, self.specificity)
        return ops.max(ops.where(feasible, sensitivity, ops.zeros_like(sensitivity)), axis=0)

    def result(self):
        best = self.per_class()
        if not self.multi_label:
            return best
        if self.label_weights is None:
            return ops.mean(best)
        return ops.divide_no_nan(ops.sum(ops.multiply(best, self.label_weights)), ops.sum(self.label_weights))

    def get_config(self):
        config = super().get_config()
        for key in ("curve", "summation_method", "from_logits"):
            config.pop(key, None)
        return {**config, "specificity": self.specificity}
