"""What an image recipe reads from each column, and the labels computed from dense ones.

A column of an image source is read in one way by every task that names it:

- ``mask`` (segmentation tasks, and ``derive: class_presence`` / ``boundaries``): class
  indices checked against the classes of the column's segmentation task (or, with none,
  of its ``class_presence`` task) and its ``ignore_index``;
- ``depth`` (depth tasks): depths, 16-bit PNGs divided by the task's ``depth_scale``;
- ``boxes`` (detection tasks, and ``derive: box_count``): boxes with the detection task's
  classes, ``box_units`` and ``max_boxes``;
- ``label`` (binary, multiclass, multilabel, regression): a cell read as the CSV pipeline
  reads it (:func:`pipelines.rows.label_parser`); JSON and npz values are turned into that
  text first (numbers as digits, lists joined with ``|``), except that an integer multiclass
  value is a class index and a numeric multilabel vector is multi-hot.

Derived labels are computed from the stored (resized) mask or boxes, so they describe what
the model sees: ``class_presence`` (multi-hot of the classes among labelled pixels),
``boundaries`` (1 where a labelled pixel's 4-neighbour is labelled with another class, 0
elsewhere, the task's ``ignore_index`` where the mask is ignored) and ``box_count``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from mtl_tf.recipe.schema import Feature, Recipe, Task
from pipelines.images.validation import BoxReading
from pipelines.rows import (RowRejected, label_parser, parse_category, parse_number, parse_timestamp,
                            sequence_parser)

DENSE_READINGS = ("mask", "depth", "boxes")


@dataclass(frozen=True)
class MaskReading:
    """How a mask column is checked: class indices below ``classes`` (None: any) or ``ignore``."""

    classes: int | None
    ignore: int


@dataclass
class ColumnPlan:
    """The columns an image recipe reads and how (built once per recipe, see :func:`column_plan`).

    Attributes:
        masks: mask column -> its :class:`MaskReading`.
        depths: depth column -> its depth_scale.
        boxes: box column -> its :class:`BoxReading`.
        labels: image-level label columns.
        features: other (non-image) feature columns.
    """

    masks: dict[str, MaskReading] = field(default_factory=dict)
    depths: dict[str, float] = field(default_factory=dict)
    boxes: dict[str, BoxReading] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """Every column read besides the image's, in a stable order."""
        return list(dict.fromkeys([*self.masks, *self.depths, *self.boxes, *self.labels, *self.features]))


def reading(task: Task) -> str:
    """How ``task`` reads its column: ``mask``, ``depth``, ``boxes`` or ``label``."""
    if task.derive in ("class_presence", "boundaries") or (task.type == "segmentation" and not task.derive):
        return "mask"
    if task.type == "depth":
        return "depth"
    if task.type == "detection" or task.derive == "box_count":
        return "boxes"
    return "label"


def column_plan(recipe: Recipe) -> ColumnPlan:
    """The :class:`ColumnPlan` of ``recipe``.

    Raises:
        ValueError: two tasks read one column in different ways (a mask and a depth map, say).
    """
    by_column: dict[str, list[Task]] = {}
    for task in recipe.tasks:
        by_column.setdefault(task.label, []).append(task)
    plan = ColumnPlan(features=[f.source_column for f in recipe.data.features if f.kind != "image"])
    for column, tasks in by_column.items():
        kinds = {reading(t) for t in tasks}
        if len(kinds) > 1:
            described = ", ".join(f"'{t.name}' ({reading(t)})" for t in tasks)
            raise ValueError(f"column '{column}' is read in different ways by tasks {described}; a column holds "
                             "one of: a mask, a depth map, boxes or an image-level label")
        kind = kinds.pop()
        if kind == "mask":
            plan.masks[column] = _mask_reading(tasks)
        elif kind == "depth":
            plan.depths[column] = tasks[0].depth_scale
        elif kind == "boxes":
            plan.boxes[column] = _box_reading(tasks)
        else:
            plan.labels.append(column)
    return plan


def _mask_reading(tasks: list[Task]) -> MaskReading:
    segmentation = [t for t in tasks if t.type == "segmentation" and not t.derive]
    presence = [t for t in tasks if t.derive == "class_presence"]
    if segmentation:
        return MaskReading(len(segmentation[0].classes), segmentation[0].ignore_index)
    if presence:
        return MaskReading(len(presence[0].classes), 255)
    return MaskReading(None, 255)


def _box_reading(tasks: list[Task]) -> BoxReading:
    detection = [t for t in tasks if t.type == "detection"]
    if not detection:
        return BoxReading()
    task = detection[0]
    return BoxReading(tuple(task.classes), task.box_units, task.max_boxes)


