"""Hard parameter sharing: one shared trunk, one tower per task."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture


@ARCHITECTURES.register("hps")
class HardParameterSharing(Architecture):
    """features -> ``shared_trunk`` -> ``<task>_tower`` for each task.

    The classic multi-task network: every task reads the same trunk output, and only the
    towers (and heads) are task-specific.

    Args:
        trunk: the trunk spec (``model.trunk`` of the recipe).
        tower: the tower spec (``model.tower`` of the recipe).

    Example (recipe):
        model:
          architecture: hps
          trunk: {name: mlp, units: [128, 64]}
          tower: {name: mlp, units: [32]}
    """

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        shared = self.make_trunk()(x)
        return {task.name: self.make_tower(task.name)(shared) for task in tasks}
