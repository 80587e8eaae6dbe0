"""PCGrad (Yu et al., 2020, "Gradient Surgery for Multi-Task Learning")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, weighted_gram
from mtl_tf.training.state import stateless_seed


def random_orders(num_tasks: int, seed: tf.Tensor) -> tf.Tensor:
    """``(T, T)``: row ``i`` is a random order of the tasks, drawn from a stateless seed."""
    noise = tf.random.stateless_uniform([num_tasks, num_tasks], seed=seed)
    return tf.argsort(noise, axis=-1)


@AGGREGATORS.register("pcgrad")
class PCGrad(GradientAggregator):
    """Projects each task's gradient off the gradients it conflicts with, then sums.

    For each task ``i``, visiting the other tasks ``j`` in a random order: when
    ``h_i' . h_j < 0``, ``h_i' <- h_i' - (h_i' . h_j / |h_j|^2) h_j`` (``h_j`` the original
    gradient). The update is ``sum_i h_i'``. Each projected gradient stays a combination of
    the original ones, so the method runs on the Gram matrix: ``C`` holds the coefficients of
    every ``h_i'`` and ``h_i' . h_j = (C H)_ij`` (``H`` the Gram matrix of the ``h``).

    Task weights: the method works on the weighted gradients ``h_t = w_t g_t``, as on the
    gradients of weighted losses. A projection does not depend on the scale of the gradient
    projected onto, so each task's projected gradient is its unweighted one times ``w_t``.

    The random orders come from a stateless seed and the step counter, so every replica and a
    resumed run project in the same order.

    Args:
        rep_grad: project representation gradients instead of parameter gradients.
        seed: the seed of the random orders.
    """

    def __init__(self, rep_grad: bool = False, seed: int = 0):
        super().__init__(rep_grad)
        self.seed = int(seed)

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        num_tasks = int(gram.shape[0])
        active = active_tasks(gram, weights)
        gram = weighted_gram(gram, weights)
        orders = random_orders(num_tasks, stateless_seed(self.seed, step))
        norms = tf.linalg.diag_part(gram)
        coeffs = tf.eye(num_tasks, dtype=gram.dtype)
        rows = tf.range(num_tasks)
        for position in range(num_tasks):
            j = orders[:, position]
            dots = tf.gather(tf.matmul(coeffs, gram), j, axis=1, batch_dims=1)
            usable = (tf.gather(active, j) > 0) & tf.not_equal(j, rows) & (dots < 0)
            scale = tf.where(usable, dots / tf.maximum(tf.gather(norms, j), 1e-30), 0.0)
            coeffs -= scale[:, None] * tf.one_hot(j, num_tasks, dtype=gram.dtype)
        return tf.reduce_sum(coeffs * active[:, None], axis=0) * active * weights
