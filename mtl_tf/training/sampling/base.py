"""The TaskSampler interface: which tasks train at a given step.

A sampler returns a float mask over tasks; the step multiplies the task weights by it, so an
inactive task adds nothing to the update. State, if any, lives in ``tf.Variable`` attributes
(the class is a ``tf.Module``) so checkpoints hold it.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


class TaskSampler(tf.Module):
    """Base class of task samplers."""

    def __init__(self):
        super().__init__(name=type(self).__name__)
        self.num_tasks = 0

    def build(self, tasks: Sequence) -> None:
        """Creates the state for ``tasks``; call inside ``strategy.scope()``."""
        self.num_tasks = len(tasks)

    def active(self, step: tf.Tensor, epoch: tf.Tensor) -> tf.Tensor:
        """Float mask of the tasks trained at this step.

        Args:
            step: the optimizer's step counter (int64 scalar).
            epoch: the 0-based epoch (int64 scalar).

        Returns:
            Shape ``(T,)``, 1.0 for an active task, 0.0 for an inactive one.
        """
        raise NotImplementedError
