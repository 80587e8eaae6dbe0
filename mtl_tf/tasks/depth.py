"""Monocular depth: one non-negative value per pixel, 0 where the label has no depth."""

from __future__ import annotations

from typing import Any

import math

import keras
import tensorflow as tf

from mtl_tf.tasks import TASK_TYPES
from mtl_tf.tasks.dense import DenseTask, number_option, row_weights
from mtl_tf.tasks.heads import SqueezeLast

_LOG_FLOOR = 1e-6
# softplus(SOFTPLUS_ONE) = 1: the depth head's first output is its unit (the mean depth).
SOFTPLUS_ONE = math.log(math.e - 1.0)


@TASK_TYPES.register("depth")
class DepthTask(DenseTask):
    """Label: depth per pixel, float32 ``(B, H, W)``, in the label's units (the stored value
    divided by ``depth_scale``, done when the dataset is written); 0 where a pixel has no
    depth. Output: float32 ``(B, H, W)`` >= 0: a 1x1 convolution, a softplus and a fixed scale,
    the train split's mean depth from dataset.json (``DepthStats.mean``; 1 without it). The
    layers before the head then work in units of the mean depth (the convolution starts
    with zero weights and the bias where the softplus gives 1, so the first prediction is the
    mean depth everywhere): depths of
    tens of metres are not asked of unit-scale activations, which Adam's steps of about the
    learning rate would take thousands of steps to reach.

    Losses, per row over its valid pixels (label > 0; 0 for a row without one):

    - ``l1`` (default): mean ``|d - d*|``.
    - ``scale_invariant`` (Eigen et al. 2014, option ``lambda``, default 0.5): with
      ``g = log d - log d*``, ``mean(g^2) - lambda * mean(g)^2``; ``lambda`` 1 makes it fully
      scale-invariant, 0 an L2 loss in log space.

    Metrics over the valid pixels (the LibMTL / MTAN NYUv2 protocol): ``abs_err`` mean
    ``|d - d*|``, ``rel_err`` mean ``|d - d*| / d*``, ``rmse``, and ``delta1``, the share of
    pixels with ``max(d / d*, d* / d) < 1.25``. Lower is better for the errors, higher for
    ``delta1``. Each is averaged over all valid pixels of the split (pixel-weighted). LibMTL
    averages per-batch means weighted by each batch's valid-pixel count, which is the same
    number.

    Args:
        depth_scale: the recipe's scale of the stored values (informational here: the
            labels the task receives are already divided by it).
        (others): see :class:`~mtl_tf.tasks.dense.DenseTask`.
    """

    registered_type = "depth"
    default_metrics = ("abs_err", "rel_err", "rmse", "delta1")
    lower_is_better = frozenset({"loss", "abs_err", "rel_err", "rmse"})
    losses = {"l1": (), "scale_invariant": ("lambda",)}
    default_loss = "l1"

    def __init__(self, name: str, *, depth_scale: float = 1.0, **options: Any):
        super().__init__(name, **options)
        self.depth_scale = number_option(self._where("depth_scale"), depth_scale, minimum=1e-12)
        self.si_lambda = number_option(self._where("loss.lambda"), self.loss_options.get("lambda", 0.5),
                                       maximum=1.0)
        self.depth_unit = mean_depth(self.spec)

    @classmethod
    def recipe_options(cls, task, spec, path):
        return {**super().recipe_options(task, spec, path), "depth_scale": task.depth_scale}

    # --- data ---------------------------------------------------------------------------------
    def mask(self, label):
        """Fallback presence mask (the reader gives the real one): some pixel has a depth."""
        return tf.cast(tf.reduce_any(label > 0, axis=[1, 2]), tf.float32)

    def missing_label(self, rows):
        return tf.zeros([rows, *self.label_shape], self.label_dtype)

    # --- model --------------------------------------------------------------------------------
    def head(self, x):
        value = keras.layers.Conv2D(1, 1, kernel_initializer="zeros",
                                    bias_initializer=keras.initializers.Constant(SOFTPLUS_ONE),
                                    name=f"{self.name}_conv")(x)
        value = keras.layers.Activation("softplus", dtype="float32", name=f"{self.name}_softplus")(value)
        value = keras.layers.Rescaling(self.depth_unit, dtype="float32", name=f"{self.name}_scale")(value)
        return SqueezeLast(dtype="float32", name=self.name)(value)

    def per_example_loss(self, label, output):
        label, output = tf.cast(label, tf.float32), tf.cast(output, tf.float32)
        valid = tf.cast(label > 0, tf.float32)
        count = tf.reduce_sum(valid, axis=[1, 2])
        if self.loss_name == "l1":
            return tf.math.divide_no_nan(tf.reduce_sum(tf.abs(output - label) * valid, axis=[1, 2]), count)
        gap = (tf.math.log(tf.maximum(output, _LOG_FLOOR)) - tf.math.log(tf.maximum(label, _LOG_FLOOR))) * valid
        mean = tf.math.divide_no_nan(tf.reduce_sum(gap, axis=[1, 2]), count)
        return tf.math.divide_no_nan(tf.reduce_sum(tf.square(gap), axis=[1, 2]), count) - self.si_lambda * mean ** 2

    # --- metrics ------------------------------------------------------------------------------
    def metric_factories(self):
        return {name: (lambda name=name: DepthMetric(name)) for name in DepthMetric.KINDS}

    def describe(self):
        return {**super().describe(), "loss": self.loss_name, "depth_scale": self.depth_scale,
                "depth_unit": self.depth_unit}


