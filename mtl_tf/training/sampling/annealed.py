"""Annealed sampling (Stickland & Murray, 2019, "BERT and PALs"): proportional sampling whose
exponent falls over the epochs, from size-proportional toward uniform."""

from __future__ import annotations

from typing import Mapping, Sequence

import tensorflow as tf

from mtl_tf.training.sampling import SAMPLERS
from mtl_tf.training.sampling.proportional import ProportionalSampler


@SAMPLERS.register("annealed")
class AnnealedSampler(ProportionalSampler):
    """One task per step with probability ``n_t^alpha_e / sum_i n_i^alpha_e``, where
    ``alpha_e`` falls linearly from ``alpha_start`` (first epoch) to ``alpha_end`` (last).

    With the defaults this is the paper's ``alpha_e = 1 - 0.8 (e - 1) / (E - 1)``.

    Args:
        alpha_start: the exponent of the first epoch.
        alpha_end: the exponent of the last epoch.
        epochs: the epochs over which it falls; default the Trainer's ``epochs``.
        seed: the seed of the draws.
    """

    def __init__(self, alpha_start: float = 1.0, alpha_end: float = 0.2, epochs: int | None = None, seed: int = 0):
        super().__init__(alpha=alpha_start, seed=seed)
        if alpha_end < 0:
            raise ValueError(f"alpha_end must be >= 0; received {alpha_end!r}")
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs must be >= 1; received {epochs!r}")
        self.alpha_start, self.alpha_end, self.epochs = float(alpha_start), float(alpha_end), epochs

    def build(self, tasks: Sequence, sizes: Mapping[str, int] | None = None, epochs: int | None = None) -> None:
        super().build(tasks, sizes, epochs)
        self.epochs = self.epochs or epochs or 1

    def exponent(self, epoch: tf.Tensor) -> tf.Tensor:
        span = max(self.epochs - 1, 1)
        progress = tf.minimum(tf.cast(epoch, tf.float32) / span, 1.0)
        return self.alpha_start + (self.alpha_end - self.alpha_start) * progress
