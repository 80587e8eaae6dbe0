"""Driver-side checks of the input files, before any worker starts.

A typo in a glob or a renamed column would otherwise surface as millions of rejected rows
after a long job; these checks fail in a second with one line that names the problem.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Mapping, Sequence

from mtl_tf.errors import did_you_mean
from mtl_tf.recipe.charsets import UTF8
from mtl_tf.recipe.schema import WHITESPACE_DELIMITER, Recipe, Source
from pipelines.records import BOM, BadRecord, first_record, read_records, undecodable
from pipelines.rows import RowRejected, required_columns, split_line


def is_remote(path: str) -> bool:
    return "://" in path


def local_output_dir(path: str | os.PathLike) -> Path:
    """The pipeline's output folder as a local path.

    The workers write through Beam's file systems, but the driver clears the folder, reads
    the pipeline's counts back and writes ``dataset.json`` with local file calls, and
    training reads the folder as a local path. A URL would be mangled into a local folder
    named after it (``gs:/bucket/...``), so it is refused.

    Raises:
        ValueError: ``path`` is a URL (``gs://``, ``s3://``, ...).
    """
    text = os.fspath(path)
    if is_remote(text):
        raise ValueError(f"output folder {text!r} is a URL; the pipelines write data.output_dir (or --out) as a local "
                         "folder that training then reads: use a path on a shared or mounted file system (e.g. a "
                         "bucket mounted with Cloud Storage FUSE); sources (data.source.path) may be URLs")
    return Path(text)


def expand_sources(patterns: Sequence[str]) -> list[str]:
    """The sorted files matched by the globs (absolute paths for local files).

    Raises:
        ValueError: a glob matches no file.
    """
    files: list[str] = []
    for pattern in patterns:
        matched = _match(pattern)
        if not matched:
            raise ValueError(f"data.source.path: no files match {pattern!r}")
        files.extend(matched)
    return sorted(dict.fromkeys(files))


def _match(pattern: str) -> list[str]:
    if is_remote(pattern):
        from apache_beam.io.filesystems import FileSystems

        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    return [os.path.abspath(p) for p in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(p)]


def read_header(path: str, delimiter: str = ",", encoding: str = UTF8) -> list[str]:
    """The column names on the first line of a CSV file (compressed files are read too).

    Raises:
        ValueError: the file has no header line, ``encoding`` cannot decode it, or it names
            a column twice.
    """
    first = _first_line(path, delimiter, encoding)
    if not first.strip():
        raise ValueError(f"{path}: the file has no header line; a CSV source starts with the column names")
    try:
        names = [name.strip() for name in split_line(first, delimiter)]
    except RowRejected as err:
        raise ValueError(f"{path}: the header line cannot be read: {err.message}") from None
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{path}: the header names column {name!r} twice (columns {seen[name] + 1} and {i + 1}); "
                             "column names must be unique")
        seen[name] = i
    return names


def read_headers(files: Sequence[str], delimiter: str = ",", encoding: str = UTF8) -> dict[str, list[str]]:
    """File -> its column names, so files may order their columns differently.

    Raises:
        ValueError: one line per file whose header cannot be used (see :func:`read_header`).
    """
    headers, problems = {}, []
    for path in files:
        try:
            headers[path] = read_header(path, delimiter, encoding)
        except ValueError as err:
            problems.append(str(err))
    if problems:
        raise ValueError("\n".join(problems))
    return headers


def file_columns(files: Sequence[str], source: Source) -> dict[str, list[str]]:
    """File -> its column names: its header line, or ``source.columns`` for headerless files.

    Raises:
        ValueError: a headerless file's first line has another number of fields than
            ``source.columns`` names (one line per such file, with the delimiter the line
            looks like it uses, if one fits).
    """
    if source.header:
        return read_headers(files, source.delimiter, source.encoding)
    columns = list(source.columns or [])
    problems = []
    for path in files:
        first = _first_data_record(path, source.delimiter, source.encoding)
        if first is None:
            continue
        count = len(split_line(first, source.delimiter))
        if count != len(columns):
            fits = [d for d in _other_delimiters(source.delimiter) if len(split_line(first, d)) == len(columns)]
            hint = f"; it looks {_delimiter_name(fits[0])}-delimited: {_set_delimiter(fits[0])}" if fits else ""
            problems.append(f"data.source.columns names {len(columns)} columns, but the first line of {path} "
                            f"has {count} fields (delimiter {source.delimiter!r}){hint}")
    if problems:
        raise ValueError("\n".join(problems))
    return {path: columns for path in files}


def _first_line(path: str, delimiter: str = ",", encoding: str = UTF8) -> str:
    """The first record of a file, decoded (without its line ending, nor a BOM in UTF-8)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as handle:
        try:
            raw = first_record(handle, delimiter, encoding)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    _refuse_utf8_bom(path, raw, encoding)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: the first line is {undecodable(raw, err, encoding, 'of the line')}") from None


def _refuse_utf8_bom(path: str, first: bytes, encoding: str) -> None:
    """A file that starts with a UTF-8 byte order mark is UTF-8, whatever the recipe says."""
    if encoding != UTF8 and first.startswith(BOM):
        raise ValueError(f"{path} starts with a UTF-8 byte order mark, but data.source.encoding is {encoding}: the file "
                         "is UTF-8; remove data.source.encoding (or set it to utf-8)")


def _first_data_record(path: str, delimiter: str, encoding: str = UTF8) -> str | None:
    """The first record of a headerless file that is not a blank line; None if there is none."""
    from apache_beam.io.filesystems import FileSystems

    if encoding != UTF8:
        with FileSystems.open(path) as handle:
            _refuse_utf8_bom(path, handle.read(len(BOM)), encoding)
    with FileSystems.open(path) as handle:
        for record in read_records(handle, 0, None, delimiter, encoding=encoding):
            if isinstance(record, BadRecord):
                raise ValueError(f"{path}: the first line cannot be read: {record.reason}")
            if record is not None:
                return record
    return None


# Delimiters a header is tried with when the recipe's leaves columns missing; whitespace last,
# since column names may hold spaces.
CANDIDATE_DELIMITERS = (",", ";", "\t", "|", WHITESPACE_DELIMITER)


def _other_delimiters(delimiter: str) -> list[str]:
    return [d for d in CANDIDATE_DELIMITERS if d != delimiter]


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", WHITESPACE_DELIMITER: "whitespace"}.get(delimiter, repr(delimiter))


def _set_delimiter(delimiter: str) -> str:
    """The recipe line that sets ``delimiter``, quoted as YAML reads it back."""
    value = {"\t": '"\\t"', WHITESPACE_DELIMITER: "'\\s+'"}.get(delimiter, repr(delimiter))
    return f"set data.source.delimiter: {value}"


def guess_delimiter(header: Sequence[str], delimiter: str, wanted: Sequence[str]) -> str | None:
    """Another delimiter under which the header line names more of the ``wanted`` columns, or None.

    Args:
        header: the column names as read with ``delimiter``.
        delimiter: the recipe's delimiter.
        wanted: the columns the recipe reads.
    """
    line = (" " if delimiter == WHITESPACE_DELIMITER else delimiter).join(header)
    found = sum(column in header for column in wanted)
    best, best_found = None, found
    for other in _other_delimiters(delimiter):
        names = [name.strip() for name in split_line(line, other)]
        count = sum(column in names for column in wanted)
        if count > best_found and len(names) > len(header):
            best, best_found = other, count
    return best


def check_headers(recipe: Recipe, headers: Mapping[str, Sequence[str]]) -> None:
    """Fails with one line per missing column if a file lacks a column the recipe reads.

    When the header line reads as more of the recipe's columns with another delimiter, the
    file gets one line saying so instead (a wrong delimiter leaves every column missing).

    Raises:
        ValueError: names the column, what it is for, the file, a close column name if any
            and the columns present; or the file, its header and the delimiter it looks like.
    """
    problems = []
    required = required_columns(recipe)
    delimiter = recipe.data.source.delimiter
    for path, header in headers.items():
        missing = [(column, role) for column, role in required if column not in header]
        if not missing:
            continue
        guess = guess_delimiter(header, delimiter, [column for column, _ in required])
        if guess is not None:
            shown = (" " if delimiter == WHITESPACE_DELIMITER else delimiter).join(header)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            plural = "" if len(header) == 1 else "s"
            problems.append(f"the header of {path} has {len(header)} column{plural} {shown!r} with delimiter "
                            f"{delimiter!r}; it looks {_delimiter_name(guess)}-delimited: {_set_delimiter(guess)}")
            continue
        for column, role in missing:
            problems.append(f"{role}: column '{column}' is missing from {path}"
                            f"{did_you_mean(column, header)}; columns present: {', '.join(header)}")
    if problems:
        raise ValueError("\n".join(problems))
