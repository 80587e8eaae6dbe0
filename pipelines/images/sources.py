"""The image source kinds: driver-side checks, work units and item readers.

One class per ``data.source.kind``, registered in :data:`IMAGE_SOURCES`. Building one checks
the inputs in the driver, before any worker starts (the files exist, the columns or arrays
the recipe reads are there, image-folder classes match the task's, npz arrays agree in
length), so a typo fails in a second with one line per problem rather than as rejected
items after a long job. ``units()`` are small, picklable pieces of work; ``read(unit)``
(run in the workers) yields lists of :class:`~pipelines.images.items.Item`.

- ``manifest``: CSV (with a header line) or JSON lines, one row per image. Relative paths
  are relative to the manifest's folder. A CSV line with another number of fields than the
  header, a CSV row with bytes its ``encoding`` cannot decode, or a JSON line that is not an
  object, is an item rejected with its reason; blank lines are skipped. Cells listed in
  ``na_values`` are missing. CSV manifests are read in ``data.source.encoding`` (a UTF-8 byte
  order mark dropped under UTF-8), JSON lines always as UTF-8.
- ``image_folder``: one sub-folder per class (searched recursively); each image file is an
  item with columns ``image`` and ``label`` (the sub-folder's name). Files directly under
  the root and files of other extensions are skipped and counted (:attr:`skipped`).
- ``npz``: arrays with one row per item on axis 0; with ``splits`` the arrays of split
  ``s`` are ``<prefix>_<column>`` and the split is the file's; with ``prefixes`` the rows of
  every ``<prefix>_<column>`` are read together and ``data.split`` splits them; else the
  arrays are ``<column>``. With ``splits`` and ``data.split.key`` the driver checks that no
  key (patient) is in two of the file's splits.

Every reader gives each item its split key: the ``data.split.key`` column's value, or what
``data.split.key_pattern`` takes from it (a value the pattern does not match rejects the
item, ``split_key_unmatched``); image folders without a key column use the file's path.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from typing import Any, Iterator, Sequence

import numpy as np

from mtl_tf.errors import did_you_mean
from mtl_tf.recipe.charsets import UTF8, display_name
from mtl_tf.recipe.schema import Recipe
from mtl_tf.registry import Registry
from pipelines.images.items import Item
from pipelines.images.labels import column_plan
from pipelines.sources import expand_sources, is_remote

IMAGE_SOURCES = Registry("image source")
ITEMS_PER_LIST = 64
FOLDER_COLUMNS = ("image", "label")
# What surrogateescape decodes an undecodable byte to (U+DC80..U+DCFF for bytes 0x80..0xff).
_ESCAPED = re.compile("[\udc80-\udcff]")


def image_source(recipe: Recipe):
    """The reader of ``recipe.data.source`` (its inputs checked).

    Raises:
        ValueError: the source's kind has no image reader, or its inputs fail a check.
    """
    if recipe.data.image_feature is None:
        raise ValueError(f"data.source.kind {recipe.data.source.kind} reads images, but data.features has no image "
                         "feature (kind: image); received features: "
                         f"{', '.join(f'{f.name} ({f.kind})' for f in recipe.data.features)}")
    return IMAGE_SOURCES.lookup(recipe.data.source.kind, "data.source.kind")(recipe)


def required_columns(recipe: Recipe) -> list[tuple[str, str]]:
    """``(column, what it is for)`` for every column (or array) an image recipe reads."""
    columns = [(f.source_column, f"feature '{f.name}'") for f in recipe.data.features]
    columns += [(t.label, f"label of task '{t.name}'") for t in recipe.tasks]
    key = recipe.data.split.key
    if key:
        columns.append((key, "split key (data.split.key)"))
    return list(dict.fromkeys(columns))


def _missing_columns(recipe: Recipe, present: Sequence[str], where: str) -> list[str]:
    return [f"{role}: column '{column}' is missing from {where}{did_you_mean(column, present)}; columns present: "
            f"{', '.join(present) or 'none'}" for column, role in required_columns(recipe) if column not in present]


def _raise(problems: list[str]) -> None:
    if problems:
        raise ValueError("\n".join(problems))


def _open_bytes(path: str):
    if is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as handle:
            return io.BytesIO(handle.read())
    return open(path, "rb")


class _Reader:
    """Common parts: the recipe's columns, ``files``, ``spread`` (reshuffle the items after reading)."""

    spread = True
    skipped = 0

    def __init__(self, recipe: Recipe):
        self.image_column = recipe.data.image_feature.source_column
        self.columns = [column for column, _ in required_columns(recipe)]
        self.key_column = recipe.data.split.key
        self.split = recipe.data.split
        column_plan(recipe)  # refuses a column read in two ways

    def split_key(self, value: Any) -> tuple[str | None, tuple[str, str] | None]:
        """``(key, None)`` from the key column's raw value, or ``(None, (kind, reason))``."""
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        text = "" if value is None else str(value).strip()
        if not text:
            return None, ("missing_required", f"missing required value in '{self.key_column}' (split key)")
        key = self.split.key_of(text)
        if not key:
            return None, ("split_key_unmatched", f"split key '{self.key_column}' value {text[:80]!r} does not "
                                                 f"match data.split.key_pattern {self.split.key_pattern!r}")
        return key, None


