"""Registry of towers."""

from mtl_tf.registry import Registry

TOWERS = Registry("tower")
