"""The recipe schema: YAML validated into frozen pydantic models that refuse unknown keys.

Sections: ``name``, ``data``, ``tasks``, ``model``, ``training``, ``tracking``, ``export``,
``analysis``.
Component sections (trunk, tower, architecture, optimizer, weighting, gradient, sampling)
are ``{name: ..., **options}`` specs; their names and options are checked against the
registries by :func:`mtl_tf.recipe.loader.check_components`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FEATURE_KINDS = ("numeric", "categorical", "timestamp")
TASK_TYPES = ("binary", "multiclass", "multilabel", "regression")
SPLIT_NAMES = ("train", "validation", "test")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class Strict(BaseModel):
    """Base for every recipe section: frozen, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(BaseModel):
    """A registry reference: ``name`` plus the component's own options."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


def _component(value: Any) -> Any:
    """Accepts ``'mlp'`` as shorthand for ``{name: mlp}``."""
    return {"name": value} if isinstance(value, str) else value


class Feature(Strict):
    """One raw input column.

    ``numeric``: a float, normalised with the train-split mean and variance; a missing value
    becomes the mean plus a missing indicator. ``categorical``: a string, looked up in the
    train-split vocabulary (the ``top_k`` most frequent values, the rest go to
    ``oov_buckets`` hashed buckets) and embedded. ``timestamp``: ISO-8601 or epoch seconds,
    stored as int64 epoch seconds, encoded as cyclical hour-of-day and day-of-week.
    """

    name: str
    kind: Literal["numeric", "categorical", "timestamp"]
    column: str | None = Field(None, description="CSV column, when it differs from name")
    top_k: int = Field(1000, ge=1, description="categorical: vocabulary size kept")
    oov_buckets: int = Field(1, ge=1, description="categorical: hashed buckets for the rest")
    embedding_dim: int | None = Field(None, ge=1, description="categorical: default from vocab size")
    required: bool = Field(False, description="a missing value rejects the row")
    min: float | None = Field(None, description="numeric: values below are rejected")
    max: float | None = Field(None, description="numeric: values above are rejected")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"must start with a letter and hold only letters, digits and '_'; received {value!r}")
        return value

    @property
    def source_column(self) -> str:
        return self.column or self.name


class Source(Strict):
    """Where the raw data is. ``path`` is a glob (or a list of globs) relative to the recipe's cwd."""

    kind: Literal["csv"] = "csv"
    path: str | list[str]
    delimiter: str = ","

    @property
    def patterns(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class Split(Strict):
    """Deterministic split by a hashed key, so one key (a customer) never straddles splits."""

    key: str
    train: float = Field(0.8, gt=0, lt=1)
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.1, ge=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _sums_to_one(self) -> "Split":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must equal 1; received "
                             f"{self.train} + {self.validation} + {self.test} = {total:g}")
        return self

    def fractions(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


class Data(Strict):
    source: Source
    features: list[Feature] = Field(min_length=1)
    split: Split
    output_dir: str = Field(description="where the TFRecords, dataset.json and rejects go")
    shards: int = Field(4, ge=1, description="TFRecord shards per split")

    @model_validator(mode="after")
    def _unique_features(self) -> "Data":
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique; repeated: {', '.join(dupes)}")
        return self


class Task(Strict):
    name: str
    type: Literal["binary", "multiclass", "multilabel", "regression"]
    label: str = Field(description="the CSV column holding the label")
    weight: float = Field(1.0, ge=0)
    classes: list[str] | None = Field(None, description="multiclass/multilabel class names")
    metrics: list[str] | None = Field(None, description="defaults per task type")
    primary_metric: str | None = Field(None, description="defaults to the type's first metric")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"must start with a letter and hold only letters, digits and '_'; received {value!r}")
        return value

    @model_validator(mode="after")
    def _classes(self) -> "Task":
        if self.type in ("multiclass", "multilabel") and not self.classes:
            raise ValueError(f"a {self.type} task needs 'classes' (the class names)")
        if self.primary_metric and self.metrics and self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric '{self.primary_metric}' is not among metrics {self.metrics}")
        return self


class Model(Strict):
    architecture: Component = Component(name="hps")
    trunk: Component = Component(name="mlp")
    tower: Component = Component(name="mlp")

    _c = field_validator("architecture", "trunk", "tower", mode="before")(lambda cls, v: _component(v))


class EarlyStopping(Strict):
    patience: int = Field(3, ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0)


class Distribution(Strict):
    strategy: Literal["default", "one_device", "mirrored", "multi_worker"] = "default"


class Training(Strict):
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(256, ge=1, description="global batch size")
    optimizer: Component = Component(name="adam", learning_rate=1e-3)
    weighting: Component = Component(name="static")
    gradient: Component = Component(name="sum")
    sampling: Component = Component(name="joint")
    early_stopping: EarlyStopping | None = EarlyStopping()
    distribution: Distribution = Distribution()
    shuffle_buffer: int = Field(10_000, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1, description="default: one pass over train")
    seed: int = 0

    _c = field_validator("optimizer", "weighting", "gradient", "sampling", mode="before")(
        lambda cls, v: _component(v))


class Tracking(Strict):
    experiment: str | None = Field(None, description="MLflow experiment; default: the recipe name")
    register_as: str | None = Field(None, description="registered model name; default: the recipe name")
    tracking_uri: str | None = Field(None, description="overridden by --tracking-uri and MLFLOW_TRACKING_URI")


class Export(Strict):
    dir: str | None = Field(None, description="default: <output_dir>/export")
    skew_examples: int = Field(256, ge=1, description="test examples compared after reload")
    skew_tolerance: float = Field(1e-4, gt=0)


class Analysis(Strict):
    """Task relationships measured at epoch ends on a few fixed training batches (0 turns one off)."""

    conflict_batches: int = Field(4, ge=0, description="batches for the task-gradient cosine matrix")
    affinity_batches: int = Field(4, ge=0, description="batches for the lookahead inter-task affinity")
    affinity_lr: float | None = Field(None, gt=0, description="lookahead step; default the optimizer's "
                                                               "learning rate at that epoch")
    every: int = Field(1, ge=1, description="measure after every n-th epoch")


class Recipe(Strict):
    name: str
    output_dir: str | None = Field(None, description="run outputs; default: artifacts/<name>")
    data: Data
    tasks: list[Task] = Field(min_length=1)
    model: Model = Model()
    training: Training = Training()
    tracking: Tracking = Tracking()
    export: Export = Export()
    analysis: Analysis = Analysis()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", value):
            raise ValueError(f"must hold only letters, digits, '_', '.', '-'; received {value!r}")
        return value

    @model_validator(mode="after")
    def _tasks_and_features(self) -> "Recipe":
        names = [t.name for t in self.tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"task names must be unique; repeated: {', '.join(dupes)}")
        columns = {f.source_column for f in self.data.features}
        for task in self.tasks:
            if task.label in columns:
                raise ValueError(f"task '{task.name}' label column '{task.label}' is also a feature; "
                                 "a label must not be an input")
        return self

    @property
    def run_dir(self) -> str:
        return self.output_dir or f"artifacts/{self.name}"

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)
