"""Custom Keras layers of the model: feature encoders and the MLP block."""

from mtl_tf.models.layers.cyclical_time import CyclicalTime
from mtl_tf.models.layers.mlp import MLP
from mtl_tf.models.layers.standardize import Standardize

__all__ = ["CyclicalTime", "MLP", "Standardize"]
