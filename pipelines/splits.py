"""The deterministic train/validation/test assignment by a hashed key.

The key (a customer id, say, or the row's content when the recipe names no key column) is
hashed with SHA-256 together with the seed, so the same key lands in the same split on every
run, on every worker, in any order and on any Python version (Python's own ``hash()`` of a
string changes between processes). With ``data.split.by_file`` each file has its own
fractions (:func:`file_fractions`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from typing import Mapping, Sequence

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
    """The recipe's splits with a positive fraction, in the order train, validation, test.

    With ``by_file`` these are the splits some file sends rows to, with the largest fraction
    any file gives them.
    """
    rules = [rule.fractions() for rule in split.by_file] if split.by_file else [split.fractions()]
    return {name: max(rule[name] for rule in rules) for name in split.split_names()}


def matches(pattern: str, path: str) -> bool:
    """Whether a ``by_file`` glob matches a file, by its name or its full path."""
    return fnmatch.fnmatchcase(os.path.basename(path.rstrip("/")), pattern) or fnmatch.fnmatchcase(path, pattern)


def file_fractions(split: Split, path: str) -> dict[str, float]:
    """The split fractions of the rows of ``path``: the first matching ``by_file`` rule's, else
    the top-level ones.

    Raises:
        ValueError: ``by_file`` is given and no rule matches the file.
    """
    if not split.by_file:
        return split.fractions()
    for rule in split.by_file:
        if matches(rule.files, path):
            return rule.fractions()
    raise ValueError(f"data.split.by_file: no rule matches the input file {path!r}; "
                     f"rules: {', '.join(repr(rule.files) for rule in split.by_file)}")


def check_split_files(split: Split, files: Sequence[str]) -> None:
    """Fails before any worker starts if ``by_file`` leaves a file out or has a rule with no file.

    Raises:
        ValueError: one line per file without a rule and per rule without a file.
    """
    if not split.by_file:
        return
    problems = []
    for path in files:
        try:
            file_fractions(split, path)
        except ValueError as err:
            problems.append(str(err))
    for i, rule in enumerate(split.by_file):
        if not any(matches(rule.files, path) for path in files):
            names = ", ".join(os.path.basename(path) for path in files)
            problems.append(f"data.split.by_file.{i}.files: {rule.files!r} matches none of the input files; "
                            f"received files: {names}")
    if problems:
        raise ValueError("\n".join(problems))
