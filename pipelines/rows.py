"""Parsing and validating one CSV row against a recipe, in plain Python.

The Beam DoFns and the plain-Python converter both call :class:`RowParser`, so a row is
parsed, validated and typed the same way everywhere. A parsed row is ``(key, values)``:
the split key (the key column's value, or the row's content when the recipe has no split
key) and a dict from tf.Example key (feature name or label column) to a typed value; a
missing value (an empty cell, or one of the recipe's ``na_values``) is simply absent.

Typed values: numeric ``float``; categorical ``str``; timestamp ``int`` epoch seconds;
sequence a ``list[float]`` of exactly ``length`` values (NaN for missing elements and the
left padding); binary and regression labels ``float``; multiclass ``int`` class index;
multilabel a ``list[float]`` multi-hot vector.

Numbers: ``nan`` (any case) is a missing value, like an empty cell; ``inf``, ``-inf`` and
anything beyond float32's range (``1e400``, ``1e39``) reject the row as ``not_finite``, since
the examples store float32. Timestamps are integer epoch seconds (ASCII digits, an optional
sign, within int64) or ISO-8601.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from mtl_tf.recipe.schema import WHITESPACE_DELIMITER, Recipe, Task

REJECT_KINDS = ("wrong_field_count", "unparsable_number", "not_finite", "below_min", "above_max",
                "missing_required", "unparsable_timestamp", "label_not_allowed", "unknown_class",
                "encoding", "unclosed_quote", "record_too_long", "malformed_csv", "split_key_unmatched")

FLOAT32_MAX = 3.4028234663852886e38
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_EPOCH_SECONDS = re.compile(r"[+-]?[0-9]+")
_WHITESPACE_FIELD = re.compile(r'"((?:[^"]|"")*+)"(\S*+)|(\S++)')

BINARY_VALUES = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0,
                 "no": 0.0, "yes": 1.0}
BINARY_ALLOWED = "0, 1, true, false, yes, no"

Row = tuple[str, dict[str, Any]]


class RowRejected(ValueError):
    """A row that cannot be used; ``kind`` is one of :data:`REJECT_KINDS`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def reject_record(path: str, line: str, reject: RowRejected) -> dict[str, str]:
    """The rejects-file entry of a rejected line: file, reason, reason kind and the line itself."""
    return {"file": path, "reason": reject.message, "kind": reject.kind, "line": line}


def split_line(line: str, delimiter: str = ",") -> list[str]:
    """The fields of one CSV record; quoted fields (which may hold delimiters and line breaks)
    are handled by the csv module.

    With :data:`~mtl_tf.recipe.schema.WHITESPACE_DELIMITER` fields are separated by runs of
    whitespace, leading and trailing whitespace ignored; a field that starts with a quote
    runs to its closing quote.

    Raises:
        RowRejected: ``malformed_csv``, when the csv module cannot read the record.
    """
    if delimiter == WHITESPACE_DELIMITER:
        return line.split() if '"' not in line else _split_whitespace_quoted(line)
    if '"' not in line:
        return line.split(delimiter)
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error as err:
        raise RowRejected("malformed_csv", f"unreadable CSV record: {err}") from None


def _split_whitespace_quoted(line: str) -> list[str]:
    return [m[1].replace('""', '"') + m[2] if m[3] is None else m[3] for m in _WHITESPACE_FIELD.finditer(line)]


NumberFormat = Callable[[str], str]


def number_format(decimal: str = ".", thousands: str | None = None) -> NumberFormat | None:
    """How a cell of the source's number format becomes text ``float`` reads: the
    ``thousands`` separator dropped and a ``','`` decimal mark made a ``'.'``; None for plain
    numbers (``'.'`` decimal, no separator). With a ``','`` decimal mark a ``'.'`` that is not
    the separator makes the cell unparsable (``1.5`` there is no number of that format)."""
    if decimal == ".":
        return None if thousands is None else (lambda text: text.replace(thousands, ""))

    def plain(text: str) -> str:
        if thousands is not None:
            text = text.replace(thousands, "")
        if "." in text:
            raise ValueError("a '.' in a number whose decimal mark is ','")
        return text.replace(",", ".")

    return plain


def parse_number(text: str, column: str, number: NumberFormat | None = None) -> float | None:
    """A float within float32's range, or None for an empty cell or ``nan``.

    Args:
        text: the cell.
        column: its column, for the reject reason.
        number: the source's number format (:func:`number_format`); None: ``float``'s own.

    Raises:
        RowRejected: ``unparsable_number`` for text that is not a number, ``not_finite`` for
            an infinity or a number beyond float32's range.
    """
    text = text.strip()
    if not text:
        return None
    try:
        value = float(number(text) if number is not None else text)
    except ValueError:
        hint = "" if number is None else " (data.source.decimal / thousands set the number format)"
        raise RowRejected("unparsable_number", f"unparsable number in '{column}': {text!r}{hint}") from None
    if value != value:
        return None
    if not -FLOAT32_MAX <= value <= FLOAT32_MAX:
        raise RowRejected("not_finite", f"not a finite number in '{column}': {text!r} (numbers are stored as "
                          "float32, within +-3.4e38)")
    return value


