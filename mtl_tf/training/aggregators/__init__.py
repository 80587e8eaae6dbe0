"""Registry of gradient aggregators."""

from mtl_tf.registry import Registry

AGGREGATORS = Registry("gradient aggregator")
