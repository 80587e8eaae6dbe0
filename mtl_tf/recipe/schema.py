"""The recipe schema: YAML validated into frozen pydantic models that refuse unknown keys.

Sections: ``name``, ``data``, ``datasets`` (optional), ``tasks``, ``model``, ``training``,
``tracking``, ``export``, ``analysis``.
Component sections (trunk, tower, architecture, optimizer, weighting, gradient, sampling)
are ``{name: ..., **options}`` specs; their names and options are checked against the
registries by :func:`mtl_tf.recipe.loader.check_components`.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from mtl_tf.errors import did_you_mean
from mtl_tf.recipe.charsets import UTF8, ascii_from_other_bytes, single_byte, source_encoding

FEATURE_KINDS = ("numeric", "categorical", "timestamp", "sequence", "image")
TASK_TYPES = ("binary", "multiclass", "multilabel", "regression", "segmentation", "depth", "detection")
# Task types whose label is per pixel (or per object) of the recipe's image feature.
DENSE_TASK_TYPES = ("segmentation", "depth", "detection")
SOURCE_KINDS = ("csv", "manifest", "image_folder", "npz")
IMAGE_ENCODINGS = ("png", "jpeg")
RESIZE_MODES = ("stretch", "pad", "crop")
DERIVED_LABELS = ("class_presence", "boundaries", "box_count")
_IMAGE_KEYS = ("height", "width", "channels", "encoding", "resize", "min_height", "min_width", "bit_depth", "window")
# Image keys left out of an image feature's dump unless set, so earlier recipes resolve as before.
_OPTIONAL_IMAGE_KEYS = ("bit_depth", "window")
WINDOW_MODES = ("per_image", "none")
SPLIT_NAMES = ("train", "validation", "test")
MAIN_DATASET = "data"
THOUSANDS_SEPARATORS = (",", ".", "'", "_", " ")
WHITESPACE_DELIMITER = r"\s+"
WHITESPACE_ALIASES = (WHITESPACE_DELIMITER, "whitespace")
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


class Loss(Component):
    """A task's loss: ``name`` (default: the task type's default loss) and its options,
    e.g. ``{pos_weight: auto}`` or ``{name: focal, gamma: 2}``."""

    name: str | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict) and self.name is None:
            data.pop("name", None)
        return data


class Window(Strict):
    """A fixed intensity window (radiology's window level and width): source values from
    ``center - width / 2`` to ``center + width / 2`` map linearly onto 0..255, values outside
    are clipped. A CT lung window is ``{center: -600, width: 1500}``."""

    center: float
    width: float = Field(gt=0)


class Feature(Strict):
    """One raw input column.

    ``numeric``: a float, normalised with the train-split mean and variance; a missing value
    becomes the mean plus a missing indicator. ``categorical``: a string, looked up in the
    train-split vocabulary (the ``top_k`` most frequent values, the rest go to
    ``oov_buckets`` hashed buckets) and embedded. ``timestamp``: ISO-8601 or epoch seconds,
    stored as int64 epoch seconds, encoded as cyclical hour-of-day and day-of-week.
    ``sequence``: the numeric values of the last ``length`` events, oldest first, in one
    cell joined by ``separator`` (``"12.5|3.0|80.1"``); a shorter history is left-padded
    with missing values, a longer one keeps its last ``length`` values, an empty cell is an
    empty history. Each element is normalised with the train statistics of all present
    elements, plus a per-step presence flag.
    ``image``: an image file (its path in a manifest column, relative to the manifest; a
    file of an image folder; an array of an npz source), decoded, checked (``channels``,
    at least ``min_height`` x ``min_width``), brought to ``height`` x ``width`` by
    ``resize`` (``stretch``: bilinear to the size; ``pad``: scaled to fit, then padded;
    ``crop``: scaled to cover, then centre-cropped) and stored encoded as ``encoding``.
    The model takes it as (height, width, channels) uint8 and normalises each channel with
    the train-split mean and standard deviation.
    """

    name: str
    kind: Literal["numeric", "categorical", "timestamp", "sequence", "image"]
    column: str | None = Field(None, description="CSV column, when it differs from name")
    top_k: int = Field(1000, ge=1, description="categorical: vocabulary size kept")
    oov_buckets: int = Field(1, ge=1, description="categorical: hashed buckets for the rest")
    embedding_dim: int | None = Field(None, ge=1, description="categorical: default from vocab size")
    required: bool = Field(False, description="a missing value rejects the row")
    min: float | None = Field(None, description="numeric, sequence: values below are rejected")
    max: float | None = Field(None, description="numeric, sequence: values above are rejected")
    length: int | None = Field(None, ge=1, description="sequence: events kept per row (required)")
    separator: str = Field("|", min_length=1, description="sequence: what joins the events in a cell")
    height: int | None = Field(None, ge=1, description="image: rows of the stored image (required)")
    width: int | None = Field(None, ge=1, description="image: columns of the stored image (required)")
    channels: Literal[1, 3] = Field(3, description="image: 1 (grayscale) or 3 (RGB); others are converted "
                                                   "when the conversion is lossless in meaning (RGBA -> RGB, "
                                                   "gray -> RGB), else rejected")
    encoding: Literal["png", "jpeg"] = Field("png", description="image: how the tf.Example stores it")
    resize: Literal["stretch", "pad", "crop"] = Field("stretch", description="image: how a source image of "
                                                                            "another size reaches height x width")
    min_height: int = Field(1, ge=1, description="image: smaller source images are rejected")
    min_width: int = Field(1, ge=1, description="image: narrower source images are rejected")
    bit_depth: Literal[8, 16] = Field(8, description="image: 16 accepts 16-bit sources (16-bit PNGs, integer "
                                                     "arrays wider than 8 bits, e.g. DICOM-like intensities) "
                                                     "and maps them to the stored 8-bit image by 'window'; "
                                                     "8-bit sources are stored as they are")
    window: Window | Literal["per_image", "none"] = Field(
        "none", description="image, bit_depth 16: how a 16-bit source reaches 0..255: {center, width} (a fixed "
                            "window), per_image (each image's min..max) or none (0..65535, i.e. value / 257)")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"must start with a letter and hold only letters, digits and '_'; received {value!r}")
        return value

    @model_validator(mode="after")
    def _sequence_length(self) -> "Feature":
        if self.kind == "sequence" and self.length is None:
            raise ValueError(f"feature '{self.name}': a sequence feature needs 'length' (events kept per "
                             "row, an integer >= 1); received none")
        if self.kind != "sequence" and self.length is not None:
            raise ValueError(f"feature '{self.name}': 'length' applies to sequence features only; "
                             f"received length {self.length} on a {self.kind} feature")
        if self.kind == "image" and (self.height is None or self.width is None):
            raise ValueError(f"feature '{self.name}': an image feature needs 'height' and 'width' (the stored "
                             f"size in pixels); received height {self.height}, width {self.width}")
        image_keys = sorted(k for k in _IMAGE_KEYS if k in self.model_fields_set)
        if self.kind != "image" and image_keys:
            raise ValueError(f"feature '{self.name}': {', '.join(image_keys)} apply to image features only; "
                             f"received them on a {self.kind} feature")
        if "window" in self.model_fields_set and self.bit_depth != 16:
            raise ValueError(f"feature '{self.name}': 'window' maps 16-bit sources to 8 bits and needs bit_depth: 16; "
                             f"received window {_window_text(self.window)} with bit_depth {self.bit_depth}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        # Image options are left out of other features, so their resolved form reads back.
        data = handler(self)
        if isinstance(data, dict):
            keys = _IMAGE_KEYS if self.kind != "image" else [k for k in _OPTIONAL_IMAGE_KEYS
                                                                 if k not in self.model_fields_set]
            for key in keys:
                data.pop(key, None)
        return data

    @property
    def source_column(self) -> str:
        return self.column or self.name


def _window_text(window: Any) -> str:
    return f"{{center: {window.center:g}, width: {window.width:g}}}" if isinstance(window, Window) else str(window)


class Source(Strict):
    """Where the raw data is. ``path`` is a glob (or a list of globs) relative to the recipe's cwd.

    Every cell is read without its surrounding spaces, so ``' Never married'`` is
    ``'Never married'``; an empty cell, or one listed in ``na_values``, is a missing value.
    Compressed files (``.gz``, ``.bz2``) are read as they are. Text is decoded from
    ``encoding``: UTF-8 or another encoding whose bytes below 0x80 are always ASCII (see
    :mod:`mtl_tf.recipe.charsets`), given by any Python name or alias and kept under its codec
    name.
    """

    kind: Literal["csv"] = "csv"
    path: str | list[str]
    delimiter: str = Field(",", description="one character, or '\\s+' (alias 'whitespace'): runs of spaces and "
                                            "tabs, leading and trailing ones ignored")
    header: bool = Field(True, description="the first line of every file names the columns; "
                                           "false: data.source.columns names them and every line is data")
    columns: list[str] | None = Field(None, description="the column names, in file order, of files "
                                                        "without a header line (header: false)")
    na_values: list[str] = Field(default_factory=list,
                                 description="cell values that mean missing in every column read, "
                                             "compared without surrounding spaces, e.g. ['?']")
    decimal: Literal[".", ","] = Field(".", description="the decimal mark of numbers: '.' (1234.5) or ',' "
                                                        "(1234,5; then a '.' in a number is refused unless it is "
                                                        "the thousands separator)")
    thousands: str | None = Field(None, description="the digit-group separator of numbers, dropped before "
                                                    "reading them: one of , . ' _ or a space (1.234,5 with "
                                                    "decimal ',' and thousands '.'); none by default")
    encoding: str = Field(UTF8, description="the files' text encoding: utf-8, a single-byte encoding (latin-1, "
                                            "cp1252, iso-8859-15, ...), euc-jp, euc-kr or gb2312")

    @field_validator("thousands")
    @classmethod
    def _group_separator(cls, value: str | None) -> str | None:
        if value is None or value in THOUSANDS_SEPARATORS:
            return value
        raise ValueError(f"must be one of {', '.join(repr(c) for c in THOUSANDS_SEPARATORS)} or null; "
                         f"received {value!r}")

    @field_validator("encoding")
    @classmethod
    def _readable_encoding(cls, value: str) -> str:
        return source_encoding(value)

    @field_validator("delimiter")
    @classmethod
    def _one_character_or_whitespace(cls, value: str) -> str:
        if value in WHITESPACE_ALIASES:
            return WHITESPACE_DELIMITER
        if len(value) == 1 and value not in '"\r\n':
            return value
        hint = ' (a tab is "\\t" in double quotes in YAML; in single quotes it is a backslash and a t)' \
            if value == "\\t" else ""
        raise ValueError(f"must be one character other than a quote or a line break (e.g. ',', ';', '|', \"\\t\"), or "
                         f"'\\s+' (alias 'whitespace') for runs of spaces and tabs; received {value!r}{hint}")

    @model_validator(mode="after")
    def _number_format(self) -> "Source":
        if self.thousands is None:
            return self
        if self.thousands == self.decimal:
            raise ValueError(f"thousands and decimal must differ; received {self.thousands!r} for both")
        if self.thousands == self.delimiter or (self.thousands == " " and self.delimiter == WHITESPACE_DELIMITER):
            raise ValueError(f"thousands {self.thousands!r} is also the delimiter: a number's groups would "
                             "split into fields; give another thousands separator or delimiter")
        return self

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
        _check_delimiter_encoding(self.delimiter, self.encoding)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        # Left out at their defaults, so earlier recipes resolve (and log) as before.
        data = handler(self)
        if isinstance(data, dict):
            for key, default in (("encoding", UTF8), ("decimal", "."), ("thousands", None)):
                if getattr(self, key) == default:
                    data.pop(key, None)
        return data

    @property
    def patterns(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


def _check_delimiter_encoding(delimiter: str, encoding: str) -> None:
    """Refuses a delimiter the encoding cannot write as bytes the record reader can find."""
    if delimiter == WHITESPACE_DELIMITER or encoding == UTF8:
        return
    if delimiter in ascii_from_other_bytes(encoding):
        raise ValueError(f"delimiter {delimiter!r} is also what some multi-byte characters of {encoding} decode to, "
                         f"so it cannot be found byte by byte; choose another delimiter; received delimiter "
                         f"{delimiter!r} with encoding {encoding}")
    if delimiter.isascii():
        return
    try:
        size = len(delimiter.encode(encoding))
    except UnicodeEncodeError:
        raise ValueError(f"delimiter {delimiter!r} cannot be written in {encoding}; received delimiter {delimiter!r} "
                         f"with encoding {encoding}") from None
    if size != 1 or not single_byte(encoding):
        raise ValueError(f"a delimiter other than an ASCII character needs utf-8 or a single-byte encoding (latin-1, "
                         f"cp1252, ...): in {encoding} its bytes could be part of other characters; received "
                         f"delimiter {delimiter!r} with encoding {encoding}")


def _without_default_encoding(data: Any, encoding: str) -> Any:
    if isinstance(data, dict) and encoding == UTF8:
        data.pop("encoding", None)
    return data


class ManifestSource(Strict):
    """A manifest: one row per image, as CSV (with a header line) or JSON lines.

    Columns hold the image path (relative to the manifest's folder, or absolute), image-level
    labels, paths of per-pixel label files (segmentation masks as indexed PNG or ``.npy``,
    depth as 16-bit PNG or ``.npy``) and boxes (``[[x_min, y_min, x_max, y_max, class], ...]``
    as JSON in a CSV cell or a list in JSONL; the class as a name or an index). ``format``
    ``auto`` reads ``.jsonl`` / ``.json`` files as JSON lines and the rest as CSV.
    """

    kind: Literal["manifest"]
    path: str | list[str] = Field(description="the manifest file(s): a glob or a list of globs")
    format: Literal["auto", "csv", "jsonl"] = "auto"
    delimiter: str = Field(",", min_length=1, max_length=1, description="csv manifests: the field separator")
    na_values: list[str] = Field(default_factory=list, description="cell values that mean missing")
    encoding: str = Field(UTF8, description="csv manifests: the text encoding, as for kind: csv (JSON lines are "
                                            "always UTF-8)")

    @field_validator("encoding")
    @classmethod
    def _readable_encoding(cls, value: str) -> str:
        return source_encoding(value)

    @model_validator(mode="after")
    def _encoding_of_csv(self) -> "ManifestSource":
        if self.format == "jsonl" and self.encoding != UTF8:
            raise ValueError(f"'encoding' applies to CSV manifests; JSON lines are UTF-8 (JSON's own rule); received "
                             f"format: jsonl with encoding {self.encoding}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        return _without_default_encoding(handler(self), self.encoding)

    @property
    def patterns(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class ImageFolderSource(Strict):
    """One sub-folder per class under ``path`` (the Keras ``image_dataset_from_directory``
    layout), for image classification.

    Each image file is a row with two columns: ``image`` (its path) and ``label`` (its
    sub-folder's name). Files directly under ``path`` and other extensions are ignored
    (and counted).
    """

    kind: Literal["image_folder"]
    path: str = Field(description="the root folder")
    extensions: list[str] = Field(default_factory=lambda: [".png", ".jpg", ".jpeg", ".bmp", ".gif"],
                                  min_length=1, description="file name endings read as images (any case)")

    @property
    def patterns(self) -> list[str]:
        return [self.path]


class NpzSource(Strict):
    """A NumPy ``.npz`` file of arrays with one row per item along the first axis.

    A feature's or label's ``column`` names an array. With ``splits`` the file holds its own
    splits as arrays named ``<prefix>_<column>`` (``{train: train, validation: val, test: test}``
    reads ``train_images``, ``val_images``, ...) and ``data.split`` splits nothing (its ``key``
    may name an array of ids, stored with each example and checked: no id in two of the
    file's splits); without it the arrays are named ``<column>``, or, with ``prefixes``,
    ``<prefix>_<column>`` for every prefix, read one after the other as one set of rows, and
    ``data.split`` splits the rows (by a patient id, say, when the file's own splits are not
    patient-wise). Image arrays are (N, H, W) or (N, H, W, C) integers; masks (N, H, W);
    depth (N, H, W) floats; boxes (N, K, 4) or (N, K, 5) with rows of -1 as padding.
    """

    kind: Literal["npz"]
    path: str | list[str] = Field(description="the .npz file(s): a glob or a list of globs")
    splits: dict[str, str] | None = Field(None, description="split -> array name prefix, e.g. {train: train, "
                                                            "validation: val, test: test}")
    prefixes: list[str] | None = Field(None, min_length=1,
                                       description="without splits: array name prefixes whose rows are read "
                                                   "together and split by data.split, e.g. [train, val, test]")

    @model_validator(mode="after")
    def _splits_or_prefixes(self) -> "NpzSource":
        if self.splits is not None and self.prefixes is not None:
            raise ValueError(f"give either 'splits' (the file's own splits) or 'prefixes' (rows of several prefixes "
                             f"split by data.split), not both; received splits {self.splits} and prefixes "
                             f"{self.prefixes}")
        if self.prefixes is not None and len(set(self.prefixes)) != len(self.prefixes):
            raise ValueError(f"prefixes must be unique; received {self.prefixes}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict) and self.prefixes is None:
            data.pop("prefixes", None)
        return data

    @field_validator("splits")
    @classmethod
    def _known_splits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        unknown = sorted(set(value) - set(SPLIT_NAMES))
        if unknown or "train" not in value:
            raise ValueError(f"split names must be among {', '.join(SPLIT_NAMES)} and include train; "
                             f"received {sorted(value)}")
        return value

    @property
    def patterns(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


AnySource = Annotated[Union[Source, ManifestSource, ImageFolderSource, NpzSource], Field(discriminator="kind")]


def _default_source_kind(value: Any) -> Any:
    """``kind`` defaults to csv, so recipes written before other kinds existed stay valid."""
    if isinstance(value, dict) and "kind" not in value:
        return {"kind": "csv", **value}
    return value


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
    key_pattern: str | None = Field(None, description="a regular expression searched in the key column's value; "
                                                      "its first group (or the whole match) is the key, e.g. "
                                                      "'^([^_]+)_' for the patient of '00001234_003.png'")
    train: float = Field(0.8, gt=0, lt=1)
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.1, ge=0, lt=1)
    seed: int = 0
    by_file: list[FileSplit] | None = Field(
        None, min_length=1, description="per-file fractions, e.g. [{files: '*.test.gz', validation: 0.5, "
                                        "test: 0.5}]; replaces train/validation/test")

    @field_validator("key_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a regular expression ({err}); received {value!r}") from None
        return value

    @model_validator(mode="after")
    def _sums_to_one(self) -> "Split":
        if self.key_pattern is not None and self.key is None:
            raise ValueError(f"key_pattern is applied to the key column's value and needs 'key'; received "
                             f"key_pattern {self.key_pattern!r} without a key")
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
        if isinstance(data, dict) and self.key_pattern is None:
            data.pop("key_pattern", None)
        return data

    def key_of(self, value: str) -> str | None:
        """The split key of a key column's value: the value, or what ``key_pattern`` picks
        from it (its first group, else the whole match); None when the pattern does not match."""
        if self.key_pattern is None:
            return value
        found = re.search(self.key_pattern, value)
        if found is None:
            return None
        return found.group(1) if found.re.groups else found.group(0)

    def fractions(self) -> dict[str, float]:
        """The top-level fractions (unused when ``by_file`` is given)."""
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def split_names(self) -> list[str]:
        """The splits some row can land in, in the order train, validation, test."""
        rules = [rule.fractions() for rule in self.by_file] if self.by_file else [self.fractions()]
        return [name for name in SPLIT_NAMES if any(rule[name] > 0 for rule in rules)]


class Augment(Strict):
    """Random augmentation of the training split's images (never validation, test or serving).

    Geometric changes apply alike to the image and every dense label (masks with nearest
    interpolation, depth, boxes); pixels a crop, rotation or shift brings in are the ignore
    value in masks and invalid (0) in depth. Colour changes touch the image only. Every
    option off (the default) means no augmentation.
    """

    flip_horizontal: bool = Field(False, description="mirror left-right with probability 0.5")
    flip_vertical: bool = Field(False, description="mirror top-bottom with probability 0.5")
    rotation: float = Field(0.0, ge=0, le=180, description="rotate by up to this many degrees either way")
    scale: tuple[float, float] | None = Field(None, description="zoom by a factor drawn in [low, high], "
                                                                "e.g. [0.8, 1.25]; the size stays the same")
    translate: float = Field(0.0, ge=0, lt=1, description="shift by up to this fraction of height and width")
    crop: float | None = Field(None, gt=0, le=1, description="a random crop of at least this fraction of each "
                                                             "side, resized back to the image size")
    brightness: float = Field(0.0, ge=0, le=1, description="add up to this fraction of the value range")
    contrast: float = Field(0.0, ge=0, le=1, description="scale contrast by a factor in [1 - c, 1 + c]")
    saturation: float = Field(0.0, ge=0, le=1, description="RGB: scale saturation by a factor in [1 - s, 1 + s]")
    hue: float = Field(0.0, ge=0, le=0.5, description="RGB: shift the hue by up to this fraction of the circle")

    @field_validator("scale")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 < value[0] <= value[1]:
            raise ValueError(f"scale must be [low, high] with 0 < low <= high; received {list(value)}")
        return value

    @property
    def active(self) -> bool:
        """Whether any option is on."""
        return any(getattr(self, name) not in (False, 0.0, None) for name in type(self).model_fields)


class Data(Strict):
    source: AnySource
    features: list[Feature] = Field(min_length=1)
    split: Split = Field(default_factory=lambda: Split(), description="default: 0.8 / 0.1 / 0.1 by the "
                                                                         "hashed row; not used by an npz "
                                                                         "source with splits")
    output_dir: str = Field(description="where the TFRecords, dataset.json and rejects go")
    shards: int = Field(4, ge=1, description="TFRecord shards per split")
    augment: Augment | None = Field(None, description="random augmentation of the training images")
    cache: Literal["auto", "memory", "disk", "none"] = Field(
        "auto", description="where parsed rows are kept between epochs: auto (memory when the split fits, "
                            "else disk), memory, disk (parsed once into a cache folder) or none (the shards "
                            "parsed every epoch)")
    cache_dir: str | None = Field(None, description="folder of the disk cache; default: cache/ beside the "
                                                    "dataset's shards")

    _s = field_validator("source", mode="before")(lambda cls, v: _default_source_kind(v))

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict):
            for key, default in (("augment", None), ("cache", "auto"), ("cache_dir", None)):
                if getattr(self, key) == default:
                    data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _unique_features(self) -> "Data":
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique; repeated: {', '.join(dupes)}")
        images = [f.name for f in self.features if f.kind == "image"]
        if self.source.kind == "csv" and images:
            raise ValueError(f"image feature(s) {', '.join(images)} need an image source (kind: manifest, "
                             "image_folder or npz); received data.source.kind csv")
        if self.augment is not None and self.augment.active and not images:
            raise ValueError("data.augment applies to image features; the recipe has none")
        if isinstance(self.source, NpzSource) and self.source.splits:
            # Only values other than the defaults split anything (a dumped recipe states them all).
            splitting = sorted(name for name in self.split.model_fields_set - {"key", "key_pattern"}
                               if getattr(self.split, name) != Split.model_fields[name].default)
            if splitting:
                raise ValueError(f"data.source.splits gives the npz file's own splits "
                                 f"({', '.join(self.source.splits)}), so data.split splits nothing; received "
                                 f"data.split {', '.join(splitting)}: remove data.split (or keep only its key: ids "
                                 "stored and checked across the file's splits), or remove data.source.splits (and "
                                 "list data.source.prefixes) to split the rows by data.split")
        return self

    @model_validator(mode="after")
    def _sequences_apart_from_numbers(self) -> "Data":
        marks = {getattr(self.source, "decimal", "."), getattr(self.source, "thousands", None)}
        for feature in self.features:
            if feature.kind == "sequence" and feature.separator in marks:
                raise ValueError(f"feature '{feature.name}': its separator {feature.separator!r} is also a mark of "
                                 "the source's numbers (data.source.decimal / thousands); give the sequence "
                                 "another separator")
        return self

    @property
    def image_feature(self) -> Feature | None:
        """The recipe's image feature (dense labels are aligned with it), or None."""
        images = [f for f in self.features if f.kind == "image"]
        return images[0] if images else None

    def split_names(self) -> list[str]:
        """The splits some row can land in, in the order train, validation, test."""
        if isinstance(self.source, NpzSource) and self.source.splits:
            return [name for name in SPLIT_NAMES if name in self.source.splits]
        return self.split.split_names()


class ExtraDataset(Strict):
    """One more dataset (``datasets[]``): other rows, the main dataset's feature columns,
    the labels of the tasks that name it (``tasks[].dataset``).

    It is preprocessed apart from ``data`` (its own TFRecords, dataset.json and rejects
    under ``output_dir``); the model's inputs and their statistics are the main dataset's.
    """

    name: str = Field(description="referred to by tasks[].dataset")
    source: AnySource
    split: Split = Field(description="default: data.split")
    output_dir: str = Field(description="where its TFRecords, dataset.json and rejects go")
    shards: int = Field(4, ge=1, description="TFRecord shards per split; default: data.shards")

    _s = field_validator("source", mode="before")(lambda cls, v: _default_source_kind(v))

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"must start with a letter and hold only letters, digits and '_'; received {value!r}")
        if value == MAIN_DATASET:
            raise ValueError(f"'{MAIN_DATASET}' names the main dataset (the data section); received {value!r}; "
                             "choose another name")
        return value


def _inherit_dataset_defaults(raw: Any) -> Any:
    """Fills ``datasets[].split``/``shards`` from ``data`` and ``tasks[].dataset`` with ``data``,
    so the resolved recipe shows where every task's label comes from."""
    if not isinstance(raw, dict) or not isinstance(raw.get("datasets"), list):
        return raw
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    inherited = {"shards": Data.model_fields["shards"].default}
    inherited.update({key: data[key] for key in ("split", "shards") if key in data})
    datasets = [{**inherited, **entry} if isinstance(entry, dict) else entry for entry in raw["datasets"]]
    tasks = raw.get("tasks")
    if isinstance(tasks, list):
        tasks = [{"dataset": MAIN_DATASET, **t} if isinstance(t, dict) and t.get("dataset") is None else t
                 for t in tasks]
    return {**raw, "datasets": datasets, "tasks": tasks}


class Task(Strict):
    """One task: its label column, type and options.

    Dense types read their label from the column named by ``label`` and align it with the
    recipe's image feature: ``segmentation`` a mask file (indexed PNG or ``.npy``) or array of
    class indices, ``ignore_index`` for pixels without a label; ``depth`` a 16-bit PNG (value
    / ``depth_scale``), a ``.npy`` or an array of depths, 0 for pixels without a depth;
    ``detection`` a list of boxes ``[x_min, y_min, x_max, y_max, class]`` in ``box_units``.
    ``derive`` computes the label from another kind of label in the same column:
    ``class_presence`` (multilabel: which mask classes occur), ``boundaries`` (segmentation:
    pixels where the mask's class changes, classes [background, boundary]) and ``box_count``
    (regression: how many boxes).
    ``loss`` and ``head`` are the task type's own options (see the README's task table).
    """

    name: str
    type: Literal["binary", "multiclass", "multilabel", "regression", "segmentation", "depth", "detection"]
    label: str = Field(description="the column (CSV, manifest) or array (npz) holding the label")
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
    dataset: str | None = Field(None, description="the dataset holding this task's label: 'data' (the main "
                                                  "dataset, the default) or a datasets[].name")
    ignore_index: int = Field(255, ge=0, le=255, description="segmentation: mask value of pixels without a label")
    depth_scale: float = Field(1.0, gt=0, description="depth: a stored value divided by this is the depth "
                                                      "(e.g. 256 for 16-bit PNGs in 1/256 m)")
    box_units: Literal["pixels", "relative"] = Field("pixels", description="detection: box coordinates in source "
                                                                          "image pixels or as fractions")
    max_boxes: int = Field(32, ge=1, description="detection: boxes kept per image (the rest are rejected "
                                                 "with the item)")
    derive: Literal["class_presence", "boundaries", "box_count"] | None = Field(
        None, description="compute the label from the column's dense label (see above)")
    loss: Loss | None = Field(None, description="the task type's loss and its options; default per type")
    specificity: float | None = Field(None, gt=0, lt=1, description="binary, multilabel: the specificity at which "
                                                                   "metric sensitivity_at_specificity reads the "
                                                                   "sensitivity (default 0.9)")
    head: dict[str, Any] | None = Field(None, description="the task type's head options (e.g. detection: "
                                                          "max_detections)")
    standardize: bool | None = Field(None, description="regression: learn the label in standard units of the "
                                                       "train split (dataset.json stats) and answer in the "
                                                       "label's units (default true); false: raw MSE")

    _l = field_validator("loss", mode="before")(lambda cls, v: _component(v))

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"must start with a letter and hold only letters, digits and '_'; received {value!r}")
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        # Recipes without ``datasets`` leave ``dataset`` unset, and tabular tasks leave the dense
        # options unset; leaving them out of the dump keeps the resolved form and MLflow params
        # of such recipes as they were before the keys existed.
        data = handler(self)
        if isinstance(data, dict):
            if self.dataset is None:
                data.pop("dataset", None)
            for key in _DENSE_OPTIONS:
                if key not in self.model_fields_set:
                    data.pop(key, None)
        return data

    @property
    def dense(self) -> bool:
        """Whether the label is per pixel or per object of the image."""
        return self.type in DENSE_TASK_TYPES

    @property
    def label_key(self) -> str:
        """The tf.Example key of the label: the column, or ``<column>:<derive>`` for a derived label."""
        return f"{self.label}:{self.derive}" if self.derive else self.label

    @property
    def dataset_name(self) -> str:
        """The dataset holding this task's label (``"data"`` when unset)."""
        return self.dataset or MAIN_DATASET

    @model_validator(mode="after")
    def _classes(self) -> "Task":
        if self.type in ("multiclass", "multilabel", "segmentation", "detection") and not self.classes:
            raise ValueError(f"a {self.type} task needs 'classes' (the class names)")
        if self.type == "segmentation" and len(self.classes) > self.ignore_index:
            raise ValueError(f"a segmentation task's classes are mask values 0..{len(self.classes) - 1}, so "
                             f"ignore_index must be at least {len(self.classes)}; received {self.ignore_index}")
        misplaced = [key for key, types in _TYPE_OPTIONS.items()
                     if key in self.model_fields_set and self.type not in types]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} do not apply to a {self.type} task; "
                             + "; ".join(f"{k} is for {'/'.join(_TYPE_OPTIONS[k])}" for k in misplaced))
        allowed = _DERIVED_TYPES.get(self.derive)
        if allowed is not None and self.type != allowed:
            raise ValueError(f"derive: {self.derive} makes a {allowed} label; received type {self.type}")
        if self.positive is not None and self.type != "binary":
            raise ValueError(f"'positive' is for binary tasks; received it on a {self.type} task")
        clash = sorted(set(self.positive or []) & set(self.na_values))
        if clash:
            raise ValueError(f"a label value cannot mean both positive and missing; received {clash} in "
                             "positive and na_values")
        if self.primary_metric and self.metrics and self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric '{self.primary_metric}' is not among metrics {self.metrics}")
        return self


