"""The tf.data reader: TFRecord shards + dataset.json -> batches of (features, labels, masks).

Each element is a triple of dicts that Keras ``fit`` also understands as
``(x, y, sample_weight)``:

* ``features``: feature name -> tensor of shape (batch,) or (batch, *shape) for a feature
  with a per-row shape (a sequence), missing values as in the tf.Example layout (NaN, "" or
  -1; the model's preprocessing handles them); an image feature is uint8
  (batch, height, width, channels);
* ``labels``: task name -> the label after ``task.clean()`` (no NaN, no -1); a dense label
  (segmentation, depth, detection) in the form :mod:`mtl_tf.data.images` gives;
* ``masks``: task name -> float (batch,), 1.0 where the row has that task's label.

Images and dense labels are decoded per batch in the pipeline (a parallel map after the
rows are batched), never in the model; with ``augment`` (the training split) the decoded
batch is then augmented (:mod:`mtl_tf.data.augment`).

A split small enough for memory (``in_memory``, by default when its decoded size, estimated
from dataset.json, is under ``IN_MEMORY_BUDGET_BYTES``) is parsed once and kept as tensors;
images, masks and depth maps are kept encoded (as they are in the TFRecords) and decoded
per batch after slicing, so the memory held is about the shards' size, well under the
decoded size the estimate counts.
Each pass permutes all of its rows at once (one gather per tensor, with a seed drawn for
that pass) and serves consecutive slices of the permuted tensors as batches: a full shuffle
at memory speed, with no per-batch gathers, so training never waits for decompression and
parsing after the first pass. While a shuffled pass is served, its permuted copy is held too
(about twice the split's parsed size).

A larger split is parsed once into an on-disk cache (``cache="auto"`` or ``"disk"``,
:mod:`mtl_tf.data.cache`): chunks of parsed rows (``tf.data.Dataset.save``) next to the
dataset (``<dataset>/cache``) or in ``cache_dir``, keyed by the shards and the parsing spec,
so later passes read tensors and parse nothing. Each pass reads the chunks in a new random
order (a full permutation of the chunks) and permutes the rows within windows of at least
``shuffle_buffer`` rows (consecutive chunks of that order) before cutting batches; unshuffled,
it gives the batches of the streamed path, row for row. ``cache="none"`` streams every pass
from the shards instead: they are read in parallel (GZIP) and taken in turns, a chunk of rows
from each; the serialized rows go through a shuffle buffer and are parsed a few batches at a
time (``tf.io.parse_example`` vectorised over rows, on parallel threads), then cut into
batches.

Every stage is deterministic, so a seed fixes the order of rows across runs (TensorFlow
mixes its global seed, ``keras.utils.set_random_seed``, into seeded ops: the same seed and
the same global seed give the same order); a dataset that is iterated again (or repeats) is reshuffled for each pass. Both paths report how many
batches they hold (``cardinality()``, from dataset.json's row counts; infinite when
repeated), so a training loop knows the steps per epoch before it starts; a split whose
shards disagree with dataset.json fails (while its cache is built, or at the end of a
streamed pass) rather than training on a different count silently.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any, Sequence

import tensorflow as tf

from mtl_tf.data.cache import cached_chunks, default_cache_dir
from mtl_tf.data.parsing import decode_features, dense_labels, feature_parse_spec, image_features, label_keys
from mtl_tf.data.spec import DatasetSpec

COMPRESSION = "GZIP"
IN_MEMORY_BUDGET_BYTES = 512 * 2**20
_MAX_PARALLEL_FILES = 16
_LOAD_BATCH = 4096
_READ_CHUNK = 64
_PARSE_ROWS = 2048
_PREFETCH_BATCHES = 4
_AUGMENT_SEED = 7919  # keeps the augmentation draws apart from the shuffle's
_CHUNK_BYTES = 256 * 2**10
_MIN_CHUNK_ROWS, _MAX_CHUNK_ROWS = 16, 1024
CACHE_MODES = ("auto", "memory", "disk", "none")
log = logging.getLogger(__name__)


def make_dataset(spec: DatasetSpec, split: str, tasks: Sequence[Any], batch_size: int,
                 shuffle: bool = False, shuffle_buffer: int = 10_000, seed: int = 0,
                 repeat: bool = False, drop_remainder: bool = False,
                 in_memory: bool | None = None, augment: Any = None, cache: str = "auto",
                 cache_dir: str | None = None) -> tf.data.Dataset:
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
            epoch rather than a ``shuffle_buffer`` window); False: read it from disk at every
            pass (from the parsed cache unless ``cache="none"``); None decides from the split's
            estimated size (:func:`fits_in_memory`).
        augment: random augmentation of the decoded batches (the recipe's ``data.augment``,
            an ``Augment`` or its mapping; for the training split only); None or every
            option off: none. Deterministic for a ``seed``, different at every pass.
        cache: where the parsed rows are kept: ``"auto"`` (in memory when the split fits,
            else the disk cache), ``"memory"``, ``"disk"`` (parsed once into
            :mod:`mtl_tf.data.cache`, read back every pass) or ``"none"`` (the shards parsed
            at every pass).
        cache_dir: the disk cache's folder; None: ``cache`` beside the dataset's shards.

    Returns:
        A ``tf.data.Dataset`` of ``(features, labels, masks)`` dicts, prefetched, whose
        ``cardinality()`` is the number of batches (infinite when ``repeat``).

    Example:
        >>> ds = make_dataset(spec, "train", build_tasks(recipe.tasks), batch_size=256, shuffle=True)
        >>> features, labels, masks = next(iter(ds))
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; received {batch_size!r}")
    if shuffle and shuffle_buffer < 1:
        raise ValueError(f"shuffle_buffer must be a positive integer; received {shuffle_buffer!r}")
    example_spec, from_parsed = _parsing(spec, tasks)
    parse = _parser(example_spec, from_parsed)
    finish = _batch_finisher(spec, tasks, augment, seed)
    mode, folder = _reading_mode(spec, split, tasks, in_memory, cache, cache_dir)
    ds = None
    if mode == "memory":
        ds = _from_memory(_load_split(spec, split, parse), batch_size, shuffle, seed, repeat, drop_remainder)
    elif mode == "disk":
        ds = _from_disk_cache(spec, split, tasks, folder, example_spec, from_parsed, batch_size, shuffle,
                              shuffle_buffer, seed, repeat, drop_remainder, required=cache == "disk")
    if ds is None:
        ds = _streamed(spec, split, parse, batch_size, shuffle, shuffle_buffer, seed, repeat, drop_remainder)
    if finish is not None:
        ds = _intra_op_threads(finish(ds))
    elif mode == "memory":
        ds = _without_static_rewrites(ds)
    return _fixed_parallelism(ds.prefetch(_PREFETCH_BATCHES))


def fits_in_memory(spec: DatasetSpec, split: str, tasks: Sequence[Any], budget: int | None = None) -> bool:
    """Whether a split's decoded tensors (:func:`row_bytes` a row) fit in ``budget`` (None:
    ``IN_MEMORY_BUDGET_BYTES``)."""
    return split_size(spec, split) * row_bytes(spec, tasks) <= (IN_MEMORY_BUDGET_BYTES if budget is None else budget)


def row_bytes(spec: DatasetSpec, tasks: Sequence[Any]) -> int:
    """Estimated bytes of one decoded row.

    A tabular feature counts 8 bytes per element of its per-row shape (a sequence of 20
    counts 20), a tabular label 16 per class (value and mask); an image its decoded size
    (height x width x channels bytes); a dense label its decoded tensor (4 bytes a pixel
    or box value) and mask.
    """
    dense = dense_labels(spec, [task.name for task in tasks])
    values = sum(math.prod(f.shape) for f in spec.features if f.kind != "image")
    values += sum(max(1, len(t.classes or [])) * 2 for t in tasks if t.name not in dense)
    images = sum(math.prod(f.shape) for f in image_features(spec))
    return values * 8 + images + sum(label.decoded_bytes for label in dense.values())


def batch_count(rows: int, batch_size: int, drop_remainder: bool) -> int:
    """Batches in one pass over ``rows`` rows: the last, smaller one counts unless dropped."""
    return rows // batch_size if drop_remainder else -(-rows // batch_size)


def _reading_mode(spec: DatasetSpec, split: str, tasks: Sequence[Any], in_memory: bool | None, cache: str,
                  cache_dir: str | None) -> tuple[str, str | None]:
    """``("memory" | "disk" | "none", the disk cache's folder)`` for ``make_dataset``'s options."""
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {', '.join(CACHE_MODES)}; received {cache!r}")
    if (in_memory is True and cache in ("disk", "none")) or (in_memory is False and cache == "memory"):
        raise ValueError(f"in_memory={in_memory} contradicts cache={cache!r}; give one of them")
    if in_memory or cache == "memory" or (in_memory is None and cache == "auto"
                                          and fits_in_memory(spec, split, tasks)):
        return "memory", None
    if cache == "none":
        return "none", None
    folder = cache_dir or default_cache_dir(spec.root)
    if folder is None:
        if cache == "disk":
            raise ValueError(f"dataset '{spec.name}' is at {spec.root}, not on a local file system: "
                             "give cache_dir (data.cache_dir) for its disk cache, or cache 'none'")
        return "none", None
    return "disk", folder


def chunk_rows(spec: DatasetSpec, tasks: Sequence[Any]) -> int:
    """Rows per chunk of the disk cache: about 256 KiB of decoded rows, 16 to 1,024 rows."""
    return max(_MIN_CHUNK_ROWS, min(_MAX_CHUNK_ROWS, _CHUNK_BYTES // max(1, row_bytes(spec, tasks))))


def _from_disk_cache(spec: DatasetSpec, split: str, tasks: Sequence[Any], folder: str, example_spec, from_parsed,
                     batch_size: int, shuffle: bool, shuffle_buffer: int, seed: int, repeat: bool,
                     drop_remainder: bool, required: bool) -> tf.data.Dataset | None:
    """Batches read back from the split's disk cache (built first when needed); None when the
    cache cannot be written and ``required`` is off (the caller streams the shards)."""
    files, rows, chunk = shard_files(spec, split), split_size(spec, split), chunk_rows(spec, tasks)

    def chunks() -> tf.data.Dataset:
        records = _records(files, shuffle=False, seed=0).batch(chunk)
        return _fixed_parallelism(records.map(lambda serialized: tf.io.parse_example(serialized, example_spec),
                                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))

    try:
        saved, count = cached_chunks(folder, split, files, rows, example_spec, chunk, chunks)
    except PermissionError as err:
        if required:
            raise ValueError(f"the disk cache of split '{split}' of dataset '{spec.name}' cannot be written in "
                             f"{folder} ({err.strerror}); give a writable cache_dir (data.cache_dir)") from err
        log.warning("cannot write a cache in %s (%s): split '%s' is parsed at every pass", folder, err.strerror,
                    split)
        return None
    except ValueError as err:
        raise ValueError(f"split '{split}' of dataset '{spec.name}': {err}") from None
    ds = tf.data.Dataset.load(saved, reader_func=partial(_chunk_order, count, shuffle, seed))
    ds = ds.map(lambda index, parsed: parsed)
    if shuffle:
        window = -(-max(shuffle_buffer, chunk) // chunk) * chunk
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds.rebatch(window), seeds)
        ds = ds.map(lambda parsed, window_seed: from_parsed(_permuted(parsed, tf.stack(
            [window_seed, tf.constant(seed, tf.int64)]))), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(from_parsed, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.rebatch(batch_size, drop_remainder=drop_remainder)
    batches = tf.data.INFINITE_CARDINALITY if repeat else batch_count(rows, batch_size, drop_remainder)
    return ds.apply(tf.data.experimental.assert_cardinality(batches))


def _chunk_order(count: int, shuffle: bool, seed: int, chunks: tf.data.Dataset) -> tf.data.Dataset:
    """The cache's chunks (one dataset each), in a new random order at every pass when
    ``shuffle``, read two at a time; unshuffled, in the order they were written."""
    if shuffle:
        chunks = chunks.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return chunks.interleave(lambda chunk: chunk, cycle_length=2, num_parallel_calls=2, deterministic=True)


def _streamed(spec: DatasetSpec, split: str, parse, batch_size: int, shuffle: bool, shuffle_buffer: int,
              seed: int, repeat: bool, drop_remainder: bool) -> tf.data.Dataset:
    """Serialized rows shuffled, parsed on parallel threads a few batches at a time, then cut
    into batches (the same batches as parsing each one alone, for less work per row)."""
    ds = _records(shard_files(spec, split), shuffle, seed)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size * max(1, _PARSE_ROWS // batch_size))
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.rebatch(batch_size, drop_remainder=drop_remainder)
    batches = tf.data.INFINITE_CARDINALITY if repeat else batch_count(split_size(spec, split), batch_size,
                                                                       drop_remainder)
    return ds.apply(tf.data.experimental.assert_cardinality(batches))


def _load_split(spec: DatasetSpec, split: str, parse) -> Any:
    """Every row of a split, parsed, as one structure of tensors (the shards, in name order,
    taken in turns a chunk of rows at a time)."""
    records = _records(shard_files(spec, split), shuffle=False, seed=0)
    parts = list(_fixed_parallelism(records.batch(_LOAD_BATCH).map(parse, num_parallel_calls=tf.data.AUTOTUNE)))
    if not parts:
        raise ValueError(f"split '{split}' of dataset '{spec.name}' holds no rows")
    return tf.nest.map_structure(lambda *pieces: tf.concat(pieces, axis=0), *parts)


def _from_memory(data: Any, batch_size: int, shuffle: bool, seed: int, repeat: bool,
                 drop_remainder: bool) -> tf.data.Dataset:
    """Batches cut from tensors held in memory.

    Each element upstream of ``rebatch`` is a whole pass over the split (with ``shuffle``, all
    its rows permuted by a seed drawn for that pass); ``rebatch`` cuts consecutive slices, so a
    batch costs one copy rather than a gather per tensor, and a repeated split flows on across
    pass boundaries exactly as ``unbatch().batch()`` would.
    """
    if shuffle:
        passes = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        if not repeat:
            passes = passes.take(1)
        ds = passes.map(lambda pass_seed: _permuted(data, tf.stack([pass_seed, tf.constant(seed, tf.int64)])))
    else:
        ds = tf.data.Dataset.from_tensors(data)
        if repeat:
            ds = ds.repeat()
    ds = ds.rebatch(batch_size, drop_remainder=drop_remainder)
    batches = tf.data.INFINITE_CARDINALITY if repeat else batch_count(_row_count(data), batch_size,
                                                                       drop_remainder)
    return ds.apply(tf.data.experimental.assert_cardinality(batches))


def _fixed_parallelism(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` with the tf.data autotuner off: each ``AUTOTUNE`` stage keeps tf.data's initial
    parallelism (a thread per core, at most 16; a reader per shard being read) for the whole
    pass. The autotuner restarts with every pass, and its re-planning halved the throughput
    of whole passes on a 2-core machine (bench/input_pipeline.py).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def _without_static_rewrites(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` without tf.data's default graph rewrites (prefetch injection, fusions): a
    tabular split cut from memory has nothing for them to fuse, and they cost it about an
    eighth of its batches/s (fraud recipe, interleaved rounds: 619k -> 666k examples/s)."""
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return ds.with_options(options)


def _intra_op_threads(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` with its ops free to use TensorFlow's intra-op thread pool: tf.data runs the
    ops of its functions on one thread each by default, and decoding and resampling a batch
    of images then took about twice as long (bench/image_input.py)."""
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 0
    return ds.with_options(options)


def _row_count(data: Any) -> int:
    return int(tf.nest.flatten(data)[0].shape[0])


def _permuted(data: Any, seed: tf.Tensor) -> Any:
    """Every tensor of ``data`` with its rows in one random order (fixed by ``seed``, shape [2])."""
    rows = tf.shape(tf.nest.flatten(data)[0], out_type=tf.int64)[0]
    order = tf.random.experimental.stateless_shuffle(tf.range(rows), seed=seed)
    return tf.nest.map_structure(lambda values: tf.gather(values, order), data)


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


def split_keys(spec: DatasetSpec, split: str) -> list[str] | None:
    """Every example's split key (the patient id, say), in the order ``make_dataset`` reads the
    split unshuffled; None when the examples carry no key (dataset.json ``example_key``).

    The image pipelines store the key of ``data.split.key`` (after ``key_pattern``) in each
    example; evaluation groups test predictions by it.
    """
    if not spec.example_key:
        return None
    rule = {spec.example_key: tf.io.FixedLenFeature([], tf.string, default_value="")}
    records = _records(shard_files(spec, split), shuffle=False, seed=0).batch(_LOAD_BATCH)
    keys = records.map(lambda rows: tf.io.parse_example(rows, rule)[spec.example_key])
    return [key.decode("utf-8") for batch in _fixed_parallelism(keys) for key in batch.numpy()]


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
    """Serialized records of the shards, read in parallel (shard order shuffled or not).

    Each shard's reader hands over ``_READ_CHUNK`` records at a time, round-robin across the
    shards: handing rows over one by one between threads would cost more than reading them.
    """
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(_read_chunks, cycle_length=min(len(files), _MAX_PARALLEL_FILES),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.unbatch()


def _read_chunks(path: tf.Tensor) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(path, compression_type=COMPRESSION).batch(_READ_CHUNK)


def _batch_parser(spec: DatasetSpec, tasks: Sequence[Any]):
    """A function: serialized batch -> (features, labels, masks), with images and dense
    labels in their kept form (encoded bytes; boxes padded), see :func:`_batch_finisher`."""
    return _parser(*_parsing(spec, tasks))


def _parser(example_spec, from_parsed):
    """Serialized batch -> (features, labels, masks), from :func:`_parsing`'s pair."""
    return lambda serialized: from_parsed(tf.io.parse_example(serialized, example_spec))


def _parsing(spec: DatasetSpec, tasks: Sequence[Any]):
    """``(example_spec, from_parsed)``: the ``tf.io.parse_example`` spec of the features and
    the tasks' labels, and a function: parsed batch -> (features, labels, masks)."""
    feature_spec = feature_parse_spec(spec)
    label_key = _task_label_keys(spec, tasks)
    dense = dense_labels(spec, [task.name for task in tasks])
    tabular = [task for task in tasks if task.name not in dense]
    example_spec = dict(feature_spec)
    for task in tasks:
        rules = dense[task.name].rules() if task.name in dense else {label_key[task.name]: task.parse_feature()}
        for key, rule in rules.items():
            if key in feature_spec:
                raise ValueError(f"task '{task.name}': its label key '{key}' is also a feature of "
                                 f"dataset '{spec.name}'; a label must not be an input")
            example_spec[key] = rule

    def from_parsed(parsed: dict[str, tf.Tensor]):
        features = {name: parsed[name] for name in feature_spec}
        raw = {task.name: parsed[label_key[task.name]] for task in tabular}
        labels = {task.name: task.clean(raw[task.name]) for task in tabular}
        masks = {task.name: task.mask(raw[task.name]) for task in tabular}
        for name, label in dense.items():
            labels[name], masks[name] = label.parse(parsed)
        order = [task.name for task in tasks]
        return features, {n: labels[n] for n in order}, {n: masks[n] for n in order}

    return example_spec, from_parsed


def _batch_finisher(spec: DatasetSpec, tasks: Sequence[Any], augment: Any, seed: int):
    """A function: batched dataset -> the same batches with images and dense labels decoded
    (and augmented, with ``augment``), on parallel threads; None when there is nothing to
    decode (a tabular dataset keeps its pipeline as it was)."""
    from mtl_tf.data.augment import as_augmenter

    dense = dense_labels(spec, [task.name for task in tasks])
    augmenter = as_augmenter(augment, spec, tasks)
    if not image_features(spec) and not dense:
        return None

    def decode(features, labels, masks):
        labels = {name: dense[name].decode(value) if name in dense else value for name, value in labels.items()}
        return decode_features(features, spec), labels, masks

    def finish(ds: tf.data.Dataset) -> tf.data.Dataset:
        if augmenter is None:
            return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        # One seed per batch, drawn anew at every pass (and every iteration of the dataset).
        seeds = tf.data.Dataset.random(seed=seed + _AUGMENT_SEED, rerandomize_each_iteration=True)

        def augmented(batch, batch_seed):
            seed_pair = tf.stack([batch_seed, tf.constant(seed, tf.int64)])
            return augmenter(*decode(*batch), seed=seed_pair)

        return tf.data.Dataset.zip(ds, seeds).map(augmented, num_parallel_calls=tf.data.AUTOTUNE,
                                                   deterministic=True)

    return finish


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
