"""UPGrad (Quinton & Rey, 2024, "Jacobian Descent for Multi-Objective Optimization")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, isolate
from mtl_tf.training.aggregators.solvers import nonnegative_shift_qp


@AGGREGATORS.register("upgrad")
class UPGrad(GradientAggregator):
    """The average of every task gradient projected onto the dual cone of all of them.

    The dual cone ``{x : h_t . x >= 0 for all t}`` holds the directions that conflict with no
    task. Projecting ``h_i / T`` onto it is ``H^T w_i`` with
    ``w_i = argmin_{v >= e_i / T} v^T G v``; the update is ``H^T sum_i w_i``, so
    ``alpha = sum_i w_i``. It never conflicts with any task, and equals the mean gradient
    when no pair conflicts. The ``T`` small quadratic programs are solved together, exactly
    up to 8 tasks (every set of free coordinates at once), by accelerated projected gradient
    beyond.

    Args:
        rep_grad: use representation gradients.
        iterations: projected-gradient iterations beyond 8 tasks.
    """

    def __init__(self, rep_grad: bool = False, iterations: int = 200):
        super().__init__(rep_grad)
        self.iterations = int(iterations)

    def coefficients(self, gram: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        num_tasks = int(gram.shape[0])
        active = active_tasks(gram)
        count = tf.maximum(tf.reduce_sum(active), 1.0)
        scale = tf.maximum(tf.linalg.trace(gram), 1e-30)
        g = isolate(gram / scale, active)
        lower = tf.eye(num_tasks, dtype=gram.dtype) * active[:, None] / count  # row i: e_i / T
        w = nonnegative_shift_qp(g, lower, self.iterations)
        return tf.reduce_sum(w * active[:, None], axis=0) * active
