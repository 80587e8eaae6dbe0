"""UPGrad (Quinton & Rey, 2024, "Jacobian Descent for Multi-Objective Optimization")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, isolate
from mtl_tf.training.aggregators.solvers import nonnegative_shift_qp


@AGGREGATORS.register("upgrad")
class UPGrad(GradientAggregator):
    """The weighted average of every task gradient projected onto the dual cone of all of them.

    The dual cone ``{x : g_t . x >= 0 for all t}`` holds the directions that conflict with no
    task. Projecting ``g_i`` onto it is ``J^T v_i`` with ``v_i = argmin_{v >= e_i} v^T G v``;
    the update is ``(1/T) sum_i w_i J^T v_i``, so ``beta = sum_i v_i`` with
    ``v_i = argmin_{v >= (w_i / T) e_i} v^T G v``. It never conflicts with any task, and
    equals the weighted mean gradient ``(1/T) sum_t w_t g_t`` when no pair conflicts.

    Task weights: they are the paper's preference vector (the weights of the average of the
    projections); the cone itself does not depend on positive weights. A smaller weight
    scales the task's projected gradient down, never up.

    The ``T`` small quadratic programs are solved together, exactly, by the active-set
    method of :func:`mtl_tf.training.aggregators.solvers.nonnegative_qp`.

    Args:
        rep_grad: use representation gradients.
    """

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        active = active_tasks(gram, weights)
        count = tf.maximum(tf.reduce_sum(active), 1.0)
        g = isolate(gram, active, fill=tf.reduce_max(tf.linalg.diag_part(gram) * active))
        lower = tf.linalg.diag(tf.cast(weights, gram.dtype) * active / count)  # row i: (w_i / T) e_i
        v = nonnegative_shift_qp(g, lower, active)
        return tf.reduce_sum(v * active[:, None], axis=0) * active
