"""What the dense task types (segmentation, depth, detection) share.

A dense task's label is per pixel or per object of the recipe's one image feature. Its
shape and statistics come from the task's entry in dataset.json (``TaskSpec``), so a dense
task cannot be built without it. The reader hands the labels over already decoded (see
IMAGES.md): ``clean`` leaves them as they are, and the reader's per-row mask says which
rows are labelled. The recipe's ``loss`` ({name, **options}) and ``head`` (a dict) are
checked when the task is built: an unknown name or option fails with a one-line
ValueError naming ``tasks.<i>.loss`` (or ``.head``), the value and what is allowed.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import tensorflow as tf

from mtl_tf.tasks.base import TaskType, check_option_names, find_task_spec

if TYPE_CHECKING:
    from mtl_tf.data.spec import DatasetSpec, TaskSpec


class DenseTask(TaskType):
    """Base class of the per-pixel and per-object task types.

    Args:
        name, classes, metrics, primary_metric, weight: as for every task type.
        spec: the task's entry in dataset.json (required: the label shape comes from it).
        loss: ``{name, **options}`` (a recipe ``Component``, a dict or a name); None takes
            the type's default loss.
        head: the head's options (a dict); None takes the defaults.
        path: where the task sits in the recipe (``tasks.<i>``), for error messages.

    Subclasses declare ``losses`` (loss name -> its allowed options), ``default_loss`` and
    ``head_options`` (allowed head option names).
    """

    dense = True
    losses: dict[str, tuple[str, ...]] = {}
    default_loss: str = ""
    head_options: tuple[str, ...] = ()

    def __init__(self, name: str, classes: Sequence[str] | None = None, metrics: Sequence[str] | None = None,
                 primary_metric: str | None = None, weight: float = 1.0, spec: TaskSpec | None = None,
                 loss: Any = None, head: Mapping[str, Any] | None = None, path: str | None = None):
        self.name, self.path = name, path
        if spec is None:
            raise ValueError(f"{self._where()}: a {self.registered_type} task needs its dataset.json entry "
                             "(TaskSpec: the label shape and statistics); build it with "
                             "build_tasks(recipe.tasks, spec) or pass spec=")
        if spec.type != self.registered_type:
            raise ValueError(f"{self._where()}: its dataset.json entry is a {spec.type} task, not a "
                             f"{self.registered_type} task; run `mtl data preprocess` again for this recipe")
        super().__init__(name, classes=classes, metrics=metrics, primary_metric=primary_metric, weight=weight,
                         spec=spec, loss=loss, path=path)
        self._check_classes()
        self.head_config = self._parse_head(head)

    # --- recipe -----------------------------------------------------------------------------
    @classmethod
    def recipe_options(cls, task: Any, spec: DatasetSpec | None, path: str) -> dict[str, Any]:
        if spec is None:
            raise ValueError(f"{path}: the {task.type} task '{task.name}' needs the dataset's dataset.json "
                             "(its label shape and statistics); call build_tasks(recipe.tasks, spec)")
        task_spec = find_task_spec(spec, task.name)
        if task_spec is None:
            raise ValueError(f"{path}: dataset '{spec.name}' has no task '{task.name}'; its tasks: "
                             f"{', '.join(t.name for t in spec.tasks) or '(none)'}")
        return {"spec": task_spec, "loss": task.loss, "head": task.head, "path": path}

    # --- options ------------------------------------------------------------------------------
    def _check_classes(self) -> None:
        if self.spec.classes and self.classes and list(self.spec.classes) != list(self.classes):
            raise ValueError(f"{self._where('classes')}: {self.classes} differ from the dataset's "
                             f"{self.spec.classes}; run `mtl data preprocess` again for this recipe")

    def _parse_head(self, head: Mapping[str, Any] | None) -> dict[str, Any]:
        head = {} if head is None else head
        if not isinstance(head, Mapping):
            raise TypeError(f"{self._where('head')}: expected a dict of head options; received {head!r}")
        check_option_names(self._where("head"), head, self.head_options)
        return dict(head)

    # --- data ---------------------------------------------------------------------------------
    @property
    def label_shape(self) -> list[int]:
        return list(self.spec.shape)

    def parse_feature(self) -> tf.io.FixedLenFeature:
        raise TypeError(f"task '{self.name}': {self.registered_type} labels are parsed and decoded by the data "
                        "layer (mtl_tf.data.parsing, from dataset.json), not by a FixedLenFeature")

    def clean(self, label: tf.Tensor) -> tf.Tensor:
        """Dense labels arrive decoded, with their own 'no label' values; kept as they are."""
        return label

    def missing_label(self, rows: int | tf.Tensor) -> tf.Tensor:
        """The label of ``rows`` rows without this task's label, shape ``(rows, *label_shape)``."""
        raise NotImplementedError


def number_option(where: str, value: Any, minimum: float = 0.0, maximum: float | None = None) -> float:
    """A float option in ``[minimum, maximum]``, or a ValueError naming it and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < minimum or (
            maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{where} must be a number {bounds}; received {value!r}")
    return float(value)


def int_option(where: str, value: Any, minimum: int = 1) -> int:
    """An integer option >= ``minimum``, or a ValueError naming it and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{where} must be an integer >= {minimum}; received {value!r}")
    return int(value)


def row_weights(sample_weight: tf.Tensor | None, like: tf.Tensor) -> tf.Tensor:
    """Per-row weights ``(B,)`` (None: all 1) broadcast to the pixels of ``like`` ``(B, H, W)``."""
    if sample_weight is None:
        return tf.ones_like(like, tf.float32)
    weight = tf.cast(sample_weight, tf.float32)
    weight = tf.reshape(weight, [-1] + [1] * (len(like.shape) - 1))
    return tf.broadcast_to(weight, tf.shape(like))
