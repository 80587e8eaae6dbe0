"""Closed forms behind the task-relationship matrices.

Both matrices are ``(T, T)`` NumPy arrays in task order:

- conflict: ``C[i, j] = cos(g_i, g_j)``, the cosine similarity of task i's and task j's
  gradients on the shared parameters (1 on the diagonal; negative off the diagonal where the
  tasks pull the shared parameters apart);
- affinity (Fifty et al., 2021, "Efficiently Identifying Task Groupings"):
  ``Z[i, j] = 1 - L_j(theta_s - lr * g_i, theta_j) / L_j(theta)``, how much a step on task i
  alone lowers task j's loss on the same batch (row = the task that steps, column = the task
  whose loss is read; positive helps, negative hurts).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def cosine_from_gram(gram: np.ndarray) -> np.ndarray:
    """Cosine similarities from a Gram matrix ``G G^T`` of task gradients.

    Args:
        gram: ``(T, T)`` inner products of the task gradients.

    Returns:
        ``(T, T)`` cosines; NaN in the rows and columns of a task whose gradient is zero
        (no label in the batch: its direction is undefined).
    """
    gram = _square("gram", gram)
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = gram / np.outer(norms, norms)
    cosine[np.outer(norms, norms) == 0] = np.nan
    return np.clip(cosine, -1.0, 1.0)


def cosine_matrix(gradients: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of flattened task gradients.

    Args:
        gradients: ``(T, P)``: row t is task t's gradient on the P shared parameters.

    Returns:
        ``(T, T)`` cosines (see :func:`cosine_from_gram`).
    """
    gradients = np.asarray(gradients, dtype=np.float64)
    if gradients.ndim != 2:
        raise ValueError(f"gradients must be a (tasks, parameters) matrix; received shape {gradients.shape}")
    return cosine_from_gram(gradients @ gradients.T)


def affinity_from_losses(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The lookahead affinity ``Z[i, j] = 1 - after[i, j] / before[j]``.

    Args:
        before: ``(T,)`` task losses at the current parameters.
        after: ``(T, T)``: ``after[i, j]`` is task j's loss after a step on task i's gradient.

    Returns:
        ``(T, T)`` affinities; NaN in the column of a task whose loss before is 0 (no label
        in the batch, or a perfect fit: nothing to lower).
    """
    before = np.asarray(before, dtype=np.float64)
    after = _square("after", after)
    if before.shape != (after.shape[0],):
        raise ValueError(f"before must hold one loss per task, shape ({after.shape[0]},); "
                         f"received shape {before.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = after / before[None, :]
    ratio[:, before == 0] = np.nan
    return 1.0 - ratio


def nanmean_matrices(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """The entrywise mean of matrices, ignoring NaN entries (NaN where every one is NaN)."""
    if not matrices:
        raise ValueError("nanmean_matrices needs at least one matrix; received none")
    stacked = np.stack([np.asarray(m, dtype=np.float64) for m in matrices])
    counts = np.sum(~np.isnan(stacked), axis=0)
    sums = np.nansum(stacked, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _square(name: str, matrix: np.ndarray) -> np.ndarray:
    matrix = np.array(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square (tasks, tasks) matrix; received shape {matrix.shape}")
    return matrix
