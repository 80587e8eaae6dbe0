"""Labelled, composable Beam transforms for tabular preprocessing.

The CSV pipeline is ``ReadCsvLines -> ParseRows -> AssignSplits -> (WriteExamples per
split, ComputeStatistics on train, CountLabels) + WriteRejects + CountRows -> WriteSummary``.
Each transform is small enough to test alone on ``beam.Create`` data.

Counters (namespace ``mtl_tf``): ``rows_in``, ``rows_written``, ``rows_written_<split>``,
``rows_rejected``, ``rows_rejected_<reason kind>``. Some runners do not report counters, so
the same numbers are also computed as data by :class:`CountRows` and written to
``summary.json`` by :class:`WriteSummary`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.textio import ReadAllFromText
from apache_beam.metrics import Metrics

from mtl_tf.recipe.schema import Feature, Recipe, Split, Task
from pipelines.encoding import encode_example
from pipelines.rows import REJECT_KINDS, RowParser, RowRejected, reject_record
from pipelines.splits import active_splits, assign_split
from pipelines.statistics import FeatureStatsFn, LabelCountsFn

NAMESPACE = "mtl_tf"
ROWS = "rows"
REJECTS = "rejects"
SHARD_TEMPLATE = "-SSSSS-of-NNNNN"
SUMMARY_FILE = "summary.json"
REJECTS_DIR = "rejects"


def normalize_path(path: str) -> str:
    """The key under which a file's header is stored and looked up."""
    return path if "://" in path else os.path.abspath(path)


class ReadCsvLines(beam.PTransform):
    """``(file, line)`` for every data line of the files (their header lines skipped).

    One read for any number of files; compressed files (``.gz``, ``.bz2``) are read too.

    Args:
        files: the file paths (not globs), e.g. from :func:`pipelines.sources.expand_sources`.
    """

    def __init__(self, files: Sequence[str]):
        super().__init__()
        self.files = [normalize_path(f) for f in files]

    def expand(self, pbegin):
        return (pbegin
                | "Files" >> beam.Create(self.files)
                | "Lines" >> ReadAllFromText(with_filename=True, skip_header_lines=1))


class ParseRowFn(beam.DoFn):
    """Parses ``(file, line)`` into ``(key, values)``; rejects go to the ``rejects`` output.

    A reject is ``{"file", "reason", "kind", "line"}`` with the original line text.

    Args:
        recipe: the recipe.
        headers: file -> its column names (read in the driver).
    """

    def __init__(self, recipe: Recipe, headers: Mapping[str, Sequence[str]]):
        self.recipe = recipe
        self.headers = {normalize_path(path): list(header) for path, header in headers.items()}

    def setup(self):
        # One parse plan per distinct header, built once per worker rather than per row.
        plans: dict[tuple, RowParser] = {}
        self.parsers = {}
        for path, header in self.headers.items():
            if tuple(header) not in plans:
                plans[tuple(header)] = RowParser(self.recipe, header)
            self.parsers[path] = plans[tuple(header)]
        self.rows_in = Metrics.counter(NAMESPACE, "rows_in")
        self.rejected = Metrics.counter(NAMESPACE, "rows_rejected")
        self.by_kind = {kind: Metrics.counter(NAMESPACE, f"rows_rejected_{kind}") for kind in REJECT_KINDS}

    def process(self, element: tuple[str, str]):
        path, line = element
        self.rows_in.inc()
        parser = self.parsers.get(path) or self.parsers.get(normalize_path(path))
        if parser is None:
            raise ValueError(f"no header was read for {path!r}; known files: {sorted(self.parsers)}")
        try:
            yield parser.parse_line(line)
        except RowRejected as reject:
            self.rejected.inc()
            self.by_kind[reject.kind].inc()
            yield beam.pvalue.TaggedOutput(REJECTS, reject_record(path, line, reject))


class ParseRows(beam.PTransform):
    """``(file, line)`` -> ``{"rows": (key, values), "rejects": reject dicts}``.

    Args:
        recipe: the recipe.
        headers: file -> its column names.
    """

    def __init__(self, recipe: Recipe, headers: Mapping[str, Sequence[str]]):
        super().__init__()
        self.recipe = recipe
        self.headers = headers

    def expand(self, lines):
        parsed = lines | "ParseRow" >> beam.ParDo(ParseRowFn(self.recipe, self.headers)).with_outputs(
            REJECTS, main=ROWS)
        return {ROWS: parsed[ROWS], REJECTS: parsed[REJECTS]}


class AssignSplits(beam.PTransform):
    """``(key, values)`` -> ``(split, values)`` by the hashed key (see :mod:`pipelines.splits`).

    Args:
        split: the recipe's ``data.split`` (key, fractions, seed).
    """

    def __init__(self, split: Split):
        super().__init__()
        self.fractions = active_splits(split)
        self.seed = split.seed

    def expand(self, rows):
        fractions, seed = self.fractions, self.seed
        return rows | "HashKey" >> beam.MapTuple(lambda key, values: (assign_split(key, fractions, seed), values))


