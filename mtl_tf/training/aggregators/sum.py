"""Sum: the gradient of the weighted sum of task losses (plain multi-task training)."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator


@AGGREGATORS.register("sum")
class SumAggregator(GradientAggregator):
    """``sum_t w_t g_t``. The step computes it with one backward pass of ``sum_t w_t L_t``,
    which is equal by linearity, so it never asks for per-task gradients."""

    needs_task_gradients = False

    def aggregate(self, task_grads: Sequence[Sequence[tf.Tensor]], weights: tf.Tensor) -> list[tf.Tensor]:
        if len(task_grads) != int(weights.shape[0]):
            raise ValueError(f"aggregator 'sum': {len(task_grads)} task gradient lists but "
                             f"{int(weights.shape[0])} weights; they must match")
        return [tf.add_n([weights[t] * grads[v] for t, grads in enumerate(task_grads)])
                for v in range(len(task_grads[0]))]
