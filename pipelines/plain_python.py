"""The CSV conversion in one Python process, without Beam: the baseline for benchmarks.

It reads, parses, validates, splits and encodes with the very functions the Beam pipeline
uses (:class:`pipelines.rows.RowParser`, :func:`pipelines.splits.assign_split`,
:func:`pipelines.encoding.encode_example`), and writes the same shard names, so the two
differ only in the execution engine. It computes no statistics and writes no
``dataset.json``: use :func:`pipelines.csv_to_tfrecords.run` for a dataset.
"""

from __future__ import annotations

import gzip
import json
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Sequence

from mtl_tf.recipe.schema import Recipe
from pipelines.encoding import encode_example
from pipelines.rows import RowParser, RowRejected, reject_record
from pipelines.sources import check_headers, read_headers
from pipelines.splits import active_splits, assign_split


def convert(recipe: Recipe, files: Sequence[str], out_dir: str | Path) -> int:
    """Writes ``<split>-SSSSS-of-NNNNN.tfrecord.gz`` shards and a rejects file from CSV files.

    Args:
        recipe: the recipe (features, tasks, split, shards).
        files: local CSV files (``.gz`` too), not globs.
        out_dir: the output folder.

    Returns:
        The number of examples written (all splits).
    """
    import tensorflow as tf

    files = [str(Path(f).resolve()) for f in files]
    headers = read_headers(files, recipe.data.source.delimiter)
    check_headers(recipe, headers)
    out = Path(out_dir)
    (out / "rejects").mkdir(parents=True, exist_ok=True)
    fractions, seed, shards = active_splits(recipe.data.split), recipe.data.split.seed, recipe.data.shards
    written = {split: 0 for split in fractions}
    with ExitStack() as stack:
        writers = {split: [stack.enter_context(tf.io.TFRecordWriter(
            str(out / f"{split}-{i:05d}-of-{shards:05d}.tfrecord.gz"), options="GZIP"))
            for i in range(shards)] for split in fractions}
        rejects = stack.enter_context((out / "rejects" / "rejects-00000-of-00001.jsonl").open("w"))
        for path in files:
            parser = RowParser(recipe, headers[path])
            for line in _data_lines(path):
                try:
                    key, values = parser.parse_line(line)
                except RowRejected as reject:
                    rejects.write(json.dumps(reject_record(path, line, reject)) + "\n")
                    continue
                split = assign_split(key, fractions, seed)
                writers[split][written[split] % shards].write(encode_example(values))
                written[split] += 1
    return sum(written.values())


def _data_lines(path: str):
    """The lines after the header, without their line endings (as Beam's text reader gives them)."""
    with _open_text(path) as handle:
        next(handle, None)
        for line in handle:
            yield line.rstrip("\r\n")


def _open_text(path: str) -> IO[str]:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")
