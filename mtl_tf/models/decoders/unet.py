"""The U-Net decoder: the expanding path, with a skip connection per level."""

from __future__ import annotations

from typing import Sequence

import keras

from mtl_tf.models.decoders import DECODERS
from mtl_tf.models.decoders.base import Decoder, check_filters
from mtl_tf.models.layers.conv_block import ConvBlock
from mtl_tf.models.pyramid import Pyramid


MAX_DEFAULT_FILTERS = 256


@DECODERS.register("unet")
class UNetDecoder(Decoder):
    """From the deepest map up, level by level (Ronneberger et al., 2015).

    For each finer pyramid level ``l`` down to the output stride: upsample by the ratio of
    the strides (``<prefix>_upsample_<l>``), concatenate level ``l``'s map
    (``<prefix>_skip_<l>``), two 3x3 conv blocks (``<prefix>_conv_<l>_0``, ``_1``). When the
    finest level is still coarser than the output stride (a trunk whose first map is at stride
    2 or 4), the map is upsampled the rest of the way (``<prefix>_upsample_out``, bilinear,
    as FPN and DeepLab do: a convolution at full resolution would cost more than the rest).

    Args:
        filters: channels of each level's conv blocks: one int for all, a list indexed by
            pyramid level, or null for the skip's own channels (the symmetric U-Net), at
            most 256 (so that a Keras Applications backbone's 1024- and 2048-channel maps
            do not make a decoder of tens of millions of parameters).
        activation, batch_norm, interpolation: see :class:`Decoder`.

    Example (recipe):
        decoder: {name: unet, filters: 32}
    """

    def __init__(self, filters: int | Sequence[int] | None = None, activation: str = "relu",
                 batch_norm: bool = True, interpolation: str = "bilinear"):
        super().__init__(activation, batch_norm, interpolation)
        self.filters = check_filters(filters, "filters", allow_list=True)

    def decode(self, pyramid: Pyramid, stride: int, prefix: str) -> keras.KerasTensor:
        levels = self.levels(pyramid, stride)
        if isinstance(self.filters, list) and len(self.filters) != len(pyramid):
            raise ValueError(f"decoder unet: filters lists one width per pyramid level ({len(pyramid)}: strides "
                             f"{pyramid.strides}); received {self.filters}")
        _, x, current = levels[-1]
        for index, skip, level_stride in reversed(levels[:-1]):
            x = self.resample(x, current, level_stride, f"{prefix}_upsample_{index}")
            x = keras.layers.Concatenate(name=f"{prefix}_skip_{index}")([x, skip])
            width = self._width(index, skip.shape[-1])
            for j in range(2):
                x = self._conv(width, f"{prefix}_conv_{index}_{j}")(x)
            current = level_stride
        name = f"{prefix}_upsample_out" if current > stride else f"{prefix}_resample"
        return self.resample(x, current, stride, name)

    def _width(self, index: int, skip_width: int) -> int:
        if self.filters is None:
            return min(skip_width, MAX_DEFAULT_FILTERS)
        return self.filters[index] if isinstance(self.filters, list) else self.filters

    def _conv(self, width: int, name: str) -> ConvBlock:
        return ConvBlock(width, 3, activation=self.activation, batch_norm=self.batch_norm, name=name)
