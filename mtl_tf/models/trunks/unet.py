"""The unet trunk: the U-Net encoder (two 3x3 convolutions per level, max-pooling between)."""

from __future__ import annotations

from typing import Sequence

import keras

from mtl_tf.models.layers.conv_block import ConvBlock
from mtl_tf.models.layers.mlp import _check_activation, _check_units
from mtl_tf.models.trunks import TRUNKS
from mtl_tf.models.trunks.base import SpatialTrunk


@TRUNKS.register("unet")
@keras.saving.register_keras_serializable(package="mtl_tf")
class UNetTrunk(SpatialTrunk):
    """The contracting path of U-Net (Ronneberger et al., 2015).

    Level ``i``: max-pooling by ``strides[i]`` (none at stride 1), then two
    convolution -> [batch norm] -> activation blocks with ``filters[i]`` channels. Levels are
    at strides 1, 2, 4, ... of the input; the matching expanding path is the ``unet``
    decoder, which dense tasks get by default with this trunk.

    Args:
        filters: channels of each level; default [16, 32, 64, 128].
        strides: max-pooling before each level; default 1 for the first level, 2 for the others.
        kernel_size: side of the square kernels.
        activation: a Keras activation name.
        batch_norm: batch-normalise after each convolution (the original U-Net has none).
        global_pool: average the last map over space (plain calls, not in image models).
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).

    Example (recipe):
        trunk: {name: unet, filters: [16, 32, 64, 128]}
    """

    options = ["filters", "strides", "kernel_size", "activation", "batch_norm", "global_pool"]
    default_decoder = "unet"

    def __init__(self, filters: Sequence[int] | None = None, strides: Sequence[int] | None = None,
                 kernel_size: int = 3, activation: str = "relu", batch_norm: bool = True,
                 global_pool: bool = True, **kwargs):
        super().__init__(global_pool=global_pool, **kwargs)
        self.filters = _check_units([16, 32, 64, 128] if filters is None else filters, self.name, "filters")
        if not self.filters:
            raise ValueError(f"layer '{self.name}': filters must hold at least one level; received []")
        default = [1] + [2] * (len(self.filters) - 1)
        self.level_strides = _check_units(default if strides is None else strides, self.name, "strides")
        if len(self.level_strides) != len(self.filters):
            raise ValueError(f"layer '{self.name}': strides needs one entry per level ({len(self.filters)}); "
                             f"received {list(strides)!r}")
        self.kernel_size = kernel_size
        self.activation = _check_activation(activation, self.name)
        self.batch_norm = bool(batch_norm)
        self.levels = [self._level(i, f, s) for i, (f, s) in enumerate(zip(self.filters, self.level_strides))]

    def _level(self, index: int, filters: int, stride: int) -> list[keras.layers.Layer]:
        pool = [keras.layers.MaxPooling2D(stride, name=f"pool_{index}")] if stride > 1 else []
        return pool + [ConvBlock(filters, self.kernel_size, activation=self.activation, batch_norm=self.batch_norm,
                                 name=f"conv_{index}_{j}") for j in range(2)]

    def stages(self) -> list[list[keras.layers.Layer]]:
        return self.levels

    @property
    def widths(self) -> list[int]:
        return list(self.filters)

    @property
    def strides(self) -> list[int]:
        return list(self.level_strides)

    def block(self, index: int, name: str) -> keras.layers.Layer:
        """A fresh trunk made of level ``index`` alone, without pooling, named ``name``."""
        return UNetTrunk(filters=[self.filters[index]], strides=[self.level_strides[index]],
                         kernel_size=self.kernel_size, activation=self.activation, batch_norm=self.batch_norm,
                         global_pool=False, name=name)

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "strides": list(self.level_strides),
                "kernel_size": self.kernel_size, "activation": self.activation, "batch_norm": self.batch_norm}
