"""The CSV conversion in one Python process, without Beam: the baseline for benchmarks.

It reads, parses, validates, splits, encodes and summarizes with the very code the Beam
pipeline runs (:class:`pipelines.batches.BatchConverter`, on the same batch size, and
:class:`pipelines.statistics.SummaryFn`), and writes the same shard names, rejects file and
``summary.json``, so the two differ only in the execution engine. It writes no
``dataset.json``: use :func:`pipelines.csv_to_tfrecords.run` for a dataset.
"""

from __future__ import annotations

import bz2
import gzip
import json
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Sequence

from mtl_tf.recipe.charsets import UTF8
from mtl_tf.recipe.schema import Recipe
from pipelines.batches import BatchConverter
from pipelines.csv_to_tfrecords import check_counts
from pipelines.records import read_records
from pipelines.sources import check_headers, file_columns
from pipelines.transforms import BATCH_SIZE, REJECTS_FILE, SUMMARY_FILE, example_files


def convert(recipe: Recipe, files: Sequence[str], out_dir: str | Path) -> int:
    """Writes ``<split>-SSSSS-of-NNNNN.tfrecord.gz`` shards, a rejects file and ``summary.json``.

    Args:
        recipe: the recipe (features, tasks, split, shards).
        files: local CSV files (``.gz`` too), not globs.
        out_dir: the output folder.

    Returns:
        The number of examples written (all splits).

    Raises:
        RuntimeError: rows in != written + rejected (see
            :func:`pipelines.csv_to_tfrecords.check_counts`).
    """
    import tensorflow as tf

    files = [str(Path(f).resolve()) for f in files]
    source = recipe.data.source
    headers = file_columns(files, source)
    check_headers(recipe, headers)
    converter = BatchConverter(recipe, headers)
    out = Path(out_dir)
    (out / REJECTS_FILE).parent.mkdir(parents=True, exist_ok=True)
    shards = recipe.data.shards
    written = {split: 0 for split in converter.fractions}
    rejected = 0
    summary = converter.summary_fn.create_accumulator()
    with ExitStack() as stack:
        writers = {split: [stack.enter_context(tf.io.TFRecordWriter(str(out / name), options="GZIP"))
                           for name in example_files(split, shards)] for split in written}
        rejects = stack.enter_context((out / REJECTS_FILE).open("w"))
        for path in files:
            for lines in _batches(path, BATCH_SIZE, source.header, source.delimiter, source.encoding):
                batch = converter.convert(lines)
                for split, examples in batch.examples.items():
                    for example in examples:
                        writers[split][written[split] % shards].write(example)
                        written[split] += 1
                rejects.writelines(json.dumps(reject) + "\n" for reject in batch.rejects)
                rejected += len(batch.rejects)
                summary = converter.summary_fn.add_input(summary, batch.summary)
    merged = converter.summary_fn.extract_output(summary)
    (out / SUMMARY_FILE).write_text(json.dumps(merged, sort_keys=True) + "\n")
    check_counts(merged["counts"]["rows_in"], written, rejected)
    return sum(written.values())


def _batches(path: str, size: int, skip_header: bool = True, delimiter: str = ",", encoding: str = UTF8):
    """``(path, record)`` lists of up to ``size`` data records of the file, decoded from ``encoding``."""
    batch = []
    with _open_binary(path) as handle:
        for record in read_records(handle, 0, None, delimiter, skip_header=skip_header, encoding=encoding):
            batch.append((path, record))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def _open_binary(path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")
