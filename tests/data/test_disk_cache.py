"""The disk cache of a split too large for memory: the batches of the streamed path, rebuilt
when the shards change or a cache file is damaged, and training through the Trainer as the
split held in memory does."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.data import reader
from mtl_tf.data.cache import MANIFEST, read_manifest
from mtl_tf.data.reader import make_dataset
from mtl_tf.data.spec import DatasetSpec

TRAIN = 48  # the tiny dataset's train rows, in 2 shards


@pytest.fixture()
def copied(spec, tmp_path, monkeypatch):
    """A private copy of the tiny dataset (no cache yet), cached in chunks of 16 rows."""
    monkeypatch.setattr(reader, "_CHUNK_BYTES", 1)
    shutil.copytree(spec.root, tmp_path / "dataset", ignore=shutil.ignore_patterns("cache"))
    return DatasetSpec.read(tmp_path / "dataset")


def _batches(ds):
    return list(ds.as_numpy_iterator())


def _assert_same_batches(first, second):
    assert len(first) == len(second)
    for one, other in zip(first, second):
        for part in range(3):
            assert one[part].keys() == other[part].keys()
            for key in one[part]:
                np.testing.assert_array_equal(one[part][key], other[part][key], err_msg=key)


def _caches(spec):
    return sorted(p.name for p in (Path(spec.root) / "cache").iterdir())


@pytest.mark.parametrize("options", [{"batch_size": 7}, {"batch_size": 7, "drop_remainder": True},
                                     {"batch_size": 10, "repeat": True}], ids=["keep_last", "drop_last", "repeat"])
def test_unshuffled_disk_cache_gives_the_batches_of_the_streamed_path(copied, tasks, options):
    take = 12 if options.get("repeat") else -1
    streamed = _batches(make_dataset(copied, "train", tasks, cache="none", **options).take(take))
    cached = _batches(make_dataset(copied, "train", tasks, cache="disk", **options).take(take))
    _assert_same_batches(streamed, cached)
    assert len(_caches(copied)) == 1


def test_a_changed_shard_gets_a_new_cache_and_the_old_one_goes(copied, tasks):
    make_dataset(copied, "train", tasks, batch_size=8, cache="disk")
    before = _caches(copied)
    shard = sorted(Path(copied.root).glob("train-*"))[0]
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(shard), compression_type="GZIP")]
    with tf.io.TFRecordWriter(str(shard), options="GZIP") as writer:
        for record in reversed(records):
            writer.write(record)
    cached = _batches(make_dataset(copied, "train", tasks, batch_size=8, cache="disk"))
    _assert_same_batches(_batches(make_dataset(copied, "train", tasks, batch_size=8, cache="none")), cached)
    after = _caches(copied)
    assert len(after) == 1 and after != before


def test_a_truncated_cache_file_is_rebuilt_not_trusted(copied, tasks):
    make_dataset(copied, "train", tasks, batch_size=8, cache="disk")
    folder = Path(copied.root) / "cache" / _caches(copied)[0]
    biggest = max((p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST), key=lambda p: p.stat().st_size)
    with open(biggest, "r+b") as handle:
        handle.truncate(biggest.stat().st_size // 2)
    assert read_manifest(folder) is None
    cached = _batches(make_dataset(copied, "train", tasks, batch_size=8, cache="disk"))
    _assert_same_batches(_batches(make_dataset(copied, "train", tasks, batch_size=8, cache="none")), cached)
    assert read_manifest(folder) is not None


def test_a_cache_without_its_manifest_is_rebuilt(copied, tasks):
    make_dataset(copied, "train", tasks, batch_size=8, cache="disk")
    folder = Path(copied.root) / "cache" / _caches(copied)[0]
    (folder / MANIFEST).unlink()
    assert len(_batches(make_dataset(copied, "train", tasks, batch_size=8, cache="disk"))) == 6
    assert json.loads((folder / MANIFEST).read_text())["rows"] == TRAIN


def test_shuffled_disk_cache_is_seeded_and_holds_every_row_once_per_pass(copied, tasks):
    def order(seed):
        ds = make_dataset(copied, "train", tasks, batch_size=8, cache="disk", shuffle=True, shuffle_buffer=16,
                          seed=seed, repeat=True)
        rows = [float(v) for features, _, _ in ds.take(12) for v in features["balance"].numpy()]
        return rows[:TRAIN], rows[TRAIN:]

    first, second = order(3)
    assert sorted(first) == sorted(second) and first != second
    assert order(3) == (first, second)
    assert order(4) != (first, second)


def test_bad_cache_options_name_the_value_and_the_allowed_ones(copied, tasks):
    with pytest.raises(ValueError, match="cache must be one of auto, memory, disk, none; received 'disc'"):
        make_dataset(copied, "train", tasks, batch_size=8, cache="disc")
    with pytest.raises(ValueError, match="in_memory=True contradicts cache='none'"):
        make_dataset(copied, "train", tasks, batch_size=8, cache="none", in_memory=True)


def test_a_split_over_the_memory_budget_trains_to_the_metrics_of_the_split_in_memory(copied, tmp_path, monkeypatch):
    from mtl_tf.recipe import parse_recipe
    from mtl_tf.runner import make_trainer
    from mtl_tf.tasks import build_tasks
    from tests.helpers.tiny_dataset import tiny_recipe

    raw = tiny_recipe(copied)
    raw["training"] = {"epochs": 2, "batch_size": 8, "early_stopping": None}
    recipe = parse_recipe(raw, check=False)
    tasks = build_tasks(recipe.tasks, copied)

    def train(name):
        trainer = make_trainer(recipe, copied, tasks, tmp_path / name, tf.distribute.get_strategy(), verbose=0)
        train_ds = make_dataset(copied, "train", tasks, batch_size=8)
        history = trainer.fit(train_ds)
        return history, trainer.evaluate(make_dataset(copied, "test", tasks, batch_size=8)), trainer.model

    memory_history, memory_metrics, memory_model = train("memory")
    assert not (Path(copied.root) / "cache").exists()
    monkeypatch.setattr(reader, "IN_MEMORY_BUDGET_BYTES", 1)
    disk_history, disk_metrics, disk_model = train("disk")
    assert len(_caches(copied)) == 2, "train and test each cached on disk"
    assert len(disk_history.epochs) == len(memory_history.epochs) == 2
    for ours, theirs in zip(disk_history.epochs, memory_history.epochs):
        assert {k: v for k, v in ours.items() if "per_s" not in k and "time" not in k} == pytest.approx(
            {k: v for k, v in theirs.items() if "per_s" not in k and "time" not in k}, rel=1e-5, abs=1e-6)
    for task, metrics in memory_metrics.items():
        for metric, value in metrics.items():
            assert disk_metrics[task][metric] == pytest.approx(value, rel=1e-5, abs=1e-6), (task, metric)
    for ours, theirs in zip(disk_model.get_weights(), memory_model.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
