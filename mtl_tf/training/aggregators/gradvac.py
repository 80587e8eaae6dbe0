"""Gradient Vaccine (Wang et al., 2021, "Gradient Vaccine: Investigating and Improving
Multi-task Optimization in Massively Multilingual Models")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, weighted_gram
from mtl_tf.training.aggregators.pcgrad import random_orders
from mtl_tf.training.state import state_variable, stateless_seed


@AGGREGATORS.register("gradvac")
class GradVac(GradientAggregator):
    """Moves each pair of task gradients toward a target cosine similarity.

    Each task pair keeps an exponential moving average ``phi_hat_ij`` of its cosine
    similarity. For each task ``i``, visiting the others in a random order, when the current
    similarity ``phi_ij = cos(h_i', h_j)`` is below ``phi_hat_ij``::

        h_i' <- h_i' + |h_i'| (phi_hat sqrt(1 - phi^2) - phi sqrt(1 - phi_hat^2))
                       / (|h_j| sqrt(1 - phi_hat^2)) h_j

    and ``phi_hat_ij <- (1 - beta) phi_hat_ij + beta phi_ij``. The update is ``sum_i h_i'``.
    The method is applied to the whole shared gradient (the paper also offers per-layer
    groups). With ``phi_hat = 0`` it projects like PCGrad.

    Task weights: as PCGrad, on the weighted gradients ``h_t = w_t g_t``; the adjustment of
    ``h_i'`` does not depend on the scale of ``h_j``, so each task's adjusted gradient is its
    unweighted one times ``w_t`` (cosines, and so the targets, ignore the weights).

    Args:
        rep_grad: use representation gradients.
        beta: the moving-average rate of the target similarities.
        seed: the seed of the random orders.
    """

    def __init__(self, rep_grad: bool = False, beta: float = 0.01, seed: int = 0):
        super().__init__(rep_grad)
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"beta must be in (0, 1]; received {beta!r}")
        self.beta, self.seed = float(beta), int(seed)
        self.targets = None

    def build(self, tasks, variables=()) -> None:
        super().build(tasks, variables)
        self.targets = state_variable(tf.zeros([self.num_tasks, self.num_tasks]), "target_similarity")

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        num_tasks = int(gram.shape[0])
        active = active_tasks(gram, weights)
        gram = weighted_gram(gram, weights)
        orders = random_orders(num_tasks, stateless_seed(self.seed, step))
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
        coeffs = tf.eye(num_tasks, dtype=gram.dtype)
        targets = tf.convert_to_tensor(self.targets)
        rows = tf.range(num_tasks)
        for position in range(num_tasks):
            j = orders[:, position]
            pairs = tf.stack([rows, j], axis=1)
            cg = tf.matmul(coeffs, gram)
            dots = tf.gather(cg, j, axis=1, batch_dims=1)
            own = tf.sqrt(tf.maximum(tf.reduce_sum(cg * coeffs, axis=1), 0.0))
            other = tf.gather(norms, j)
            usable = (tf.gather(active, j) > 0) & (active > 0) & tf.not_equal(j, rows) & (own > 0)
            phi = tf.where(usable, dots / tf.maximum(own * other, 1e-30), 0.0)
            target = tf.gather_nd(targets, pairs)
            root = tf.sqrt(tf.maximum(1.0 - target ** 2, 1e-12))
            scale = own * (target * tf.sqrt(tf.maximum(1.0 - phi ** 2, 0.0)) - phi * root) / (other * root)
            scale = tf.where(usable & (phi < target), scale, 0.0)
            coeffs += scale[:, None] * tf.one_hot(j, num_tasks, dtype=gram.dtype)
            moved = tf.where(usable, (1.0 - self.beta) * target + self.beta * phi, target)
            targets = tf.tensor_scatter_nd_update(targets, pairs, moved)
        self.targets.assign(targets)
        return tf.reduce_sum(coeffs * active[:, None], axis=0) * active * weights
