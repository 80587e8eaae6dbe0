"""Registry of architectures: how trunks, routing and towers are wired."""

from mtl_tf.registry import Registry

ARCHITECTURES = Registry("architecture")

from mtl_tf.models.architectures.base import Architecture  # noqa: E402
from mtl_tf.models.architectures.hps import HardParameterSharing  # noqa: E402

__all__ = ["ARCHITECTURES", "Architecture", "HardParameterSharing"]
