"""Aligned-MTL (Senushkin et al., 2023, "Independent Component Alignment for Multi-Task
Learning")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, isolate


@AGGREGATORS.register("aligned_mtl")
class AlignedMTL(GradientAggregator):
    """Aligns the principal components of the gradient system.

    With ``G = V diag(lambda) V^T`` (the non-zero eigenvalues) and ``sigma_min`` the
    smallest singular value ``sqrt(lambda_min)``, ``B = sigma_min V diag(lambda)^-1/2 V^T``;
    the stabilised gradients ``H B`` are orthogonal with equal norms ``sigma_min``, and the
    update is ``H B 1``, so ``alpha = B 1``. With ``rep_grad=True`` this is the paper's
    Aligned-MTL-UB.

    Args:
        rep_grad: use representation gradients (Aligned-MTL-UB).
    """

    def coefficients(self, gram: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        num_tasks = int(gram.shape[0])
        active = active_tasks(gram)
        scale = tf.maximum(tf.linalg.trace(gram), 1e-30)
        # Inactive tasks get an eigenvalue above every active one, so they never set sigma_min.
        g = isolate(gram / scale, active, fill=2.0)
        eigenvalues, vectors = tf.linalg.eigh(g)
        tolerance = tf.reduce_max(eigenvalues) * num_tasks * 1e-6
        kept = eigenvalues > tolerance
        smallest = tf.reduce_min(tf.where(kept, eigenvalues, tf.reduce_max(eigenvalues)))
        inverse_root = tf.where(kept, 1.0 / tf.sqrt(tf.where(kept, eigenvalues, 1.0)), 0.0)
        b = tf.sqrt(smallest) * tf.matmul(vectors * inverse_root[None, :], vectors, transpose_b=True)
        return tf.reduce_sum(b, axis=1) * active
