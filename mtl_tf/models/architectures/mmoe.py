"""Multi-gate mixture of experts (Ma et al., KDD 2018)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec, check_count
from mtl_tf.models.layers.dselect_k_gate import DSelectKGate
from mtl_tf.models.layers.expert_gate import ExpertGate
from mtl_tf.models.layers.expert_mixture import ExpertMixture
from mtl_tf.models.layers.conv_block import ConvBlock
from mtl_tf.models.naming import shared_name
from mtl_tf.models.pyramid import Pyramid

GATES = ("softmax", "dselect_k")


@ARCHITECTURES.register("mmoe")
class MultiGateMixtureOfExperts(Architecture):
    """features -> ``experts`` shared trunks; per task a gate mixes them -> tower.

    Each expert is a full trunk (``shared_expert_<i>``); each task has its own gate
    (``<task>_gate``, a softmax over the experts computed from the input) and mixture
    (``<task>_mixture``). Trunks: mlp and conv (gates average image inputs over space).
    Serving one task computes every expert (all are shared) plus that task's gate and tower.

    Image models: the trunk is shared (``shared_trunk``, any image trunk) and the experts
    work on its maps: at every pyramid level ``l`` there are ``experts`` conv blocks
    (``shared_expert_<i>_level_<l>``, 3x3, ``expert_filters`` channels) over the level's
    map, and each task's gate (``<task>_gate_level_<l>``, from the map averaged over space)
    mixes them (``<task>_mixture_level_<l>``): the task's pyramid is its mixtures.

    Args:
        trunk: the trunk spec; each expert is one such trunk (per-row path).
        tower: the tower spec.
        experts: number of experts (per level on images).
        gate: ``softmax`` (MMoE) or ``dselect_k`` (sparse, differentiable top-k).
        top_k: experts each DSelect-k gate keeps (``gate: dselect_k`` only).
        expert_filters: images: channels of the conv experts; default the level's channels.

    Example (recipe):
        model:
          architecture: {name: mmoe, experts: 6}
          trunk: {name: mlp, units: [64]}
          tower: {name: mlp, units: [32]}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp", experts: int = 4,
                 gate: str = "softmax", top_k: int = 2, expert_filters: int | None = None):
        super().__init__(trunk, tower)
        self.experts = check_count(experts, "experts")
        if gate not in GATES:
            raise ValueError(f"gate must be one of {', '.join(GATES)}; received {gate!r}")
        self.gate = gate
        self.top_k = check_count(top_k, "top_k")
        self.expert_filters = None if expert_filters is None else check_count(expert_filters, "expert_filters")

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        names = [shared_name(f"expert_{i}") for i in range(self.experts)]
        outputs = [self.make_trunk(name)(x) for name in names]
        representations = {}
        for task in tasks:
            weights = make_gate(self.gate, names, f"{task.name}_gate", task=task.name, top_k=self.top_k)(x)
            mixed = ExpertMixture(name=f"{task.name}_mixture")([weights, *outputs])
            representations[task.name] = self.make_tower(task.name)(mixed)
        return representations

    def pyramids(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, Pyramid]:
        shared = self.make_pyramid(x)
        mixtures: dict[str, list] = {task.name: [] for task in tasks}
        for level, (map_, _) in enumerate(shared):
            names = [shared_name(f"expert_{i}_level_{level}") for i in range(self.experts)]
            width = self.expert_filters or map_.shape[-1]
            outputs = [conv_expert(width, name, self.trunk)(map_) for name in names]
            for t in mixtures:
                weights = make_gate(self.gate, names, f"{t}_gate_level_{level}", level, t, self.top_k)(map_)
                mixtures[t].append(ExpertMixture(name=f"{t}_mixture_level_{level}")([weights, *outputs]))
        return {t: Pyramid(maps, shared.strides) for t, maps in mixtures.items()}


def conv_expert(width: int, name: str, trunk: ComponentSpec) -> ConvBlock:
    """An expert over a feature map: a 3x3 conv block with the trunk's activation."""
    activation = trunk.get("activation", "relu") if isinstance(trunk, Mapping) else "relu"
    return ConvBlock(width, 3, activation=activation, name=name)


def make_gate(kind: str, experts: Sequence[str], name: str, level: int = 0, task: str | None = None,
              top_k: int = 2) -> ExpertGate:
    """A softmax or DSelect-k gate over ``experts``, named ``name``, deciding ``task``'s mixture."""
    if kind == "dselect_k":
        return DSelectKGate(list(experts), k=min(top_k, len(experts)), level=level, task=task, name=name)
    return ExpertGate(list(experts), level=level, task=task, name=name)