@IMAGE_SOURCES.register("manifest")
class ManifestReader(_Reader):
    """A manifest (CSV with a header line, or JSON lines): one item per row."""

    def __init__(self, recipe: Recipe):
        super().__init__(recipe)
        source = recipe.data.source
        self.files = expand_sources(source.patterns)
        self.delimiter = source.delimiter
        self.encoding = source.encoding
        self.na_values = frozenset(source.na_values)
        self.formats = {path: _manifest_format(path, source.format) for path in self.files}
        self.headers: dict[str, list[str]] = {}
        problems = []
        for path in self.files:
            columns = self._columns(path)
            problems += _missing_columns(recipe, columns, path)
        _raise(problems)

    def _columns(self, path: str) -> list[str]:
        if self.formats[path] != "csv" and self.encoding != UTF8:
            raise ValueError(f"data.source.encoding {self.encoding} applies to CSV manifests, and {path} is read as "
                             "JSON lines, which are UTF-8 (JSON's own rule); remove data.source.encoding, or set "
                             "data.source.format: csv")
        with _open_bytes(path) as handle:
            if self.formats[path] == "csv":
                header = next(csv.reader(self._text(handle), delimiter=self.delimiter), None)
                if not header:
                    raise ValueError(f"data.source.path: manifest {path} has no header line; a CSV manifest starts "
                                     "with the column names")
                bad = _undecodable(header, self.encoding)
                if bad:
                    raise ValueError(f"manifest {path}: the header line is {bad}")
                self.headers[path] = [name.strip() for name in header]
                return self.headers[path]
            text = self._text(handle)  # a JSON-lines manifest is UTF-8 (checked in __init__)
            for line in text:
                if line.strip() and not _ESCAPED.search(line):
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict):
                        return list(row)
        raise ValueError(f"data.source.path: manifest {path} holds no JSON object line; a JSON-lines manifest has "
                         "one object per line, e.g. {\"image\": \"images/0001.png\", \"label\": \"cat\"}")

    def units(self) -> list[str]:
        return list(self.files)

    def read(self, path: str) -> Iterator[list[Item]]:
        base = os.path.dirname(path) if not is_remote(path) else path.rsplit("/", 1)[0]
        rows = self._csv_rows(path) if self.formats[path] == "csv" else self._json_rows(path)
        batch = []
        for number, values, error in rows:
            item = Item(source=path, index=number, base=base, error=error)
            if error is None:
                item.values = {k: None if isinstance(v, str) and v.strip() in self.na_values else v
                               for k, v in values.items() if k in self.columns}
                item.key, item.error = self._key(item.values)
            batch.append(item)
            if len(batch) == ITEMS_PER_LIST:
                yield batch
                batch = []
        if batch:
            yield batch

    def _key(self, values: dict[str, Any]) -> tuple[str | None, tuple[str, str] | None]:
        if not self.key_column:
            return None, None
        return self.split_key(values.get(self.key_column))

    def _text(self, handle) -> io.TextIOWrapper:
        """The manifest's text; bytes ``encoding`` cannot decode become lone surrogates
        (``surrogateescape``), so their row can be rejected rather than stop the job."""
        codec = "utf-8-sig" if self.encoding == UTF8 else self.encoding
        return io.TextIOWrapper(handle, encoding=codec, errors="surrogateescape", newline="")

    def _csv_rows(self, path: str):
        header = self.headers[path]
        with _open_bytes(path) as handle:
            reader = csv.reader(self._text(handle), delimiter=self.delimiter)
            next(reader, None)
            for fields in reader:
                if not fields or all(not f.strip() for f in fields):
                    continue
                bad = _undecodable(fields, self.encoding)
                if bad:
                    yield reader.line_num, {}, ("encoding", bad)
                    continue
                if len(fields) != len(header):
                    yield reader.line_num, {}, ("wrong_field_count", f"wrong number of fields: {len(fields)} (the "
                                                                     f"header has {len(header)})")
                    continue
                yield reader.line_num, dict(zip(header, fields)), None

    def _json_rows(self, path: str):
        with _open_bytes(path) as handle:
            # Bytes that are not UTF-8 become lone surrogates, so their line is rejected, not the job.
            lines = self._text(handle)
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                escaped = _ESCAPED.search(line)
                if escaped:
                    yield number, {}, ("encoding", f"not UTF-8: byte 0x{ord(escaped[0]) - 0xDC00:02x} at character "
                                                   f"{escaped.start() + 1} of the line (JSON lines are UTF-8)")
                    continue
                try:
                    row = json.loads(line)
                except ValueError as err:
                    yield number, {}, ("unparsable_row", f"line is not JSON: {err}")
                    continue
                if not isinstance(row, dict):
                    yield number, {}, ("unparsable_row", f"line is a JSON {type(row).__name__}, not an object")
                    continue
                yield number, row, None


