"""Raw rows -> serialized tf.Example, exactly as the Beam pipeline writes them.

The cells are parsed by :class:`pipelines.rows.RowParser` (the parser the Beam conversion
runs) on the recipe's features only, and encoded by :func:`pipelines.encoding.encode_example`,
so a row served here becomes the very example it would have been in the TFRecords: the
same missing values, ``na_values``, ``min``/``max`` checks, timestamp and sequence parsing.
Labels, the split key and any other column are ignored.

Inputs:
- CSV: read as the recipe's source (delimiter, header line or ``data.source.columns``,
  ``data.source.encoding``, quoted line breaks, a BOM), with
  :func:`pipelines.records.read_records`; the strings in the examples are the decoded text.
- JSON lines: UTF-8 (JSON's own rule, whatever the recipe's CSV encoding), one object per
  line, keyed by column name (the feature's ``column``, else its name). A missing key or ``null`` is a missing value; numbers and strings are cells as they
  would be in a CSV file; a list is a sequence feature's events.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from mtl_tf.recipe.schema import Recipe, Split

# Row problems only serving sees (the others are the Beam pipeline's reject kinds).
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
WRONG_TYPE = "wrong_type"
INPUT_FORMATS = ("csv", "jsonl")


@dataclass(frozen=True)
class RowInput:
    """One input row: its serialized example, or why it has none.

    Attributes:
        row: the row's position among the input's rows, from 0 (blank lines are not rows).
        example: the serialized tf.Example, or None when the row was rejected.
        kind: the reason kind of a rejected row.
        reason: the reason, as the rejects file of the Beam pipeline words it.
    """

    row: int
    example: bytes | None = None
    kind: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.example is not None


class ExampleEncoder:
    """Turns rows into the tf.Examples the recipe's Beam pipeline would write (features only).

    Args:
        recipe: the recipe the model was trained with (its features and source options).

    Raises:
        ValueError: the recipe has image features (their rows hold files:
            :class:`~mtl_tf.serving.image_rows.ImageExampleEncoder` reads them).
    """

    def __init__(self, recipe: Recipe):
        images = [f.name for f in recipe.data.features if f.kind == "image"]
        if images:
            raise ValueError(f"feature(s) {', '.join(images)} are images: rows of image recipes hold file paths, "
                             "which ImageExampleEncoder (mtl_tf.serving.image_rows) reads; this encoder converts "
                             "tabular rows")
        self._recipe = features_only(recipe)
        self.source = recipe.data.source
        self.features = list(recipe.data.features)
        self.columns = [f.source_column for f in self.features]
        self._parsers: dict[tuple[str, ...], Any] = {}

    def encode_fields(self, header: Sequence[str], fields: Sequence[str]) -> bytes:
        """The example of one CSV row; raises :class:`pipelines.rows.RowRejected` with the reason."""
        from pipelines.encoding import encode_example

        _, values = self._parser(header).parse(fields)
        return encode_example(values)

    def encode_mapping(self, row: Any) -> bytes:
        """The example of one JSON object; raises :class:`pipelines.rows.RowRejected` with the reason."""
        from pipelines.rows import RowRejected

        if not isinstance(row, Mapping):
            raise RowRejected(NOT_AN_OBJECT, f"a JSON row must be an object keyed by column; received "
                                             f"{type(row).__name__}")
        cells = [self._cell(feature, row.get(column)) for feature, column in zip(self.features, self.columns)]
        return self.encode_fields(self.columns, cells)

    def _cell(self, feature: Any, value: Any) -> str:
        from pipelines.rows import RowRejected

        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float, str)):
            return _number_text(value) if not isinstance(value, str) else value
        if isinstance(value, list) and feature.kind == "sequence":
            if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value):
                raise RowRejected(WRONG_TYPE, f"sequence '{feature.source_column}' must be a list of numbers (null "
                                              f"for a missing event); received {json.dumps(value)[:200]}")
            return feature.separator.join("" if v is None else _number_text(v) for v in value)
        raise RowRejected(WRONG_TYPE, f"'{feature.source_column}' must be a number, a string or null"
                                      f"{' (a list for a sequence)' if feature.kind != 'sequence' else ''}; "
                                      f"received {type(value).__name__} {json.dumps(value)[:200]}")

    def _parser(self, header: Sequence[str]) -> Any:
        from pipelines.rows import RowParser

        key = tuple(header)
        if key not in self._parsers:
            self._parsers[key] = RowParser(self._recipe, header)
        return self._parsers[key]

    def read(self, path: str | Path, format: str | None = None) -> Iterator[RowInput]:
        """The rows of a CSV or JSON-lines file (format from the suffix unless given)."""
        path = Path(path)
        kind = format or input_format(path)
        return self._read_jsonl(path) if kind == "jsonl" else self._read_csv(path)

    def _read_jsonl(self, path: Path) -> Iterator[RowInput]:
        from pipelines.rows import RowRejected

        with path.open("rb") as handle:
            row = 0
            for raw in handle:
                try:
                    text = raw.decode("utf-8").strip()
                except UnicodeDecodeError as error:
                    yield RowInput(row, kind="encoding", reason=f"not UTF-8: byte {raw[error.start]:#04x} at "
                                                                f"position {error.start}")
                    row += 1
                    continue
                if not text:
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as error:
                    yield RowInput(row, kind=MALFORMED_JSON, reason=f"not a JSON object: {error.msg} at column "
                                                                     f"{error.colno}")
                else:
                    yield self._encoded(row, lambda: self.encode_mapping(value), RowRejected)
                row += 1

    def _read_csv(self, path: Path) -> Iterator[RowInput]:
        from pipelines.records import BadRecord, read_records
        from pipelines.rows import RowRejected, split_line

        delimiter = self.source.delimiter
        header = None if self.source.header else list(self.source.columns or [])
        with path.open("rb") as handle:
            row = 0
            for record in read_records(handle, 0, None, delimiter, encoding=self.source.encoding):
                if record is None:
                    continue
                if header is None:
                    if isinstance(record, BadRecord):
                        raise ValueError(f"{path}: the header line cannot be read: {record.reason}")
                    header = [name.strip() for name in split_line(record, delimiter)]
                    self._parser(header)  # a missing feature column is one error for the file
                    continue
                if isinstance(record, BadRecord):
                    yield RowInput(row, kind=record.kind, reason=record.reason)
                else:
                    yield self._encoded(row, lambda: self.encode_fields(header, split_line(record, delimiter)),
                                        RowRejected)
                row += 1

    @staticmethod
    def _encoded(row: int, encode: Any, rejected: type) -> RowInput:
        try:
            return RowInput(row, example=encode())
        except rejected as reject:
            return RowInput(row, kind=reject.kind, reason=reject.message)


def features_only(recipe: Recipe) -> Recipe:
    """``recipe`` reading its features alone: no labels, no split key, so rows without them convert."""
    return recipe.model_copy(update={"data": recipe.data.model_copy(update={"split": Split()}), "tasks": []})


def input_format(path: str | Path) -> str:
    """``csv`` or ``jsonl`` from a file name (``.csv``, ``.jsonl``, ``.json``, ``.ndjson``)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise ValueError(f"cannot tell the format of {str(path)!r} from its suffix {suffix!r}; allowed: .csv (the "
                     "recipe's CSV layout), .jsonl (one JSON object per line); or pass --format csv|jsonl")


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return repr(value) if isinstance(value, float) else str(value)
