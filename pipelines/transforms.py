"""Labelled, composable Beam transforms for tabular preprocessing.

The CSV pipeline is ``ReadCsvBatches -> ConvertRows -> (ShardExamples, rejects as JSON lines,
SummarizeBatches) -> WriteFiles``. Each transform is small enough to test alone on
``beam.Create`` data.

Rows travel in batches: :class:`ReadCsvBatches` reads lists of lines, and
:class:`ConvertRows` parses, validates, splits, encodes and
summarizes a whole batch of lines in one call (:class:`pipelines.batches.BatchConverter`)
and emits one list of examples per split and one partial summary per batch. A per-row
element through each of those steps would cost the engine more than the work itself.

Counters (namespace ``mtl_tf``): ``rows_in``, ``blank_lines``, ``rows_written``,
``rows_written_<split>``, ``rows_rejected``, ``rows_rejected_<reason kind>``, incremented once
per batch. Some runners do not report counters, so the same numbers are also computed as
data by :class:`SummarizeBatches` and written to ``summary.json``; the records each output
file received, counted where the file is written, go to ``written.json``
(:class:`WriteCounts`), so the driver can check rows in = written + rejected against counts
made apart from the summary.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any, Iterable, Mapping, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from mtl_tf.recipe.charsets import UTF8
from mtl_tf.recipe.schema import Feature, Recipe, Task
from pipelines.batches import BatchConverter
from pipelines.encoding import tfrecord_frames
from pipelines.records import next_state, range_states, read_records
from pipelines.rows import REJECT_KINDS
from pipelines.statistics import SummaryFn

NAMESPACE = "mtl_tf"
EXAMPLES = "examples"
REJECTS = "rejects"
SUMMARIES = "summaries"
SUMMARY_FILE = "summary.json"
COUNTS_FILE = "written.json"
REJECTS_DIR = "rejects"
REJECTS_FILE = f"{REJECTS_DIR}/rejects-00000-of-00001.jsonl"
BATCH_SIZE = 1000
RANGE_BYTES = 64 << 20


def shard_name(prefix: str, index: int, shards: int, suffix: str) -> str:
    """``<prefix>-SSSSS-of-NNNNN<suffix>``, the name of shard ``index`` of ``shards``."""
    return f"{prefix}-{index:05d}-of-{shards:05d}{suffix}"


def example_files(split: str, shards: int) -> list[str]:
    """The file names of a split's shards, e.g. ``train-00000-of-00004.tfrecord.gz``."""
    return [shard_name(split, i, shards, ".tfrecord.gz") for i in range(shards)]


def normalize_path(path: str) -> str:
    """The key under which a file's header is stored and looked up."""
    return path if "://" in path else os.path.abspath(path)


def file_ranges(path: str, range_bytes: int) -> list[tuple[str, int, int | None]]:
    """``(path, start, end)`` byte ranges of about ``range_bytes`` that cover the file.

    A compressed file cannot be read from the middle, so it is one range with no end.
    """
    if CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED:
        return [(path, 0, None)]
    size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    return [(path, start, min(start + range_bytes, size)) for start in range(0, max(size, 1), range_bytes)]


def _ranges(path: str, range_bytes: int) -> list[tuple[str, int, int | None, bool]]:
    """:func:`file_ranges` of a file, each with whether it is the file's last."""
    ranges = file_ranges(path, range_bytes)
    return [(path, start, end, i == len(ranges) - 1) for i, (path, start, end) in enumerate(ranges)]


class ProbeRangeFn(beam.DoFn):
    """``(path, start, end, last)`` -> ``(path, (start, end, transfer))``: how the range passes on
    the quote state (:func:`pipelines.records.next_state`).

    ``transfer`` is ``(state after the range if it begins at a record start, state after it
    if it begins inside a quoted field)``; the first range only begins at a record start and
    the last one passes nothing on, so their unused entries are None and they read nothing.
    """

    def __init__(self, delimiter: str, skip_header: bool = True, encoding: str = UTF8):
        self.delimiter, self.skip_header, self.encoding = delimiter, skip_header, encoding

    def process(self, element: tuple[str, int, int | None, bool]):
        path, start, end, last = element
        if last or end is None:
            yield path, (start, end, None)
            return
        with FileSystems.open(path) as handle:
            states = [next_state(handle, start, end, self.delimiter, in_quotes, self.skip_header, self.encoding)
                      for in_quotes in ((False, True) if start > 0 else (False,))]
        yield path, (start, end, (states[0], states[1] if start > 0 else None))


