"""The MLP trunk: the shared Dense stack of hard parameter sharing."""

from __future__ import annotations

import keras

from mtl_tf.models.layers.mlp import MLP
from mtl_tf.models.trunks import TRUNKS


@TRUNKS.register("mlp")
@keras.saving.register_keras_serializable(package="mtl_tf")
class MLPTrunk(MLP):
    """A shared MLP over the preprocessed features (tabular data, (batch, features) inputs).

    Each entry of ``units`` is one block: architectures that work block by block
    (cross-stitch, PLE, MTAN, ETR-NLP) use :meth:`split`.

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
    #: Architectures read this to pick dense (not convolutional) routing layers.
    spatial = False
    pooled = False

    @property
    def widths(self) -> list[int]:
        """Output width of each block."""
        return list(self.units)

    @property
    def strides(self) -> list[int]:
        """Downsampling of each block (always 1 for Dense blocks)."""
        return [1] * len(self.units)

    def block(self, index: int, name: str) -> keras.layers.Layer:
        """A fresh trunk made of block ``index`` alone, named ``name``."""
        return MLPTrunk(units=[self.units[index]], activation=self.activation, dropout=self.dropout,
                        batch_norm=self.batch_norm, name=name)

    def split(self, prefix: str) -> list[keras.layers.Layer]:
        """Fresh one-block trunks, named ``"<prefix>_<i>"``, one per entry of ``units``."""
        return [self.block(i, f"{prefix}_{i}") for i in range(len(self.units))]
