"""Multi-task attention network (Liu et al., CVPR 2019) with cross-task attention fusion."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec, check_count
from mtl_tf.models.layers.cross_task_attention import CrossTaskAttention
from mtl_tf.models.layers.task_attention import TaskAttention
from mtl_tf.models.naming import shared_name
from mtl_tf.models.pyramid import Pyramid


@ARCHITECTURES.register("mtan")
class MultiTaskAttention(Architecture):
    """A shared trunk; each task selects features after every block with its own attention.

    The trunk runs block by block (``shared_block_<l>``). After block ``l`` each task's
    module ``<task>_attention_<l>`` computes a soft mask from the block output and the
    task's previous attended features and applies it to the block output. With ``fusion``,
    a cross-task attention block (``<task>_cross_attention``) then lets each task's final
    features attend to every other task's. Trunks: mlp and conv (1x1 projections on maps).

    With ``fusion`` every task's loss reaches every attention module through the fusion
    blocks, so the modules are named ``shared_<task>_attention_<l>`` (the training loop then
    treats them as shared); only ``<task>_cross_attention`` and the towers are task-specific.

    Serving one task runs the shared trunk and that task's attention modules; with
    ``fusion`` it also runs the other tasks' attention modules, whose outputs it attends to.

    Image models (Liu et al.'s dense form): the shared trunk gives its pyramid (any image
    trunk, ``shared_trunk``); at every level each task's attention module
    ``<task>_attention_<l>`` masks the level's shared map, reading the map and the task's
    attended map of the level below (average-pooled to this level's size), so each task has
    a pyramid of its own attended maps, which its decoder or pooling reads. Without fusion
    (the default on images) the attention modules are the tasks' own; with ``fusion: true``
    the deepest attended maps also go through the cross-task attention, and the modules are
    shared as above.

    Args:
        trunk: the shared trunk spec, split into blocks.
        tower: the tower spec.
        fusion: add the cross-task attention fusion block; default on for the per-row path,
            off on image pyramids.
        key_dim: width of the fusion block's queries and keys.

    Example (recipe):
        architecture: {name: mtan, fusion: true, key_dim: 16}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp", fusion: bool | None = None,
                 key_dim: int = 16):
        super().__init__(trunk, tower)
        if fusion is not None and not isinstance(fusion, bool):
            raise TypeError(f"fusion must be true, false or absent; received {fusion!r}")
        self.fusion = fusion
        self.key_dim = check_count(key_dim, "key_dim")

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        template = self.trunk_blocks()
        names = [task.name for task in tasks]
        fused = self.fusion is not False and len(names) > 1
        shared, attended = x, {t: None for t in names}
        for level, stride in enumerate(template.strides):
            shared = template.block(level, shared_name(f"block_{level}"))(shared)
            for t in names:
                inputs = [shared] if attended[t] is None else [shared, attended[t]]
                name = shared_name(f"{t}_attention_{level}") if fused else f"{t}_attention_{level}"
                attended[t] = TaskAttention(stride, name=name)(inputs)
        if fused:
            attended = {t: CrossTaskAttention(self.key_dim, name=f"{t}_cross_attention")(
                [attended[t], *(attended[o] for o in names if o != t)]) for t in names}
        return {t: self.make_tower(t)(self.pool(attended[t], t, template)) for t in names}

    def pyramids(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, Pyramid]:
        shared = self.make_pyramid(x)
        names = [task.name for task in tasks]
        fused = bool(self.fusion) and len(names) > 1
        attended: dict[str, list] = {t: [] for t in names}
        for level, (map_, stride) in enumerate(shared):
            ratio = stride // shared.strides[level - 1] if level else 1
            for t in names:
                inputs = [map_, attended[t][-1]] if level else [map_]
                name = shared_name(f"{t}_attention_{level}") if fused else f"{t}_attention_{level}"
                attended[t].append(TaskAttention(ratio, name=name)(inputs))
        if fused:
            deepest = {t: maps[-1] for t, maps in attended.items()}
            for t in names:
                attended[t][-1] = CrossTaskAttention(self.key_dim, name=f"{t}_cross_attention")(
                    [deepest[t], *(deepest[o] for o in names if o != t)])
        return {t: Pyramid(maps, shared.strides) for t, maps in attended.items()}
