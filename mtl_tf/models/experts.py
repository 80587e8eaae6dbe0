"""How mixture-of-experts models use their experts: mean gate weights, and a heatmap of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import keras
import numpy as np

from mtl_tf.models.layers.expert_gate import ExpertGate
from mtl_tf.models.naming import SHARED_PREFIX, layer_owner

Utilisation = dict[str, list[float] | list[list[float]]]


def gates(model: keras.Model) -> list[ExpertGate]:
    """The model's gates (MMoE, DSelect-k, PLE), in layer order."""
    return [layer for layer in model.layers if isinstance(layer, ExpertGate)]


def expert_columns(model: keras.Model) -> list[list[str]]:
    """Per level, the expert names in column order: task experts by task, then shared ones."""
    levels: dict[int, list[str]] = {}
    for gate in gates(model):
        names = levels.setdefault(gate.level, [])
        names.extend(name for name in gate.experts if name not in names)
    shared = f"{SHARED_PREFIX}_expert_"
    return [sorted(names, key=lambda n: (n.startswith(shared), names.index(n)))
            for _, names in sorted(levels.items())]


def expert_utilisation(model: keras.Model, features_batches: Iterable[Any]) -> Utilisation:
    """The mean weight each task's gate gives each expert, over every row of the batches.

    Args:
        model: a model with gates (mmoe, dselect_k, ple).
        features_batches: feature dicts (what the model takes), or ``(features, ...)``
            tuples as the training datasets yield.

    Returns:
        Single-level models (mmoe, dselect_k): ``{task: [mean weight per expert]}`` in
        ``expert_columns(model)[0]`` order. PLE: ``{task: [[per expert] for each level]}``,
        each level over every expert of the level (0 for experts the gate does not see), plus
        ``"shared"`` for the shared gates (every level but the last).

    Raises:
        ValueError: the model has no gates, or the batches are empty.
    """
    found = gates(model)
    if not found:
        raise ValueError(f"model '{model.name}' has no expert gates; expert utilisation applies to "
                         "mmoe, dselect_k and ple architectures")
    probe = keras.Model(model.input, [gate.output for gate in found])
    sums, rows = [np.zeros(len(g.experts)) for g in found], 0
    for batch in features_batches:
        features = batch[0] if isinstance(batch, tuple) else batch
        outputs = probe(features, training=False)
        outputs = [keras.ops.convert_to_numpy(out)
                   for out in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        for i, out in enumerate(outputs):
            sums[i] += out.sum(axis=0)
        rows += outputs[0].shape[0]
    if rows == 0:
        raise ValueError("expert_utilisation received no rows; pass at least one batch of features")
    return _arrange(model, found, [s / rows for s in sums])


def _arrange(model: keras.Model, found: Sequence[ExpertGate], means: Sequence[np.ndarray]) -> Utilisation:
    columns = expert_columns(model)
    tasks = list(model.output) if isinstance(model.output, dict) else []
    table: dict[str, dict[int, list[float]]] = {}
    for gate, mean in zip(found, means):
        owner = gate.task or layer_owner(gate.name, tasks) or SHARED_PREFIX
        row = np.zeros(len(columns[gate.level]))
        for name, value in zip(gate.experts, mean):
            row[columns[gate.level].index(name)] = value
        table.setdefault(owner, {})[gate.level] = [float(v) for v in row]
    if len(columns) == 1:
        return {owner: levels[0] for owner, levels in table.items()}
    return {owner: [levels[level] for level in sorted(levels)] for owner, levels in table.items()}


def utilisation_heatmap(matrix: Mapping[str, Sequence[Any]] | np.ndarray, path: str | Path,
                        columns: Sequence[Sequence[str]] | Sequence[str] | None = None,
                        title: str = "expert utilisation") -> Path:
    """Writes a PNG heatmap of gate weights (rows: tasks, columns: experts).

    Args:
        matrix: what :func:`expert_utilisation` returns (one panel per level for PLE), or a
            2-D array.
        path: the PNG to write.
        columns: expert names per column (a list per level for PLE), e.g. from
            :func:`expert_columns`; default "expert i".
        title: the figure title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(matrix)
    width = max(4.0, 1.2 + 0.9 * max(values.shape[1] for _, values in panels))
    height = 1.5 + 0.5 * max(len(rows) for rows, _ in panels)
    figure, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(width * len(panels), height))
    for level, (ax, (rows, values)) in enumerate(zip(axes[0], panels)):
        names = _column_names(columns, level, values.shape[1])
        image = ax.imshow(values, vmin=0.0, vmax=max(1e-9, float(values.max())), cmap="viridis",
                          aspect="auto")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white")
        ax.set_title(f"level {level}" if len(panels) > 1 else title, fontsize=9)
        figure.colorbar(image, ax=ax)
    if len(panels) > 1:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _panels(matrix) -> list[tuple[list[str], np.ndarray]]:
    if not isinstance(matrix, Mapping):
        values = np.asarray(matrix, dtype=float)
        if values.ndim != 2:
            raise ValueError(f"utilisation_heatmap needs a 2-D matrix; received shape {values.shape}")
        return [([f"row {i}" for i in range(values.shape[0])], values)]
    if not matrix:
        raise ValueError("utilisation_heatmap received an empty utilisation mapping")
    nested = any(len(v) and isinstance(v[0], (list, tuple, np.ndarray)) for v in matrix.values())
    if not nested:
        return [(list(matrix), np.asarray([list(v) for v in matrix.values()], dtype=float))]
    levels = max(len(v) for v in matrix.values())
    return [([r for r, v in matrix.items() if level < len(v)],
             np.asarray([v[level] for v in matrix.values() if level < len(v)], dtype=float))
            for level in range(levels)]


def _column_names(columns, level: int, count: int) -> list[str]:
    if columns is None:
        return [f"expert {i}" for i in range(count)]
    names = columns[level] if columns and isinstance(columns[0], (list, tuple)) else columns
    if len(names) != count:
        raise ValueError(f"utilisation_heatmap: {len(names)} column names for {count} columns")
    return list(names)
