"""The TaskType interface.

A task type knows the shape and dtype of its label in a tf.Example, how to tell a missing
label (the presence mask), its head, its per-example loss, its metrics and whether higher is
better for each metric. The Trainer combines per-example losses with the mask; a row without
a label contributes nothing to that task.

Dense types (segmentation, depth, detection; ``dense`` is True) put their head on a feature
map at ``output_stride`` and need the task's dataset.json entry (its label shape and
statistics); tabular and image-level types put theirs on a vector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import keras
import tensorflow as tf

from mtl_tf.errors import did_you_mean

if TYPE_CHECKING:
    from mtl_tf.data.spec import DatasetSpec, TaskSpec


class TaskType:
    """Base class for task types.

    Args:
        name: the task name (the output key everywhere).
        classes: class names (multiclass, multilabel).
        metrics: metric names; default ``default_metrics``.
        primary_metric: the metric early stopping and promotion use; default the first metric.
        weight: the static loss weight.
        spec: the task's entry in dataset.json (``TaskSpec``), when known.
        loss: ``{name, **options}`` (a recipe ``Component``, a dict or a name); None takes
            the type's default loss. Checked against ``losses``: an unknown name or option
            is a ValueError naming ``tasks.<i>.loss``, the value and the allowed names.
        path: where the task sits in the recipe (``tasks.<i>``), for error messages.

    Subclasses declare ``losses`` (loss name -> its allowed options) and ``default_loss``.

    Attributes:
        dense: whether the head sits on a feature map (per pixel or per object) rather than
            on a vector.
        loss_name, loss_options: the loss the recipe chose and its options.
    """

    dense: bool = False
    default_metrics: tuple[str, ...] = ()
    lower_is_better: frozenset[str] = frozenset({"loss", "mae", "mse", "rmse"})
    label_dtype: tf.DType = tf.float32
    jit_incompatible_metrics: frozenset[str] = frozenset()
    losses: dict[str, tuple[str, ...]] = {}
    default_loss: str = ""

    def __init__(self, name: str, classes: Sequence[str] | None = None,
                 metrics: Sequence[str] | None = None, primary_metric: str | None = None,
                 weight: float = 1.0, spec: TaskSpec | None = None, loss: Any = None, path: str | None = None):
        self.name = name
        self.path = path
        self.spec = spec
        self.classes = list(classes) if classes else None
        self.metric_names = list(metrics or self.default_metrics)
        known = self.metric_factories()
        for metric in self.metric_names:
            if metric not in known:
                raise ValueError(f"task '{name}': unknown metric '{metric}'{did_you_mean(metric, known)}; "
                                 f"allowed for {self.registered_type}: {', '.join(sorted(known))}")
        self.primary_metric = primary_metric or self.metric_names[0]
        if self.primary_metric not in self.metric_names:
            raise ValueError(f"task '{name}': primary_metric '{self.primary_metric}' is not among "
                             f"its metrics {self.metric_names}")
        self.weight = float(weight)
        self.loss_name, self.loss_options = self._parse_loss(loss)

    registered_type = "task"

    # --- options --------------------------------------------------------------------------
    def _where(self, key: str | None = None) -> str:
        """``tasks.<i>.<key>`` when built from a recipe, else ``task '<name>' <key>``."""
        if self.path:
            return f"{self.path}.{key}" if key else self.path
        base = f"task '{self.name}'"
        return f"{base} {key}" if key else base

    def _parse_loss(self, loss: Any) -> tuple[str, dict[str, Any]]:
        where = self._where("loss")
        if loss is None:
            return self.default_loss, {}
        if isinstance(loss, str):
            config: dict[str, Any] = {"name": loss}
        elif hasattr(loss, "as_dict"):
            config = loss.as_dict()
        elif isinstance(loss, Mapping):
            config = {"name": self.default_loss, **loss}
        else:
            raise TypeError(f"{where}: expected a loss name or {{name, **options}}; received {loss!r}")
        name = config.pop("name", None) or self.default_loss
        if name not in self.losses:
            raise ValueError(f"{where}: unknown {self.registered_type} loss {name!r}"
                             f"{did_you_mean(str(name), self.losses)}; allowed: "
                             f"{', '.join(sorted(self.losses)) or '(none: the loss is fixed)'}")
        check_option_names(where, config, self.losses[name])
        return name, config

    # --- data -------------------------------------------------------------------------
    @property
    def label_shape(self) -> list[int]:
        return []

    def parse_feature(self) -> tf.io.FixedLenFeature:
        """The parsing spec of this task's label; a missing label parses as the default."""
        default = -1 if self.label_dtype == tf.int64 else float("nan")
        size = 1
        for dim in self.label_shape:
            size *= dim
        return tf.io.FixedLenFeature(self.label_shape, self.label_dtype, default_value=[default] * size
                                     if self.label_shape else default)

    def mask(self, label: tf.Tensor) -> tf.Tensor:
        """1.0 where the row has a label for this task, else 0.0; shape (batch,)."""
        if self.label_dtype == tf.int64:
            present = label >= 0
        else:
            present = tf.logical_not(tf.math.is_nan(label))
        if self.label_shape:
            present = tf.reduce_all(present, axis=-1)
        return tf.cast(present, tf.float32)

    def clean(self, label: tf.Tensor) -> tf.Tensor:
        """The label with missing entries replaced by a harmless value (masked out later)."""
        if self.label_dtype == tf.int64:
            return tf.maximum(label, 0)
        return tf.where(tf.math.is_nan(label), tf.zeros_like(label), label)

    # --- model ------------------------------------------------------------------------
    @property
    def units(self) -> int:
        return 1

    @property
    def output_stride(self) -> int:
        """Dense types: the stride of the feature map the head expects (1 = full resolution)."""
        return 1

    def head(self, x: Any) -> Any:
        """The output layer(s) on top of the task's tower; returns the task's output."""
        raise NotImplementedError

    def per_example_loss(self, label: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
        """Loss per row, shape (batch,); ``label`` already cleaned."""
        raise NotImplementedError

    def serving_outputs(self, output: tf.Tensor) -> dict[str, tf.Tensor]:
        """What the exported signatures return for this task: keys ``<task>`` or ``<task>_<part>``."""
        return {self.name: output}

    def serving_units(self) -> dict[str, float]:
        """Serving output -> the unit its differences are measured in when the export is
        compared with the model (the skew check); absent: 1. A regression output in its
        label's units is compared in the label's train std."""
        return {}

    @property
    def head_layout(self) -> str | None:
        """What the head's weights mean beyond their shapes (``"standardized"``: a regression
        head predicting standard units), or None. Checkpoints record it, and a resume across
        a change is refused: the same variables would be read in other units."""
        return None

    # --- metrics ----------------------------------------------------------------------
    def metric_factories(self) -> dict[str, Callable[[], keras.metrics.Metric]]:
        raise NotImplementedError

    def make_metrics(self) -> dict[str, keras.metrics.Metric]:
        """Fresh metric objects, updated with ``update_state(label, output, sample_weight=mask)``."""
        factories = self.metric_factories()
        return {name: factories[name]() for name in self.metric_names}

    def metric_inputs(self, label: tf.Tensor, output: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(y_true, y_pred) in the form this type's metrics expect."""
        return label, output

    def higher_is_better(self, metric: str) -> bool:
        return metric not in self.lower_is_better

    @property
    def metrics_support_jit(self) -> bool:
        """False when one of the task's metrics cannot run inside an XLA-compiled step (its
        metric objects have ``supports_jit = False``, as the COCO evaluator's do)."""
        return not set(self.metric_names) & self.jit_incompatible_metrics

    # --- construction from a recipe -------------------------------------------------------
    @classmethod
    def recipe_options(cls, task: Any, spec: DatasetSpec | None, path: str) -> dict[str, Any]:
        """Constructor keywords this type takes from a recipe task and dataset.json, besides
        name, classes, metrics, primary_metric and weight.

        Args:
            task: the recipe's task (``mtl_tf.recipe.schema.Task``).
            spec: the dataset the task's label is in, or None.
            path: the task's dotted path in the recipe (``tasks.<i>``), for error messages.
        """
        task_spec = find_task_spec(spec, task.name)
        options: dict[str, Any] = {"loss": task.loss, "path": path}
        return options if task_spec is None else {**options, "spec": task_spec}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.registered_type, "classes": self.classes,
                "metrics": self.metric_names, "primary_metric": self.primary_metric,
                "weight": self.weight, "loss": self.loss_name}


def build_tasks(recipe_tasks: Sequence[Any], spec: DatasetSpec | None = None) -> list[TaskType]:
    """Task objects from the recipe's ``tasks`` section.

    Args:
        recipe_tasks: the recipe's tasks.
        spec: the dataset.json the tasks train on (``DatasetSpec``); each task receives its
            ``TaskSpec``. Dense tasks need it (their label shape, the image size and the
            label statistics) and raise a ValueError without it.
    """
    from mtl_tf.tasks import TASK_TYPES

    tasks = []
    for i, task in enumerate(recipe_tasks):
        cls = TASK_TYPES.lookup(task.type, f"tasks.{i}.type")
        tasks.append(cls(name=task.name, classes=task.classes, metrics=task.metrics,
                         primary_metric=task.primary_metric, weight=task.weight,
                         **cls.recipe_options(task, spec, f"tasks.{i}")))
    return tasks


def find_task_spec(spec: DatasetSpec | None, name: str) -> TaskSpec | None:
    """The dataset.json entry of task ``name`` (None without a spec or when it is not there)."""
    if spec is None:
        return None
    return next((t for t in spec.tasks if t.name == name), None)


def check_option_names(where: str, options: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Refuses an option outside ``allowed``, naming it, a close match and the allowed names."""
    for key in options:
        if key not in allowed:
            raise ValueError(f"{where}: unknown option {key!r}{did_you_mean(str(key), allowed)}; allowed: "
                             f"{', '.join(sorted(allowed)) or '(none)'}")
