"""The per-epoch relation files of a run: conflict.json and affinity.json.

Both hold ``{"kind", "tasks", "definition", "epochs": [{"epoch", "matrix", ...}]}`` with
``matrix[i][j]`` in task order (NaN written as null). For affinity, row i is the task that
steps and column j the task whose loss is read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mtl_tf.analysis.matrices import nanmean_matrices

DEFINITIONS = {
    "conflict": "cosine similarity of the task gradients on the shared parameters, mean over probe batches",
    "affinity": "Z[i][j] = 1 - L_j(shared - lr * g_i) / L_j(shared) on the same batch (Fifty et al. 2021); "
                "row i steps, column j is read; mean over probe batches",
}


def to_json_matrix(matrix: np.ndarray) -> list[list[float | None]]:
    """A matrix as nested lists, NaN as None (JSON has no NaN)."""
    return [[None if not math.isfinite(float(v)) else float(v) for v in row] for row in np.asarray(matrix)]


def from_json_matrix(rows: Sequence[Sequence[float | None]]) -> np.ndarray:
    """The inverse of :func:`to_json_matrix`."""
    return np.array([[np.nan if v is None else float(v) for v in row] for row in rows], dtype=np.float64)


def new_record(kind: str, tasks: Sequence[str], **extra: Any) -> dict[str, Any]:
    """An empty relation file of ``kind`` (conflict or affinity)."""
    if kind not in DEFINITIONS:
        raise ValueError(f"kind must be one of {', '.join(DEFINITIONS)}; received {kind!r}")
    return {"kind": kind, "tasks": list(tasks), "definition": DEFINITIONS[kind], **extra, "epochs": []}


def add_epoch(record: dict[str, Any], epoch: int, matrix: np.ndarray, **extra: Any) -> None:
    """Adds (or, after a resume, replaces from) one epoch's matrix."""
    record["epochs"] = [e for e in record["epochs"] if e["epoch"] < epoch]
    record["epochs"].append({"epoch": int(epoch), "matrix": to_json_matrix(matrix), **extra})


def write_record(record: Mapping[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def read_record(path: str | Path) -> dict[str, Any]:
    """Reads a relation file, refusing anything that is not one."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(record, dict) or "tasks" not in record or "epochs" not in record:
        raise ValueError(f"{path} is not a conflict/affinity file: it needs 'tasks' and 'epochs'")
    return record


def select_matrix(record: Mapping[str, Any], epoch: int | None = None) -> tuple[np.ndarray, str]:
    """One epoch's matrix, or the mean over every recorded epoch; with a description.

    Args:
        record: a relation file's content.
        epoch: the 1-based epoch, or None for the mean over epochs (NaN ignored).
    """
    epochs = record["epochs"]
    if not epochs:
        raise ValueError(f"the {record.get('kind', 'relation')} file holds no epoch yet")
    if epoch is None:
        matrix = nanmean_matrices([from_json_matrix(e["matrix"]) for e in epochs])
        numbers = [e["epoch"] for e in epochs]
        return matrix, f"mean over {len(numbers)} epoch(s) {numbers[0]}-{numbers[-1]}"
    for entry in epochs:
        if entry["epoch"] == epoch:
            return from_json_matrix(entry["matrix"]), f"epoch {epoch}"
    known = ", ".join(str(e["epoch"]) for e in epochs)
    raise ValueError(f"epoch {epoch} was not measured; measured epochs: {known}")


def matrix_metrics(prefix: str, tasks: Sequence[str], matrix: np.ndarray, symmetric: bool) -> dict[str, float]:
    """``{"<prefix>/<task_i>__<task_j>": value}``: the upper triangle when symmetric, else every
    entry; NaN entries are left out (MLflow would store them but plots break on them)."""
    values = {}
    for i, a in enumerate(tasks):
        for j, b in enumerate(tasks):
            if (symmetric and j <= i) or not math.isfinite(float(matrix[i, j])):
                continue
            values[f"{prefix}/{a}__{b}"] = float(matrix[i, j])
    return values