_TYPE_OPTIONS = {"ignore_index": ("segmentation",), "depth_scale": ("depth",),
                 "box_units": ("detection",), "max_boxes": ("detection",),
                 "specificity": ("binary", "multilabel"), "standardize": ("regression",)}
# Left out of a task's dump unless set, so recipes written before they existed resolve as before.
_DENSE_OPTIONS = ("ignore_index", "depth_scale", "box_units", "max_boxes", "derive", "loss", "head", "specificity",
                  "standardize")
_DERIVED_TYPES = {"class_presence": "multilabel", "boundaries": "segmentation", "box_count": "regression"}


class Model(Strict):
    """``trunk`` encodes the inputs; ``architecture`` arranges what tasks share; ``tower`` is
    each image-level or tabular task's MLP; ``decoder`` turns the trunk's feature maps back
    into a full-resolution map for each dense task (``unet``, ``fpn``, ``aspp``)."""

    architecture: Component = Component(name="hps")
    trunk: Component = Component(name="mlp")
    tower: Component = Component(name="mlp")
    decoder: Component = Component(name="fpn")

    _c = field_validator("architecture", "trunk", "tower", "decoder", mode="before")(lambda cls, v: _component(v))

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        # The decoder only means something for dense tasks; left out unless set.
        data = handler(self)
        if isinstance(data, dict) and "decoder" not in self.model_fields_set:
            data.pop("decoder", None)
        return data


