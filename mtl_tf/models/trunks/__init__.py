"""Registry of trunks."""

from mtl_tf.registry import Registry

TRUNKS = Registry("trunk")
