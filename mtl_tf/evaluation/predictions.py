"""One pass of a trained model over a split, keeping what per-finding evaluation needs.

For every binary and multi-label task: the predicted probabilities, the labels and which
rows are labelled (small: one number per row and class). For every segmentation task: the
confusion matrix of predicted against true classes over the labelled pixels (dense outputs
are never kept whole). With the split's keys (``mtl_tf.data.reader.split_keys``), each row's
key too, in the same order: the split is read unshuffled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

SIGMOID_TYPES = ("binary", "multilabel")


@dataclass
class TaskPredictions:
    """A sigmoid task's rows: ``probabilities`` and ``labels`` (N, C) (C = 1 for binary) and
    ``labelled`` (N,) booleans."""

    probabilities: np.ndarray
    labels: np.ndarray
    labelled: np.ndarray


@dataclass
class Predictions:
    """What :func:`collect_predictions` kept: per sigmoid task its rows, per segmentation task
    its confusion matrix (true class x predicted class, pixels), and the rows' keys."""

    tasks: dict[str, TaskPredictions] = field(default_factory=dict)
    confusion: dict[str, np.ndarray] = field(default_factory=dict)
    keys: list[str] | None = None

    @property
    def rows(self) -> int:
        first = next(iter(self.tasks.values()), None)
        return 0 if first is None else len(first.labelled)


def collect_predictions(model: Any, dataset: Any, tasks: Sequence[Any], keys: Sequence[str] | None = None) -> Predictions:
    """Runs ``model`` over ``dataset`` (batches of ``(features, labels, masks)``, unshuffled).

    Args:
        model: the trained Keras model (outputs keyed by task name).
        dataset: the split's batches, as ``make_dataset`` reads them.
        tasks: TaskType objects; binary and multi-label ones keep their rows, segmentation
            ones their confusion matrix, others nothing.
        keys: the split's keys in reading order (or None).

    Raises:
        ValueError: ``keys`` and the rows read disagree in number.
    """
    import tensorflow as tf

    sigmoid = [t for t in tasks if t.registered_type in SIGMOID_TYPES]
    segmentation = [t for t in tasks if t.registered_type == "segmentation"]
    wanted = [t.name for t in (*sigmoid, *segmentation)]
    forward = tf.function(lambda features: {name: output for name, output in model(features, training=False).items()
                                            if name in wanted}, reduce_retracing=True)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {t.name: [] for t in sigmoid}
    confusion = {t.name: np.zeros((t.units, t.units), np.int64) for t in segmentation}
    if wanted:
        for features, labels, masks in dataset:
            outputs = forward(features)
            for task in sigmoid:
                probabilities = np.asarray(outputs[task.name], np.float64).reshape(len(masks[task.name]), -1)
                truth = np.asarray(labels[task.name], np.float64).reshape(probabilities.shape)
                parts[task.name].append((probabilities, truth, np.asarray(masks[task.name]) > 0))
            for task in segmentation:
                confusion[task.name] += _confusion(task, labels[task.name], outputs[task.name], masks[task.name])
    result = Predictions(confusion=confusion, keys=list(keys) if keys is not None else None)
    for name, chunks in parts.items():
        probabilities, truth, labelled = (np.concatenate(c) for c in zip(*chunks)) if chunks else (
            np.zeros((0, 1)), np.zeros((0, 1)), np.zeros(0, bool))
        result.tasks[name] = TaskPredictions(probabilities, truth, labelled)
    if result.keys is not None and sigmoid and len(result.keys) != result.rows:
        raise ValueError(f"the split holds {len(result.keys)} keys but {result.rows} rows were read; the keys and the "
                         "rows must come from the same unshuffled split")
    return result


def _confusion(task: Any, label: Any, output: Any, mask: Any) -> np.ndarray:
    """(true class, predicted class) pixel counts of a batch's labelled rows and pixels."""
    truth = np.asarray(label).astype(np.int64)
    predicted = np.asarray(output).argmax(axis=-1)
    rows = np.asarray(mask) > 0
    classes = task.units
    valid = (truth >= 0) & (truth < classes) & rows.reshape(-1, *([1] * (truth.ndim - 1)))
    counts = np.bincount(truth[valid] * classes + predicted[valid], minlength=classes * classes)
    return counts.reshape(classes, classes)
