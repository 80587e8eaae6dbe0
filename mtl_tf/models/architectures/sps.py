"""Soft parameter sharing (Duong et al., 2015): a trunk per task, kept close by a penalty."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec
from mtl_tf.models.layers.soft_sharing_penalty import SoftSharingPenalty
from mtl_tf.models.naming import shared_name
from mtl_tf.models.pyramid import Pyramid


@ARCHITECTURES.register("sps")
class SoftParameterSharing(Architecture):
    """features -> ``<task>_trunk`` -> ``<task>_tower`` for each task, plus an L2 penalty.

    Every task has its own trunk of one spec; the penalty ``penalty_weight * sum over task
    pairs of ||theta_i - theta_j||^2`` (weights compared layer by layer) pulls corresponding
    layers together. It is added to the model's losses by the ``shared_soft_sharing`` layer
    (an identity on the features), so the Trainer adds it to the objective and logs it as
    ``regularization``; :func:`mtl_tf.models.analysis.penalty_values` reads it on its own.
    Trunks: mlp and conv. Serving one task runs that task's trunk alone.

    Images: each task's pyramid comes from its own trunk (``<task>_trunk``, any image trunk,
    one layer that returns every stage's map, so the penalty compares whole trunks); the
    decoders and towers are the tasks' own as usual and are not penalised.

    Args:
        trunk: the trunk spec, one copy per task.
        tower: the tower spec.
        penalty_weight: coefficient of the L2 distance (0: independent networks).

    Example (recipe):
        architecture: {name: sps, penalty_weight: 0.001}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp",
                 penalty_weight: float = 0.01):
        super().__init__(trunk, tower)
        if isinstance(penalty_weight, bool) or not isinstance(penalty_weight, (int, float)) \
                or penalty_weight < 0:
            raise ValueError(f"penalty_weight must be a number >= 0; received {penalty_weight!r}")
        self.penalty_weight = float(penalty_weight)

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        anchored = self._anchor(x)
        return {task.name: self.make_tower(task.name)(self.make_trunk(f"{task.name}_trunk")(anchored))
                for task in tasks}

    def pyramids(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, Pyramid]:
        anchored = self._anchor(x)
        return {task.name: self.make_pyramid(anchored, f"{task.name}_trunk") for task in tasks}

    def _anchor(self, x: keras.KerasTensor) -> keras.KerasTensor:
        return SoftSharingPenalty(self.penalty_weight, name=shared_name("soft_sharing"))(x)