class EarlyStopping(Strict):
    patience: int = Field(3, ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0)


class Distribution(Strict):
    strategy: Literal["default", "auto", "one_device", "mirrored", "multi_worker", "tpu"] = Field(
        "default", description="auto: multi_worker when TF_CONFIG is set, else mirrored over several GPUs, else "
                               "default; tpu: TPUStrategy (needs a TPU build of TensorFlow)")
    tpu: str | None = Field(None, description="strategy tpu: 'local' (the TPU VM's chips, the default), a TPU "
                                              "name, or grpc://host:8470")

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        # Left out unless set, so the resolved form of earlier recipes stays as it was.
        data = handler(self)
        if isinstance(data, dict) and self.tpu is None:
            data.pop("tpu", None)
        return data

    @model_validator(mode="after")
    def _tpu_only_for_tpu(self):
        if self.tpu is not None and self.strategy != "tpu":
            raise ValueError(f"tpu: only strategy 'tpu' reads it; received tpu {self.tpu!r} with strategy "
                             f"{self.strategy!r}")
        return self


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
    steps_per_execution: int | str = Field(
        "auto", description="training steps per call of the compiled step when the data knows its length; "
                            "'auto': 1/50 of an epoch under a progress bar, else up to 100 steps")
    mixed_precision: Literal["mixed_float16", "mixed_bfloat16"] | None = Field(
        None, description="compute in float16/bfloat16 with float32 weights (float16: with loss scaling)")
    jit_compile: bool | Literal["auto"] = Field("auto", description="compile the step with XLA; auto: on a "
                                                                   "GPU or TPU when every layer supports it")
    checkpoint_every_steps: int | None = Field(
        None, ge=1, description="also checkpoint every N training steps inside an epoch, so a run killed "
                                "mid-epoch resumes from its last N-step mark; default: at epoch ends only")
    seed: int = 0

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        # Left out unless set, so the resolved form of earlier recipes stays as it was.
        data = handler(self)
        if isinstance(data, dict):
            for key in ("mixed_precision", "jit_compile", "checkpoint_every_steps"):
                if key not in self.model_fields_set:
                    data.pop(key, None)
        return data

    _c = field_validator("optimizer", "task_optimizer", "weighting", "gradient", "sampling", mode="before")(
        lambda cls, v: _component(v))

    @field_validator("steps_per_execution", mode="before")
    @classmethod
    def _steps_or_auto(cls, value: Any) -> int | str:
        if value == "auto":
            return value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"must be an integer >= 1 or 'auto'; received {value!r}")
        return value


