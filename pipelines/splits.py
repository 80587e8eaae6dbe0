"""The deterministic train/validation/test assignment by a hashed key.

The key (a customer id, say) is hashed with SHA-256 together with the seed, so the same key
lands in the same split on every run, on every worker, in any order and on any Python
version (Python's own ``hash()`` of a string changes between processes).
"""

from __future__ import annotations

import hashlib
from typing import Mapping

from mtl_tf.recipe.schema import Split


def split_fraction(key: str, seed: int = 0) -> float:
    """A uniform number in [0, 1) that depends only on ``key`` and ``seed``."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def assign_split(key: str, fractions: Mapping[str, float], seed: int = 0) -> str:
    """The split of ``key``: fractions are cumulative in order; splits with 0 are never chosen.

    Args:
        key: the split key value of a row.
        fractions: split name -> fraction (summing to 1).
        seed: mixed into the hash; another seed gives another, equally deterministic, split.

    Returns:
        The split name.
    """
    point = split_fraction(key, seed)
    cumulative = 0.0
    last = None
    for name, fraction in fractions.items():
        if fraction <= 0:
            continue
        cumulative += fraction
        last = name
        if point < cumulative:
            return name
    if last is None:
        raise ValueError(f"split fractions must have a positive entry; received {dict(fractions)!r}")
    return last


def active_splits(split: Split) -> dict[str, float]:
    """The recipe's splits with a positive fraction, in the order train, validation, test."""
    return {name: fraction for name, fraction in split.fractions().items() if fraction > 0}
