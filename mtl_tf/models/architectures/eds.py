"""Encoder-decoder sharing: a shared encoder (MLP, U-Net or over event sequences), one decoder per task."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec, check_count
from mtl_tf.models.layers.attention_pooling import AttentionPooling
from mtl_tf.models.layers.mlp import MLP, _check_units
from mtl_tf.models.layers.position_embedding import PositionEmbedding
from mtl_tf.models.layers.residual_block import ResidualBlock
from mtl_tf.models.layers.transformer_encoder import TransformerEncoder
from mtl_tf.models.naming import shared_name
from mtl_tf.models.pyramid import Pyramid

SEQUENCE_ENCODERS = ("gru", "transformer")


@ARCHITECTURES.register("eds")
class EncoderDecoder(Architecture):
    """A shared encoder compresses the input; each task decodes it with its own decoder.

    Tabular (mlp trunk): the trunk is the encoder (``shared_encoder``); each task's decoder
    (``<task>_decoder``) is an MLP that widens the code again, ``decoder_units`` wide
    (default: the encoder's widths in reverse, without the code width), then its tower.

    Image models (an image feature, :meth:`build_images`): the shared encoder is the trunk's
    pyramid (``shared_encoder``, any image trunk); every task, dense or image-level, has its
    own decoder over it (``<task>_decoder_...``; ``model.decoder``, by default ``unet``: a
    U-Net with one expanding path per task). A dense task's decoder ends at its output
    stride; an image-level task's at the pyramid's finest stride, then it is averaged
    (``<task>_pool``) and goes through the tower.

    Conv maps given straight to :meth:`build` (the per-row path): a U-Net. The encoder runs
    block by block (``shared_encoder_<l>``) and keeps every block's output; each task's
    decoder goes back up level by level: upsample by the encoder block's stride
    (``<task>_upsample_<l>``), concatenate the skip connection (``<task>_skip_<l>``),
    residual block (``<task>_decoder_<l>``), ending at the input resolution. With ``pool``
    (and a trunk that pools) the map is averaged to a vector for per-row heads.

    Event sequences (``encoder: gru | transformer``; the default with sequence features is
    gru): the sequence features of one length N are standardised and stacked per step,
    (batch, N, 2F) with a presence mask (``shared_sequence_<N>_steps``), and a shared sequence
    encoder turns them into one state per step: a GRU returning sequences
    (``shared_sequence_gru``), or a projection, learned position embeddings and ``blocks``
    Transformer encoder blocks whose attention skips padded steps (``shared_sequence_transformer_<i>``,
    ``causal`` to hide later steps too). The other features go through the mlp trunk
    (``shared_encoder``). Each task's decoder is a learned query attending over the present
    states (``<task>_attention``), concatenated with the static code (``<task>_decoder_inputs``),
    then the decoder MLP and the tower. Sequence features of different lengths get one
    encoder each (``shared_sequence_<N>_...``, ``<task>_attention_<N>``).

    Serving one task runs the shared encoders and that task's decoder.

    Args:
        trunk: the encoder spec (mlp or conv; mlp with sequence features).
        tower: the tower spec.
        decoder_units: widths of the tabular decoder.
        pool: average the U-Net decoder output over space (as the trunk's ``global_pool``).
        encoder: the sequence encoder, ``gru`` or ``transformer``; default gru when the recipe
            has sequence features (without them: the mlp/conv behaviour above).
        sequence_units: width of the sequence states.
        heads: attention heads of each Transformer block.
        blocks: Transformer blocks.
        causal: Transformer attention reads only the current and earlier steps.

    Example (recipe):
        architecture: {name: eds, decoder_units: [64]}
        trunk: {name: mlp, units: [64, 16]}

        architecture: {name: eds, encoder: transformer, sequence_units: 32, heads: 2, blocks: 1}
    """

    default_decoder = "unet"

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp",
                 decoder_units: Sequence[int] | None = None, pool: bool = True,
                 encoder: str | None = None, sequence_units: int = 32, heads: int = 2, blocks: int = 1,
                 causal: bool = False):
        super().__init__(trunk, tower)
        self.decoder_units = (None if decoder_units is None
                              else _check_units(decoder_units, "eds", "decoder_units"))
        self.pool_maps = bool(pool)
        if encoder is not None and encoder not in SEQUENCE_ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(SEQUENCE_ENCODERS)} (or absent); "
                             f"received {encoder!r}")
        self.encoder = encoder
        self.sequence_units = check_count(sequence_units, "sequence_units")
        self.heads = check_count(heads, "heads")
        self.blocks = check_count(blocks, "blocks")
        self.causal = bool(causal)

    def encodes_sequences(self, has_sequences: bool) -> bool:
        return self.encoder is not None or has_sequences

    def build_sequences(self, x: keras.KerasTensor | None,
                        sequences: Mapping[int, tuple[keras.KerasTensor, keras.KerasTensor]],
                        tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        encoder = self.encoder or "gru"
        if not sequences:
            raise ValueError(f"architecture eds: encoder '{encoder}' reads sequence features, but the "
                             "recipe has none; add a feature with kind: sequence, or remove 'encoder'")
        template = self.trunk_blocks()
        if template.spatial:
            raise ValueError("architecture eds: the sequence encoder works with the mlp trunk; received "
                             f"trunk {type(template).__name__}")
        code = self.make_trunk(shared_name("encoder"))(x) if x is not None else None
        single = len(sequences) == 1
        states = {length: (self._encode(steps, presence, "" if single else f"_{length}"), presence)
                  for length, (steps, presence) in sequences.items()}
        units = self.decoder_units or list(reversed(template.widths[:-1])) or template.widths
        representations = {}
        for task in tasks:
            parts = [AttentionPooling(name=f"{task.name}_attention{'' if single else f'_{length}'}")(pair)
                     for length, pair in states.items()]
            if code is not None:
                parts.append(code)
            joined = (keras.layers.Concatenate(name=f"{task.name}_decoder_inputs")(parts)
                      if len(parts) > 1 else parts[0])
            decoded = MLP(units, activation=template.activation, name=f"{task.name}_decoder")(joined)
            representations[task.name] = self.make_tower(task.name)(decoded)
        return representations

    def _encode(self, steps, presence, suffix: str):
        prefix = shared_name(f"sequence{suffix}")
        if (self.encoder or "gru") == "gru":
            return keras.layers.GRU(self.sequence_units, return_sequences=True, name=f"{prefix}_gru")(steps)
        h = keras.layers.Dense(self.sequence_units, name=f"{prefix}_projection")(steps)
        h = PositionEmbedding(name=f"{prefix}_position")(h)
        for block in range(self.blocks):
            h = TransformerEncoder(self.heads, causal=self.causal, name=f"{prefix}_transformer_{block}")([h, presence])
        return h

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

    def pyramids(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, Pyramid]:
        shared = self.make_pyramid(x, shared_name("encoder"))
        return {task.name: shared for task in tasks}

    def image_level(self, task_name: str, pyramid: Pyramid, features, decoder) -> keras.KerasTensor:
        stride = pyramid.strides[0]
        decoded = decoder.decode(pyramid, stride, f"{task_name}_decoder")
        return super().image_level(task_name, Pyramid([decoded], [stride]), features, decoder)

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
