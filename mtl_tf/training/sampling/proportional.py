"""Proportional sampling: one task per step, drawn by dataset size to a power."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from mtl_tf.training.sampling import SAMPLERS
from mtl_tf.training.sampling.base import TaskSampler, task_sizes
from mtl_tf.training.state import stateless_seed


def size_probabilities(sizes: Sequence[float], alpha: float) -> np.ndarray:
    """``p_t = n_t^alpha / sum_i n_i^alpha``."""
    powered = np.power(np.asarray(sizes, dtype=np.float64), alpha)
    return powered / powered.sum()


@SAMPLERS.register("proportional")
class ProportionalSampler(TaskSampler):
    """Each step trains one task, drawn with probability ``n_t^alpha / sum_i n_i^alpha``.

    ``n_t`` is the task's labelled training rows; ``alpha = 1`` samples in proportion to
    size, ``alpha = 0`` uniformly.

    Args:
        alpha: the exponent.
        seed: the seed of the draws.
    """

    def __init__(self, alpha: float = 1.0, seed: int = 0):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0; received {alpha!r}")
        self.alpha, self.seed = float(alpha), int(seed)
        self.log_sizes = tf.constant([], tf.float32)

    def build(self, tasks: Sequence, sizes: Mapping[str, int] | None = None, epochs: int | None = None) -> None:
        super().build(tasks, sizes, epochs)
        name = SAMPLERS.name_of(type(self))
        self.log_sizes = tf.constant(np.log(task_sizes(name, self.task_names, sizes)), tf.float32)

    def exponent(self, epoch: tf.Tensor) -> tf.Tensor:
        """``alpha`` at this epoch (constant here)."""
        return tf.constant(self.alpha, tf.float32)

    def probabilities(self, epoch: tf.Tensor) -> tf.Tensor:
        """The sampling probabilities at this epoch."""
        return tf.nn.softmax(self.exponent(epoch) * self.log_sizes)

    def active(self, step: tf.Tensor, epoch: tf.Tensor) -> tf.Tensor:
        logits = tf.math.log(self.probabilities(epoch))[None]
        index = tf.random.stateless_categorical(logits, 1, seed=stateless_seed(self.seed, step))[0, 0]
        return tf.one_hot(index, self.num_tasks, dtype=tf.float32)
