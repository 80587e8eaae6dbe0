"""MMoE with DSelect-k gates (Hazimeh et al., NeurIPS 2021)."""

from __future__ import annotations

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.architectures.base import ComponentSpec
from mtl_tf.models.architectures.mmoe import MultiGateMixtureOfExperts


@ARCHITECTURES.register("dselect_k")
class DSelectK(MultiGateMixtureOfExperts):
    """:class:`MultiGateMixtureOfExperts` whose gates learn to keep ``top_k`` experts.

    The same as ``{name: mmoe, gate: dselect_k}``. Trunks: mlp and conv.

    Args:
        trunk: the trunk spec; each expert is one such trunk.
        tower: the tower spec.
        experts: number of experts.
        top_k: experts each task's gate keeps.
        expert_filters: images: channels of the conv experts (see mmoe).

    Example (recipe):
        architecture: {name: dselect_k, experts: 8, top_k: 2}
    """

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp", experts: int = 4,
                 top_k: int = 2, expert_filters: int | None = None):
        super().__init__(trunk, tower, experts=experts, gate="dselect_k", top_k=top_k,
                         expert_filters=expert_filters)
