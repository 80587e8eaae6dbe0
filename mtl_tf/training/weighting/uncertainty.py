"""Uncertainty weighting (Kendall, Gal & Cipolla, 2018, "Multi-Task Learning Using
Uncertainty to Weigh Losses for Scene Geometry and Semantics")."""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from mtl_tf.training.weighting import WEIGHTINGS
from mtl_tf.training.weighting.base import Weighting

# Task types whose loss is a Gaussian negative log-likelihood (squared error).
REGRESSION_TYPES = ("regression", "depth")


@WEIGHTINGS.register("uncertainty")
class UncertaintyWeighting(Weighting):
    """Weights from a learned homoscedastic noise per task.

    Each task learns ``s_t = log sigma_t^2``. The objective of task ``t`` is

    - regression (Gaussian likelihood): ``1 / (2 sigma^2) L + log sigma``
      ``= 0.5 exp(-s) L + 0.5 s``;
    - classification (tempered softmax / sigmoid): ``1 / sigma^2 L + log sigma``
      ``= exp(-s) L + 0.5 s``.

    So the weight is ``c_t exp(-s_t)`` (``c = 0.5`` for regression, 1 otherwise) and the
    regulariser ``0.5 s_t``; the shared optimizer learns ``s`` with the model.

    Args:
        initial: the initial ``log sigma^2`` of every task.
    """

    uses_losses = False

    def __init__(self, initial: float = 0.0):
        super().__init__()
        self.initial = float(initial)
        self.log_variance = None
        self.factors = tf.constant([], tf.float32)

    def build(self, tasks: Sequence) -> None:
        super().build(tasks)
        self.factors = tf.constant([0.5 if getattr(t, "registered_type", "") in REGRESSION_TYPES else 1.0
                                    for t in tasks], tf.float32)
        self.log_variance = keras.Variable(tf.fill([len(tasks)], self.initial), name="log_variance",
                                           dtype="float32")

    @property
    def parameters(self) -> list:
        return [self.log_variance]

    def __call__(self, losses, step, active=None, gram=None) -> tf.Tensor:
        return self.factors * tf.exp(-tf.convert_to_tensor(self.log_variance))

    def regularization(self) -> tf.Tensor:
        return 0.5 * tf.convert_to_tensor(self.log_variance)