def mean_depth(spec) -> float:
    """The train split's mean valid depth from a depth task's dataset.json entry; 1.0 when unknown."""
    mean = getattr(getattr(spec, "stats", None), "mean", None)
    return float(mean) if mean is not None and math.isfinite(mean) and mean > 0 else 1.0


@keras.saving.register_keras_serializable(package="mtl_tf")
class DepthMetric(keras.metrics.Metric):
    """One depth metric over the valid pixels (label > 0) of the split.

    Args:
        kind: ``abs_err`` (mean |d - d*|), ``rel_err`` (mean |d - d*| / d*), ``rmse`` or
            ``delta1`` (share of pixels with max(d/d*, d*/d) < 1.25).
        name: the metric's name (default: ``kind``).

    ``update_state(label, prediction, sample_weight)``: ``(B, H, W)`` each, ``sample_weight``
    one weight per row (the presence mask).
    """

    KINDS = ("abs_err", "rel_err", "rmse", "delta1")

    def __init__(self, kind: str, name: str | None = None, dtype: str = "float32"):
        if kind not in self.KINDS:
            raise ValueError(f"depth metric: unknown kind {kind!r}; allowed: {', '.join(self.KINDS)}")
        super().__init__(name=name or kind, dtype=dtype)
        self.kind = kind
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        label, pred = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
        valid = label > 0
        weight = row_weights(sample_weight, label) * tf.cast(valid, tf.float32)
        safe_label = tf.where(valid, label, 1.0)
        error = tf.abs(pred - label)
        if self.kind == "abs_err":
            value = error
        elif self.kind == "rel_err":
            value = error / safe_label
        elif self.kind == "rmse":
            value = tf.square(error)
        else:
            ratio = tf.maximum(tf.math.divide_no_nan(pred, safe_label), tf.math.divide_no_nan(safe_label, pred))
            # A prediction of 0 has an infinite ratio: outside the threshold.
            value = tf.cast(tf.logical_and(pred > 0, ratio < 1.25), tf.float32)
        self.total.assign_add(tf.reduce_sum(tf.where(weight > 0, value * weight, 0.0)))
        self.count.assign_add(tf.reduce_sum(weight))

    def result(self):
        mean = tf.math.divide_no_nan(self.total, self.count)
        return tf.sqrt(mean) if self.kind == "rmse" else mean

    def get_config(self):
        return {"kind": self.kind, "name": self.name, "dtype": self.dtype}
