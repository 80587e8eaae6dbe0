"""The MLP tower: one task's own Dense stack between the shared part and its head."""

from __future__ import annotations

import keras

from mtl_tf.models.layers.mlp import MLP
from mtl_tf.models.towers import TOWERS


@TOWERS.register("mlp")
@keras.saving.register_keras_serializable(package="mtl_tf")
class MLPTower(MLP):
    """A task-specific MLP; ``units: []`` makes it the identity.

    Args:
        units: width of each Dense layer; default [32].
        activation: a Keras activation name.
        dropout: dropout rate after each block, in [0, 1).
        batch_norm: batch-normalise each Dense output before the activation.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).

    Example (recipe):
        tower: {name: mlp, units: [32]}
    """

    default_units = (32,)
