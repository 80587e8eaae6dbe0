"""The tf.data reader: TFRecord shards + dataset.json -> batches of (features, labels, masks).

Each element is a triple of dicts that Keras ``fit`` also understands as
``(x, y, sample_weight)``:

* ``features``: feature name -> tensor of shape (batch,), missing values as in the tf.Example
  layout (NaN, "" or -1; the model's preprocessing handles them);
* ``labels``: task name -> the label after ``task.clean()`` (no NaN, no -1);
* ``masks``: task name -> float (batch,), 1.0 where the row has that task's label.

The pipeline lists the shards, interleaves them in parallel (GZIP), shuffles, batches and only
then parses, so ``tf.io.parse_example`` runs once per batch (vectorised) rather than per row.
Every stage is deterministic, so a seed fixes the order of rows across runs.

A split small enough for memory (``in_memory``, by default when its parsed size, estimated
from dataset.json, is under ``IN_MEMORY_BUDGET_BYTES``) is parsed once and kept as tensors;
each epoch then gathers batches from a fresh permutation of its rows: a full shuffle at
memory speed, so training never waits for decompression and parsing after the first pass.
"""

from __future__ import annotations

from typing import Any, Sequence

import tensorflow as tf

from mtl_tf.data.parsing import feature_parse_spec, label_keys
from mtl_tf.data.spec import DatasetSpec

COMPRESSION = "GZIP"
IN_MEMORY_BUDGET_BYTES = 512 * 2**20
_MAX_PARALLEL_FILES = 16
_LOAD_BATCH = 4096


def make_dataset(spec: DatasetSpec, split: str, tasks: Sequence[Any], batch_size: int,
                 shuffle: bool = False, shuffle_buffer: int = 10_000, seed: int = 0,
                 repeat: bool = False, drop_remainder: bool = False,
                 in_memory: bool | None = None) -> tf.data.Dataset:
    """Batches of ``(features, labels, masks)`` from one split of a dataset.

    Args:
        spec: the dataset (``DatasetSpec.read(folder)``).
        split: a split name of ``spec.splits`` ("train", "validation", "test").
        tasks: TaskType objects; labels and masks are keyed by their names. A subset of the
            dataset's tasks is fine (a single-task baseline reads only its own label).
        batch_size: rows per batch.
        shuffle: shuffle the shard order and the rows (through a ``shuffle_buffer`` of rows).
        shuffle_buffer: rows held by the shuffle buffer.
        seed: fixes the shuffle; the same seed gives the same order of rows.
        repeat: repeat forever (each pass reshuffled when ``shuffle``).
        drop_remainder: drop the last, smaller batch.
        in_memory: parse the split once and serve batches from memory (a full shuffle per
            epoch rather than a ``shuffle_buffer`` window); None decides from the split's
            estimated size (:func:`fits_in_memory`).

    Returns:
        A ``tf.data.Dataset`` of ``(features, labels, masks)`` dicts, prefetched.

    Example:
        >>> ds = make_dataset(spec, "train", build_tasks(recipe.tasks), batch_size=256, shuffle=True)
        >>> features, labels, masks = next(iter(ds))
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; received {batch_size!r}")
    if shuffle and shuffle_buffer < 1:
        raise ValueError(f"shuffle_buffer must be a positive integer; received {shuffle_buffer!r}")
    parse = _batch_parser(spec, tasks)
    if in_memory is None:
        in_memory = fits_in_memory(spec, split, tasks)
    if in_memory:
        return _from_memory(_load_split(spec, split, parse), batch_size, shuffle, seed, repeat, drop_remainder)
    ds = _records(shard_files(spec, split), shuffle, seed)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def fits_in_memory(spec: DatasetSpec, split: str, tasks: Sequence[Any],
                   budget: int = IN_MEMORY_BUDGET_BYTES) -> bool:
    """Whether a split's parsed tensors (estimated at 8 bytes a value) fit in ``budget``."""
    values = len(spec.features) + sum(max(1, len(t.classes or [])) * 2 for t in tasks)
    return split_size(spec, split) * values * 8 <= budget


