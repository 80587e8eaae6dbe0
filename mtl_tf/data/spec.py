"""``dataset.json``: the one source of truth between preprocessing, training and serving.

Written by every Beam pipeline next to its TFRecords; read by :mod:`mtl_tf.data`,
:mod:`mtl_tf.models` (preprocessing statistics) and :mod:`mtl_tf.export` (parsing spec).
File patterns are relative to the folder holding ``dataset.json``, so the folder can move.

Feature statistics come from the train split only, so no validation or test information
leaks into the model's preprocessing.

tf.Example layout (one feature per key, one value each):
  numeric    float_list,  absent when missing (parsed as NaN)
  categorical bytes_list, absent when missing (parsed as "")
  timestamp  int64_list,  epoch seconds; absent when missing (parsed as -1)
  sequence   float_list of exactly ``length`` values, oldest event first; NaN for a missing
             element and for the left padding of a shorter history (absent -> all NaN).
             Its statistics (``NumericStats``) are over the present elements of the train
             split: ``count`` present and ``missing`` missing or padded elements.
  labels     under the task's ``label_key``: binary/regression float_list (absent -> NaN);
             multiclass int64_list class index (absent -> -1);
             multilabel float_list of len(classes) multi-hot (absent -> all NaN)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
FILE_NAME = "dataset.json"
NEARLY_ALL_REJECTED = 0.9


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NumericStats(_Spec):
    count: int = Field(description="present values in train")
    missing: int = 0
    mean: float = 0.0
    variance: float = 0.0
    min: float | None = None
    max: float | None = None

    @property
    def missing_fraction(self) -> float:
        """``missing / (count + missing)``; 0 when nothing was seen."""
        total = self.count + self.missing
        return self.missing / total if total else 0.0


class VocabEntry(_Spec):
    value: str
    count: int


class CategoricalStats(_Spec):
    count: int = Field(description="present values in train")
    missing: int = 0
    unique: int = Field(description="distinct values seen in train")
    vocabulary: list[VocabEntry] = Field(description="top_k most frequent, most frequent first")
    oov_buckets: int = 1
    oov_count: int = Field(0, description="train values outside the kept vocabulary")


class FeatureSpec(_Spec):
    name: str
    kind: Literal["numeric", "categorical", "timestamp", "sequence"]
    dtype: Literal["float32", "int64", "string"]
    shape: list[int] = Field(default_factory=list, description="per row: [] a scalar, [length] a sequence")
    embedding_dim: int | None = None
    length: int | None = Field(None, ge=1, description="sequence: values per row")
    stats: NumericStats | CategoricalStats

    @model_validator(mode="after")
    def _sequence_shape(self) -> "FeatureSpec":
        if self.kind == "sequence":
            if self.length is None or self.dtype != "float32":
                raise ValueError(f"feature '{self.name}': a sequence needs a length and dtype float32; "
                                 f"received length {self.length!r}, dtype {self.dtype!r}")
            if self.shape not in ([], [self.length]):
                raise ValueError(f"feature '{self.name}': shape {self.shape} disagrees with length {self.length}")
            self.shape = [self.length]
        return self

    @property
    def value_shape(self) -> list[int]:
        """The shape of one row's value: ``[]`` for a scalar, ``[length]`` for a sequence."""
        return [self.length] if self.kind == "sequence" else []

    @property
    def vocabulary(self) -> list[str]:
        return [v.value for v in self.stats.vocabulary] if isinstance(self.stats, CategoricalStats) else []


class TaskSpec(_Spec):
    name: str
    type: Literal["binary", "multiclass", "multilabel", "regression"]
    label_key: str
    dtype: Literal["float32", "int64"]
    classes: list[str] | None = None
    labelled: dict[str, int] = Field(default_factory=dict, description="rows with a label, per split")
    positives: dict[str, int | list[int]] = Field(
        default_factory=dict,
        description="binary: positives per split; multiclass/multilabel: per class; regression: empty")


