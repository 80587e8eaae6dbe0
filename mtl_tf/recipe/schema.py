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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from mtl_tf.errors import did_you_mean

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
    """Where the raw data is. ``path`` is a glob (or a list of globs) relative to the recipe's cwd.

    Every cell is read without its surrounding spaces, so ``' Never married'`` is
    ``'Never married'``; an empty cell, or one listed in ``na_values``, is a missing value.
    Compressed files (``.gz``, ``.bz2``) are read as they are.
    """

    kind: Literal["csv"] = "csv"
    path: str | list[str]
    delimiter: str = ","
    header: bool = Field(True, description="the first line of every file names the columns; "
                                           "false: data.source.columns names them and every line is data")
    columns: list[str] | None = Field(None, description="the column names, in file order, of files "
                                                        "without a header line (header: false)")
    na_values: list[str] = Field(default_factory=list,
                                 description="cell values that mean missing in every column read, "
                                             "compared without surrounding spaces, e.g. ['?']")

    @model_validator(mode="after")
    def _columns_with_header(self) -> "Source":
        if not self.header and not self.columns:
            raise ValueError("header: false needs 'columns' (the column names, in file order); received none")
        if self.header and self.columns is not None:
            raise ValueError("'columns' names the columns of files without a header line; set header: false "
                             f"to use them, or remove them; received header: true and columns {self.columns}")
        names = self.columns or []
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes or any(not n.strip() for n in names):
            raise ValueError(f"column names must be unique and non-empty; received repeated {dupes} "
                             f"or an empty name in {names}")
        return self

    @property
    def patterns(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


def _check_sum(train: float, validation: float, test: float) -> None:
    total = train + validation + test
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"train + validation + test must equal 1; received {train} + {validation} + {test} = {total:g}")


class FileSplit(Strict):
    """The split fractions of the input files that one glob matches (``data.split.by_file``)."""

    files: str = Field(description="glob matched against each input file's name, or its full path")
    train: float = Field(0.0, ge=0, le=1)
    validation: float = Field(0.0, ge=0, le=1)
    test: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> "FileSplit":
        _check_sum(self.train, self.validation, self.test)
        return self

    def fractions(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


class Split(Strict):
    """Deterministic split by a hashed key, so one key (a customer) never straddles splits.

    Without ``key`` the hashed content of the row decides, so identical rows share a split.
    With ``by_file`` each input file takes the fractions of the first rule whose glob matches
    it (``train: 1.0`` for a training file; ``validation: 0.5, test: 0.5`` halves a test
    file), in place of the top-level fractions; every file must match a rule.
    """

    key: str | None = Field(None, description="column whose hashed value picks the split; "
                                              "default: the hashed content of the row")
    train: float = Field(0.8, gt=0, lt=1)
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.1, ge=0, lt=1)
    seed: int = 0
    by_file: list[FileSplit] | None = Field(
        None, min_length=1, description="per-file fractions, e.g. [{files: '*.test.gz', validation: 0.5, "
                                        "test: 0.5}]; replaces train/validation/test")

    @model_validator(mode="after")
    def _sums_to_one(self) -> "Split":
        if self.by_file is None:
            _check_sum(self.train, self.validation, self.test)
            return self
        both = sorted(set(SPLIT_NAMES) & self.model_fields_set)
        if both:
            raise ValueError(f"set the fractions either at the top (train, validation, test) or per file in "
                             f"by_file, not both; received by_file and {', '.join(both)}")
        if not any(rule.train > 0 for rule in self.by_file):
            raise ValueError("by_file must send some file to train (statistics come from the train split); "
                             f"received train 0 for {[rule.files for rule in self.by_file]}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        # With by_file the top-level fractions are unused; leaving them out keeps the
        # resolved recipe honest and valid when read back.
        data = handler(self)
        if self.by_file is not None and isinstance(data, dict):
            for name in SPLIT_NAMES:
                data.pop(name, None)
        return data

    def fractions(self) -> dict[str, float]:
        """The top-level fractions (unused when ``by_file`` is given)."""
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def split_names(self) -> list[str]:
        """The splits some row can land in, in the order train, validation, test."""
        rules = [rule.fractions() for rule in self.by_file] if self.by_file else [self.fractions()]
        return [name for name in SPLIT_NAMES if any(rule[name] > 0 for rule in rules)]


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
    positive: list[str] | None = Field(
        None, min_length=1, description="binary: the label values that mean 1, any other value present means 0, "
                                        "e.g. ['50000+.']; default: 1/0, true/false, yes/no")
    na_values: list[str] = Field(default_factory=list,
                                 description="label values that mean 'no label' (besides an empty cell and "
                                             "data.source.na_values), e.g. ['unknown']")

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
        if self.positive is not None and self.type != "binary":
            raise ValueError(f"'positive' is for binary tasks; received it on a {self.type} task")
        clash = sorted(set(self.positive or []) & set(self.na_values))
        if clash:
            raise ValueError(f"a label value cannot mean both positive and missing; received {clash} in "
                             "positive and na_values")
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
    task_optimizer: Component | None = Field(
        None, description="optimizer of the task-specific layers ('<task>_...'); default: optimizer "
                          "trains every variable. With it, optimizer trains the shared ones")
    weighting: Component = Component(name="static")
    gradient: Component = Component(name="sum")
    sampling: Component = Component(name="joint")
    early_stopping: EarlyStopping | None = EarlyStopping()
    distribution: Distribution = Distribution()
    shuffle_buffer: int = Field(10_000, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1, description="default: one pass over train")
    seed: int = 0

    _c = field_validator("optimizer", "task_optimizer", "weighting", "gradient", "sampling", mode="before")(
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
        self._same_label_same_reading()
        self._columns_named()
        return self

    def _same_label_same_reading(self) -> None:
        # Tasks that share a label column share one tf.Example key, so they must read it alike.
        seen: dict[str, Task] = {}
        for task in self.tasks:
            first = seen.setdefault(task.label, task)
            reading = ("type", "classes", "positive", "na_values")
            if any(getattr(first, k) != getattr(task, k) for k in reading):
                raise ValueError(f"tasks '{first.name}' and '{task.name}' read label column '{task.label}' "
                                 f"differently ({', '.join(reading)} must agree); received "
                                 f"{first.type}/{first.positive} and {task.type}/{task.positive}")

    def _columns_named(self) -> None:
        """With ``data.source.columns``, every column the recipe reads must be one of them."""
        names = self.data.source.columns
        if names is None:
            return
        wanted = [(f.source_column, f"feature '{f.name}'") for f in self.data.features]
        wanted += [(t.label, f"label of task '{t.name}'") for t in self.tasks]
        if self.data.split.key:
            wanted.append((self.data.split.key, "data.split.key"))
        for column, role in wanted:
            if column not in names:
                raise ValueError(f"data.source.columns has no column '{column}' ({role}){did_you_mean(column, names)}; "
                                 f"received {len(names)} columns: {', '.join(names)}")

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