def _undecodable(fields: Sequence[str], encoding: str) -> str | None:
    """Why fields read with ``surrogateescape`` hold bytes ``encoding`` cannot decode, or None."""
    for number, field in enumerate(fields, start=1):
        escaped = _ESCAPED.search(field)
        if escaped:
            return (f"not {display_name(encoding)}: byte 0x{ord(escaped[0]) - 0xDC00:02x} in field {number} "
                    f"(data.source.encoding: {encoding})")
    return None


def _manifest_format(path: str, declared: str) -> str:
    if declared != "auto":
        return declared
    name = path.lower()
    for ending in (".gz", ".bz2"):
        name = name.removesuffix(ending)
    return "jsonl" if name.endswith((".jsonl", ".json", ".ndjson")) else "csv"


@IMAGE_SOURCES.register("image_folder")
class ImageFolderReader(_Reader):
    """One sub-folder per class: one item per image file, columns ``image`` and ``label``."""

    def __init__(self, recipe: Recipe):
        super().__init__(recipe)
        source = recipe.data.source
        root = os.path.abspath(os.path.expanduser(source.path))
        if not os.path.isdir(root):
            raise ValueError(f"data.source.path: no folder {source.path!r} (resolved {root}); an image_folder "
                             "source is a folder with one sub-folder per class")
        _raise(_missing_columns(recipe, list(FOLDER_COLUMNS), f"an image_folder source (it has the columns "
                                                               f"{', '.join(FOLDER_COLUMNS)})"))
        self.root = root
        extensions = tuple(e.lower() for e in source.extensions)
        self.classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        self.images: list[tuple[str, str]] = []
        self.skipped = sum(1 for name in os.listdir(root) if not os.path.isdir(os.path.join(root, name)))
        for folder in self.classes:
            for top, dirs, names in os.walk(os.path.join(root, folder)):
                dirs.sort()
                for name in sorted(names):
                    if name.lower().endswith(extensions):
                        self.images.append((os.path.join(top, name), folder))
                    else:
                        self.skipped += 1
        self.files = [path for path, _ in self.images]
        _raise(self._class_problems(recipe, source.path))
        if not self.images:
            raise ValueError(f"data.source.path: no image files ({', '.join(extensions)}) in the sub-folders of "
                             f"{source.path!r}; {self.skipped} other files skipped")

    def _class_problems(self, recipe: Recipe, path: str) -> list[str]:
        problems = []
        for i, task in enumerate(recipe.tasks):
            if task.label != "label" or not task.classes:
                continue
            extra = [d for d in self.classes if d not in task.classes]
            absent = [c for c in task.classes if c not in self.classes]
            if extra or absent:
                hint = did_you_mean(extra[0], task.classes) if extra else ""
                problems.append(f"tasks.{i}.classes (task '{task.name}') must match the sub-folders of {path!r}; "
                                f"sub-folders not among the classes: {', '.join(extra) or 'none'}{hint}; classes "
                                f"without a sub-folder: {', '.join(absent) or 'none'}")
        return problems

    def units(self) -> list[list[tuple[str, str]]]:
        return [self.images[i:i + ITEMS_PER_LIST] for i in range(0, len(self.images), ITEMS_PER_LIST)]

    def read(self, unit: list[tuple[str, str]]) -> Iterator[list[Item]]:
        items = []
        for path, folder in unit:
            relative = os.path.relpath(path, self.root).replace(os.sep, "/")
            values = {"image": path, "label": folder}
            if self.key_column is None:
                items.append(Item(source=path, values=values, key=relative))
                continue
            key, error = self.split_key(relative if self.key_column == "image" else folder)
            items.append(Item(source=path, values=values, key=key, error=error))
        yield items