class Tracking(Strict):
    experiment: str | None = Field(None, description="MLflow experiment; default: the recipe name")
    register_as: str | None = Field(None, description="registered model name; default: the recipe name")
    tracking_uri: str | None = Field(None, description="overridden by --tracking-uri and MLFLOW_TRACKING_URI")


class Export(Strict):
    dir: str | None = Field(None, description="default: <output_dir>/export")
    skew_examples: int = Field(256, ge=1, description="test examples compared after reload")
    skew_tolerance: float = Field(1e-4, gt=0)
    dense_probabilities: bool = Field(False, description="segmentation signatures also return per-pixel "
                                                         "class probabilities (large)")

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict) and "dense_probabilities" not in self.model_fields_set:
            data.pop("dense_probabilities", None)
        return data


class Analysis(Strict):
    """Task relationships measured at epoch ends on a few fixed training batches (0 turns one off)."""

    conflict_batches: int = Field(4, ge=0, description="batches for the task-gradient cosine matrix")
    affinity_batches: int = Field(4, ge=0, description="batches for the lookahead inter-task affinity")
    affinity_lr: float | None = Field(None, gt=0, description="lookahead step; default the optimizer's "
                                                               "learning rate at that epoch")
    every: int = Field(1, ge=1, description="measure after every n-th epoch")


