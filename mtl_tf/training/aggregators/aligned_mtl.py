"""Aligned-MTL (Senushkin et al., 2023, "Independent Component Alignment for Multi-Task
Learning")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, isolate


@AGGREGATORS.register("aligned_mtl")
class AlignedMTL(GradientAggregator):
    """Aligns the principal components of the gradient system, then combines them with the
    task weights.

    With ``G = V diag(lambda) V^T`` the Gram matrix of the task gradients (its non-zero
    eigenvalues) and ``sigma_min = sqrt(lambda_min)`` the smallest singular value,
    ``B = sigma_min V diag(lambda)^-1/2 V^T``; the stabilised gradients ``g B`` are orthogonal
    with equal norms ``sigma_min``.

    Task weights: the update is the stabilised gradients combined with the weights,
    ``g B w`` (the paper's Algorithm 1, ``theta -= lr G_hat w``; equal weights give the
    reference code's sum), so ``beta = B w``. The alignment itself uses the unweighted
    gradients: weighting them first would be undone by the alignment. With orthogonal
    gradients of equal norm ``B`` is the identity and the update is ``sum_t w_t g_t``.
    With ``rep_grad=True`` this is the paper's Aligned-MTL-UB.

    Args:
        rep_grad: use representation gradients (Aligned-MTL-UB).
    """

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        num_tasks = int(gram.shape[0])
        active = active_tasks(gram, weights)
        scale = tf.maximum(tf.reduce_sum(tf.linalg.diag_part(gram) * active), 1e-30)
        # Inactive tasks get an eigenvalue above every active one, so they never set sigma_min.
        g = isolate(gram / scale, active, fill=2.0)
        eigenvalues, vectors = tf.linalg.eigh(g)
        tolerance = tf.reduce_max(eigenvalues) * num_tasks * 1e-6
        kept = eigenvalues > tolerance
        smallest = tf.reduce_min(tf.where(kept, eigenvalues, tf.reduce_max(eigenvalues)))
        inverse_root = tf.where(kept, 1.0 / tf.sqrt(tf.where(kept, eigenvalues, 1.0)), 0.0)
        b = tf.sqrt(smallest) * tf.matmul(vectors * inverse_root[None, :], vectors, transpose_b=True)
        return tf.linalg.matvec(b, weights * active) * active
