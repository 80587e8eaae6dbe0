"""Which tasks to train together: a partition of the tasks into k groups from their affinity.

The criterion is Fifty et al.'s (2021): a task is served by the group it is in, and it
gains the mean affinity the other members of that group have onto it. The score of a
partition is the sum of these gains over all tasks::

    score = sum_groups sum_{j in G, |G| > 1} mean_{i in G, i != j} Z[i, j]

A task alone in its group gains 0 (no other task steps for it), so a negative affinity is
worth avoiding and a positive one worth sharing. ``Z[i, j]`` is the affinity of task i onto
task j (see :mod:`mtl_tf.analysis.matrices`); NaN entries (never measured) count as 0.

Search: every partition into exactly k non-empty groups is scored while there are at most
``exhaustive_limit`` of them (Stirling number S(T, k); 10 tasks into 3 groups is 9,330).
Beyond that a greedy search runs: start from singletons, merge the pair of groups that
raises the score most until k remain, then move single tasks between groups while that
raises the score. The result says which search ran. Ties (scores within 1e-9) go to the
first partition in enumeration order, groups ordered by their first task in task order,
and the result lists how many partitions tied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

EXHAUSTIVE_LIMIT = 200_000
TIE_TOLERANCE = 1e-9


@dataclass
class Grouping:
    """A recommended partition of the tasks.

    Attributes:
        groups: task names per group, groups ordered by their first task in task order.
        score: the total within-group affinity (see the module docstring).
        per_task: each task's gain from its group.
        exhaustive: True when every partition into k groups was scored.
        ties: how many other partitions reached the same score (exhaustive search only).
        candidates: the number of partitions scored.
        alternatives: up to three of the tied partitions.
    """

    groups: list[list[str]]
    score: float
    per_task: dict[str, float]
    exhaustive: bool
    ties: int = 0
    candidates: int = 0
    alternatives: list[list[list[str]]] = field(default_factory=list)

    def describe(self) -> str:
        """One line per group, then how the result was found."""
        lines = [f"group {n + 1}: {', '.join(group)}" for n, group in enumerate(self.groups)]
        search = (f"exhaustive over {self.candidates} partitions" if self.exhaustive
                  else f"greedy merge + single-task moves ({self.candidates} partitions scored; "
                       "too many for an exhaustive search)")
        lines.append(f"total within-group affinity {self.score:.6g} ({search})")
        if self.ties:
            shown = "; ".join(" | ".join(", ".join(g) for g in alt) for alt in self.alternatives)
            lines.append(f"{self.ties} other partition(s) tie with this score, e.g. {shown}")
        return "\n".join(lines)


def group_score(affinity: np.ndarray, labels: Sequence[int]) -> tuple[float, np.ndarray]:
    """The score of one partition and each task's gain.

    Args:
        affinity: ``(T, T)``; ``affinity[i, j]`` is the affinity of task i onto task j.
        labels: the group index of each task.

    Returns:
        ``(score, gains)`` with gains of shape ``(T,)``.
    """
    z = np.nan_to_num(np.asarray(affinity, dtype=np.float64), nan=0.0)
    labels = np.asarray(labels)
    gains = np.zeros(len(labels))
    for j in range(len(labels)):
        mates = np.flatnonzero((labels == labels[j]) & (np.arange(len(labels)) != j))
        if mates.size:
            gains[j] = z[mates, j].mean()
    return float(gains.sum()), gains


def recommend_groups(affinity: np.ndarray, task_names: Sequence[str], k: int,
                     exhaustive_limit: int = EXHAUSTIVE_LIMIT) -> Grouping:
    """The partition of the tasks into ``k`` groups with the highest within-group affinity.

    Args:
        affinity: ``(T, T)`` matrix, row = the task that steps, column = the task helped.
        task_names: the T task names, in matrix order.
        k: the number of groups, 1 <= k <= T.
        exhaustive_limit: the most partitions scored one by one; above it a greedy search runs.

    Returns:
        A :class:`Grouping`.

    Example:
        >>> recommend_groups(z, ["a", "b", "c"], k=2).groups
        [['a', 'b'], ['c']]
    """
    names = list(task_names)
    z = np.asarray(affinity, dtype=np.float64)
    if z.shape != (len(names), len(names)):
        raise ValueError(f"affinity must be ({len(names)}, {len(names)}) for tasks {', '.join(names)}; "
                         f"received shape {z.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(names):
        raise ValueError(f"groups must be an integer from 1 to the number of tasks ({len(names)}); received {k!r}")
    if stirling2(len(names), int(k)) <= exhaustive_limit:
        return _exhaustive(z, names, int(k))
    return _greedy(z, names, int(k))


def stirling2(n: int, k: int) -> int:
    """The number of partitions of n items into k non-empty groups."""
    row = [1] + [0] * k
    for i in range(1, n + 1):
        for j in range(min(i, k), 0, -1):
            row[j] = j * row[j] + row[j - 1]
        row[0] = 0
    return row[k]


def partitions(n: int, k: int) -> Iterator[list[int]]:
    """Every partition of n items into exactly k groups, as restricted growth strings.

    Item 0 is in group 0 and each item joins an existing group or opens the next one, so each
    partition appears once and groups are numbered by their first item.
    """
    labels = [0] * n

    def fill(i: int, opened: int) -> Iterator[list[int]]:
        if n - i < k - opened:
            return
        if i == n:
            if opened == k:
                yield list(labels)
            return
        for group in range(min(opened + 1, k)):
            labels[i] = group
            yield from fill(i + 1, max(opened, group + 1))

    if n == 0:
        return iter(())
    return fill(1, 1)


def _exhaustive(z: np.ndarray, names: list[str], k: int) -> Grouping:
    best, best_score, tied, count = None, -np.inf, [], 0
    for labels in partitions(len(names), k):
        count += 1
        score, _ = group_score(z, labels)
        if score > best_score + TIE_TOLERANCE:
            best, best_score, tied = labels, score, []
        elif abs(score - best_score) <= TIE_TOLERANCE:
            tied.append(labels)
    result = _grouping(z, names, best, exhaustive=True, candidates=count)
    result.ties = len(tied)
    result.alternatives = [_groups(names, labels) for labels in tied[:3]]
    return result


def _greedy(z: np.ndarray, names: list[str], k: int) -> Grouping:
    labels = list(range(len(names)))
    scored = 0
    while len(set(labels)) > k:
        options = []
        present = sorted(set(labels))
        for a_index, a in enumerate(present):
            for b in present[a_index + 1:]:
                merged = [a if g == b else g for g in labels]
                options.append((group_score(z, merged)[0], merged))
        scored += len(options)
        labels = max(options, key=lambda item: item[0])[1]
    labels, moves = _improve(z, labels, k)
    return _grouping(z, names, _renumber(labels), exhaustive=False, candidates=scored + moves)


def _improve(z: np.ndarray, labels: list[int], k: int) -> tuple[list[int], int]:
    """Moves one task at a time to another group while the score rises (groups stay non-empty)."""
    scored, improved = 0, True
    current = group_score(z, labels)[0]
    while improved:
        improved = False
        for task in range(len(labels)):
            if labels.count(labels[task]) == 1:
                continue
            for group in sorted(set(labels)):
                trial = list(labels)
                trial[task] = group
                score = group_score(z, trial)[0]
                scored += 1
                if score > current + TIE_TOLERANCE and len(set(trial)) == k:
                    labels, current, improved = trial, score, True
    return labels, scored


def _renumber(labels: Sequence[int]) -> list[int]:
    order: dict[int, int] = {}
    return [order.setdefault(g, len(order)) for g in labels]


def _groups(names: list[str], labels: Sequence[int]) -> list[list[str]]:
    groups: dict[int, list[str]] = {}
    for name, group in zip(names, labels):
        groups.setdefault(group, []).append(name)
    return [groups[g] for g in sorted(groups)]


def _grouping(z: np.ndarray, names: list[str], labels: Sequence[int], exhaustive: bool,
              candidates: int) -> Grouping:
    score, gains = group_score(z, labels)
    return Grouping(groups=_groups(names, labels), score=score,
                    per_task={name: float(g) for name, g in zip(names, gains)},
                    exhaustive=exhaustive, candidates=candidates)
