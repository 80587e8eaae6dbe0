"""The GradientAggregator interface: per-task gradients in, one update out.

The training step asks ``needs_task_gradients``: when False it differentiates the weighted
sum of task losses once (one backward pass); when True it computes each task's gradient,
sums each across replicas, and calls ``aggregate`` with the global per-task gradients, so
the result is the same on every replica and equal to a single-replica run.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


class GradientAggregator(tf.Module):
    """Base class of gradient aggregators.

    Attributes:
        needs_task_gradients: whether the step must compute one gradient per task.
    """

    needs_task_gradients: bool = True

    def __init__(self):
        super().__init__(name=type(self).__name__)

    def build(self, tasks: Sequence, variables: Sequence[tf.Variable]) -> None:
        """Creates any state; call inside ``strategy.scope()``.

        Args:
            tasks: the tasks, in the order of the gradient list.
            variables: the trainable variables the gradients are for.
        """

    def aggregate(self, task_grads: Sequence[Sequence[tf.Tensor]], weights: tf.Tensor) -> list[tf.Tensor]:
        """One gradient per variable from the tasks' gradients.

        Args:
            task_grads: ``task_grads[t][v]``: the gradient of task ``t``'s loss with respect to
                variable ``v`` (zeros where the task does not reach the variable).
            weights: task weights, shape ``(T,)``.

        Returns:
            ``grads[v]`` for every variable.
        """
        raise NotImplementedError
