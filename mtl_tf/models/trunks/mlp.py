"""The MLP trunk: the shared Dense stack of hard parameter sharing."""

from __future__ import annotations

import keras

from mtl_tf.models.layers.mlp import MLP
from mtl_tf.models.trunks import TRUNKS


@TRUNKS.register("mlp")
@keras.saving.register_keras_serializable(package="mtl_tf")
class MLPTrunk(MLP):
    """A shared MLP over the preprocessed features.

    Args:
        units: width of each Dense layer; default [128, 64].
        activation: a Keras activation name.
        dropout: dropout rate after each block, in [0, 1).
        batch_norm: batch-normalise each Dense output before the activation.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).

    Example (recipe):
        trunk: {name: mlp, units: [128, 64], dropout: 0.1}
    """

    default_units = (128, 64)
