"""The conv trunk: a small ResNet-style stack for image inputs."""

from __future__ import annotations

from typing import Sequence

import keras

from mtl_tf.models.layers.conv_block import ConvBlock
from mtl_tf.models.layers.mlp import _check_activation, _check_units
from mtl_tf.models.layers.residual_block import ResidualBlock
from mtl_tf.models.trunks import TRUNKS
from mtl_tf.models.trunks.base import SpatialTrunk


@TRUNKS.register("conv")
@keras.saving.register_keras_serializable(package="mtl_tf")
class ConvTrunk(SpatialTrunk):
    """(batch, H, W, C) images -> [stem] -> residual stages -> [global average pooling].

    One stage per entry of ``filters``: ``depth`` :class:`ResidualBlock` s, the first of which
    divides the resolution by ``strides[i]``. With ``stem`` a 3x3 convolution of stride 2
    (``stem`` channels) comes first and is a stage of its own. With ``global_pool`` the output
    is (batch, filters[-1]), ready for towers and heads; without it the trunk returns the last
    feature map; as an image model's trunk (:meth:`pyramid`) it returns every stage's map.

    Args:
        filters: output channels of each stage; default [16, 32].
        strides: stride of each stage (a list as long as ``filters``, or one int for all);
            default 1 for the first stage and 2 for the others.
        kernel_size: side of the square kernels.
        activation: a Keras activation name.
        batch_norm: batch-normalise after each convolution.
        global_pool: average the last feature map over space.
        stem: channels of a stride-2 3x3 convolution before the stages; None for none.
        depth: residual blocks per stage.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).

    Example (recipe):
        trunk: {name: conv, filters: [32, 64, 128], strides: [1, 2, 2]}
    """

    options = ["filters", "strides", "kernel_size", "activation", "batch_norm", "global_pool", "stem", "depth"]

    def __init__(self, filters: Sequence[int] | None = None, strides: Sequence[int] | int | None = None,
                 kernel_size: int = 3, activation: str = "relu", batch_norm: bool = True,
                 global_pool: bool = True, stem: int | None = None, depth: int = 1, **kwargs):
        super().__init__(global_pool=global_pool, **kwargs)
        self.filters = _check_units([16, 32] if filters is None else filters, self.name, "filters")
        self.stem_filters = _check_positive(stem, "stem", self.name) if stem is not None else None
        if not self.filters and self.stem_filters is None:
            raise ValueError(f"layer '{self.name}': filters must hold at least one block; received []")
        self.block_strides = _check_strides(strides, len(self.filters), self.name)
        self.kernel_size = kernel_size
        self.activation = _check_activation(activation, self.name)
        self.batch_norm = bool(batch_norm)
        self.depth = _check_positive(depth, "depth", self.name)
        self.stem = None if self.stem_filters is None else ConvBlock(
            self.stem_filters, 3, 2, activation=activation, batch_norm=self.batch_norm, name="stem")
        # One flat list (its name is part of the saved weights' paths): stage i is blocks
        # [i * depth, (i + 1) * depth).
        self.blocks = [ResidualBlock(f, s if j == 0 else 1, kernel_size, activation, batch_norm,
                                     name=f"block_{i}" if j == 0 else f"block_{i}_{j}")
                       for i, (f, s) in enumerate(zip(self.filters, self.block_strides))
                       for j in range(self.depth)]

    def stages(self) -> list[list[keras.layers.Layer]]:
        stages = [[self.stem]] if self.stem is not None else []
        return stages + [self.blocks[i * self.depth:(i + 1) * self.depth] for i in range(len(self.filters))]

    @property
    def widths(self) -> list[int]:
        """Output channels of each stage (the stem first, if any)."""
        return ([self.stem_filters] if self.stem is not None else []) + list(self.filters)

    @property
    def strides(self) -> list[int]:
        """Downsampling of each stage (the stem first, if any)."""
        return ([2] if self.stem is not None else []) + list(self.block_strides)

    def block(self, index: int, name: str) -> keras.layers.Layer:
        """A fresh trunk made of stage ``index`` alone, without pooling, named ``name``."""
        common = {"kernel_size": self.kernel_size, "activation": self.activation,
                  "batch_norm": self.batch_norm, "global_pool": False, "name": name}
        if self.stem is not None:
            if index == 0:
                return ConvTrunk(filters=[], strides=[], stem=self.stem_filters, **common)
            index -= 1
        return ConvTrunk(filters=[self.filters[index]], strides=[self.block_strides[index]], depth=self.depth,
                         **common)

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "strides": list(self.block_strides),
                "kernel_size": self.kernel_size, "activation": self.activation,
                "batch_norm": self.batch_norm, "stem": self.stem_filters, "depth": self.depth}


def _check_positive(value, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"layer '{where}': {key} must be a positive integer; received {value!r}")
    return value


def _check_strides(strides, blocks: int, where: str) -> list[int]:
    if strides is None:
        return [1] + [2] * (blocks - 1) if blocks else []
    if isinstance(strides, int) and not isinstance(strides, bool):
        strides = [strides] * blocks
    values = _check_units(strides, where, "strides")
    if len(values) != blocks:
        raise ValueError(f"layer '{where}': strides needs one entry per block ({blocks}); "
                         f"received {list(strides)!r}")
    return values
