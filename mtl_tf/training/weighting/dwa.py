"""Dynamic weight average (Liu, Johns & Davison, 2019, "End-to-End Multi-Task Learning with
Attention")."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from mtl_tf.training.state import state_variable
from mtl_tf.training.weighting import WEIGHTINGS
from mtl_tf.training.weighting.base import Weighting, all_active


@WEIGHTINGS.register("dwa")
class DynamicWeightAverage(Weighting):
    """Weights from how fast each task's loss fell over the last two epochs.

    ``r_t = L_t(e-1) / L_t(e-2)`` (mean training losses of the two previous epochs) and
    ``w_t = T exp(r_t / tau) / sum_i exp(r_i / tau)``: a task whose loss falls slowly gets
    more weight. Equal weights during the first two epochs.

    Args:
        temperature: ``tau``; larger values give more even weights.
    """

    def __init__(self, temperature: float = 2.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0; received {temperature!r}")
        self.temperature = float(temperature)

    def build(self, tasks: Sequence) -> None:
        super().build(tasks)
        zeros = tf.zeros([len(tasks)])
        self.loss_sum = state_variable(zeros, "epoch_loss_sum")
        self.loss_count = state_variable(zeros, "epoch_loss_count")
        self.last = state_variable(zeros, "last_epoch_loss")
        self.before_last = state_variable(zeros, "before_last_epoch_loss")
        self.epochs_seen = state_variable(0, "epochs_seen", tf.int64)

    def __call__(self, losses, step, active=None, gram=None) -> tf.Tensor:
        active = all_active(losses, active)
        self.loss_sum.assign_add(losses * active)
        self.loss_count.assign_add(active)
        return self.current_weights()

    def current_weights(self) -> tf.Tensor:
        """The weights this epoch uses (equal before two epochs are complete)."""
        ready = self.epochs_seen >= 2
        ratio = self.last / tf.where(self.before_last > 0, self.before_last, 1.0)
        weights = self.num_tasks * tf.nn.softmax(ratio / self.temperature)
        return tf.where(ready, weights, tf.ones([self.num_tasks]))

    def on_epoch_end(self) -> None:
        seen = self.loss_count > 0
        mean = self.loss_sum / tf.where(seen, self.loss_count, 1.0)
        self.before_last.assign(self.last)
        self.last.assign(tf.where(seen, mean, self.last))
        self.epochs_seen.assign_add(1)
        self.loss_sum.assign(tf.zeros_like(self.loss_sum))
        self.loss_count.assign(tf.zeros_like(self.loss_count))