def _range_starts(element: tuple[str, Iterable[tuple[int, int | None, Any]]]):
    """``(path, probes)`` -> ``(path, start, end, in_quotes)`` for each range of the file."""
    path, probes = element
    probes = list(probes)
    ends = {start: end for start, end, _ in probes}
    for start, in_quotes in range_states([(start, transfer) for start, _, transfer in probes]):
        yield path, start, ends[start], in_quotes


class ReadRangeFn(beam.DoFn):
    """``(path, start, end, in_quotes)`` -> lists of up to ``batch_size`` ``(path, record)`` pairs.

    A range reads the records that start in ``[start, end)``, finishing the last one past
    ``end`` if a quoted field runs on; when ``in_quotes``, its first line continues a record
    of the range before, and is skipped up to that record's end. So adjacent ranges read
    every record exactly once. The header record (the first) is skipped unless
    ``skip_header`` is false. Records are as :func:`pipelines.records.read_records` yields
    them: text without the final line ending, None for a blank line, a
    :class:`~pipelines.records.BadRecord` for one that cannot be a row (such as one that
    ``encoding`` cannot decode).
    """

    def __init__(self, batch_size: int, skip_header: bool = True, delimiter: str = ",", encoding: str = UTF8):
        self.batch_size = batch_size
        self.skip_header = skip_header
        self.delimiter = delimiter
        self.encoding = encoding

    def process(self, element: tuple):
        path, start, end, *rest = element
        in_quotes = bool(rest and rest[0])
        batch = []
        with FileSystems.open(path) as handle:
            for record in read_records(handle, start, end, self.delimiter, in_quotes, self.skip_header,
                                       encoding=self.encoding):
                batch.append((path, record))
                if len(batch) == self.batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch


class ReadCsvBatches(beam.PTransform):
    """Lists of ``(file, record)`` for the data records of the files (header records skipped).

    Records come in lists of up to ``batch_size``, so the rows cross the pipeline's steps a
    batch at a time. Large uncompressed files are read in byte ranges in parallel, each range
    first scanned for whether it begins inside a quoted field (a record with line breaks
    that crosses the range boundary); compressed files (``.gz``, ``.bz2``) are read whole.
    The ranges are listed when the pipeline is built (the files' sizes); when every file is
    one range, no range needs that scan and the pipeline has no step for it.

    Args:
        files: the file paths (not globs), e.g. from :func:`pipelines.sources.expand_sources`.
        batch_size: records per list.
        range_bytes: the size of the byte ranges files are split into.
        skip_header: the first record of each file names the columns and is not data.
        delimiter: the field delimiter (it tells where a quoted field may open).
        encoding: the files' text encoding (``data.source.encoding``); the records come
            decoded from it.
    """

    def __init__(self, files: Sequence[str], batch_size: int = BATCH_SIZE, range_bytes: int = RANGE_BYTES,
                 skip_header: bool = True, delimiter: str = ",", encoding: str = UTF8):
        super().__init__()
        if batch_size < 1 or range_bytes < 1:
            raise ValueError(f"batch_size and range_bytes must be at least 1; received {batch_size!r} and "
                             f"{range_bytes!r}")
        self.files = [normalize_path(f) for f in files]
        self.batch_size, self.range_bytes, self.skip_header = batch_size, range_bytes, skip_header
        self.delimiter, self.encoding = delimiter, encoding

    def expand(self, pbegin):
        # The ranges are listed here, where the pipeline is built: a file's size is one
        # metadata lookup, and knowing them lets the common case (no file larger than one
        # range) skip the probing steps, which cost a few stages whatever the data size.
        ranges = [piece for path in self.files for piece in _ranges(path, self.range_bytes)]
        if all(last for *_, last in ranges):  # one range per file: each starts at a record start
            starts = pbegin | "Ranges" >> beam.Create([(path, start, end, False) for path, start, end, _ in ranges],
                                                      reshuffle=False)
        else:
            starts = (pbegin
                      | "Ranges" >> beam.Create(ranges, reshuffle=False)
                      | "SpreadProbes" >> beam.Reshuffle()
                      | "Probe" >> beam.ParDo(ProbeRangeFn(self.delimiter, self.skip_header, self.encoding))
                      | "ByFile" >> beam.GroupByKey()
                      | "Chain" >> beam.FlatMap(_range_starts))
        return (starts
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.ParDo(ReadRangeFn(self.batch_size, self.skip_header, self.delimiter,
                                                    self.encoding)))


