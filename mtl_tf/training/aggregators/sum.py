"""Sum: the gradient of the weighted sum of task losses (plain multi-task training)."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator


@AGGREGATORS.register("sum")
class SumAggregator(GradientAggregator):
    """``sum_t w_t g_t``. The step computes it with one backward pass of ``sum_t w_t L_t``,
    which is equal by linearity, so it never asks for per-task gradients (unless the
    weighting needs them, as GradNorm does)."""

    needs_task_gradients = False

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        return tf.cast(weights, gram.dtype)
