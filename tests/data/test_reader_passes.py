"""The reader's passes: known batch counts, a full permutation per pass, seeded order, row
integrity after shuffling (scalar and sequence features), and a dataset.json that lies."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.data.reader import batch_count, make_dataset
from mtl_tf.data.spec import DatasetSpec
from mtl_tf.tasks import BinaryTask
from tests.helpers.tiny_dataset import tiny_rows
from tests.models import sequence_toy as toy

ROWS = 64  # train: 48 rows in 2 shards
TRAIN = 48
REPO = Path(__file__).resolve().parents[2]


def _stream(ds, batches):
    """The first ``batches`` batches as one (features, labels, masks) structure of arrays."""
    parts = list(ds.take(batches).as_numpy_iterator())
    return tuple({k: np.concatenate([p[i][k] for p in parts]) for k in parts[0][i]} for i in range(3))


def _row_keys(features):
    """One hashable key per row (balance is never missing and distinct in the tiny data)."""
    return [float(b) for b in features["balance"]]


def test_batch_count():
    assert batch_count(48, 10, drop_remainder=False) == 5
    assert batch_count(48, 10, drop_remainder=True) == 4
    assert batch_count(48, 16, drop_remainder=False) == batch_count(48, 16, drop_remainder=True) == 3
    assert batch_count(5, 10, drop_remainder=True) == 0


@pytest.mark.parametrize("shuffle", [False, True], ids=["ordered", "shuffled"])
@pytest.mark.parametrize("drop_remainder", [False, True], ids=["keep_last", "drop_last"])
def test_cardinality_is_known_and_true(spec, tasks, reading, shuffle, drop_remainder):
    ds = make_dataset(spec, "train", tasks, batch_size=10, shuffle=shuffle, seed=1, **reading,
                      drop_remainder=drop_remainder)
    expected = 4 if drop_remainder else 5
    assert int(ds.cardinality()) == expected
    assert sum(1 for _ in ds) == expected


def test_repeated_dataset_reports_infinite_cardinality(spec, tasks, reading):
    for shuffle in (False, True):
        ds = make_dataset(spec, "train", tasks, batch_size=10, shuffle=shuffle, repeat=True, **reading)
        assert int(ds.cardinality()) == tf.data.INFINITE_CARDINALITY


def test_every_pass_holds_every_row_exactly_once_in_a_new_order(spec, tasks, reading):
    # Batches of 7 do not divide 48 rows, so batches straddle passes when repeated.
    ds = make_dataset(spec, "train", tasks, batch_size=7, shuffle=True, seed=4, repeat=True,
                      shuffle_buffer=TRAIN, **reading)
    keys = _row_keys(_stream(ds, batches=-(-3 * TRAIN // 7))[0])
    source = sorted(r["balance"] for r in tiny_rows(ROWS, seed=0)["train"])
    passes = [keys[i * TRAIN:(i + 1) * TRAIN] for i in range(3)]
    for one_pass in passes:
        np.testing.assert_allclose(sorted(one_pass), source, rtol=1e-6)
    assert passes[0] != passes[1] != passes[2], "each pass must be reshuffled"


def test_iterating_again_reshuffles(spec, tasks, reading):
    ds = make_dataset(spec, "train", tasks, batch_size=TRAIN, shuffle=True, seed=4, **reading)
    first, second = (_row_keys(_stream(ds, 1)[0]) for _ in range(2))
    assert first != second
    assert sorted(first) == sorted(second)


def test_shuffled_rows_keep_their_labels_and_masks(spec, tasks, reading):
    by_balance = {round(r["balance"], 5): r for r in tiny_rows(ROWS, seed=0)["train"]}
    features, labels, masks = _stream(make_dataset(spec, "train", tasks, batch_size=5, shuffle=True, seed=9,
                                                   **reading), batches=10)
    for i, balance in enumerate(features["balance"]):
        row = by_balance[round(float(balance), 5)]
        assert labels["fraud"][i] == row["is_fraud"]
        assert masks["default_risk"][i] == (row["defaulted"] is not None)
        assert features["channel"][i] == (row["channel"] or "").encode()
        assert features["timestamp"][i] == (row["timestamp"] or -1)


_ORDER_SCRIPT = """
import sys
import tensorflow as tf
from mtl_tf.data.reader import make_dataset
from mtl_tf.data.spec import DatasetSpec
from mtl_tf.tasks import BinaryTask
tf.random.set_seed(1234)
for reading in ({"cache": "none"}, {"cache": "disk"}, {"cache": "memory"}):
    ds = make_dataset(DatasetSpec.read(sys.argv[1]), "train", [BinaryTask("fraud")], batch_size=9, shuffle=True,
                      seed=11, **reading, shuffle_buffer=16, repeat=True)
    print(",".join(repr(float(v)) for f, _, _ in ds.take(11) for v in f["balance"].numpy()))
