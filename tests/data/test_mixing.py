"""Batches mixed from two datasets whose tasks differ (tiny TFRecords written in tmp)."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.data.collection import DatasetCollection
from mtl_tf.data.mixing import (joint_batch_sizes, mixed_split, mixed_steps_per_epoch, mixed_train,
                                padded_batches, selector, dataset_sampler)
from mtl_tf.data.spec import TaskSpec
from mtl_tf.tasks import BinaryTask, MultilabelTask
from tests.helpers.tiny_dataset import make_tiny_dataset

# main: 64 rows (train 48, test 16), tasks fraud + default_risk;
# side: 16 rows (train 12, test 4), task side_fraud (its own is_fraud column).
MAIN_ROWS, SIDE_ROWS = 64, 16


def _side_task(name="side_fraud", **kw):
    return TaskSpec(name=name, type="binary", label_key="is_fraud", dtype="float32",
                    labelled={"train": 12, "test": 4}, **kw)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    main = make_tiny_dataset(tmp_path_factory.mktemp("main"), rows=MAIN_ROWS, seed=0)
    side = make_tiny_dataset(tmp_path_factory.mktemp("side"), rows=SIDE_ROWS, seed=1)
    side = side.model_copy(update={"tasks": [_side_task()]})
    return DatasetCollection({"data": main, "side": side})


@pytest.fixture(scope="module")
def tasks():
    return [BinaryTask("fraud"), BinaryTask("default_risk"), BinaryTask("side_fraud")]


def _origin(masks):
    """Which dataset a batch came from: the main one labels fraud on every row, side labels side_fraud."""
    main, side = masks["fraud"].numpy(), masks["side_fraud"].numpy()
    if main.all() and not side.any():
        return "data"
    if side.all() and not main.any() and not masks["default_risk"].numpy().any():
        return "side"
    return "mixed"


def test_round_robin_alternates_datasets_batch_by_batch(collection, tasks):
    mix = mixed_train(collection, tasks, batch_size=8, sampling="round_robin")
    origins = [_origin(masks) for _, _, masks in mix.dataset.take(6)]
    assert origins == ["data", "side"] * 3
    assert mix.steps_per_epoch == 6 + 2  # ceil(48 / 8) + ceil(12 / 8)


def test_foreign_tasks_get_zero_labels_and_zero_masks_of_the_right_shape(collection, tasks):
    _, labels, masks = next(iter(mixed_train(collection, tasks, 8, "round_robin").dataset.skip(1)))
    # a side batch: the main dataset's tasks are absent
    for name in ("fraud", "default_risk"):
        np.testing.assert_array_equal(masks[name], np.zeros(8, np.float32))
        np.testing.assert_array_equal(labels[name], np.zeros(8, np.float32))
    tags = MultilabelTask("tags", classes=["a", "b", "c"])
    side = collection.spec("side").model_copy(update={"tasks": [_side_task(), _side_task("tags").model_copy(
        update={"type": "multilabel", "label_key": "tags", "classes": ["a", "b", "c"]})]})
    wider = DatasetCollection({"data": collection.spec("data"), "side": side})
    _, labels, masks = next(iter(padded_batches(wider, "data", "test", [*tasks, tags], batch_size=5)))
    assert labels["tags"].shape == (5, 3) and labels["tags"].dtype == tf.float32
    assert not np.isnan(labels["tags"].numpy()).any()
    np.testing.assert_array_equal(masks["tags"], np.zeros(5, np.float32))


def test_proportional_draws_datasets_in_proportion_to_their_train_rows(collection, tasks):
    sampler = dataset_sampler({"name": "proportional", "seed": 3}, collection, epochs=1)
    choices = np.array(list(selector(sampler, steps_per_epoch=10).take(1000).as_numpy_iterator()))
    assert abs((choices == 0).mean() - 48 / 60) < 0.05
    mix = mixed_train(collection, tasks, batch_size=8, sampling={"name": "proportional", "seed": 3})
    origins = [_origin(masks) for _, _, masks in mix.dataset.take(30)]
    assert origins == [["data", "side"][i] for i in choices[:30]]


def test_annealed_moves_toward_uniform_over_the_epochs(collection):
    sampler = dataset_sampler({"name": "annealed", "alpha_start": 1.0, "alpha_end": 0.0}, collection, epochs=2)
    choices = np.array(list(selector(sampler, steps_per_epoch=1000).take(2000).as_numpy_iterator()))
    assert abs((choices[:1000] == 0).mean() - 0.8) < 0.05
    assert abs((choices[1000:] == 0).mean() - 0.5) < 0.05


def test_joint_batches_hold_rows_of_every_dataset(collection, tasks):
    mix = mixed_train(collection, tasks, batch_size=8, sampling="joint")
    for features, labels, masks in mix.dataset.take(5):
        assert features["amount"].shape == (8,)
        np.testing.assert_array_equal(masks["fraud"], [1, 1, 1, 1, 0, 0, 0, 0])
        np.testing.assert_array_equal(masks["side_fraud"], [0, 0, 0, 0, 1, 1, 1, 1])
    assert mix.steps_per_epoch == 12  # the main dataset's 48 rows in batches of 4


def test_joint_batch_sizes_spread_the_batch():
    assert joint_batch_sizes(7, 2) == [4, 3]
    assert joint_batch_sizes(9, 3) == [3, 3, 3]
    with pytest.raises(ValueError, match="batch_size >= 3"):
        joint_batch_sizes(2, 3)


def test_steps_per_epoch_covers_every_dataset(collection):
    assert mixed_steps_per_epoch(collection, 16, joint=False) == 3 + 1
    assert mixed_steps_per_epoch(collection, 16, joint=True) == 6


def test_test_split_concatenates_datasets_and_counts_each_task_on_its_own_rows(collection, tasks):
    batches = list(mixed_split(collection, "test", tasks, batch_size=8))
    masks = {name: np.concatenate([b[2][name].numpy() for b in batches]) for name in ("fraud", "side_fraud")}
    assert len(masks["fraud"]) == 16 + 4
    np.testing.assert_array_equal(masks["fraud"], [1] * 16 + [0] * 4)
    np.testing.assert_array_equal(masks["side_fraud"], [0] * 16 + [1] * 4)


def test_combined_spec_has_main_features_and_every_task(collection):
    combined = collection.combined
    assert [t.name for t in combined.tasks] == ["fraud", "default_risk", "side_fraud"]
    assert combined.features == collection.spec("data").features
    assert combined.splits == collection.spec("data").splits and combined.root == collection.spec("data").root
    assert collection.train_rows() == {"data": 48, "side": 12}


def test_collection_refuses_a_task_in_two_datasets_and_different_features(collection):
    main = collection.spec("data")
    with pytest.raises(ValueError, match="task 'fraud' is in datasets 'data' and 'copy'"):
        DatasetCollection({"data": main, "copy": main})
    fewer = collection.spec("side").model_copy(update={"features": main.features[:2]})
    with pytest.raises(ValueError, match="dataset 'side' has features"):
        DatasetCollection({"data": main, "side": fewer})


def test_a_resumed_mix_goes_on_with_the_sampler_schedule(collection):
    sampler = dataset_sampler({"name": "annealed", "alpha_start": 1.0, "alpha_end": 0.0}, collection, epochs=4)
    whole = list(selector(sampler, steps_per_epoch=5).take(20).as_numpy_iterator())
    resumed = list(selector(sampler, steps_per_epoch=5, start_step=10).take(10).as_numpy_iterator())
    assert resumed == whole[10:]


def test_epochs_done_counts_committed_epoch_checkpoints_not_history_lines(tmp_path):
    from mtl_tf.runner import epochs_done
    from mtl_tf.training.history import History
    from mtl_tf.training.trainer import HISTORY_FILE

    assert epochs_done(tmp_path) == 0
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), str(tmp_path), 3,
                                         checkpoint_name="ckpt")
    manager.save(checkpoint_number=1)
    # Epoch 2 reached the history, then the run stopped before its checkpoint: it is not done.
    History(epochs=[{"epoch": 1}, {"epoch": 2}]).write(tmp_path / HISTORY_FILE)
    assert epochs_done(tmp_path) == 1