class PartitionSplits(beam.PTransform):
    """``(split, values)`` -> ``{split: PCollection of (split, values)}``.

    Args:
        splits: the split names, in order.
    """

    def __init__(self, splits: Sequence[str]):
        super().__init__()
        self.splits = list(splits)

    def expand(self, assigned):
        index = {name: i for i, name in enumerate(self.splits)}
        parts = assigned | "Partition" >> beam.Partition(lambda row, _: index[row[0]], len(self.splits))
        return {name: parts[i] for name, i in index.items()}


class EncodeExampleFn(beam.DoFn):
    """``(split, values)`` -> the serialized ``tf.Example``; counts the rows written."""

    def __init__(self, split: str):
        self.split = split

    def setup(self):
        self.written = Metrics.counter(NAMESPACE, "rows_written")
        self.written_split = Metrics.counter(NAMESPACE, f"rows_written_{self.split}")

    def process(self, element: tuple[str, dict[str, Any]]):
        self.written.inc()
        self.written_split.inc()
        yield encode_example(element[1])


class WriteExamples(beam.PTransform):
    """Writes one split as gzip TFRecord shards ``<split>-SSSSS-of-NNNNN.tfrecord.gz``.

    Args:
        out_dir: the dataset folder.
        split: the split name (the file prefix).
        shards: number of shards.
    """

    def __init__(self, out_dir: str, split: str, shards: int):
        super().__init__()
        self.out_dir, self.split, self.shards = out_dir, split, shards

    def expand(self, rows):
        return (rows
                | "Encode" >> beam.ParDo(EncodeExampleFn(self.split))
                | "Write" >> beam.io.WriteToTFRecord(
                    os.path.join(self.out_dir, self.split), file_name_suffix=".tfrecord.gz",
                    num_shards=self.shards, shard_name_template=SHARD_TEMPLATE,
                    compression_type=CompressionTypes.GZIP))


class WriteRejects(beam.PTransform):
    """Writes rejects as JSON lines ``rejects/rejects-SSSSS-of-NNNNN.jsonl``."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def expand(self, rejects):
        return (rejects
                | "ToJson" >> beam.Map(json.dumps)
                | "Write" >> beam.io.WriteToText(
                    os.path.join(self.out_dir, REJECTS_DIR, "rejects"), file_name_suffix=".jsonl",
                    shard_name_template=SHARD_TEMPLATE))


class ComputeStatistics(beam.PTransform):
    """``(split, values)`` of the train split -> one dict of feature statistics."""

    def __init__(self, features: Sequence[Feature]):
        super().__init__()
        self.features = list(features)

    def expand(self, rows):
        return (rows
                | "Values" >> beam.Values()
                | "Combine" >> beam.CombineGlobally(FeatureStatsFn(self.features)))


class CountLabels(beam.PTransform):
    """``(split, values)`` -> one dict ``{split: {task: {labelled, positives}}}``."""

    def __init__(self, tasks: Sequence[Task]):
        super().__init__()
        self.tasks = list(tasks)

    def expand(self, rows):
        return (rows
                | "PerSplit" >> beam.CombinePerKey(LabelCountsFn(self.tasks))
                | "ToDict" >> beam.combiners.ToDict())


class CountRows(beam.PTransform):
    """Row counts as data: ``{"rows_in": n, "rows_written": {split: n}, "rows_rejected":
    {kind: n}}`` from a dict of the lines, the ``(split, values)`` rows and the rejects."""

    def expand(self, streams: Mapping[str, Any]):
        rows_in = (streams["lines"] | "CountIn" >> beam.combiners.Count.Globally()
                   | "KeyIn" >> beam.Map(lambda n: ("rows_in", n)))
        written = (streams["rows"] | "SplitOf" >> beam.Keys()
                   | "CountWritten" >> beam.combiners.Count.PerElement()
                   | "KeyWritten" >> beam.MapTuple(lambda split, n: (f"rows_written/{split}", n)))
        rejected = (streams["rejects"] | "KindOf" >> beam.Map(lambda reject: reject["kind"])
                    | "CountRejected" >> beam.combiners.Count.PerElement()
                    | "KeyRejected" >> beam.MapTuple(lambda kind, n: (f"rows_rejected/{kind}", n)))
        return ((rows_in, written, rejected)
                | "Flatten" >> beam.Flatten()
                | "ToDict" >> beam.combiners.ToDict()
                | "Nest" >> beam.Map(_nest_counts))


def _nest_counts(flat: Mapping[str, int]) -> dict[str, Any]:
    counts: dict[str, Any] = {"rows_in": flat.get("rows_in", 0), "rows_written": {}, "rows_rejected": {}}
    for name, n in flat.items():
        if "/" in name:
            group, key = name.split("/", 1)
            counts[group][key] = n
    return counts


class WriteSummary(beam.PTransform):
    """Writes ``summary.json`` from a dict of single-element PCollections (name -> value)."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def expand(self, parts: Mapping[str, Any]):
        keyed = [pcoll | f"Key {name}" >> beam.Map(lambda value, name=name: (name, value))
                 for name, pcoll in parts.items()]
        return (keyed
                | "Flatten" >> beam.Flatten()
                | "ToDict" >> beam.combiners.ToDict()
                | "ToJson" >> beam.Map(lambda summary: json.dumps(summary, sort_keys=True))
                | "Write" >> beam.io.WriteToText(os.path.join(self.out_dir, SUMMARY_FILE),
                                                 shard_name_template="", num_shards=1))