class ConvertBatchFn(beam.DoFn):
    """A batch of ``(file, record)`` -> ``("examples", (split, [serialized tf.Example]))`` per
    split with rows, ``("rejects", reject dict)`` per bad record and one ``("summaries",
    partial summary)``: one output of tagged pairs (see :class:`SplitTagged`).

    A reject is ``{"file", "reason", "kind", "line"}`` with the original record text (bytes
    the source encoding cannot decode escaped as ``\\xNN``).

    Args:
        recipe: the recipe.
        headers: file -> its column names (read in the driver).
    """

    def __init__(self, recipe: Recipe, headers: Mapping[str, Sequence[str]]):
        self.recipe = recipe
        self.headers = {normalize_path(path): list(header) for path, header in headers.items()}

    def setup(self):
        # One parse plan per distinct header, built once per worker rather than per batch.
        self.converter = BatchConverter(self.recipe, self.headers)
        counter = lambda name: Metrics.counter(NAMESPACE, name)  # noqa: E731
        self.rows_in, self.rejected, self.written = counter("rows_in"), counter("rows_rejected"), counter("rows_written")
        self.blank_lines = counter("blank_lines")
        self.written_by_split = {split: counter(f"rows_written_{split}") for split in self.converter.fractions}
        self.rejected_by_kind = {kind: counter(f"rows_rejected_{kind}") for kind in REJECT_KINDS}

    def process(self, lines: Sequence[tuple[str, str]]):
        batch = self.converter.convert([(self._path(path), line) for path, line in lines])
        self.rows_in.inc(batch.summary["rows_in"])
        if batch.summary["blank"]:
            self.blank_lines.inc(batch.summary["blank"])
        for split, examples in batch.examples.items():
            if examples:
                self.written.inc(len(examples))
                self.written_by_split[split].inc(len(examples))
                yield EXAMPLES, (split, examples)
        for kind, n in batch.summary["rejected"].items():
            self.rejected.inc(n)
            self.rejected_by_kind[kind].inc(n)
        for reject in batch.rejects:
            yield REJECTS, reject
        yield SUMMARIES, batch.summary

    def _path(self, path: str) -> str:
        return path if path in self.converter.parsers else normalize_path(path)


class ConvertRows(beam.PTransform):
    """Lists of ``(file, line)`` -> ``{"examples": (split, [serialized]), "rejects": reject dicts,
    "summaries": partial summaries}``: one list of examples per split and one partial summary
    per list of lines.

    Read the lists with :class:`ReadCsvBatches` (or batch lines with ``beam.BatchElements``);
    merge the partial summaries with :class:`SummarizeBatches`.

    Args:
        recipe: the recipe.
        headers: file -> its column names.
    """

    def __init__(self, recipe: Recipe, headers: Mapping[str, Sequence[str]]):
        super().__init__()
        self.recipe, self.headers = recipe, headers

    def expand(self, batches):
        tagged = batches | "Convert" >> beam.ParDo(ConvertBatchFn(self.recipe, self.headers))
        return tagged | "Split" >> SplitTagged([EXAMPLES, REJECTS, SUMMARIES])


def _tagged_value(element: tuple[str, Any], tag: str):
    if element[0] == tag:
        yield element[1]


class SplitTagged(beam.PTransform):
    """``(tag, value)`` pairs -> ``{tag: PCollection of values}``, one ParDo per tag.

    What a multi-output ParDo (``with_outputs``) would give, for runners that translate only
    single-output ParDos (the Dask runner hands every tagged output to every consumer; see
    :mod:`pipelines.engine`). A step emits tagged pairs; this splits them.

    Args:
        tags: the tags; every pair's tag must be one of them.
    """

    def __init__(self, tags: Sequence[str]):
        super().__init__()
        self.tags = list(tags)

    def expand(self, tagged):
        return {tag: tagged | f"Select_{tag}" >> beam.FlatMap(_tagged_value, tag) for tag in self.tags}


class ShardExampleFn(beam.DoFn):
    """``(split, [serialized])`` -> ``(shard file name, [serialized])``, dealt round-robin."""

    def __init__(self, shards: int):
        self.shards = shards

    def setup(self):
        self.next_shard: dict[str, int] = {}

    def process(self, element: tuple[str, list[bytes]]):
        split, examples = element
        first, shards = self.next_shard.get(split, 0), self.shards
        self.next_shard[split] = (first + len(examples)) % shards
        for offset in range(min(shards, len(examples))):
            yield shard_name(split, (first + offset) % shards, shards, ".tfrecord.gz"), examples[offset::shards]


