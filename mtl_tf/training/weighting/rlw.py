"""Random loss weighting (Lin et al., 2022, "Reasonable Effectiveness of Random Weighting: A
Litmus Test for Multi-Task Learning")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.state import stateless_seed
from mtl_tf.training.weighting import WEIGHTINGS
from mtl_tf.training.weighting.base import Weighting, all_active


@WEIGHTINGS.register("rlw")
class RandomLossWeighting(Weighting):
    """Fresh random weights every step: ``w = T softmax(z)``, ``z ~ N(0, I)``.

    Scaled to sum to the number of tasks (the paper's weights sum to 1) so the update has the
    scale of equal weighting. ``z`` comes from a stateless seed and the step counter: every
    replica, and a resumed run, draws the same weights. Inactive tasks get weight 0 and the
    softmax runs over the active ones.

    Args:
        seed: the seed of the draws.
    """

    uses_losses = False

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = int(seed)

    def __call__(self, losses, step, active=None, gram=None) -> tf.Tensor:
        active = all_active(losses, active)
        z = tf.random.stateless_normal([self.num_tasks], seed=stateless_seed(self.seed, step))
        exp = tf.exp(z - tf.reduce_max(z)) * active
        return tf.reduce_sum(active) * exp / tf.maximum(tf.reduce_sum(exp), 1e-30)
