"""IMTL-G (Liu et al., 2021, "Towards Impartial Multi-task Learning"), gradient balancing."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, mean_active


@AGGREGATORS.register("imtl_g")
class IMTLG(GradientAggregator):
    """The combination of the task gradients whose projections on the tasks' unit gradients
    are equal (with task weights: proportional to the weights).

    Finds ``beta`` with ``d = sum_t beta_t g_t``, ``d . u_t = c w_t`` for every active task
    (``u_t = g_t / |g_t|``) and ``sum_t beta_t`` equal to the mean weight. With equal
    weights ``w_t = 1`` this is the paper's condition (equal projections, coefficients
    summing to 1) and its closed form ``alpha_{2:T} = g_1 U^T (D U^T)^{-1}`` (rows of ``D``:
    ``g_1 - g_t``, of ``U``: ``u_1 - u_t``), written here without singling out task 1: one
    ``(T+1) x (T+1)`` linear system on the Gram matrix.

    Task weights: the method is impartial by design (it erases the gradients' scales), so a
    weight cannot scale a gradient; it scales the task's share of the update instead: the
    update's projection on each task's direction is proportional to the task's weight.
    Scaling every weight by ``k`` scales the update by ``k``.

    Args:
        rep_grad: use representation gradients (the paper's feature-level variant).
    """

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        num_tasks = int(gram.shape[0])
        active = active_tasks(gram, weights)
        scale = tf.maximum(tf.reduce_sum(tf.linalg.diag_part(gram) * active), 1e-30)
        g = gram / scale
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(g), 1e-30))
        # Row t: (d . u_t) - c w_t = 0 for active tasks; beta_t = 0 for inactive ones.
        projections = g / norms[:, None]
        # A tiny ridge keeps the system solvable when gradients are linearly dependent.
        rows = active[:, None] * projections + tf.linalg.diag(1.0 - active + 1e-6 * active)
        top = tf.concat([rows, -(active * weights)[:, None]], axis=1)
        # (With no active task, the corner keeps the system solvable: c = 0.)
        bottom = tf.concat([active[None, :], (1.0 - tf.reduce_max(active))[None, None]], axis=1)
        system = tf.concat([top, bottom], axis=0)
        total = mean_active(weights, active)
        rhs = tf.concat([tf.zeros([num_tasks], gram.dtype), total[None]], axis=0)
        solution = tf.linalg.solve(system, rhs[:, None])[:, 0]
        return solution[:num_tasks] * active