class ShardExamples(beam.PTransform):
    """``(split, [serialized])`` -> ``(file name, [serialized])`` over ``shards`` files per split.

    Args:
        shards: shards per split.
    """

    def __init__(self, shards: int):
        super().__init__()
        if shards < 1:
            raise ValueError(f"shards must be at least 1; received {shards!r}")
        self.shards = shards

    def expand(self, examples):
        return examples | "Deal" >> beam.ParDo(ShardExampleFn(self.shards))


class SummarizeBatches(beam.PTransform):
    """Partial summaries -> one ``summary.json`` dict: ``{"counts", "statistics", "labels"}``.

    See :class:`pipelines.statistics.SummaryFn` for the layout.

    Args:
        features: the recipe features (statistics of the train split).
        tasks: the recipe tasks (labelled rows and positives per split).
    """

    def __init__(self, features: Sequence[Feature], tasks: Sequence[Task]):
        super().__init__()
        self.features, self.tasks = list(features), list(tasks)

    def expand(self, summaries):
        return summaries | "Merge" >> beam.CombineGlobally(SummaryFn(self.features, self.tasks))


class WritePartsFn(beam.DoFn):
    """``(name, [record, ...])`` pieces -> part files of each name, written where the pieces are.

    Each bundle appends its pieces of a name to one part file of its own (gzip for
    ``.tfrecord.gz`` names, text otherwise) and, when the bundle ends, yields ``(name,
    (part path, records))``. So the examples are written by the workers that made them and
    only part paths cross between workers: a grouping of every example, on the runner, is
    what made several worker processes slower than one.

    With ``per_piece`` (runners that drop what ``finish_bundle`` emits, such as Dask's: see
    :mod:`pipelines.engine`), each piece is a part file of its own, yielded as it is written.

    Args:
        out_dir: the output folder; parts are ``beam-temp-<id>-<name>`` beside their file.
        per_piece: one part file per piece rather than per bundle and name.
    """

    def __init__(self, out_dir: str, per_piece: bool = False):
        self.out_dir, self.per_piece = out_dir, per_piece
        self._parts: dict[str, list] = {}

    def start_bundle(self):
        self._parts = {}

    def process(self, element: tuple[str, list]):
        name, records = element
        if not records:
            return
        if self.per_piece:
            path, handle = self._open_part(name)
            with handle:
                handle.write(_file_bytes(name, records))
            yield name, (path, len(records))
            return
        part = self._parts.get(name)
        if part is None:
            part = self._parts[name] = [*self._open_part(name), 0]
        part[1].write(_file_bytes(name, records))
        part[2] += len(records)

    def _open_part(self, name: str):
        folder, base = FileSystems.split(FileSystems.join(self.out_dir, name))
        path = FileSystems.join(folder, f"beam-temp-{uuid.uuid4().hex}-{base}")
        return path, FileSystems.create(path)

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindows

        for name, (path, handle, count) in self._parts.items():
            handle.close()
            yield GlobalWindows.windowed_value((name, (path, count)))
        self._parts = {}


class JoinPartsFn(beam.DoFn):
    """``(name, [(part path, records), ...])`` -> the file ``out_dir/name``; yields ``(name, records)``.

    The parts' bytes are joined in the order of their paths (a gzip file may hold several
    gzip members one after the other; TFRecord readers read them as one stream). The file is
    built under a temporary name and renamed when complete, so a retried or failed bundle
    never leaves half a file; a name without parts becomes an empty file. The parts are
    deleted only once the file is in place: a failure before that leaves them for a retry,
    and one in deleting them leaves only ``beam-temp-*`` files, which
    :func:`pipelines.csv_to_tfrecords.remove_temp_dirs` clears.
    """

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def process(self, element: tuple[str, Iterable[tuple[str, int] | None]]):
        name, parts = element
        parts = sorted(part for part in parts if part is not None)  # None: the "write it even empty" marker
        final = FileSystems.join(self.out_dir, name)
        folder, base = FileSystems.split(final)
        temp = FileSystems.join(folder, f"beam-temp-{uuid.uuid4().hex}-{base}")
        if not parts:
            with FileSystems.create(temp):  # an empty file (a valid empty gzip stream for .gz)
                pass
        else:
            raw = CompressionTypes.UNCOMPRESSED
            with FileSystems.create(temp, compression_type=raw) as handle:
                for path, _ in parts:
                    with FileSystems.open(path, compression_type=raw) as part:
                        handle.write(part.read())
        FileSystems.rename([temp], [final])
        if parts:
            try:
                FileSystems.delete([path for path, _ in parts])
            except Exception as err:  # the file is complete: leftover parts are cleared later
                logging.warning("%s is written, but its part files could not be deleted (%s); they are "
                                "beam-temp-* files beside it", final, err)
        yield name, sum(count for _, count in parts)


