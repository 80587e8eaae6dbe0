"""Progressive layered extraction (Tang et al., RecSys 2020)."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec, check_count
from mtl_tf.models.architectures.mmoe import GATES, conv_expert, make_gate
from mtl_tf.models.layers.expert_mixture import ExpertMixture
from mtl_tf.models.naming import SHARED_PREFIX, shared_name
from mtl_tf.models.pyramid import Pyramid


@ARCHITECTURES.register("ple")
class ProgressiveLayeredExtraction(Architecture):
    """Stacked customised gate control (CGC) levels, one per trunk block.

    At level ``l`` each task has ``task_experts`` experts reading the task's previous output,
    and the level has ``shared_experts`` experts (``shared_expert_<k>_level_<l>``) reading the
    shared previous output. Each task's gate mixes its own and the shared experts. At every
    level but the last, a shared gate (``shared_gate_level_<l>``) mixes *all* experts of the
    level into the next level's shared input, which is how tasks exchange information; the
    last level has no shared gate because nothing reads its output.

    An expert at level ``l`` is block ``l`` of the trunk (``units: [64, 32]`` gives two
    levels with 64- and 32-wide experts). Trunks: mlp and conv.

    Names follow the gradients: a task's experts below the last level feed the shared gate,
    so every task trains them; they are named ``shared_<task>_expert_<k>_level_<l>`` (and
    the task gates that feed them ``shared_<task>_gate_level_<l>``), which the training
    loop treats as shared. The last level's experts and gates, ``<task>_expert_<k>_level_<l>``
    and ``<task>_gate_level_<l>``, and the towers are task-specific.

    Serving one task computes its own experts and gates, the shared experts, and (through
    the shared gates) every task's experts below the last level; other tasks' last-level
    experts, gates and towers are left out.

    Image models: the trunk is shared (``shared_trunk``, any image trunk) and the levels are
    its pyramid levels; experts are 3x3 conv blocks (``expert_filters`` channels). Level 0's
    experts read the trunk's finest map; at level ``l > 0`` each path (a task's, and the
    shared one) reads the trunk's map of that level concatenated (``<owner>_inputs_level_<l>``)
    with its own output of level ``l - 1`` average-pooled to that size
    (``<owner>_downsample_level_<l>``), so extraction progresses up the pyramid. Gates read
    their path's input averaged over space. Task ``t``'s pyramid is its gate's mixture at
    every level. The names follow the gradients as above.

    Args:
        trunk: the trunk spec; its blocks are the levels.
        tower: the tower spec.
        task_experts: experts per task and level.
        shared_experts: shared experts per level.
        gate: ``softmax`` or ``dselect_k``.
        top_k: experts each DSelect-k gate keeps.
        expert_filters: images: channels of the conv experts; default the level's channels.

    Example (recipe):
        model:
          architecture: {name: ple, task_experts: 2, shared_experts: 2}
          trunk: {name: mlp, units: [64, 32]}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp", task_experts: int = 1,
                 shared_experts: int = 1, gate: str = "softmax", top_k: int = 2,
                 expert_filters: int | None = None):
        super().__init__(trunk, tower)
        self.expert_filters = None if expert_filters is None else check_count(expert_filters, "expert_filters")
        self.task_experts = check_count(task_experts, "task_experts")
        self.shared_experts = check_count(shared_experts, "shared_experts")
        if gate not in GATES:
            raise ValueError(f"gate must be one of {', '.join(GATES)}; received {gate!r}")
        self.gate, self.top_k = gate, check_count(top_k, "top_k")

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        template = self.trunk_blocks()
        levels = len(template.widths)
        shared_in, task_in = x, {task.name: x for task in tasks}
        for level in range(levels):
            shared = self._experts(template, level, shared_name("expert"), self.shared_experts, shared_in)
            own = {t: self._experts(template, level, _owned(t, levels, level, 1) + "_expert",
                                    self.task_experts, task_in[t]) for t in task_in}
            next_in = {t: self._mix(_owned(t, levels, level, 2), level, {**own[t], **shared}, task_in[t], t)
                       for t in task_in}
            if level < levels - 1:
                every = {name: out for experts in own.values() for name, out in experts.items()}
                shared_in = self._mix(SHARED_PREFIX, level, {**every, **shared}, shared_in, None)
            task_in = next_in
        return {t: self.make_tower(t)(self.pool(task_in[t], t, template)) for t in task_in}

    def pyramids(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, Pyramid]:
        trunk = self.make_pyramid(x)
        levels, names = len(trunk), [task.name for task in tasks]
        shared_out, task_out = None, {t: None for t in names}
        pyramids: dict[str, list] = {t: [] for t in names}
        for level, (map_, stride) in enumerate(trunk):
            ratio = stride // trunk.strides[level - 1] if level else 1
            shared_in = self._join(SHARED_PREFIX, level, map_, shared_out, ratio)
            task_in = {t: self._join(_owned(t, levels, level, 1), level, map_, task_out[t], ratio) for t in names}
            width = self.expert_filters or map_.shape[-1]
            shared = self._conv_experts(level, shared_name("expert"), width, self.shared_experts, shared_in)
            own = {t: self._conv_experts(level, _owned(t, levels, level, 1) + "_expert", width, self.task_experts,
                                         task_in[t]) for t in names}
            task_out = {t: self._mix(_owned(t, levels, level, 2), level, {**own[t], **shared}, task_in[t], t)
                        for t in names}
            if level < levels - 1:
                every = {name: out for experts in own.values() for name, out in experts.items()}
                shared_out = self._mix(SHARED_PREFIX, level, {**every, **shared}, shared_in, None)
            for t in names:
                pyramids[t].append(task_out[t])
        return {t: Pyramid(maps, trunk.strides) for t, maps in pyramids.items()}

    def _join(self, owner: str, level: int, map_, previous, ratio: int):
        """The trunk's map at ``level``, with the path's previous output pooled to its size."""
        if previous is None:
            return map_
        if ratio > 1:
            previous = keras.layers.AveragePooling2D(ratio, name=f"{owner}_downsample_level_{level}")(previous)
        return keras.layers.Concatenate(name=f"{owner}_inputs_level_{level}")([map_, previous])

    def _conv_experts(self, level: int, prefix: str, width: int, count: int, x) -> dict[str, keras.KerasTensor]:
        names = [f"{prefix}_{k}_level_{level}" for k in range(count)]
        return {name: conv_expert(width, name, self.trunk)(x) for name in names}

    def _experts(self, template, level: int, prefix: str, count: int, x) -> dict[str, keras.KerasTensor]:
        names = [f"{prefix}_{k}_level_{level}" for k in range(count)]
        return {name: template.block(level, name)(x) for name in names}

    def _mix(self, prefix: str, level: int, experts: dict[str, keras.KerasTensor], gate_input, task):
        gate = make_gate(self.gate, list(experts), f"{prefix}_gate_level_{level}", level, task, self.top_k)
        weights = gate(gate_input)
        return ExpertMixture(name=f"{prefix}_mixture_level_{level}")([weights, *experts.values()])


def _owned(task: str, levels: int, level: int, depth: int) -> str:
    """``task`` when only that task trains layers ``depth`` levels below the top, else shared.

    A task's experts at level ``l`` reach the shared gate unless ``l`` is the last level
    (depth 1); its gate at level ``l`` feeds its experts at ``l + 1`` (depth 2).
    """
    return task if level >= levels - depth else shared_name(task)
