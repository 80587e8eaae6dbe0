"""Registry of towers: the task-specific part of a multi-task model."""

from mtl_tf.registry import Registry

TOWERS = Registry("tower")

from mtl_tf.models.towers.mlp import MLPTower  # noqa: E402

__all__ = ["TOWERS", "MLPTower"]