def _file_bytes(name: str, records: list) -> bytes:
    if name.endswith((".tfrecord", ".tfrecord.gz")):
        return tfrecord_frames(records)
    return "".join(f"{record}\n" for record in records).encode("utf-8")


class WriteFiles(beam.PTransform):
    """``(file name, [record, ...])`` pieces -> one file per name under ``out_dir``.

    Every name in ``names`` is written, empty when no piece names it, so a split with fewer
    rows than shards still has all its shard files. Pieces of one name are written in no
    particular order. The workers write part files where the pieces are made
    (:class:`WritePartsFn`) and one step per file joins their bytes (:class:`JoinPartsFn`),
    so only file paths are grouped, never the records.

    The pieces may come as one PCollection or as a tuple or list of them, e.g.
    ``(examples, rejects, summary) | WriteFiles(...)``: each gets its own part writer, in
    the step that makes its pieces. Flattening them first would make the runner gather
    every example in one place before writing it (a Flatten of the outputs of different
    steps is a step of its own), which is what the part files are there to avoid.

    Args:
        out_dir: the output folder (any Beam file system).
        names: the file names (relative to ``out_dir``) that must exist afterwards.
        per_piece: a part file per piece (see :class:`WritePartsFn`); default: when the
            pipeline's runner drops what ``finish_bundle`` emits.
    """

    def __init__(self, out_dir: str, names: Sequence[str], per_piece: bool | None = None):
        super().__init__()
        self.out_dir, self.names, self.per_piece = out_dir, list(names), per_piece

    def expand(self, pieces):
        from pipelines.engine import emits_from_finish_bundle

        sources = list(pieces) if isinstance(pieces, (tuple, list)) else [pieces]
        if not sources:
            raise ValueError("WriteFiles needs at least one PCollection of pieces; received none")
        pipeline = sources[0].pipeline
        per_piece = self.per_piece
        if per_piece is None:
            per_piece = not emits_from_finish_bundle(pipeline.options)
        labels = ["WriteParts"] if len(sources) == 1 else [f"WriteParts_{i}" for i in range(len(sources))]
        parts = [source | label >> beam.ParDo(WritePartsFn(self.out_dir, per_piece))
                 for label, source in zip(labels, sources)]
        empty = pipeline | "AllNames" >> beam.Create([(name, None) for name in self.names], reshuffle=False)
        return ((*parts, empty)
                | "Gather" >> beam.Flatten()
                | "ByFile" >> beam.GroupByKey()
                | "Join" >> beam.ParDo(JoinPartsFn(self.out_dir)))


def _write_counts(counts: Mapping[str, int], path: str) -> None:
    folder, base = FileSystems.split(path)
    temp = FileSystems.join(folder, f"beam-temp-{uuid.uuid4().hex}-{base}")
    with FileSystems.create(temp) as handle:
        handle.write(json.dumps({"files": dict(sorted(counts.items()))}, indent=1).encode("utf-8") + b"\n")
    FileSystems.rename([temp], [path])


class WriteCounts(beam.PTransform):
    """``(file name, records)`` from :class:`WriteFiles` -> ``out_dir/written.json``:
    ``{"files": {name: records}}``, what each output file received, counted by the step that
    wrote it. :class:`WriteFiles` reports every file it names, so the input is never empty.

    Args:
        out_dir: the output folder.
    """

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def expand(self, written):
        path = FileSystems.join(self.out_dir, COUNTS_FILE)
        # One group of a few (name, count) pairs: cheaper to build and run than a global
        # combine, which adds steps for the default of an empty input.
        return (written
                | "KeyAll" >> beam.Map(lambda count: (None, count))
                | "Group" >> beam.GroupByKey()
                | "Write" >> beam.MapTuple(lambda _, counts: _write_counts(dict(counts), path)))