def _load_split(spec: DatasetSpec, split: str, parse) -> Any:
    """Every row of a split, parsed, as one structure of tensors (rows in shard-name order)."""
    records = _records(shard_files(spec, split), shuffle=False, seed=0)
    parts = list(records.batch(_LOAD_BATCH).map(parse, num_parallel_calls=tf.data.AUTOTUNE))
    if not parts:
        raise ValueError(f"split '{split}' of dataset '{spec.name}' holds no rows")
    return tf.nest.map_structure(lambda *pieces: tf.concat(pieces, axis=0), *parts)


def _from_memory(data: Any, batch_size: int, shuffle: bool, seed: int, repeat: bool,
                 drop_remainder: bool) -> tf.data.Dataset:
    rows = int(tf.nest.flatten(data)[0].shape[0])
    order = tf.data.Dataset.range(rows)
    if shuffle:
        order = order.shuffle(rows, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        order = order.repeat()
    order = order.batch(batch_size, drop_remainder=drop_remainder)

    def gather(index):
        return tf.nest.map_structure(lambda values: tf.gather(values, index), data)

    return order.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def raw_examples(spec: DatasetSpec, split: str, n: int) -> list[bytes]:
    """The first ``n`` serialized tf.Examples of a split, shards read in name order.

    Args:
        spec: the dataset.
        split: a split name of ``spec.splits``.
        n: how many examples; fewer come back when the split is smaller.

    Returns:
        A list of serialized ``tf.Example`` protos (bytes), ready for a serving signature.
    """
    if n < 0:
        raise ValueError(f"n must be zero or a positive integer; received {n!r}")
    records = tf.data.TFRecordDataset(shard_files(spec, split), compression_type=COMPRESSION)
    return [record.numpy() for record in records.take(n)]


def split_size(spec: DatasetSpec, split: str) -> int:
    """Rows in a split, as dataset.json records them."""
    _check_split(spec, split)
    return spec.splits[split].num_examples


def shard_files(spec: DatasetSpec, split: str) -> list[str]:
    """The split's TFRecord shard paths, sorted; fails when the pattern matches nothing."""
    _check_split(spec, split)
    pattern = spec.files(split)
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"split '{split}' of dataset '{spec.name}': no TFRecord file matches "
                         f"{pattern!r}; was the dataset moved without its shards?")
    return files


def _check_split(spec: DatasetSpec, split: str) -> None:
    if split not in spec.splits:
        raise ValueError(f"dataset '{spec.name}' has no split {split!r}; allowed: "
                         f"{', '.join(sorted(spec.splits))}")


def _records(files: list[str], shuffle: bool, seed: int) -> tf.data.Dataset:
    """Serialized records of the shards, interleaved in parallel (shard order shuffled or not)."""
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return ds.interleave(_read_records, cycle_length=min(len(files), _MAX_PARALLEL_FILES),
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _read_records(path: tf.Tensor) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(path, compression_type=COMPRESSION)


def _batch_parser(spec: DatasetSpec, tasks: Sequence[Any]):
    """A function: serialized batch -> (features, labels, masks)."""
    feature_spec = feature_parse_spec(spec)
    label_key = _task_label_keys(spec, tasks)
    example_spec = dict(feature_spec)
    for task in tasks:
        key = label_key[task.name]
        if key in feature_spec:
            raise ValueError(f"task '{task.name}': its label key '{key}' is also a feature of "
                             f"dataset '{spec.name}'; a label must not be an input")
        example_spec[key] = task.parse_feature()

    def parse(serialized: tf.Tensor):
        parsed = tf.io.parse_example(serialized, example_spec)
        features = {name: parsed[name] for name in feature_spec}
        raw = {task.name: parsed[label_key[task.name]] for task in tasks}
        labels = {task.name: task.clean(raw[task.name]) for task in tasks}
        masks = {task.name: task.mask(raw[task.name]) for task in tasks}
        return features, labels, masks

    return parse


def _task_label_keys(spec: DatasetSpec, tasks: Sequence[Any]) -> dict[str, str]:
    keys = label_keys(spec)
    if not tasks:
        raise ValueError(f"make_dataset needs at least one task; dataset '{spec.name}' has: "
                         f"{', '.join(keys)}")
    missing = [task.name for task in tasks if task.name not in keys]
    if missing:
        raise ValueError(f"task(s) {', '.join(repr(m) for m in missing)} not in dataset "
                         f"'{spec.name}'; its tasks: {', '.join(keys)}")
    return keys