def cell_text(value: Any) -> str:
    """A raw value (CSV text, JSON value, npz element) as the CSV pipeline would read its cell."""
    if value is None:
        return ""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return "|".join(cell_text(v) for v in value)
    return str(value)


def label_reader(task: Task, na_values: frozenset[str]) -> Callable[[Any], Any]:
    """``read(raw value) -> typed label or None``, raising :class:`RowRejected` with the reason."""
    parse = label_parser(task)
    index = {name: i for i, name in enumerate(task.classes or [])}

    def read(value: Any) -> Any:
        value = value.item() if isinstance(value, np.generic) else value
        if task.type == "multiclass" and isinstance(value, int) and not isinstance(value, bool):
            return _class_index(value, task, len(index))
        if task.type == "multilabel" and _numeric_vector(value):
            return _multi_hot(value, task)
        text = cell_text(value)
        return None if text.strip() in na_values else parse(text)

    return read


def _class_index(value: int, task: Task, classes: int) -> int | None:
    if value < 0:
        return None
    if value >= classes:
        raise RowRejected("unknown_class", f"class index {value} in '{task.label}' is out of range; allowed: "
                          f"0..{classes - 1} (or < 0: no label)")
    return value


def _numeric_vector(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "uifb"
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))


def _multi_hot(value: Any, task: Task) -> list[float] | None:
    vector = np.asarray(value, np.float64).reshape(-1)
    if np.isnan(vector).any():
        return None
    if len(vector) != len(task.classes) or not np.isin(vector, (0.0, 1.0)).all():
        raise RowRejected("label_not_allowed", f"multi-hot label in '{task.label}' must be {len(task.classes)} "
                          f"values of 0 or 1; received {vector.tolist()}")
    return [float(v) for v in vector]


def feature_reader(feature: Feature, na_values: frozenset[str]) -> Callable[[Any], Any]:
    """``read(raw value) -> typed value or None`` of a non-image feature, as the CSV pipeline types it."""
    column = feature.source_column
    if feature.kind == "sequence":
        parse = sequence_parser(column, feature.length, feature.separator, feature.min, feature.max,
                                feature.required)
    elif feature.kind == "categorical":
        parse = lambda text: parse_category(text, column)  # noqa: E731
    elif feature.kind == "timestamp":
        parse = lambda text: parse_timestamp(text, column)  # noqa: E731
    else:
        parse = lambda text: _bounded(parse_number(text, column), feature)  # noqa: E731

    def read(value: Any) -> Any:
        text = cell_text(value)
        if feature.kind == "sequence" and isinstance(value, (list, tuple, np.ndarray)):
            text = feature.separator.join(cell_text(v) for v in np.asarray(value).tolist())
        typed = None if text.strip() in na_values else parse(text)
        if typed is None and feature.required:
            raise RowRejected("missing_required", f"missing required value in '{column}'")
        return typed

    return read


def _bounded(value: float | None, feature: Feature) -> float | None:
    column = feature.source_column
    if value is not None and feature.min is not None and value < feature.min:
        raise RowRejected("below_min", f"value below min in '{column}': {value:g} < {feature.min:g}")
    if value is not None and feature.max is not None and value > feature.max:
        raise RowRejected("above_max", f"value above max in '{column}': {value:g} > {feature.max:g}")
    return value


def class_presence(mask: np.ndarray, classes: int, ignore: int) -> list[float]:
    """Multi-hot over ``classes``: 1.0 for each class some labelled pixel of ``mask`` holds."""
    counts = np.bincount(mask[mask != ignore].ravel(), minlength=256)
    return [float(n > 0) for n in counts[:classes]]


def boundaries(mask: np.ndarray, ignore: int, out_ignore: int) -> np.ndarray:
    """uint8 boundary map of ``mask``: 1 where a labelled pixel has a labelled 4-neighbour of another
    class, 0 at other labelled pixels, ``out_ignore`` where ``mask`` is ``ignore``."""
    labelled = mask != ignore
    edge = np.zeros(mask.shape, bool)
    across = (mask[:, 1:] != mask[:, :-1]) & labelled[:, 1:] & labelled[:, :-1]
    edge[:, 1:] |= across
    edge[:, :-1] |= across
    down = (mask[1:, :] != mask[:-1, :]) & labelled[1:, :] & labelled[:-1, :]
    edge[1:, :] |= down
    edge[:-1, :] |= down
    return np.where(labelled, edge.astype(np.uint8), np.uint8(out_ignore)).astype(np.uint8)
