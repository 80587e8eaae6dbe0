"""Encoder-decoder sharing: a shared encoder, one decoder per task."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec
from mtl_tf.models.layers.mlp import MLP, _check_units
from mtl_tf.models.layers.residual_block import ResidualBlock
from mtl_tf.models.naming import shared_name


@ARCHITECTURES.register("eds")
class EncoderDecoder(Architecture):
    """A shared encoder compresses the input; each task decodes it with its own decoder.

    Tabular (mlp trunk): the trunk is the encoder (``shared_encoder``); each task's decoder
    (``<task>_decoder``) is an MLP that widens the code again, ``decoder_units`` wide
    (default: the encoder's widths in reverse, without the code width), then its tower.

    Images (conv trunk): a U-Net. The encoder runs block by block (``shared_encoder_<l>``)
    and keeps every block's output; each task's decoder goes back up level by level:
    upsample by the encoder block's stride (``<task>_upsample_<l>``), concatenate the skip
    connection (``<task>_skip_<l>``), residual block (``<task>_decoder_<l>``), ending at the
    input resolution: a dense per-pixel feature map. With ``pool`` (and a trunk that pools)
    the map is averaged to a vector for the current per-row heads.

    Serving one task runs the shared encoder and that task's decoder.

    Args:
        trunk: the encoder spec (mlp or conv).
        tower: the tower spec.
        decoder_units: widths of the tabular decoder.
        pool: average the U-Net decoder output over space (as the trunk's ``global_pool``).

    Example (recipe):
        architecture: {name: eds, decoder_units: [64]}
        trunk: {name: mlp, units: [64, 16]}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp",
                 decoder_units: Sequence[int] | None = None, pool: bool = True):
        super().__init__(trunk, tower)
        self.decoder_units = (None if decoder_units is None
                              else _check_units(decoder_units, "eds", "decoder_units"))
        self.pool_maps = bool(pool)

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        template = self.trunk_blocks()
        if template.spatial:
            return self._unet(x, tasks, template)
        code = self.make_trunk(shared_name("encoder"))(x)
        widths = template.widths
        units = self.decoder_units
        if units is None:
            units = list(reversed(widths[:-1])) or widths
        representations = {}
        for task in tasks:
            decoded = MLP(units, activation=template.activation, name=f"{task.name}_decoder")(code)
            representations[task.name] = self.make_tower(task.name)(decoded)
        return representations

    def _unet(self, x, tasks, template) -> dict[str, keras.KerasTensor]:
        _check_divisible(x, template.strides)
        skips = [x]
        for level in range(len(template.widths)):
            skips.append(template.block(level, shared_name(f"encoder_{level}"))(skips[-1]))
        representations = {}
        for task in tasks:
            decoded = self._decode(task.name, skips, template)
            if self.pool_maps and template.pooled:
                decoded = keras.layers.GlobalAveragePooling2D(name=f"{task.name}_pool")(decoded)
            representations[task.name] = self.make_tower(task.name)(decoded)
        return representations

    def _decode(self, task: str, skips, template):
        widths, strides = template.widths, template.strides
        decoded = skips[-1]
        for level in reversed(range(len(widths))):
            if strides[level] > 1:
                decoded = keras.layers.UpSampling2D(strides[level], name=f"{task}_upsample_{level}")(decoded)
            decoded = keras.layers.Concatenate(name=f"{task}_skip_{level}")([decoded, skips[level]])
            filters = widths[level - 1] if level > 0 else widths[0]
            decoded = ResidualBlock(filters, 1, template.kernel_size, template.activation,
                                    template.batch_norm, name=f"{task}_decoder_{level}")(decoded)
        return decoded


def _check_divisible(x: keras.KerasTensor, strides: Sequence[int]) -> None:
    factor = 1
    for stride in strides:
        factor *= stride
    for size in x.shape[1:3]:
        if size is None or size % factor:
            raise ValueError(f"architecture eds: the U-Net decoder upsamples back to the input size, so "
                             f"height and width must be known multiples of the encoder's total stride "
                             f"{factor}; received input shape {tuple(x.shape)}")
