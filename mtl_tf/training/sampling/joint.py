"""Joint sampling: every task trains at every step."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.sampling import SAMPLERS
from mtl_tf.training.sampling.base import TaskSampler


@SAMPLERS.register("joint")
class JointSampler(TaskSampler):
    """All tasks active at every step."""

    def active(self, step: tf.Tensor, epoch: tf.Tensor) -> tf.Tensor:
        return tf.ones([self.num_tasks], tf.float32)
