"""Hard parameter sharing: one shared trunk, one tower per task."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec
from mtl_tf.models.naming import shared_name
from mtl_tf.models.pyramid import Pyramid


@ARCHITECTURES.register("hps")
class HardParameterSharing(Architecture):
    """features -> ``shared_trunk`` -> ``<task>_tower`` for each task.

    The classic multi-task network: every task reads the same trunk output, and only the
    towers (and heads) are task-specific.

    Images: every task gets the shared trunk's pyramid; each dense task its own decoder
    (``<task>_decoder_...``), or with ``shared_decoder`` one decoder for the dense tasks of
    each output stride (``shared_decoder_...``; ``shared_decoder_s<stride>_...`` when the
    dense tasks have several output strides); each image-level task pools the deepest map.

    Args:
        trunk: the trunk spec (``model.trunk`` of the recipe).
        tower: the tower spec (``model.tower`` of the recipe).
        shared_decoder: images: one decoder shared by the dense tasks (per output stride).

    Example (recipe):
        model:
          architecture: hps
          trunk: {name: mlp, units: [128, 64]}
          tower: {name: mlp, units: [32]}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp", shared_decoder: bool = False):
        super().__init__(trunk, tower)
        if not isinstance(shared_decoder, bool):
            raise TypeError(f"shared_decoder must be true or false; received {shared_decoder!r}")
        self.shared_decoder = shared_decoder

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        shared = self.make_trunk()(x)
        return {task.name: self.make_tower(task.name)(shared) for task in tasks}

    def pyramids(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, Pyramid]:
        shared = self.make_pyramid(x)
        return {task.name: shared for task in tasks}

    def decode(self, pyramids: dict[str, Pyramid], tasks: Sequence[Any], decoder) -> dict[str, keras.KerasTensor]:
        if not self.shared_decoder:
            return super().decode(pyramids, tasks, decoder)
        strides = sorted({task.output_stride for task in tasks})
        maps = {}
        for stride in strides:
            prefix = shared_name("decoder") if len(strides) == 1 else shared_name(f"decoder_s{stride}")
            group = [task for task in tasks if task.output_stride == stride]
            decoded = decoder.decode(pyramids[group[0].name], stride, prefix)
            maps.update({task.name: decoded for task in group})
        return maps
