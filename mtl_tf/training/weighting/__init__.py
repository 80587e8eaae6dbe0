"""Registry of weightings."""

from mtl_tf.registry import Registry

WEIGHTINGS = Registry("weighting")
