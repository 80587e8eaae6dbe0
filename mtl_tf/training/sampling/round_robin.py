"""Round-robin sampling: one task per step, in turn."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.sampling import SAMPLERS
from mtl_tf.training.sampling.base import TaskSampler


@SAMPLERS.register("round_robin")
class RoundRobinSampler(TaskSampler):
    """Task ``step mod T`` trains at each step."""

    def active(self, step: tf.Tensor, epoch: tf.Tensor) -> tf.Tensor:
        index = tf.cast(step, tf.int64) % self.num_tasks
        return tf.one_hot(index, self.num_tasks, dtype=tf.float32)
