"""A prediction grid of an image model: a few test images, each task's truth and prediction.

What is drawn is what a client of the export receives: each task's ``serving_outputs``
(segmentation class ids, depth maps, decoded detections, image-level probabilities) of the
model's outputs on the test split's first images, beside the labels the reader gives. Dense
tasks get a truth and a prediction tile (:mod:`mtl_tf.evaluation.image_grid`); image-level
tasks are written as text, the prediction green when it is right and red when it is wrong.

Example:
    >>> path = prediction_grid(model, tasks, test_batches, "image", "run/predictions.png")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mtl_tf.evaluation.image_grid import Caption, Panel, image_grid

# How many test images the grid shows, and the least score a drawn detection has.
GRID_EXAMPLES = 6
SCORE_THRESHOLD = 0.3
RIGHT, WRONG = (120, 230, 120), (255, 110, 110)
DENSE_PANELS = {"segmentation", "depth", "detection"}
TEXT_TYPES = {"binary", "multiclass", "multilabel", "regression"}


def grid_panels(tasks: Sequence[Any]) -> list[Panel]:
    """One panel per task the grid can draw: dense types as themselves, image-level ones as text."""
    panels = []
    for task in tasks:
        kind = task.registered_type
        if kind == "segmentation":
            panels.append(Panel(task.name, "segmentation", classes=task.classes, ignore_index=task.ignore_index))
        elif kind == "depth":
            panels.append(Panel(task.name, "depth"))
        elif kind == "detection":
            panels.append(Panel(task.name, "detection", classes=task.classes, relative=True, captions=True))
        elif kind in TEXT_TYPES:
            panels.append(Panel(task.name, "text"))
    return panels


def collect_examples(model: Any, tasks: Sequence[Any], batches: Iterable[Any], image: str,
                     count: int = GRID_EXAMPLES, score_threshold: float = SCORE_THRESHOLD) -> list[dict[str, Any]]:
    """The first ``count`` rows of ``batches`` as :func:`image_grid` examples.

    Args:
        model: the Keras model (dict of features in, dict of task outputs out).
        tasks: its TaskType objects; each one's ``serving_outputs`` is what is drawn.
        batches: ``(features, labels, masks)`` batches (the reader's test split).
        image: the image feature's name.
        count: rows to collect.
        score_threshold: detections with a lower score are not drawn.

    Returns:
        Dicts with ``image``, ``truth`` and ``prediction`` (``{task: label}``; a task the
        row has no label for has no truth).
    """
    inputs = list(model.input) if isinstance(model.input, dict) else None
    examples: list[dict[str, Any]] = []
    for features, labels, masks in batches:
        given = {name: features[name] for name in inputs} if inputs else features
        outputs = model(given, training=False)
        served = {task.name: _numpy(task.serving_outputs(outputs[task.name])) for task in tasks}
        rows = int(np.asarray(features[image]).shape[0])
        for row in range(rows):
            if len(examples) == count:
                return examples
            truth, prediction = {}, {}
            for task in tasks:
                if task.registered_type not in DENSE_PANELS | TEXT_TYPES:
                    continue
                served_row = {key: value[row] for key, value in served[task.name].items()}
                label = np.asarray(labels[task.name])[row] if task.name in labels else None
                labelled = label is not None and float(np.asarray(masks[task.name])[row]) > 0
                truth_value = _truth(task, label) if labelled else None
                if truth_value is not None:
                    truth[task.name] = truth_value
                prediction[task.name] = _prediction(task, served_row, truth_value, score_threshold)
            examples.append({"image": np.asarray(features[image])[row], "truth": truth, "prediction": prediction})
    return examples


def prediction_grid(model: Any, tasks: Sequence[Any], batches: Iterable[Any], image: str, path: str | Path,
                    count: int = GRID_EXAMPLES, score_threshold: float = SCORE_THRESHOLD,
                    scale: int | None = None) -> Path | None:
    """Writes the grid of :func:`collect_examples` as a PNG at ``path``; None when there is no row
    or no task to draw. ``scale`` defaults to 2 for images up to 160 pixels a side, else 1."""
    panels = grid_panels(tasks)
    if not panels:
        return None
    examples = collect_examples(model, tasks, batches, image, count, score_threshold)
    if not examples:
        return None
    if scale is None:
        scale = 2 if max(np.asarray(examples[0]["image"]).shape[:2]) <= 160 else 1
    path = Path(path)
    image_grid(examples, panels, scale=scale).save(path)
    return path


def _numpy(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
    return {key: np.asarray(value) for key, value in outputs.items()}


def _truth(task: Any, label: np.ndarray) -> Any:
    kind = task.registered_type
    if kind in ("segmentation", "depth"):
        return label
    if kind == "detection":
        return [list(box) for box in label if box[4] >= 0]
    if kind == "multiclass":
        return class_name(task, int(label))
    if kind == "multilabel":
        return _names(task, np.flatnonzero(label >= 0.5))
    if kind == "binary":
        return str(int(label >= 0.5))
    return f"{float(label):.3g}"


def _prediction(task: Any, served: dict[str, np.ndarray], truth: Any, threshold: float) -> Any:
    """A task's served outputs for one row, in the grid's form (text: coloured against the truth)."""
    kind, name = task.registered_type, task.name
    if kind in ("segmentation", "depth"):
        return served[name]
    if kind == "detection":
        boxes, scores, classes = served[f"{name}_boxes"], served[f"{name}_scores"], served[f"{name}_classes"]
        keep = (scores >= threshold) & (classes >= 0)
        return [[*box, int(cls), float(score)] for box, cls, score in zip(boxes[keep], classes[keep], scores[keep])]
    value = served[name]
    if kind == "multiclass":
        best = int(np.argmax(value))
        text = class_name(task, best)
        return _judged(f"{text} {float(value[best]):.2f}", text, truth)
    if kind == "multilabel":
        text = _names(task, np.flatnonzero(value >= 0.5))
        return _judged(text, text, truth)
    if kind == "binary":
        text = str(int(value >= 0.5))
        return _judged(f"{text} (p {float(value):.2f})", text, truth)
    return Caption(f"{float(value):.3g}")


def _judged(text: str, answer: str, truth: Any) -> Caption:
    if truth is None:
        return Caption(text)
    return Caption(text, RIGHT if answer == truth else WRONG)


def class_name(task: Any, index: int) -> str:
    """The task's name for class ``index`` (the index itself when the task names no such class)."""
    classes = task.classes or []
    return classes[index] if 0 <= index < len(classes) else str(index)


def _names(task: Any, indices: np.ndarray) -> str:
    return ", ".join(class_name(task, int(i)) for i in indices) or "(none)"