def parse_timestamp(text: str, column: str) -> int | None:
    """Epoch seconds from integer seconds or ISO-8601 (a naive time is UTC); None when empty.

    Raises:
        RowRejected: ``unparsable_timestamp`` for anything else, or a time outside int64 seconds.
    """
    text = text.strip()
    if not text:
        return None
    try:
        if _EPOCH_SECONDS.fullmatch(text):
            seconds = int(text)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            seconds = int(moment.timestamp())
    except (ValueError, OverflowError):
        raise RowRejected("unparsable_timestamp", f"unparsable timestamp in '{column}': {text!r} "
                          "(allowed: ISO-8601 or integer epoch seconds)") from None
    if not INT64_MIN <= seconds <= INT64_MAX:
        raise RowRejected("unparsable_timestamp", f"timestamp out of range in '{column}': {text!r} "
                          "(epoch seconds must fit in int64)")
    return seconds


def parse_category(text: str, column: str) -> str | None:
    """The stripped string, or None for an empty cell."""
    return text.strip() or None


def label_parser(task: Task, number: NumberFormat | None = None) -> Callable[[str], Any]:
    """The function that turns a label cell of ``task`` into its typed value (None = no label);
    ``number``: the source's number format (:func:`number_format`), for regression labels."""
    column = task.label
    if task.positive:
        positive = frozenset(task.positive)
        return lambda text: _positive_set(text, positive)
    if task.type == "binary":
        return lambda text: _binary(text, column)
    if task.type == "regression":
        return lambda text: parse_number(text, column, number)
    index = {name: i for i, name in enumerate(task.classes or [])}
    if task.type == "multiclass":
        return lambda text: _multiclass(text, column, index)
    return lambda text: _multilabel(text, column, index)


