"""Figures of the relation matrices: a heatmap of one epoch beside each pair over epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mtl_tf.analysis.records import from_json_matrix

TITLES = {"conflict": "gradient cosine (conflict)", "affinity": "inter-task affinity (row steps, column read)"}


def plot_matrix(matrix: np.ndarray, tasks: Sequence[str], path: str | Path, title: str = "") -> Path:
    """A heatmap of one ``(T, T)`` matrix with its values written in the cells, as a PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(tasks), 1.2 + 1.0 * len(tasks)))
    _heatmap(ax, np.asarray(matrix, dtype=np.float64), tasks, title)
    return _save(fig, path)


def plot_record(record: Mapping[str, Any], path: str | Path) -> Path:
    """The last epoch's heatmap and each task pair per epoch, as one PNG."""
    plt = _pyplot()
    tasks, epochs, kind = record["tasks"], record["epochs"], record.get("kind", "conflict")
    fig, axes = plt.subplots(1, 2, figsize=(5.0 + 1.1 * len(tasks) + 5.0, 1.5 + 1.0 * len(tasks) + 1.0))
    last = epochs[-1]
    _heatmap(axes[0], from_json_matrix(last["matrix"]), tasks, f"{TITLES.get(kind, kind)}, epoch {last['epoch']}")
    numbers = [e["epoch"] for e in epochs]
    matrices = [from_json_matrix(e["matrix"]) for e in epochs]
    for i, a in enumerate(tasks):
        for j, b in enumerate(tasks):
            if (kind == "conflict" and j <= i) or (kind != "conflict" and i == j):
                continue
            label = f"{a} / {b}" if kind == "conflict" else f"{a} -> {b}"
            axes[1].plot(numbers, [m[i, j] for m in matrices], marker="o", label=label)
    axes[1].axhline(0.0, color="grey", linewidth=0.8)
    axes[1].set(title=f"{kind} per epoch", xlabel="epoch")
    axes[1].grid(alpha=0.3)
    if axes[1].lines[1:]:
        axes[1].legend(fontsize=7)
    return _save(fig, path)


def _heatmap(ax: Any, matrix: np.ndarray, tasks: Sequence[str], title: str) -> None:
    finite = matrix[np.isfinite(matrix)]
    bound = float(np.max(np.abs(finite))) if finite.size else 1.0
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="RdBu", vmin=-bound or -1.0, vmax=bound or 1.0)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(tasks)), tasks, fontsize=8)
    for i in range(len(tasks)):
        for j in range(len(tasks)):
            text = "n/a" if not np.isfinite(matrix[i, j]) else f"{matrix[i, j]:.3g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_title(title, fontsize=9)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
