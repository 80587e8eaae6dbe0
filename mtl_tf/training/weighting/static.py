"""Static weighting: each task's fixed weight (from the recipe's ``tasks[].weight``)."""

from __future__ import annotations

from typing import Mapping, Sequence

import tensorflow as tf

from mtl_tf.errors import did_you_mean
from mtl_tf.training.weighting import WEIGHTINGS
from mtl_tf.training.weighting.base import Weighting


@WEIGHTINGS.register("static")
class StaticWeighting(Weighting):
    """The same weights every step.

    Args:
        weights: task name -> weight, overriding the tasks' own ``weight`` for the tasks it
            names; default: every task's ``weight``.
    """

    uses_losses = False

    def __init__(self, weights: Mapping[str, float] | None = None):
        super().__init__()
        self.overrides = dict(weights or {})
        for name, value in self.overrides.items():
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"weighting 'static': the weight of task '{name}' must be a number "
                                 f">= 0; received {value!r}")
        self.weights = tf.constant([], tf.float32)

    def build(self, tasks: Sequence) -> None:
        super().build(tasks)
        for name in self.overrides:
            if name not in self.task_names:
                raise ValueError(f"weighting 'static': unknown task '{name}' in weights"
                                 f"{did_you_mean(name, self.task_names)}; tasks: {', '.join(self.task_names)}")
        values = [float(self.overrides.get(task.name, task.weight)) for task in tasks]
        self.weights = tf.constant(values, tf.float32)

    def __call__(self, losses, step, active=None, gram=None) -> tf.Tensor:
        return self.weights