def _binary(text: str, column: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    value = BINARY_VALUES.get(text.lower())
    if value is None:
        raise RowRejected("label_not_allowed", f"label value not allowed in '{column}': {text!r} "
                          f"(allowed: {BINARY_ALLOWED}; other values need the task's 'positive' list)")
    return value


def _positive_set(text: str, positive: frozenset[str]) -> float | None:
    text = text.strip()
    if not text:
        return None
    return 1.0 if text in positive else 0.0


def _class_index(name: str, column: str, index: dict[str, int]) -> int:
    if name not in index:
        raise RowRejected("unknown_class", f"unknown class in '{column}': {name!r} "
                          f"(allowed: {', '.join(index)})")
    return index[name]


def _multiclass(text: str, column: str, index: dict[str, int]) -> int | None:
    text = text.strip()
    return _class_index(text, column, index) if text else None


def _multilabel(text: str, column: str, index: dict[str, int]) -> list[float] | None:
    names = [name.strip() for name in text.split("|") if name.strip()]
    if not names:
        return None
    hot = [0.0] * len(index)
    for name in names:
        hot[_class_index(name, column, index)] = 1.0
    return hot


def required_columns(recipe: Recipe) -> list[tuple[str, str]]:
    """``(column, what it is for)`` for every CSV column the recipe reads."""
    columns = [(f.source_column, f"feature '{f.name}'") for f in recipe.data.features]
    columns += [(t.label, f"label of task '{t.name}'") for t in recipe.tasks]
    if recipe.data.split.key:
        columns.append((recipe.data.split.key, "split key (data.split.key)"))
    return columns


def content_key(fields: Sequence[str]) -> str:
    """The split key of a row without a key column: its cells, without surrounding spaces."""
    return "\x1f".join(field.strip() for field in fields)


class RowParser:
    """Parses the fields of one file's rows into ``(key, values)``; built once per header.

    Args:
        recipe: the recipe (features, tasks, split key).
        header: the column names of the file, in order.

    Raises:
        ValueError: a column the recipe reads is not in ``header``.
    """

    def __init__(self, recipe: Recipe, header: Sequence[str]):
        self.header = list(header)
        self.delimiter = recipe.data.source.delimiter
        position = {name: i for i, name in enumerate(self.header)}
        missing = [c for c, _ in required_columns(recipe) if c not in position]
        if missing:
            raise ValueError(f"columns {missing} are missing from the header {self.header}")
        clashes = sorted({t.label for t in recipe.tasks} & {f.name for f in recipe.data.features})
        if clashes:
            raise ValueError(f"label columns {clashes} are also feature names; tf.Example keys must be unique")
        self.key_column = recipe.data.split.key
        self.split = recipe.data.split
        self.key_index = position[self.key_column] if self.key_column else None
        source = recipe.data.source
        na = frozenset(source.na_values)
        number = number_format(source.decimal, source.thousands)
        self.steps = [(*_feature_step(f, position[f.source_column], number), na) for f in recipe.data.features]
        self.steps += [(t.label, position[t.label], label_parser(t, number), False, t.label,
                        na | frozenset(t.na_values)) for t in recipe.tasks]

    def parse_line(self, line: str) -> Row:
        """Parses one CSV line; raises :class:`RowRejected` with the reason."""
        return self.parse(split_line(line, self.delimiter))

    def parse(self, fields: Sequence[str]) -> Row:
        """Parses one row's fields; raises :class:`RowRejected` with the reason."""
        if len(fields) != len(self.header):
            raise RowRejected("wrong_field_count", f"wrong number of fields: {len(fields)} "
                              f"(the header has {len(self.header)})")
        if self.key_index is None:
            key = content_key(fields)
        else:
            text = fields[self.key_index].strip()
            if not text:
                raise RowRejected("missing_required", f"missing required value in '{self.key_column}' (split key)")
            key = self.split.key_of(text)
            if not key:
                raise RowRejected("split_key_unmatched", f"split key '{self.key_column}' value {text[:80]!r} does "
                                  f"not match data.split.key_pattern {self.split.key_pattern!r}")
        values: dict[str, Any] = {}
        for name, index, parse, required, column, na in self.steps:
            text = fields[index]
            value = None if na and text.strip() in na else parse(text)
            if value is not None:
                values[name] = value
            elif required:
                raise RowRejected("missing_required", f"missing required value in '{column}'")
        return key, values


def _feature_step(feature, index: int, number: NumberFormat | None = None) -> tuple:
    column = feature.source_column
    if feature.kind == "categorical":
        parse = lambda text: parse_category(text, column)  # noqa: E731
    elif feature.kind == "sequence":
        parse = sequence_parser(column, feature.length, feature.separator, feature.min, feature.max,
                                feature.required, number)
    elif feature.kind == "timestamp":
        parse = lambda text: parse_timestamp(text, column)  # noqa: E731
    else:
        parse = _bounded(column, feature.min, feature.max, number)
    return feature.name, index, parse, feature.required, column


def sequence_parser(column: str, length: int, separator: str = "|", low: float | None = None,
                    high: float | None = None, required: bool = False,
                    number: NumberFormat | None = None) -> Callable[[str], list[float]]:
    """The function that turns a sequence cell into exactly ``length`` floats.

    The cell holds the events' values oldest first, joined by ``separator``. A shorter
    history is left-padded with NaN, a longer one keeps its last ``length`` values, and an
    empty cell is an empty history (all NaN). An empty element (``"1||3"``) is a missing
    value (NaN); an element that is not a finite number, or lies outside ``[low, high]``,
    rejects the row.

    Args:
        column: the CSV column, for the reject reason.
        length: events kept per row (>= 1).
        separator: what joins the events in the cell.
        low: elements below are rejected.
        high: elements above are rejected.
        required: an empty history rejects the row (``missing_required``).
        number: the source's number format (:func:`number_format`).

    Returns:
        ``parse(text) -> list[float]``, raising :class:`RowRejected` with the reason.
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"sequence '{column}': length must be an integer >= 1; received {length!r}")
    bounded = _bounded(column, low, high, number)
    padding = [math.nan] * length

    def parse(text: str) -> list[float]:
        text = text.strip()
        # Every element is checked, kept or not: a bad one anywhere means a corrupt cell.
        parsed = [bounded(element) for element in text.split(separator)] if text else []
        values = [math.nan if value is None else value for value in parsed[-length:]]
        if required and all(math.isnan(v) for v in values):
            raise RowRejected("missing_required", f"missing required value in '{column}' (an empty history)")
        return padding[: length - len(values)] + values

    return parse


def _bounded(column: str, low: float | None, high: float | None,
             number: NumberFormat | None = None) -> Callable[[str], float | None]:
    def parse(text: str) -> float | None:
        value = parse_number(text, column, number)
        if value is None:
            return None
        if low is not None and value < low:
            raise RowRejected("below_min", f"value below min in '{column}': {value:g} < {low:g}")
        if high is not None and value > high:
            raise RowRejected("above_max", f"value above max in '{column}': {value:g} > {high:g}")
        return value

    return parse
