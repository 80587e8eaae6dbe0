"""The tf.data reader on a tiny GZIP TFRecord dataset."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.data.reader import make_dataset, raw_examples, split_size
from mtl_tf.tasks import BinaryTask
from tests.helpers.tiny_dataset import tiny_rows

ROWS = 64  # train 48 rows in 2 shards, test 16 rows in 1 shard


def _concat(ds):
    """The whole dataset as numpy arrays: (features, labels, masks)."""
    batches = list(ds.as_numpy_iterator())
    return tuple({k: np.concatenate([b[part][k] for b in batches]) for k in batches[0][part]}
                 for part in range(3))


def test_shapes_and_dtypes(spec, tasks, reading):
    features, labels, masks = next(iter(make_dataset(spec, "train", tasks, batch_size=8, **reading)))
    assert {k: v.dtype for k, v in features.items()} == {
        "amount": tf.float32, "balance": tf.float32, "channel": tf.string, "timestamp": tf.int64}
    assert set(labels) == set(masks) == {"fraud", "default_risk"}
    for tensor in [*features.values(), *labels.values(), *masks.values()]:
        assert tensor.shape == (8,)
    assert all(v.dtype == tf.float32 for v in [*labels.values(), *masks.values()])


def test_masks_labels_and_missing_features_match_the_rows(spec, tasks, reading):
    rows = tiny_rows(ROWS, seed=0)["test"]  # one shard: read in written order
    features, labels, masks = _concat(make_dataset(spec, "test", tasks, batch_size=5, **reading))
    labelled = np.array([r["defaulted"] is not None for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(masks["default_risk"], labelled)
    np.testing.assert_array_equal(masks["fraud"], np.ones(len(rows), np.float32))
    np.testing.assert_array_equal(labels["default_risk"], [r["defaulted"] or 0.0 for r in rows])
    np.testing.assert_array_equal(labels["fraud"], [r["is_fraud"] for r in rows])
    assert not np.isnan(labels["default_risk"]).any()
    assert labelled.min() == 0.0, "the tiny dataset must have unlabelled rows for this test"
    np.testing.assert_array_equal(np.isnan(features["amount"]), [r["amount"] is None for r in rows])
    np.testing.assert_array_equal(features["channel"], [(r["channel"] or "").encode() for r in rows])
    np.testing.assert_array_equal(features["timestamp"], [r["timestamp"] or -1 for r in rows])


def test_batch_sizes(spec, tasks, reading):
    def sizes(**kwargs):
        ds = make_dataset(spec, "train", tasks, batch_size=10, **reading, **kwargs)
        return [len(f["balance"]) for f, _, _ in ds.take(7)]

    assert sizes() == [10, 10, 10, 10, 8]
    assert sizes(drop_remainder=True) == [10, 10, 10, 10]
    assert sizes(repeat=True) == [10] * 7


def test_reads_every_row_once_per_pass(spec, tasks, reading):
    train = tiny_rows(ROWS, seed=0)["train"]
    features, _, _ = _concat(make_dataset(spec, "train", tasks, batch_size=7, shuffle=True, seed=3,
                                            **reading))
    np.testing.assert_allclose(np.sort(features["balance"]), np.sort([r["balance"] for r in train]),
                               rtol=1e-6)


def test_shuffle_is_deterministic_for_a_seed(spec, tasks, reading):
    def order(seed, shuffle=True):
        ds = make_dataset(spec, "train", tasks, batch_size=16, shuffle=shuffle, seed=seed, **reading)
        return _concat(ds)[0]["balance"]

    np.testing.assert_array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))
    assert not np.array_equal(order(1), order(0, shuffle=False))


def test_subset_of_tasks(spec):
    _, labels, masks = next(iter(make_dataset(spec, "train", [BinaryTask("fraud")], batch_size=4)))
    assert set(labels) == set(masks) == {"fraud"}


def test_raw_examples_and_split_size(spec):
    train = tiny_rows(ROWS, seed=0)["train"]
    examples = raw_examples(spec, "train", 3)
    assert len(examples) == 3 and all(isinstance(e, bytes) for e in examples)
    first = tf.train.Example.FromString(examples[0]).features.feature
    assert first["balance"].float_list.value[0] == pytest.approx(train[0]["balance"])
    assert len(raw_examples(spec, "test", 1000)) == split_size(spec, "test") == 16
    assert split_size(spec, "train") == 48


def test_unknown_split_and_task_are_named(spec, tasks):
    with pytest.raises(ValueError, match=r"no split 'valid'.*allowed: test, train"):
        make_dataset(spec, "valid", tasks, batch_size=4)
    with pytest.raises(ValueError, match=r"'churn' not in dataset 'tiny'.*fraud, default_risk"):
        make_dataset(spec, "train", [BinaryTask("churn")], batch_size=4)
    with pytest.raises(ValueError, match="no split 'valid'"):
        split_size(spec, "valid")


def test_in_memory_and_streamed_read_the_same_rows_and_reshuffle_each_pass(spec, tasks):
    streamed = _concat(make_dataset(spec, "train", tasks, batch_size=9, in_memory=False))
    kept = _concat(make_dataset(spec, "train", tasks, batch_size=9, in_memory=True))
    for part in range(3):
        for key in streamed[part]:
            np.testing.assert_array_equal(streamed[part][key], kept[part][key])
    ds = make_dataset(spec, "train", tasks, batch_size=48, shuffle=True, seed=5, in_memory=True)
    first, second = (next(iter(ds))[0]["balance"].numpy() for _ in range(2))
    assert not np.array_equal(first, second), "each pass over the data must be reshuffled"
    np.testing.assert_array_equal(np.sort(first), np.sort(second))


def test_memory_budget_decides(spec, tasks):
    from mtl_tf.data.reader import fits_in_memory

    assert fits_in_memory(spec, "train", tasks)
    assert not fits_in_memory(spec, "train", tasks, budget=100)
