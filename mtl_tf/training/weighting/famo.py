"""FAMO (Liu et al., 2023, "FAMO: Fast Adaptive Multitask Optimization")."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from mtl_tf.training.state import state_variable
from mtl_tf.training.weighting import WEIGHTINGS
from mtl_tf.training.weighting.base import Weighting, all_active

EPSILON = 1e-8


@WEIGHTINGS.register("famo")
class FAMO(Weighting):
    """Balances the tasks' log-loss decrease with one loss evaluation per step.

    Task logits ``xi`` give ``z = softmax(xi)``. The update direction is that of
    ``sum_t z_t log(L_t) / c`` with ``c = sum_t z_t / L_t``, i.e. loss weights
    ``w_t = z_t / (c L_t)``, here scaled by ``T`` to sum to the number of tasks like equal
    weighting. After each step the logits move by the gradient of ``z`` along the observed
    log-loss decrease ``delta_t = log L_t(prev) - log L_t(now)``:
    ``xi <- Adam(xi, z * (delta - z . delta) + gamma xi)``; tasks whose loss falls least gain
    weight. The reference implementation re-evaluates the batch after the update; here
    ``delta`` uses the next step's losses, so FAMO costs no extra forward pass.

    Args:
        learning_rate: Adam step size on the logits.
        weight_decay: ``gamma``, pulls the logits toward 0.
    """

    def __init__(self, learning_rate: float = 0.025, weight_decay: float = 0.001):
        super().__init__()
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0; received {learning_rate!r}")
        self.learning_rate, self.weight_decay = float(learning_rate), float(weight_decay)

    def build(self, tasks: Sequence) -> None:
        super().build(tasks)
        zeros = tf.zeros([len(tasks)])
        self.logits = state_variable(zeros, "logits")
        self.previous = state_variable(zeros, "previous_losses")
        self.first_moment = state_variable(zeros, "adam_m")
        self.second_moment = state_variable(zeros, "adam_v")
        self.updates = state_variable(0.0, "adam_steps")

    def __call__(self, losses, step, active=None, gram=None) -> tf.Tensor:
        active = all_active(losses, active) * tf.cast(losses > 0, tf.float32)
        known = active * tf.cast(self.previous > 0, tf.float32)
        delta = (tf.math.log(tf.where(known > 0, self.previous, 1.0) + EPSILON)
                 - tf.math.log(tf.where(known > 0, losses, 1.0) + EPSILON)) * known
        self._adam(self._logit_gradient(delta, known), tf.reduce_any(known > 0))
        self.previous.assign(tf.where(active > 0, losses, self.previous))
        return self.weights_for(losses, active)

    def weights_for(self, losses: tf.Tensor, active: tf.Tensor) -> tf.Tensor:
        """``T z_t / (c L_t)`` over the active tasks, 0 elsewhere."""
        z = _masked_softmax(self.logits, active)
        inverse = z / (losses + EPSILON) * active
        return tf.reduce_sum(active) * inverse / tf.maximum(tf.reduce_sum(inverse), 1e-30)

    def _logit_gradient(self, delta, known):
        z = _masked_softmax(self.logits, known)
        return (z * (delta - tf.reduce_sum(z * delta)) + self.weight_decay * self.logits) * known

    def _adam(self, gradient, apply, beta1=0.9, beta2=0.999):
        count = self.updates + 1.0
        m = beta1 * self.first_moment + (1 - beta1) * gradient
        v = beta2 * self.second_moment + (1 - beta2) * gradient * gradient
        step = self.learning_rate * (m / (1 - beta1 ** count)) / (tf.sqrt(v / (1 - beta2 ** count)) + 1e-8)
        self.first_moment.assign(tf.where(apply, m, self.first_moment))
        self.second_moment.assign(tf.where(apply, v, self.second_moment))
        self.logits.assign(tf.where(apply, self.logits - step, self.logits))
        self.updates.assign(tf.where(apply, count, self.updates))


def _masked_softmax(logits, mask):
    shifted = tf.exp(logits - tf.reduce_max(logits)) * mask
    return shifted / tf.maximum(tf.reduce_sum(shifted), 1e-30)
