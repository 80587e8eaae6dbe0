"""The conv trunk: a small ResNet-style stack for image inputs."""

from __future__ import annotations

from typing import Sequence

import keras

from mtl_tf.models.layers.mlp import _check_activation, _check_units
from mtl_tf.models.layers.residual_block import ResidualBlock
from mtl_tf.models.trunks import TRUNKS


@TRUNKS.register("conv")
@keras.saving.register_keras_serializable(package="mtl_tf")
class ConvTrunk(keras.layers.Layer):
    """(batch, H, W, C) images -> residual blocks -> [global average pooling].

    One :class:`ResidualBlock` per entry of ``filters``; block ``i`` divides the resolution by
    ``strides[i]``. With ``global_pool`` the output is (batch, filters[-1]), ready for towers
    and heads; without it the trunk returns the last feature map.

    Args:
        filters: output channels of each block; default [16, 32].
        strides: stride of each block (a list as long as ``filters``, or one int for all);
            default 1 for the first block and 2 for the others.
        kernel_size: side of the square kernels.
        activation: a Keras activation name.
        batch_norm: batch-normalise after each convolution.
        global_pool: average the last feature map over space.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).

    Example (recipe):
        trunk: {name: conv, filters: [32, 64, 128], strides: [1, 2, 2]}
    """

    options = ["filters", "strides", "kernel_size", "activation", "batch_norm", "global_pool"]
    spatial = True

    def __init__(self, filters: Sequence[int] | None = None, strides: Sequence[int] | int | None = None,
                 kernel_size: int = 3, activation: str = "relu", batch_norm: bool = True,
                 global_pool: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = _check_units([16, 32] if filters is None else filters, self.name, "filters")
        if not self.filters:
            raise ValueError(f"layer '{self.name}': filters must hold at least one block; received []")
        self.block_strides = _check_strides(strides, len(self.filters), self.name)
        self.kernel_size = kernel_size
        self.activation = _check_activation(activation, self.name)
        self.batch_norm = bool(batch_norm)
        self.global_pool = bool(global_pool)
        self.blocks = [ResidualBlock(f, s, kernel_size, activation, batch_norm, name=f"block_{i}")
                       for i, (f, s) in enumerate(zip(self.filters, self.block_strides))]
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool") if global_pool else None

    @property
    def widths(self) -> list[int]:
        """Output channels of each block."""
        return list(self.filters)

    @property
    def strides(self) -> list[int]:
        """Downsampling of each block."""
        return list(self.block_strides)

    @property
    def pooled(self) -> bool:
        """Whether the trunk ends with global pooling (architectures pool each task's output)."""
        return self.global_pool

    def block(self, index: int, name: str) -> keras.layers.Layer:
        """A fresh trunk made of block ``index`` alone, without pooling, named ``name``."""
        return ConvTrunk(filters=[self.filters[index]], strides=[self.block_strides[index]],
                         kernel_size=self.kernel_size, activation=self.activation,
                         batch_norm=self.batch_norm, global_pool=False, name=name)

    def split(self, prefix: str) -> list[keras.layers.Layer]:
        """Fresh one-block trunks without pooling, named ``"<prefix>_<i>"``."""
        return [self.block(i, f"{prefix}_{i}") for i in range(len(self.filters))]

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"layer '{self.name}': the conv trunk expects images (batch, height, "
                             f"width, channels); received shape {tuple(input_shape)}. Use the mlp "
                             "trunk for tabular features.")
        shape = tuple(input_shape)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for block in self.blocks:
            x = block(x, training=training)
        return self.pool(x) if self.pool is not None else x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            shape = block.compute_output_shape(shape)
        return (shape[0], shape[-1]) if self.global_pool else shape

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "strides": self.strides,
                "kernel_size": self.kernel_size, "activation": self.activation,
                "batch_norm": self.batch_norm, "global_pool": self.global_pool}


def _check_strides(strides, blocks: int, where: str) -> list[int]:
    if strides is None:
        return [1] + [2] * (blocks - 1)
    if isinstance(strides, int) and not isinstance(strides, bool):
        strides = [strides] * blocks
    values = _check_units(strides, where, "strides")
    if len(values) != blocks:
        raise ValueError(f"layer '{where}': strides needs one entry per block ({blocks}); "
                         f"received {list(strides)!r}")
    return values