class ByKey(Strict):
    """Tasks scored per split key (per patient) as well as per row: each key's rows' predicted
    probabilities are aggregated (``mean`` or ``max``) and its label is the largest of its
    rows' labels (positive when any row is: a patient-level label repeated on every slice,
    or "some slice shows it")."""

    tasks: list[str] = Field(min_length=1, description="binary or multilabel tasks")
    aggregate: Literal["mean", "max"] = Field("mean", description="how a key's row probabilities combine")


class Evaluation(Strict):
    """What the test evaluation adds to each task's metrics.

    ``calibration``: expected calibration error and a reliability plot for every binary task
    and every class of a multilabel task, over ``calibration_bins`` equal-width bins.
    ``by_key``: some tasks also scored per ``data.split.key`` value (per patient).
    """

    calibration: bool = Field(True, description="ECE and reliability plots of binary and multilabel tasks")
    calibration_bins: int = Field(15, ge=2, le=100, description="equal-width probability bins")
    by_key: ByKey | None = Field(None, description="tasks also scored per split key value (e.g. per patient)")


class Recipe(Strict):
    name: str
    output_dir: str | None = Field(None, description="run outputs; default: artifacts/<name>")
    data: Data
    datasets: list[ExtraDataset] | None = Field(
        None, min_length=1, description="more datasets with the same feature columns, each holding the "
                                        "labels of the tasks that name it in tasks[].dataset")
    tasks: list[Task] = Field(min_length=1)
    model: Model = Model()
    training: Training = Training()
    tracking: Tracking = Tracking()
    export: Export = Export()
    analysis: Analysis = Analysis()
    evaluation: Evaluation = Evaluation()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", value):
            raise ValueError(f"must hold only letters, digits, '_', '.', '-'; received {value!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _dataset_defaults(cls, raw: Any) -> Any:
        return _inherit_dataset_defaults(raw)

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        # Without extra datasets the key is left out, so one-dataset recipes dump as before.
        data = handler(self)
        if self.datasets is None and isinstance(data, dict):
            data.pop("datasets", None)
        if isinstance(data, dict) and "evaluation" not in self.model_fields_set:
            data.pop("evaluation", None)
        return data

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
        self._check_datasets()
        self._dense_tasks_have_an_image()
        self._check_by_key()
        return self

    def _check_by_key(self) -> None:
        by_key = self.evaluation.by_key
        if by_key is None:
            return
        if not self.data.split.key:
            raise ValueError("evaluation.by_key scores tasks per data.split.key value, so it needs data.split.key "
                             "(e.g. the patient id column); received no split key")
        types = {t.name: t.type for t in self.tasks}
        for i, name in enumerate(by_key.tasks):
            if name not in types:
                raise ValueError(f"evaluation.by_key.tasks.{i}: unknown task {name!r}{did_you_mean(name, types)}; "
                                 f"tasks: {', '.join(types)}")
            if types[name] not in ("binary", "multilabel"):
                raise ValueError(f"evaluation.by_key.tasks.{i}: task '{name}' is {types[name]}; per-key scoring is "
                                 "for binary and multilabel tasks")

    def _dense_tasks_have_an_image(self) -> None:
        images = [f.name for f in self.data.features if f.kind == "image"]
        dense = [t.name for t in self.tasks if t.dense or t.derive]
        if dense and len(images) != 1:
            raise ValueError(f"task(s) {', '.join(dense)} are dense (or derived from dense labels) and need exactly "
                             f"one image feature to align with; received {len(images)} image features"
                             f"{': ' + ', '.join(images) if images else ''}")
        if dense and self.datasets:
            raise ValueError("dense tasks read one image dataset; 'datasets' (tasks from several datasets) is for "
                             "tabular recipes")

    def _check_datasets(self) -> None:
        """Dataset names unique, every task's dataset declared, no dataset without a task,
        no two datasets writing to one folder."""
        names = [d.name for d in self.datasets or []]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"datasets[].name must be unique; received repeated {', '.join(dupes)}")
        allowed = [MAIN_DATASET, *names]
        for i, task in enumerate(self.tasks):
            if task.dataset_name not in allowed:
                raise ValueError(f"tasks.{i}.dataset (task '{task.name}'): unknown dataset; received "
                                 f"{task.dataset!r}{did_you_mean(task.dataset_name, allowed)}; allowed: "
                                 f"{', '.join(allowed)}")
        used = {task.dataset_name for task in self.tasks}
        for where, name in [("data", MAIN_DATASET), *((f"datasets.{i}", n) for i, n in enumerate(names))]:
            if name not in used:
                raise ValueError(f"{where} ('{name}') holds no task; every dataset needs at least one task "
                                 f"(tasks[].dataset: {name}); received tasks on: {', '.join(sorted(used))}")
        self._distinct_output_dirs()

    def _distinct_output_dirs(self) -> None:
        seen = {os.path.normpath(self.data.output_dir): MAIN_DATASET}
        for dataset in self.datasets or []:
            folder = os.path.normpath(dataset.output_dir)
            if folder in seen:
                raise ValueError(f"datasets '{seen[folder]}' and '{dataset.name}' both write to the same output_dir; "
                                 f"received {dataset.output_dir!r} twice; give each dataset its own folder")
            seen[folder] = dataset.name

    def _same_label_same_reading(self) -> None:
        # Tasks that share a label column share one tf.Example key, so they must read it alike.
        seen: dict[str, Task] = {}
        for task in self.tasks:
            first = seen.setdefault(task.label_key, task)
            reading = ("type", "classes", "positive", "na_values", "ignore_index", "depth_scale", "box_units",
                       "max_boxes")
            if any(getattr(first, k) != getattr(task, k) for k in reading):
                raise ValueError(f"tasks '{first.name}' and '{task.name}' read label column '{task.label}' "
                                 f"differently ({', '.join(reading)} must agree); received "
                                 f"{first.type}/{first.positive} and {task.type}/{task.positive}")

    def _columns_named(self) -> None:
        """With ``source.columns``, every column a dataset reads must be one of them."""
        sections = [("data", MAIN_DATASET, self.data.source, self.data.split)]
        sections += [(f"datasets.{i}", d.name, d.source, d.split) for i, d in enumerate(self.datasets or [])]
        for where, dataset, source, split in sections:
            names = getattr(source, "columns", None)
            if names is None:
                continue
            wanted = [(f.source_column, f"feature '{f.name}'") for f in self.data.features]
            wanted += [(t.label, f"label of task '{t.name}'") for t in self.tasks if t.dataset_name == dataset]
            if split.key:
                wanted.append((split.key, f"{where}.split.key"))
            for column, role in wanted:
                if column not in names:
                    raise ValueError(f"{where}.source.columns has no column '{column}' ({role})"
                                     f"{did_you_mean(column, names)}; received {len(names)} columns: "
                                     f"{', '.join(names)}")

    @property
    def run_dir(self) -> str:
        return self.output_dir or f"artifacts/{self.name}"

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def dataset_names(self) -> list[str]:
        """``"data"`` (the main dataset) and then every ``datasets[].name``."""
        return [MAIN_DATASET, *(d.name for d in self.datasets or [])]

    def dataset_tasks(self, name: str) -> list[Task]:
        """The tasks whose labels dataset ``name`` holds, in recipe order."""
        if name not in self.dataset_names:
            raise KeyError(f"no dataset '{name}'{did_you_mean(name, self.dataset_names)}; datasets: "
                           f"{', '.join(self.dataset_names)}")
        return [t for t in self.tasks if t.dataset_name == name]

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)
