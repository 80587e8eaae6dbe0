"""Driver-side checks of the input files, before any worker starts.

A typo in a glob or a renamed column would otherwise surface as millions of rejected rows
after a long job; these checks fail in a second with one line that names the problem.
"""

from __future__ import annotations

import csv
import glob
import os
from typing import Mapping, Sequence

from mtl_tf.errors import did_you_mean
from mtl_tf.recipe.schema import Recipe, Source
from pipelines.rows import required_columns, split_line


def is_remote(path: str) -> bool:
    return "://" in path


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


def read_header(path: str, delimiter: str = ",") -> list[str]:
    """The column names on the first line of a CSV file (compressed files are read too)."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as handle:
        first = handle.readline().decode("utf-8-sig")
    if not first.strip():
        raise ValueError(f"{path}: the file has no header line; a CSV source starts with the column names")
    return [name.strip() for name in next(csv.reader([first.rstrip("\r\n")], delimiter=delimiter))]


def read_headers(files: Sequence[str], delimiter: str = ",") -> dict[str, list[str]]:
    """File -> its column names, so files may order their columns differently."""
    return {path: read_header(path, delimiter) for path in files}


def file_columns(files: Sequence[str], source: Source) -> dict[str, list[str]]:
    """File -> its column names: its header line, or ``source.columns`` for headerless files.

    Raises:
        ValueError: a headerless file's first line has another number of fields than
            ``source.columns`` names (one line per such file).
    """
    if source.header:
        return read_headers(files, source.delimiter)
    columns = list(source.columns or [])
    problems = []
    for path in files:
        count = len(split_line(_first_line(path), source.delimiter))
        if count != len(columns):
            problems.append(f"data.source.columns names {len(columns)} columns, but the first line of {path} "
                            f"has {count} fields (delimiter {source.delimiter!r})")
    if problems:
        raise ValueError("\n".join(problems))
    return {path: columns for path in files}


def _first_line(path: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as handle:
        return handle.readline().decode("utf-8-sig").rstrip("\r\n")


def check_headers(recipe: Recipe, headers: Mapping[str, Sequence[str]]) -> None:
    """Fails with one line per missing column if a file lacks a column the recipe reads.

    Raises:
        ValueError: names the column, what it is for, the file, a close column name if any
            and the columns present.
    """
    problems = []
    for path, header in headers.items():
        for column, role in required_columns(recipe):
            if column not in header:
                problems.append(f"{role}: column '{column}' is missing from {path}"
                                f"{did_you_mean(column, header)}; columns present: {', '.join(header)}")
    if problems:
        raise ValueError("\n".join(problems))
