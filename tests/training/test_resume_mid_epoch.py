"""Step checkpoints: a run that dies inside an epoch resumes from its last N-step mark and,
reading the data up to there (shuffled passes drawn again, the epoch's first steps dropped),
ends with the weights of an uninterrupted run; so does a run resumed at an epoch end on data
reshuffled every pass."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.training import Trainer
from mtl_tf.training.checkpointing import Checkpoints
from training_toy import build_model, make_tasks, toy_arrays, weights_of

EPOCHS = 3


class Crash(Exception):
    """Stands for the process being killed at that point."""


def _shuffled(rows=256, unknown_length=False, repeat=False):
    """Toy batches of 32, reshuffled at every pass (as the reader's training split is)."""
    features, labels = toy_arrays(rows, seed=0, missing=0.25)
    tasks = make_tasks()
    masks = {t.name: np.logical_not(np.isnan(labels[t.name])).astype("float32") for t in tasks}
    clean = {t.name: np.nan_to_num(labels[t.name]).astype("float32") for t in tasks}
    ds = tf.data.Dataset.from_tensor_slices((features, clean, masks))
    ds = ds.shuffle(rows, seed=3, reshuffle_each_iteration=True)
    if unknown_length:
        ds = ds.filter(lambda *_: True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(32)


CASES = {
    # name: (dataset options, Trainer options); 8 batches a pass
    "known_length": ({}, {"steps_per_execution": 4}),
    "read_in_python": ({"unknown_length": True}, {}),
    "steps_per_epoch_across_passes": ({}, {"steps_per_epoch": 5, "steps_per_execution": 2}),
    "repeated_forever": ({"repeat": True}, {"steps_per_epoch": 6}),
}


def _trainer(directory, options, every=3):
    tasks = make_tasks()
    return Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.02}, epochs=EPOCHS,
                   verbose=0, checkpoint_dir=directory, checkpoint_every_steps=every, **options)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    results = {}
    for name, (data, options) in CASES.items():
        trainer = _trainer(tmp_path_factory.mktemp(name), options)
        history = trainer.fit(_shuffled(**data), _shuffled(64))
        results[name] = weights_of(trainer.model), history
    return results


def _crash_after_step_checkpoint(monkeypatch, epochs_done, steps):
    original = Checkpoints.save_step

    def saving_then_dying(self, number):
        path = original(self, number)
        if int(self.checkpoint.epoch.numpy()) == epochs_done and int(self.epoch_step.numpy()) == steps:
            raise Crash(f"killed after step {steps} of epoch {epochs_done + 1}")
        return path

    monkeypatch.setattr(Checkpoints, "save_step", saving_then_dying)


def _assert_same_weights(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # two runs per case, four cases: about a minute on 2 cores
@pytest.mark.parametrize("name", CASES)
def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, uninterrupted, name):
    data, options = CASES[name]
    want_weights, want = uninterrupted[name]
    _crash_after_step_checkpoint(monkeypatch, epochs_done=1, steps=3)
    with pytest.raises(Crash):
        _trainer(tmp_path, options).fit(_shuffled(**data), _shuffled(64))
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "steps").glob("step-*.index")] and (tmp_path / "ckpt-1.index").exists()

    resumed = _trainer(tmp_path, options)
    seen = []
    history = resumed.fit(_shuffled(**data), _shuffled(64), resume=True, on_epoch_end=lambda e, logs: seen.append(e))
    assert seen == [2, 3]
    _assert_same_weights(weights_of(resumed.model), want_weights)
    assert [logs["epoch"] for logs in history.epochs] == [1, 2, 3]
    assert history.epochs[-1]["a/val_auc"] == pytest.approx(want.epochs[-1]["a/val_auc"], abs=1e-6)
    assert history.epochs[1]["steps"] == want.epochs[1]["steps"]


@pytest.mark.slow  # shares the uninterrupted runs above
def test_a_resume_at_an_epoch_end_draws_the_next_pass_as_an_uninterrupted_run(tmp_path, uninterrupted):
    """A stale step checkpoint (written in the epoch just committed) is not used either."""
    want_weights, _ = uninterrupted["known_length"]
    options = CASES["known_length"][1]

    def die_after_epoch_2(epoch, logs):
        if epoch == 2:
            raise Crash("killed after epoch 2 was committed")

    with pytest.raises(Crash):
        _trainer(tmp_path, options).fit(_shuffled(), _shuffled(64), on_epoch_end=die_after_epoch_2)
    assert Checkpoints(str(tmp_path), tf.distribute.get_strategy(), epoch_step=tf.Variable(0, dtype=tf.int64),
                       epoch=tf.Variable(0, dtype=tf.int64)).current_step_checkpoint() is None
    resumed = _trainer(tmp_path, options)
    resumed.fit(_shuffled(), _shuffled(64), resume=True)
    _assert_same_weights(weights_of(resumed.model), want_weights)


def test_a_run_that_had_stopped_early_trains_nothing_more_when_resumed(tmp_path):
    tasks = make_tasks()

    def trainer():
        # A negative learning rate makes the validation score fall every epoch: patience 1 stops after epoch 2.
        return Trainer(lambda: build_model(tasks), tasks, {"name": "sgd", "learning_rate": -0.5}, epochs=6,
                       verbose=0, checkpoint_dir=tmp_path, early_stopping={"patience": 1})

    first = trainer()
    history = first.fit(_shuffled(), _shuffled(64))
    assert history.stopped_reason == "early_stopping" and len(history.epochs) < 6
    seen = []
    again = trainer().fit(_shuffled(), _shuffled(64), resume=True, on_epoch_end=lambda e, logs: seen.append(e))
    assert seen == [] and again.stopped_reason == "early_stopping" and len(again.epochs) == len(history.epochs)


def test_step_checkpoints_need_a_folder():
    tasks = make_tasks()
    with pytest.raises(ValueError, match="checkpoint_every_steps=5 needs a checkpoint_dir"):
        Trainer(lambda: build_model(tasks), tasks, checkpoint_every_steps=5)
