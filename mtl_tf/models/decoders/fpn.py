"""The feature pyramid network decoder, merged to one map (semantic FPN)."""

from __future__ import annotations

import keras

from mtl_tf.models.decoders import DECODERS
from mtl_tf.models.decoders.base import Decoder, check_filters
from mtl_tf.models.layers.conv_block import ConvBlock
from mtl_tf.models.pyramid import Pyramid


@DECODERS.register("fpn")
class FPNDecoder(Decoder):
    """FPN (Lin et al., 2017) top-down path, then the levels merged (Kirillov et al., 2019).

    Over the pyramid levels at the output stride or coarser: a 1x1 lateral convolution per
    level (``<prefix>_lateral_<l>``); from the deepest level down, nearest upsampling by 2
    (``<prefix>_topdown_<l>``) summed with the next lateral (``<prefix>_merge_<l>``); a 3x3
    conv block per level (``<prefix>_smooth_<l>``). The smoothed levels are upsampled
    (bilinear) to the finest one (``<prefix>_resample_<l>``) and summed (``<prefix>_sum``),
    then upsampled to the output stride (``<prefix>_upsample``) when that is finer.

    Args:
        filters: channels of every level.
        activation, batch_norm, interpolation: see :class:`Decoder`.

    Example (recipe):
        decoder: {name: fpn, filters: 32}
    """

    def __init__(self, filters: int = 64, activation: str = "relu", batch_norm: bool = True,
                 interpolation: str = "bilinear"):
        super().__init__(activation, batch_norm, interpolation)
        self.filters = check_filters(filters, "filters")

    def decode(self, pyramid: Pyramid, stride: int, prefix: str) -> keras.KerasTensor:
        levels = self.levels(pyramid, stride)
        merged = {}
        top = None
        for index, map_, level_stride in reversed(levels):
            lateral = keras.layers.Conv2D(self.filters, 1, name=f"{prefix}_lateral_{index}")(map_)
            if top is not None:
                top_map, top_stride = top
                upsampled = self.resample(top_map, top_stride, level_stride, f"{prefix}_topdown_{index}",
                                          interpolation="nearest")
                lateral = keras.layers.Add(name=f"{prefix}_merge_{index}")([lateral, upsampled])
            merged[index] = lateral
            top = (lateral, level_stride)
        finest = levels[0][2]
        parts = []
        for index, _, level_stride in levels:
            smooth = ConvBlock(self.filters, 3, activation=self.activation, batch_norm=self.batch_norm,
                               name=f"{prefix}_smooth_{index}")(merged[index])
            parts.append(self.resample(smooth, level_stride, finest, f"{prefix}_resample_{index}"))
        x = keras.layers.Add(name=f"{prefix}_sum")(parts) if len(parts) > 1 else parts[0]
        return self.resample(x, finest, stride, f"{prefix}_upsample")
