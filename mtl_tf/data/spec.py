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
  image      bytes_list of one encoded image (``encoding``: PNG or JPEG), already
             ``height`` x ``width`` x ``channels``, 8-bit; the model input is its decoded
             uint8 (height, width, channels) tensor
  labels     under the task's ``label_key``: binary/regression float_list (absent -> NaN);
             multiclass int64_list class index (absent -> -1);
             multilabel float_list of len(classes) multi-hot (absent -> all NaN);
             segmentation bytes_list of one single-channel 8-bit PNG of class indices, the
             image's size, ``ignore_index`` where a pixel has no label (absent -> every
             pixel ignored); depth bytes_list of the image's height x width float16 values,
             little-endian, row-major, 0 where a pixel has no depth (absent -> all 0);
             detection ``<label_key>/boxes`` float_list of 4 values per box (x_min, y_min,
             x_max, y_max as fractions of the stored image's width and height),
             ``<label_key>/classes`` int64_list of one class index per box and
             ``<label_key>/labelled`` int64_list [1] (absent -> no label; an image labelled
             with no box has labelled 1 and empty lists)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

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


class ImageStats(_Spec):
    """Pixel statistics of an image feature over the train split (0-255 scale)."""

    count: int = Field(description="train images")
    missing: int = 0
    mean: list[float] = Field(description="per channel")
    std: list[float] = Field(description="per channel")


class WindowInfo(_Spec):
    """A fixed intensity window: ``center - width / 2 .. center + width / 2`` -> 0..255."""

    center: float
    width: float = Field(gt=0)


class ImageInfo(_Spec):
    """How an image feature is stored in the tf.Example.

    ``bit_depth`` 16: the sources may be 16-bit; each 16-bit one was mapped to the stored
    8-bit image by ``window`` (a fixed window, ``per_image`` min..max, or ``none``:
    ``value / 257``), and the serving signature maps a 16-bit PNG request the same way.
    """

    height: int = Field(ge=1)
    width: int = Field(ge=1)
    channels: Literal[1, 3]
    encoding: Literal["png", "jpeg"]
    resize: Literal["stretch", "pad", "crop"] = "stretch"
    bit_depth: Literal[8, 16] = 8
    window: WindowInfo | Literal["per_image", "none"] = "none"


class FeatureSpec(_Spec):
    name: str
    kind: Literal["numeric", "categorical", "timestamp", "sequence", "image"]
    dtype: Literal["float32", "int64", "string", "uint8"]
    shape: list[int] = Field(default_factory=list, description="per row: [] a scalar, [length] a sequence, "
                                                               "[height, width, channels] an image")
    embedding_dim: int | None = None
    length: int | None = Field(None, ge=1, description="sequence: values per row")
    image: ImageInfo | None = Field(None, description="image: stored size, channels and encoding")
    stats: NumericStats | CategoricalStats | ImageStats

    @model_validator(mode="after")
    def _sequence_shape(self) -> "FeatureSpec":
        if self.kind == "sequence":
            if self.length is None or self.dtype != "float32":
                raise ValueError(f"feature '{self.name}': a sequence needs a length and dtype float32; "
                                 f"received length {self.length!r}, dtype {self.dtype!r}")
            if self.shape not in ([], [self.length]):
                raise ValueError(f"feature '{self.name}': shape {self.shape} disagrees with length {self.length}")
            self.shape = [self.length]
        if self.kind == "image":
            if self.image is None or self.dtype != "uint8":
                raise ValueError(f"feature '{self.name}': an image needs 'image' (size, channels, encoding) and "
                                 f"dtype uint8; received image {self.image!r}, dtype {self.dtype!r}")
            self.shape = [self.image.height, self.image.width, self.image.channels]
        return self

    @property
    def value_shape(self) -> list[int]:
        """The shape of one row's value: ``[]`` for a scalar, ``[length]`` for a sequence,
        ``[height, width, channels]`` for an image."""
        if self.kind == "sequence":
            return [self.length]
        if self.kind == "image":
            return list(self.shape)
        return []

    @property
    def vocabulary(self) -> list[str]:
        return [v.value for v in self.stats.vocabulary] if isinstance(self.stats, CategoricalStats) else []


class SegmentationStats(_Spec):
    """Pixel counts of a segmentation label over the train split."""

    pixels: list[int] = Field(description="labelled pixels per class")
    ignored: int = Field(0, description="pixels with the ignore value")

    @property
    def frequencies(self) -> list[float]:
        """Each class's share of the labelled pixels."""
        total = sum(self.pixels)
        return [count / total if total else 0.0 for count in self.pixels]

    @property
    def ignored_fraction(self) -> float:
        total = sum(self.pixels) + self.ignored
        return self.ignored / total if total else 0.0


class DepthStats(_Spec):
    """Depth values over the valid pixels of the train split (in the label's units)."""

    valid: int = Field(description="pixels with a depth")
    invalid: int = Field(0, description="pixels without one (0)")
    min: float | None = None
    max: float | None = None
    mean: float | None = None


class DetectionStats(_Spec):
    """Boxes of a detection label over the train split."""

    boxes: list[int] = Field(description="boxes per class")
    images: int = Field(description="labelled images")
    max_per_image: int = 0

    @property
    def mean_per_image(self) -> float:
        return sum(self.boxes) / self.images if self.images else 0.0


class LabelStats(_Spec):
    """Moments of a scalar label over the labelled rows of one split (population std)."""

    count: int = Field(description="labelled rows")
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None


class RegressionStats(RootModel[dict[str, LabelStats]]):
    """A regression label's :class:`LabelStats` per split: ``{split: {count, mean, std, min, max}}``.

    The train split's are what the task standardises with (see
    :class:`mtl_tf.tasks.RegressionTask`); the others say how the label is spread where the
    model is validated and tested (an rmse next to the test split's std).
    """

    def split(self, name: str) -> LabelStats | None:
        """The statistics of split ``name`` (None when the pipeline wrote none for it)."""
        return self.root.get(name)

    @property
    def train(self) -> LabelStats | None:
        return self.split("train")


class TaskSpec(_Spec):
    name: str
    type: Literal["binary", "multiclass", "multilabel", "regression", "segmentation", "depth", "detection"]
    label_key: str
    dtype: Literal["float32", "int64", "int32"]
    classes: list[str] | None = None
    shape: list[int] = Field(default_factory=list, description="the decoded label per row: [] a scalar, "
                                                               "[classes] multilabel, [height, width] dense, "
                                                               "[max_boxes, 5] detection")
    ignore_index: int | None = Field(None, description="segmentation: mask value of unlabelled pixels")
    derive: str | None = Field(None, description="how the label was computed from its column, if it was")
    labelled: dict[str, int] = Field(default_factory=dict, description="rows with a label, per split")
    positives: dict[str, int | list[int]] = Field(
        default_factory=dict,
        description="binary: positives per split; multiclass/multilabel: per class; segmentation: images "
                    "holding each class; detection: boxes per class; regression, depth: empty "
                    "(regression: see stats)")
    stats: SegmentationStats | DepthStats | DetectionStats | RegressionStats | None = Field(
        None, description="dense labels: statistics over the train split; regression: count, mean, std, "
                          "min and max of the label per split")

    @model_validator(mode="after")
    def _stats_kind(self) -> "TaskSpec":
        if (self.type == "regression") != isinstance(self.stats, RegressionStats) and self.stats is not None:
            raise ValueError(f"task '{self.name}': a {self.type} task cannot hold "
                             f"{type(self.stats).__name__} statistics; regression statistics are "
                             "{split: {count, mean, std, min, max}}")
        return self

    def one_class(self, split: str) -> str | None:
        """How the labelled rows of ``split`` hold only one class (None when they do not, or are unknown).

        binary: every labelled row positive, or none; multilabel: per class; multiclass: a
        single class occurs. AUC and PR-AUC are undefined there.
        """
        labelled, positives = self.labelled.get(split, 0), self.positives.get(split)
        if labelled <= 0 or positives is None or self.type not in ("binary", "multiclass", "multilabel"):
            return None
        if self.type == "binary" and isinstance(positives, int):
            return _all_or_none(positives, labelled)
        counts = list(positives) if isinstance(positives, list) else []
        names = self.classes or [str(i) for i in range(len(counts))]
        if self.type == "multiclass":
            present = [name for name, count in zip(names, counts) if count > 0]
            return f"every labelled row is class '{present[0]}'" if len(present) == 1 else None
        single = [f"{name} ({_all_or_none(count, labelled)})" for name, count in zip(names, counts)
                  if count in (0, labelled)]
        return f"classes with one value: {', '.join(single)}" if single else None


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
    split_key_pattern: str | None = Field(None, description="the regular expression that took the key from the "
                                                            "split_key column's value, if one did")
    example_key: str | None = Field(None, description="tf.Example key holding each example's split key "
                                                      "(bytes), when the examples carry it")
    source: list[str] = Field(default_factory=list, description="input globs")
    source_encoding: str | None = Field(None, description="the text encoding the source files were read in "
                                                          "(data.source.encoding of CSV sources and CSV manifests)")
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

    def label_warnings(self) -> list[str]:
        """One message per classification task and split whose labelled rows hold one class.

        The task trains, but its AUC and PR-AUC on that split are undefined (reported as such,
        and left out of the early-stopping score when it is the validation split).
        """
        warnings = []
        for task in self.tasks:
            for split in self.splits:
                how = task.one_class(split)
                if how:
                    warnings.append(f"task '{task.name}' has only one class in split '{split}' ({how}; "
                                    f"{task.labelled.get(split, 0)} labelled rows): {_consequence(task, split)}")
        return warnings


def _consequence(task: TaskSpec, split: str) -> str:
    if task.type == "multiclass":
        return "its metrics there measure that class only"
    labelled, counts = task.labelled.get(split, 0), task.positives.get(split)
    if task.type == "multilabel" and any(0 < count < labelled for count in counts or []):
        return "those classes are left out of its mean AUC and PR-AUC there"
    return "its AUC and PR-AUC are undefined there"


def _all_or_none(positives: int, labelled: int) -> str | None:
    if positives == 0:
        return "all negative"
    return "all positive" if positives == labelled else None
