"""Explicit task routing with non-learnable primitives (Ding et al., CVPR 2023)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import Architecture, ComponentSpec, check_count, check_fraction
from mtl_tf.models.layers.group_linear import GroupLinear
from mtl_tf.models.layers.non_learnable_primitives import NonLearnablePrimitives
from mtl_tf.models.naming import shared_name
from mtl_tf.models.pyramid import Pyramid
from mtl_tf.models.trunks.base import pyramid_of


@ARCHITECTURES.register("etr_nlp")
class ExplicitTaskRouting(Architecture):
    """Per trunk block: a shared part from fixed primitives, and a task-specific part per task.

    Block ``l`` of width ``w`` (the trunk's ``units`` or ``filters``) is split by the sharing
    ratio ``gamma``: ``round(gamma * w)`` shared channels and ``w - round(gamma * w)`` channels
    per task.

    - Shared part: the non-learnable primitives block ``shared_nlp_<l>`` (fixed random
      projections and random Fourier features on tabular data; fixed random, classical and
      dilated filters, pooling, shifts and fixed noise on images), then the learnable
      group-wise linear layer ``shared_nlp_mix_<l>`` (a grouped 1x1 convolution on images,
      with the block's stride). It reads the previous shared part (the input at block 0).
    - Task part: ``<task>_branch_<l>``, a learnable Dense layer (3x3 convolution on images)
      reading the task's previous output.

    Task ``t`` sees ``concat(shared, specific_t)`` (``<task>_route_<l>``). Only the group-wise
    mixes and the branches learn; :func:`mtl_tf.models.analysis.parameter_breakdown` reports
    learnable and fixed parameter counts. Trunks: mlp and conv. Serving one task runs the
    shared chain and that task's branches only.

    Image models (trunks conv, resnet, unet: their widths, strides and activation): task
    ``t``'s pyramid is what it sees after every block (``<task>_route_<l>``, or its branch
    when ``gamma`` is 0), which its decoder or pooling reads.

    Args:
        trunk: the trunk spec; only its widths, strides and activation are used.
        tower: the tower spec.
        gamma: share of each block's channels that is shared, in [0, 1].
        primitives: primitive names (see :class:`NonLearnablePrimitives`); default all of the
            input's kind.
        groups: the most groups the group-wise linear layer may use (fewer when they do not
            divide the widths).
        seed: seed of the fixed primitive weights.

    Example (recipe):
        architecture: {name: etr_nlp, gamma: 0.5, primitives: [random_projection, random_fourier]}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp", gamma: float = 0.5,
                 primitives: Sequence[str] | None = None, groups: int = 4, seed: int = 0):
        super().__init__(trunk, tower)
        self.gamma = check_fraction(gamma, "gamma")
        self.primitives = None if primitives is None else list(primitives)
        self.groups = check_count(groups, "groups")
        self.seed = int(seed)

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        template = self.trunk_blocks()
        names = [task.name for task in tasks]
        routed = self._routes(x, names, template)
        return {t: self.make_tower(t)(self.pool(routed[t][-1], t, template)) for t in names}

    def pyramids(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, Pyramid]:
        template = self.spatial_blocks()
        routed = self._routes(x, [task.name for task in tasks], template)
        return {t: pyramid_of(maps, template.pyramid_strides) for t, maps in routed.items()}

    def _routes(self, x, names: list[str], template) -> dict[str, list[keras.KerasTensor]]:
        """What each task sees after every block: concat(shared part, its own part)."""
        shared, routed = x, {t: [x] for t in names}
        for level, (width, stride) in enumerate(zip(template.widths, template.strides)):
            shared_width = round(self.gamma * width)
            own_width = width - shared_width
            if shared_width:
                shared = self._shared(shared, level, shared_width, stride, template)
            for t in names:
                routed[t].append(self._route(t, level, shared if shared_width else None, routed[t][-1],
                                             own_width, stride, template))
        return {t: maps[1:] for t, maps in routed.items()}

    def _shared(self, x, level: int, width: int, stride: int, template):
        units = width if not template.spatial else 1
        primitives = NonLearnablePrimitives(self.primitives, units=units, seed=self.seed + level,
                                            name=shared_name(f"nlp_{level}"))(x)
        unit = x.shape[-1] if template.spatial else units
        groups = _groups(self.groups, unit, width)
        return GroupLinear(width, groups, stride, template.activation,
                           name=shared_name(f"nlp_mix_{level}"))(primitives)

    def _route(self, task: str, level: int, shared, previous, width: int, stride: int, template):
        if not width:
            return shared
        if template.spatial:
            branch = keras.layers.Conv2D(width, 3, strides=stride, padding="same",
                                         activation=template.activation, name=f"{task}_branch_{level}")
        else:
            branch = keras.layers.Dense(width, activation=template.activation, name=f"{task}_branch_{level}")
        own = branch(previous)
        if shared is None:
            return own
        return keras.layers.Concatenate(name=f"{task}_route_{level}")([shared, own])


def _groups(requested: int, unit: int, width: int) -> int:
    """The most groups, up to ``requested``, that divide both ``unit`` and ``width``."""
    common = math.gcd(unit, width)
    return max(g for g in range(1, requested + 1) if common % g == 0)