"""


@pytest.mark.slow
def test_a_seed_gives_the_same_order_in_another_process(spec):
    """Two passes (repeated) of each path, read here and in a fresh interpreter, come in the
    same order. TensorFlow mixes its global seed into seeded ops, and earlier tests in this
    process (any Trainer) have set it, so both sides set the same one first."""
    tf.random.set_seed(1234)
    here = []
    for reading in ({"cache": "none"}, {"cache": "disk"}, {"cache": "memory"}):
        ds = make_dataset(spec, "train", [BinaryTask("fraud")], batch_size=9, shuffle=True, seed=11,
                          **reading, shuffle_buffer=16, repeat=True)
        here.append([float(v) for f, _, _ in ds.take(11) for v in f["balance"].numpy()])
    out = subprocess.run([sys.executable, "-c", _ORDER_SCRIPT, spec.root], capture_output=True, text=True,
                         cwd=REPO, check=True, timeout=300)
    there = [[float(v) for v in line.split(",")] for line in out.stdout.strip().splitlines()[-3:]]
    assert [len(order) for order in here] == [99, 99, 99]
    assert here == there


def test_streamed_split_shorter_than_dataset_json_says_fails_at_the_end(spec, tasks, tmp_path):
    folder = tmp_path / "dataset"
    shutil.copytree(spec.root, folder)
    meta = json.loads((folder / "dataset.json").read_text())
    meta["splits"]["train"]["num_examples"] = TRAIN + 20
    (folder / "dataset.json").write_text(json.dumps(meta))
    ds = make_dataset(DatasetSpec.read(folder), "train", tasks, batch_size=10, cache="none")
    assert int(ds.cardinality()) == 7
    with pytest.raises(tf.errors.FailedPreconditionError, match="expected to contain 7"):
        for _ in ds:
            pass


def test_disk_cache_of_a_split_shorter_than_dataset_json_says_fails_before_training(spec, tasks, tmp_path):
    folder = tmp_path / "dataset"
    shutil.copytree(spec.root, folder, ignore=shutil.ignore_patterns("cache"))
    meta = json.loads((folder / "dataset.json").read_text())
    meta["splits"]["train"]["num_examples"] = TRAIN + 20
    (folder / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"the shards hold {TRAIN} rows but dataset.json says {TRAIN + 20}"):
        make_dataset(DatasetSpec.read(folder), "train", tasks, batch_size=10, cache="disk")
    assert not list((folder / "cache").iterdir()), "a failed build leaves no cache behind"


@pytest.mark.parametrize("in_memory_sequences", [False, True], ids=["streamed", "in_memory"])
def test_sequence_rows_stay_whole_when_shuffled(tmp_path, in_memory_sequences):
    data = toy.sequence_rows(23, seed=3)
    spec = toy.write_split(tmp_path / "dataset", data)
    tasks = [BinaryTask("rising")]
    ds = make_dataset(spec, "train", tasks, batch_size=5, shuffle=True, seed=2, in_memory=in_memory_sequences)
    assert int(ds.cardinality()) == 5
    features, labels, _ = _stream(ds, batches=5)
    assert features["recent_amounts"].shape == (23, toy.LENGTH)
    order = [int(np.flatnonzero(data["balance"] == b)[0]) for b in features["balance"]]
    assert sorted(order) == list(range(23)) and order != list(range(23))
    np.testing.assert_array_equal(features["recent_amounts"], data["recent_amounts"][order])
    np.testing.assert_array_equal(labels["rising"], data["is_rising"][order])
