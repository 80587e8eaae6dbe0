"""The Weighting interface: task losses in, task weights out.

A weighting is an object with explicit state (``tf.Variable`` attributes, tracked because
the class is a ``tf.Module``), so a training checkpoint holds it. The training step calls it
once per step inside the compiled function.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


class Weighting(tf.Module):
    """Base class of loss weightings.

    Attributes:
        uses_losses: whether ``__call__`` reads the loss values; when False the step skips
            gathering the global losses across replicas.
    """

    uses_losses: bool = True

    def __init__(self):
        super().__init__(name=type(self).__name__)
        self.task_names: list[str] = []

    def build(self, tasks: Sequence) -> None:
        """Creates the state for ``tasks`` (TaskType objects); call inside ``strategy.scope()``.

        Args:
            tasks: the tasks, in the order of the loss vector.
        """
        self.task_names = [task.name for task in tasks]

    def __call__(self, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """Task weights for this step.

        Args:
            losses: task losses of the global batch, shape ``(T,)``, without gradient.
            step: the optimizer's step counter (int64 scalar).

        Returns:
            Weights, shape ``(T,)``, float32.
        """
        raise NotImplementedError
