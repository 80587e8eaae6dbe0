"""The resnet trunk: a stride-2 stem and stride-2 residual stages, a multi-scale image trunk."""

from __future__ import annotations

from typing import Sequence

import keras

from mtl_tf.models.trunks import TRUNKS
from mtl_tf.models.trunks.conv import ConvTrunk


@TRUNKS.register("resnet")
@keras.saving.register_keras_serializable(package="mtl_tf")
class ResNetTrunk(ConvTrunk):
    """The conv trunk with ResNet defaults: a 3x3 stride-2 stem, then stages that halve the size.

    With ``filters: [16, 32, 64, 128]`` the stages' maps are at strides 2 (the stem), 4, 8,
    16 and 32: the pyramid FPN and DeepLab decoders expect. Each stage is ``depth`` basic
    residual blocks (2, as in ResNet-18). Height and width must be multiples of the deepest
    stride (32 with four stages).

    Args:
        filters: output channels of each stage; default [16, 32, 64, 128].
        strides: stride of each stage; default 2 for all.
        stem: channels of the stem; default ``filters[0]``.
        depth: residual blocks per stage; default 2.
        kernel_size, activation, batch_norm, global_pool: as for the conv trunk.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).

    Example (recipe):
        trunk: {name: resnet, filters: [16, 32, 64, 128]}
    """

    def __init__(self, filters: Sequence[int] | None = None, strides: Sequence[int] | int | None = None,
                 kernel_size: int = 3, activation: str = "relu", batch_norm: bool = True,
                 global_pool: bool = True, stem: int | None = None, depth: int = 2, **kwargs):
        filters = [16, 32, 64, 128] if filters is None else filters
        if stem is None and filters and isinstance(filters, (list, tuple)):
            stem = filters[0]
        super().__init__(filters=filters, strides=2 if strides is None else strides, kernel_size=kernel_size,
                         activation=activation, batch_norm=batch_norm, global_pool=global_pool, stem=stem,
                         depth=depth, **kwargs)
