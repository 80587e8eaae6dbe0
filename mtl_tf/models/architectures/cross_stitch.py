"""Cross-stitch networks (Misra et al., CVPR 2016)."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec, check_fraction
from mtl_tf.models.layers.cross_stitch import CrossStitch
from mtl_tf.models.naming import shared_name
from mtl_tf.models.pyramid import Pyramid
from mtl_tf.models.trunks.base import pyramid_of


@ARCHITECTURES.register("cross_stitch")
class CrossStitchNetwork(Architecture):
    """One column of trunk blocks per task, mixed after each block by cross-stitch units.

    After block ``l`` of every column, task ``t``'s cross-stitch unit gives it a learned
    linear combination of every column's output. Trunks: mlp and conv.

    Names follow the gradients: every task's loss reaches every column block and every unit
    but the last ones, so those are shared (``shared_<task>_block_<l>``,
    ``shared_<task>_cross_stitch_<l>``) and the training loop combines the tasks' gradients
    on them; the last units (``<task>_cross_stitch_<l>``) and the towers are task-specific.
    Serving one task needs every column (each unit reads all of them), so a per-task
    signature saves only the other tasks' last unit, tower and head.

    Image models: the columns are built from an image trunk's blocks (conv, resnet, unet);
    task ``t``'s pyramid is its cross-stitch units' outputs after every block (its column's
    per-block maps), which its decoder or pooling reads. Serving one task then also leaves
    out the other tasks' decoders.

    Args:
        trunk: the trunk spec; each column is one such trunk, block by block.
        tower: the tower spec.
        self_weight: initial weight of a task's own column in its unit, in [0, 1].
        per_channel: learn one mixing weight per channel instead of one per column.

    Example (recipe):
        architecture: {name: cross_stitch, self_weight: 0.9}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp", self_weight: float = 0.9,
                 per_channel: bool = False):
        super().__init__(trunk, tower)
        self.self_weight = check_fraction(self_weight, "self_weight")
        self.per_channel = bool(per_channel)

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        template = self.trunk_blocks()
        names = [task.name for task in tasks]
        columns = self._columns(x, names, template)
        return {t: self.make_tower(t)(self.pool(columns[t][-1], t, template)) for t in names}

    def pyramids(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, Pyramid]:
        template = self.spatial_blocks()
        columns = self._columns(x, [task.name for task in tasks], template)
        return {t: pyramid_of(maps, template.pyramid_strides) for t, maps in columns.items()}

    def _columns(self, x, names: list[str], template) -> dict[str, list[keras.KerasTensor]]:
        """Each task's column output after every block (after the cross-stitch units)."""
        columns, last = {t: [x] for t in names}, len(template.widths) - 1
        for level in range(last + 1):
            if len(names) == 1:
                for t in names:
                    columns[t].append(template.block(level, f"{t}_block_{level}")(columns[t][-1]))
                continue
            outputs = [template.block(level, shared_name(f"{t}_block_{level}"))(columns[t][-1]) for t in names]
            for i, t in enumerate(names):
                columns[t].append(CrossStitch(i, self.self_weight, self.per_channel,
                                              name=_unit_name(t, level, last))(outputs))
        return {t: maps[1:] for t, maps in columns.items()}


def _unit_name(task: str, level: int, last: int) -> str:
    """Only the last unit of a task is trained by that task alone."""
    return f"{task}_cross_stitch_{level}" if level == last else shared_name(f"{task}_cross_stitch_{level}")
