"""The DeepLabV3+ decoder: atrous spatial pyramid pooling and a low-level skip."""

from __future__ import annotations

import math
from typing import Sequence

import keras

from mtl_tf.models.decoders import DECODERS
from mtl_tf.models.decoders.base import Decoder, check_filters
from mtl_tf.models.layers.conv_block import ConvBlock
from mtl_tf.models.pyramid import Pyramid


@DECODERS.register("aspp")
class ASPPDecoder(Decoder):
    """DeepLabV3+ (Chen et al., 2018) on the deepest pyramid map.

    ASPP: in parallel on the deepest map a 1x1 conv block (``<prefix>_aspp_conv``), a 3x3
    conv block per dilation rate (``<prefix>_aspp_rate_<r>``) and, with ``image_pooling``,
    the map's global average (``<prefix>_aspp_pool``) through a 1x1 convolution
    (``<prefix>_aspp_pool_conv``) spread back over the map (``<prefix>_aspp_pool_upsample``);
    concatenated (``<prefix>_aspp_concat``) and projected by a 1x1 conv block
    (``<prefix>_aspp_project``). Decoder: the result upsampled (``<prefix>_upsample_aspp``)
    to the low-level map, the pyramid level nearest to ``low_level_stride`` that is finer
    than the deepest and not finer than the output; that map reduced by a 1x1 conv block
    (``<prefix>_low_level``), both concatenated (``<prefix>_concat``), two 3x3 conv blocks
    (``<prefix>_refine_0``, ``_1``), then upsampled to the output stride (``<prefix>_upsample``).
    Without such a level there is no skip.

    DeepLab's rates (6, 12, 18) suit a 33x33 map at stride 16; the defaults (1, 2, 3) suit
    the few-cell deepest maps of small images.

    Args:
        filters: channels of the ASPP branches and the decoder.
        rates: dilation rates of the 3x3 branches.
        image_pooling: add the image-level pooling branch.
        low_level_stride: stride of the preferred low-level skip.
        low_level_filters: channels the low-level map is reduced to.
        activation, batch_norm, interpolation: see :class:`Decoder`.

    Example (recipe):
        decoder: {name: aspp, filters: 64, rates: [1, 2, 3]}
    """

    def __init__(self, filters: int = 64, rates: Sequence[int] = (1, 2, 3), image_pooling: bool = True,
                 low_level_stride: int = 4, low_level_filters: int = 16, activation: str = "relu",
                 batch_norm: bool = True, interpolation: str = "bilinear"):
        super().__init__(activation, batch_norm, interpolation)
        self.filters = check_filters(filters, "filters")
        self.rates = check_filters(list(rates) if isinstance(rates, tuple) else rates, "rates", allow_list=True)
        if self.rates is None or len(set(self.rates)) != len(self.rates):
            raise ValueError(f"rates must be distinct positive integers; received {rates!r}")
        self.image_pooling = bool(image_pooling)
        self.low_level_stride = check_filters(low_level_stride, "low_level_stride")
        self.low_level_filters = check_filters(low_level_filters, "low_level_filters")

    def decode(self, pyramid: Pyramid, stride: int, prefix: str) -> keras.KerasTensor:
        self.levels(pyramid, stride)  # checks the stride
        deep, deep_stride = pyramid.deepest, pyramid.strides[-1]
        x = self._aspp(deep, prefix)
        low = self._low_level(pyramid, stride)
        current = deep_stride
        if low is not None:
            low_map, low_stride = low
            x = self.resample(x, deep_stride, low_stride, f"{prefix}_upsample_aspp")
            reduced = self._conv(self.low_level_filters, 1, f"{prefix}_low_level")(low_map)
            x = keras.layers.Concatenate(name=f"{prefix}_concat")([x, reduced])
            for j in range(2):
                x = self._conv(self.filters, 3, f"{prefix}_refine_{j}")(x)
            current = low_stride
        return self.resample(x, current, stride, f"{prefix}_upsample")

    def _aspp(self, deep, prefix: str):
        branches = [self._conv(self.filters, 1, f"{prefix}_aspp_conv")(deep)]
        branches += [self._conv(self.filters, 3, f"{prefix}_aspp_rate_{rate}", rate)(deep) for rate in self.rates]
        if self.image_pooling:
            pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}_aspp_pool")(deep)
            # No batch norm on the pooled branch: it holds one value per image and channel.
            pooled = ConvBlock(self.filters, 1, activation=self.activation, batch_norm=False,
                               name=f"{prefix}_aspp_pool_conv")(pooled)
            branches.append(keras.layers.UpSampling2D(tuple(deep.shape[1:3]),
                                                      name=f"{prefix}_aspp_pool_upsample")(pooled))
        joined = keras.layers.Concatenate(name=f"{prefix}_aspp_concat")(branches)
        return self._conv(self.filters, 1, f"{prefix}_aspp_project")(joined)

    def _low_level(self, pyramid: Pyramid, stride: int):
        deepest = pyramid.strides[-1]
        candidates = [(m, s) for m, s in pyramid if stride <= s < deepest]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (abs(math.log2(c[1] / self.low_level_stride)), c[1]))

    def _conv(self, width: int, size: int, name: str, dilation: int = 1) -> ConvBlock:
        return ConvBlock(width, size, dilation=dilation, activation=self.activation, batch_norm=self.batch_norm,
                         name=name)
