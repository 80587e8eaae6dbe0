"""Registry of architectures."""

from mtl_tf.registry import Registry

ARCHITECTURES = Registry("architecture")
