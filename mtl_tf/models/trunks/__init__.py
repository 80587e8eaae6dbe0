"""Registry of trunks: the shared part of a multi-task model."""

from mtl_tf.registry import Registry

TRUNKS = Registry("trunk")

from mtl_tf.models.trunks.mlp import MLPTrunk  # noqa: E402

__all__ = ["TRUNKS", "MLPTrunk"]
