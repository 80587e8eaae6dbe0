"""Regression: one real value per row, mean squared error in the label's standard units."""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras

from mtl_tf.tasks import TASK_TYPES
from mtl_tf.tasks.base import TaskType
from mtl_tf.tasks.heads import SqueezeLast


class LabelScaleWarning(UserWarning):
    """A regression task cannot use its train split's std: the train labels have no spread
    (std 0: scale 1, offset the mean) or no statistics in dataset.json (a plain head)."""


@TASK_TYPES.register("regression")
class RegressionTask(TaskType):
    """Label: float (NaN when missing); output shape (batch,), in the label's units.

    Built with its dataset.json entry (``spec``, a ``TaskSpec`` whose ``stats`` hold the
    label's mean and std per split), the task learns in standard units of the train split:
    the head's Dense layer predicts ``z = (y - mean) / std`` and a fixed ``Rescaling(scale=std,
    offset=mean)`` (``<task>_scale``) turns it back, so the output, the metrics and the
    exported signatures are in the label's units while the loss, ``((output - label) /
    std)^2``, is about 1 for a head that predicts the mean, whatever the label's units. A
    label of mean 1e4 then starts at its mean instead of 0, and its loss does not drown the
    other tasks' in the weighted sum.

    A train std of 0 (a constant label) keeps the offset and uses scale 1; a train split
    without labelled rows, or a dataset.json without label statistics, leaves the head
    plain; both warn (:class:`LabelScaleWarning`). Without a ``spec``, or with
    ``standardize=False``, the head is a plain ``Dense(1)`` trained on raw squared errors.

    Args:
        standardize: learn in standard units (default True; needs ``spec``).
        (others): see :class:`~mtl_tf.tasks.base.TaskType`; the loss is fixed (``mse``).

    Attributes:
        offset, scale: the output's ``offset + scale * z`` (None when the head is plain).
    """

    registered_type = "regression"
    default_metrics = ("rmse", "mae")
    losses = {"mse": ()}
    default_loss = "mse"

    def __init__(self, name: str, classes=None, *, standardize: bool = True, **options: Any):
        super().__init__(name, classes=classes, **options)
        if not isinstance(standardize, bool):
            raise TypeError(f"{self._where('standardize')}: expected true or false; received {standardize!r}")
        self.standardize = standardize
        scaling = label_scaling(self.spec, self._where()) if standardize and self.spec is not None else None
        self.offset, self.scale = scaling or (None, None)

    @classmethod
    def recipe_options(cls, task, spec, path):
        options = super().recipe_options(task, spec, path)
        return options if task.standardize is None else {**options, "standardize": task.standardize}

    @property
    def standardized(self) -> bool:
        """Whether the head predicts standard units (mapped back to the label's by ``<task>_scale``)."""
        return self.scale is not None

    def head(self, x):
        value = keras.layers.Dense(1, name=f"{self.name}_head")(x)
        if self.standardized:
            value = keras.layers.Rescaling(self.scale, self.offset, dtype="float32", name=f"{self.name}_scale")(value)
        return SqueezeLast(dtype="float32", name=self.name)(value)

    def per_example_loss(self, label, output):
        error = keras.ops.cast(output, "float32") - label
        return keras.ops.square(error / self.scale if self.standardized else error)

    def metric_factories(self):
        return {
            "rmse": lambda: keras.metrics.RootMeanSquaredError(name="rmse"),
            "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
            "mse": lambda: keras.metrics.MeanSquaredError(name="mse"),
        }

    def metric_inputs(self, label, output):
        return label[:, None], output[:, None]

    def serving_units(self) -> dict[str, float]:
        """The output's unit when the export is compared with the model: the label's train std."""
        return {self.name: self.scale} if self.standardized else {}

    @property
    def head_layout(self) -> str | None:
        return "standardized" if self.standardized else None

    def describe(self):
        described = {**super().describe(), "standardize": self.standardize}
        if self.standardized:
            described["label_scaling"] = {"offset": self.offset, "scale": self.scale}
        return described


def label_scaling(spec: Any, where: str) -> tuple[float, float] | None:
    """(offset, scale) of a regression head from its dataset.json entry: the train split's
    mean and std; scale 1 when the std is 0; None without train statistics (both with a
    :class:`LabelScaleWarning`)."""
    stats = getattr(spec, "stats", None)
    train = stats.train if stats is not None and hasattr(stats, "train") else None
    if train is None or not train.count or train.mean is None or not math.isfinite(train.mean):
        why = ("dataset.json has no label statistics (written before they existed: run `mtl data preprocess` "
               "again)" if train is None else "the train split has no labelled row")
        warnings.warn(f"{where}: {why}; the head learns the label in its own units (raw squared error)",
                      LabelScaleWarning, stacklevel=3)
        return None
    std = train.std if train.std is not None and math.isfinite(train.std) else 0.0
    if std <= 0:
        warnings.warn(f"{where}: every train label is {train.mean:g} (std 0); the head predicts the difference "
                      "from that value with scale 1", LabelScaleWarning, stacklevel=3)
        return float(train.mean), 1.0
    return float(train.mean), float(std)
