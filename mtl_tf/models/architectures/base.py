"""The Architecture interface: how the shared and task-specific parts are wired.

An architecture takes the preprocessed features and returns one representation per task;
the task's head goes on top. It builds Keras layers into the functional graph and is not
itself saved: the model's config holds the layers, so a saved model reloads without it.

Naming convention (:mod:`mtl_tf.models.naming`; the training loop relies on it to tell
shared from task-specific variables): a layer that belongs to one task is named
``"<task>_..."`` (``"fraud_tower"``, ``"fraud_gate"``); every other layer is shared and its
name starts with ``"shared_"`` (``"shared_trunk"``, ``"shared_experts"``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras

from mtl_tf.models.naming import shared_name
from mtl_tf.models.towers import TOWERS
from mtl_tf.models.trunks import TRUNKS

ComponentSpec = str | Mapping[str, Any]


class Architecture:
    """Base class of architectures.

    Args:
        trunk: the trunk spec of the recipe (``"mlp"`` or ``{"name": "mlp", **options}``).
        tower: the tower spec of the recipe, used once per task.

    Subclasses add their own options as keyword arguments and implement :meth:`build`.
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp"):
        self.trunk = trunk
        self.tower = tower

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        """Wires the layers on ``x`` (batch, features).

        Args:
            x: the preprocessed features.
            tasks: TaskType objects, in recipe order.

        Returns:
            Task name -> the task's representation, on which its head is built.
        """
        raise NotImplementedError

    def make_trunk(self, name: str = shared_name("trunk")) -> keras.layers.Layer:
        """A fresh trunk layer built from the recipe's trunk spec."""
        return TRUNKS.get(self.trunk, "model.trunk", name=name)

    def make_tower(self, task_name: str, suffix: str = "tower") -> keras.layers.Layer:
        """A fresh tower layer for one task, named ``"<task>_<suffix>"``."""
        return TOWERS.get(self.tower, "model.tower", name=f"{task_name}_{suffix}")