@IMAGE_SOURCES.register("npz")
class NpzReader(_Reader):
    """Arrays with one item per row along axis 0, per split prefix (``splits``) or split by ``data.split``."""

    spread = False  # the items hold their arrays: read where they are converted

    def __init__(self, recipe: Recipe):
        super().__init__(recipe)
        source = recipe.data.source
        self.files = expand_sources(source.patterns)
        # Group -> array name prefix. A group is a split with the file's splits, else a prefix
        # whose rows data.split splits (None: arrays named by their column alone).
        if source.splits:
            self.prefixes = dict(source.splits)
        elif source.prefixes:
            self.prefixes = {prefix: prefix for prefix in source.prefixes}
        else:
            self.prefixes = {None: None}
        self.own_splits = bool(source.splits)
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self.lengths: dict[tuple[str, str | None], int] = {}
        problems = []
        for path in self.files:
            problems += self._check_file(path)
        _raise(problems)
        if self.own_splits and self.key_column:
            _raise(self._keys_across_splits())

    def _keys_across_splits(self) -> list[str]:
        """One line when a split key is in two of the file's splits (a leak); nothing otherwise."""
        where: dict[str, set[str]] = {}
        for path in self.files:
            for split, prefix in self.prefixes.items():
                for value in self._array(path, self.array_name(prefix, self.key_column)):
                    key, _ = self.split_key(value)
                    if key is not None:
                        where.setdefault(key, set()).add(split)
        shared = sorted(key for key, splits in where.items() if len(splits) > 1)
        if not shared:
            return []
        pairs = sorted({" and ".join(sorted(where[key])) for key in shared})
        shown = ", ".join(shared[:5]) + (", ..." if len(shared) > 5 else "")
        return [f"data.split.key: {len(shared)} of {len(where)} '{self.key_column}' keys are in two of the file's "
                f"splits ({'; '.join(pairs)}): {shown}; the file's splits are not split by that key. Remove "
                "data.source.splits and list data.source.prefixes (e.g. [train, val, test]) to re-split the rows "
                "by data.split"]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}}

    def array_name(self, prefix: str | None, column: str) -> str:
        return f"{prefix}_{column}" if prefix else column

    def _check_file(self, path: str) -> list[str]:
        arrays = npz_arrays(path)
        problems = []
        for split, prefix in self.prefixes.items():
            lengths = {}
            for column in self.columns:
                name = self.array_name(prefix, column)
                if name not in arrays:
                    problems.append(f"column '{column}': array '{name}' is missing from {path}"
                                    f"{did_you_mean(name, arrays)}; arrays present: {', '.join(sorted(arrays))}")
                    continue
                shape, _ = arrays[name]
                if not shape:
                    problems.append(f"array '{name}' of {path} is a scalar; arrays hold one row per item on axis 0")
                    continue
                lengths[name] = shape[0]
            if len(set(lengths.values())) > 1:
                group = f" ({'split' if self.own_splits else 'prefix'} {split})" if split else ""
                problems.append(f"arrays of {path}{group} disagree in length (axis "
                                "0): " + ", ".join(f"{name} {n}" for name, n in lengths.items()))
            elif lengths:
                self.lengths[(path, split)] = next(iter(lengths.values()))
            image = self.array_name(prefix, self.image_column)
            if image in arrays and len(arrays[image][0]) not in (3, 4):
                problems.append(f"array '{image}' of {path} has shape {list(arrays[image][0])}; images are (N, H, W) "
                                "or (N, H, W, C)")
        return problems

    def units(self) -> list[tuple[str, str | None, int, int]]:
        return [(path, split, start, min(start + ITEMS_PER_LIST, length))
                for (path, split), length in self.lengths.items() for start in range(0, length, ITEMS_PER_LIST)]

    def _array(self, path: str, name: str) -> np.ndarray:
        if (path, name) not in self._cache:
            if any(cached != path for cached, _ in self._cache):
                self._cache = {}  # one file's arrays in memory at a time
            with _open_bytes(path) as handle, np.load(handle, allow_pickle=False) as arrays:
                self._cache[(path, name)] = arrays[name]
        return self._cache[(path, name)]

    def read(self, unit: tuple[str, str | None, int, int]) -> Iterator[list[Item]]:
        path, split, start, end = unit
        prefix = self.prefixes[split]
        arrays = {column: self._array(path, self.array_name(prefix, column)) for column in self.columns}
        items = []
        for index in range(start, end):
            values = {column: array[index] for column, array in arrays.items()}
            key, error = self.split_key(values[self.key_column]) if self.key_column else (None, None)
            items.append(Item(source=path, index=index, values=values, key=key,
                              split=split if self.own_splits else None, error=error))
        yield items


def npz_arrays(path: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """Array name -> (shape, dtype) of an ``.npz`` file, read from the array headers only.

    Raises:
        ValueError: the file is not a readable ``.npz`` (zip) file.
    """
    arrays = {}
    try:
        with _open_bytes(path) as handle, zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(member)
                arrays[info.filename[:-4]] = (tuple(shape), dtype.str)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ValueError(f"data.source.path: {path} is not a readable .npz file: {err}") from None
    return arrays
