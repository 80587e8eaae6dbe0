"""IMTL-G (Liu et al., 2021, "Towards Impartial Multi-task Learning"), gradient balancing."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks


@AGGREGATORS.register("imtl_g")
class IMTLG(GradientAggregator):
    """The combination of the task gradients whose projections on every task's unit gradient
    are equal.

    Finds ``alpha`` with ``sum_t alpha_t = 1`` and ``g . u_t`` the same for every task, where
    ``g = sum_t alpha_t h_t`` and ``u_t = h_t / |h_t|``. This is the paper's closed form
    ``alpha_{2:T} = h_1 U^T (D U^T)^{-1}`` (rows of ``D``: ``h_1 - h_t``, of ``U``:
    ``u_1 - u_t``) written without singling out task 1: one ``(T+1) x (T+1)`` linear system
    on the Gram matrix.

    Args:
        rep_grad: use representation gradients (the paper's feature-level variant).
    """

    def coefficients(self, gram: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        num_tasks = int(gram.shape[0])
        active = active_tasks(gram)
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 1e-30))
        scale = tf.maximum(tf.linalg.trace(gram), 1e-30)
        # Row t: (g . u_t) - c = 0 for active tasks; alpha_t = 0 for inactive ones.
        projections = (gram / scale) / norms[:, None] * tf.sqrt(scale)
        # A tiny ridge keeps the system solvable when gradients are linearly dependent.
        rows = active[:, None] * projections + tf.linalg.diag(1.0 - active + 1e-6 * active)
        top = tf.concat([rows, -active[:, None]], axis=1)
        bottom = tf.concat([active[None, :], tf.zeros([1, 1], gram.dtype)], axis=1)
        system = tf.concat([top, bottom], axis=0)
        rhs = tf.concat([tf.zeros([num_tasks], gram.dtype), tf.ones([1], gram.dtype)], axis=0)
        solution = tf.linalg.solve(system, rhs[:, None])[:, 0]
        return solution[:num_tasks] * active
