"""Multi-task attention network (Liu et al., CVPR 2019) with cross-task attention fusion."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec, check_count
from mtl_tf.models.layers.cross_task_attention import CrossTaskAttention
from mtl_tf.models.layers.task_attention import TaskAttention
from mtl_tf.models.naming import shared_name


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

    Args:
        trunk: the shared trunk spec, split into blocks.
        tower: the tower spec.
        fusion: add the cross-task attention fusion block.
        key_dim: width of the fusion block's queries and keys.

    Example (recipe):
        architecture: {name: mtan, fusion: true, key_dim: 16}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp", fusion: bool = True,
                 key_dim: int = 16):
        super().__init__(trunk, tower)
        self.fusion = bool(fusion)
        self.key_dim = check_count(key_dim, "key_dim")

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        template = self.trunk_blocks()
        names = [task.name for task in tasks]
        fused = self.fusion and len(names) > 1
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
