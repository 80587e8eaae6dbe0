"""The layer naming convention that tells shared from task-specific variables.

A layer that belongs to one task is named ``"<task>"`` or ``"<task>_..."`` (its tower, its
gate, its head); a shared layer is named ``"shared_..."`` (preprocessing, trunk, experts).
Task names may therefore not be ``"shared"`` nor start with ``"shared_"``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

SHARED_PREFIX = "shared"


def shared_name(suffix: str) -> str:
    """The name of a shared layer: ``"shared_<suffix>"``."""
    return f"{SHARED_PREFIX}_{suffix}"


def layer_owner(layer_name: str, task_names: Iterable[str]) -> str | None:
    """The task a layer belongs to, or None for a shared layer.

    The longest matching task name wins, so with tasks "risk" and "risk_high" the layer
    "risk_high_tower" belongs to "risk_high".
    """
    matches = [t for t in task_names if layer_name == t or layer_name.startswith(f"{t}_")]
    return max(matches, key=len) if matches else None


def check_task_names(task_names: Sequence[str]) -> None:
    """Refuses task names that would claim shared layers."""
    for name in task_names:
        if name == SHARED_PREFIX or name.startswith(f"{SHARED_PREFIX}_"):
            raise ValueError(f"task name {name!r} is reserved: layers named '{SHARED_PREFIX}_...' are "
                             f"the model's shared layers; rename the task, e.g. 'task_{name}'")