class SplitSpec(_Spec):
    pattern: str = Field(description="glob relative to the dataset.json folder")
    num_examples: int
    num_shards: int


class RejectsSpec(_Spec):
    count: int = 0
    location: str | None = Field(None, description="glob relative to the dataset.json folder")
    by_reason: dict[str, int] = Field(default_factory=dict)
    examples: dict[str, str] = Field(default_factory=dict, description="one reason per reason kind")


class DatasetSpec(_Spec):
    schema_version: int = SCHEMA_VERSION
    name: str
    created: str
    rows_in: int
    blank_lines: int = Field(0, description="blank lines skipped; not rows, so not in rows_in")
    features: list[FeatureSpec]
    tasks: list[TaskSpec]
    splits: dict[str, SplitSpec]
    rejects: RejectsSpec = RejectsSpec()
    split_key: str | None = None
    source: list[str] = Field(default_factory=list, description="input globs")
    root: str | None = Field(None, exclude=True, description="folder dataset.json was read from")

    def feature(self, name: str) -> FeatureSpec:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(f"no feature '{name}' in dataset '{self.name}'; features: "
                       f"{', '.join(f.name for f in self.features)}")

    def task(self, name: str) -> TaskSpec:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"no task '{name}' in dataset '{self.name}'; tasks: "
                       f"{', '.join(t.name for t in self.tasks)}")

    def files(self, split: str) -> str:
        """The absolute glob of a split's TFRecord shards."""
        if split not in self.splits:
            raise KeyError(f"no split '{split}' in dataset '{self.name}'; splits: {', '.join(self.splits)}")
        return str(Path(self.root or ".") / self.splits[split].pattern)

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> "DatasetSpec":
        """Reads ``dataset.json`` from a file or from the folder that holds it."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no {FILE_NAME} at {str(path)!r}; run `mtl data preprocess RECIPE` first")
        data = json.loads(path.read_text())
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"{path}: schema_version {version!r} is not supported; allowed: {SCHEMA_VERSION}")
        spec = cls.model_validate(data)
        spec.root = str(path.parent.resolve())
        return spec

    def label_problems(self) -> list[str]:
        """One message per task and split where the task has no labelled row.

        Such a task cannot be trained (train) or evaluated (validation, test) on that split.
        When that is because no rows, or (nearly) no rows, were kept, one message saying so
        (:meth:`rejects_problem`) comes first, and replaces the per-task messages when no
        example was written at all: they would all say the same thing.
        """
        problems = []
        for task in self.tasks:
            for split, info in self.splits.items():
                if task.labelled.get(split, 0) == 0:
                    problems.append(f"task '{task.name}' has no labelled rows in split '{split}' "
                                    f"(0 of {info.num_examples} rows)")
        cause = self.rejects_problem() if problems else None
        if cause is None:
            return problems
        written = sum(split.num_examples for split in self.splits.values())
        return [cause] if written == 0 else [cause, *problems]

    def rejects_problem(self, share: float = NEARLY_ALL_REJECTED) -> str | None:
        """A message when no rows were read, or at least ``share`` of them were rejected:
        how many, the main reasons with their counts and an example of each; else None."""
        if self.rows_in == 0:
            blank = f" ({self.blank_lines} blank lines)" if self.blank_lines else ""
            return f"no data rows were read{blank} from {', '.join(self.source) or 'the source'}"
        if self.rejects.count < share * self.rows_in:
            return None
        top = sorted(self.rejects.by_reason.items(), key=lambda item: (-item[1], item[0]))[:3]
        reasons = "; ".join(f"{kind} {n}" + (f" (e.g. {self.rejects.examples[kind]})"
                                              if kind in self.rejects.examples else "") for kind, n in top)
        which = "all" if self.rejects.count == self.rows_in else f"{self.rejects.count} of"
        where = f"; they are in {self.rejects.location}" if self.rejects.location else ""
        return f"{which} {self.rows_in} rows were rejected: {reasons}{where}"
