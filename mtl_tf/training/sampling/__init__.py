"""Registry of task samplers."""

from mtl_tf.registry import Registry

SAMPLERS = Registry("task sampler")
