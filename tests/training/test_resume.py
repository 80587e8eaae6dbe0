"""Resuming: a crash between any two of an epoch's writes resumes like an uninterrupted run,
a fresh run starts its folder over, and checkpoints of another model are refused in one line."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.training import History, Trainer
from mtl_tf.training.checkpointing import Checkpoints
from mtl_tf.training.fingerprint import FINGERPRINT_FILE, IncompatibleCheckpoint
from training_toy import as_dataset, build_model, make_tasks, toy_arrays, toy_dataset, weights_of

TIMING = ("epoch_time_s", "steps_per_s")


def _inverted_val():
    features, labels = toy_arrays(64, seed=1, missing=0.0)
    return as_dataset(features, {k: 1.0 - v for k, v in labels.items()})


def _optimizer():
    # 4 steps per epoch. A negative rate for two epochs learns the inverted labels the
    # validation set holds, so its score rises; then a positive one learns the true labels
    # and the score falls: the best epoch (2) lies inside the run and early stopping
    # (patience 2) ends it after epoch 4 with epoch 2's weights.
    return keras.optimizers.Adam(keras.optimizers.schedules.PiecewiseConstantDecay([8], [-0.02, 0.05]))


def _trainer(directory=None, units=8, configuration=None):
    tasks = make_tasks()
    return Trainer(lambda: build_model(tasks, units=units), tasks, _optimizer(), epochs=6, verbose=0,
                   early_stopping={"patience": 2}, checkpoint_dir=directory, configuration=configuration)


def _fit(trainer, resume=False):
    return trainer.fit(toy_dataset(128), _inverted_val(), resume=resume)


@pytest.fixture(scope="module")
def uninterrupted():
    trainer = _trainer()
    history = _fit(trainer)
    return weights_of(trainer.model), history


class Crash(Exception):
    """Stands for the process dying at that point."""


def _crash_in(monkeypatch, owner, method, epoch):
    original = getattr(owner, method)

    def crashing(self, *args, **kwargs):
        at = len(self.epochs) if owner is History else args[0]
        if at == epoch:
            raise Crash(f"{method} at epoch {epoch}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, crashing)


def _without_timing(epochs):
    return [{k: v for k, v in logs.items() if k not in TIMING} for logs in epochs]


# Epoch 2 improves (history, best and epoch checkpoint are written), epoch 3 does not
# (history and epoch checkpoint): a crash before each write of each.
CRASHES = [(History, "write", 2), (Checkpoints, "save_best", 2), (Checkpoints, "save", 2),
           (History, "write", 3), (Checkpoints, "save", 3)]


@pytest.mark.parametrize("owner, method, epoch", CRASHES,
                         ids=[f"before-{o.__name__}.{m}-epoch{e}" for o, m, e in CRASHES])
def test_a_crash_between_writes_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, uninterrupted,
                                                                   owner, method, epoch):
    want_weights, want = uninterrupted
    assert want.best_epoch == 2 and len(want.epochs) == 4 and want.stopped_reason == "early_stopping"

    _crash_in(monkeypatch, owner, method, epoch)
    with pytest.raises(Crash):
        _fit(_trainer(tmp_path))
    monkeypatch.undo()

    resumed = _trainer(tmp_path)
    history = _fit(resumed, resume=True)
    for got, expected in zip(weights_of(resumed.model), want_weights):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert (history.best_epoch, history.stopped_reason) == (want.best_epoch, want.stopped_reason)
    assert history.best_score == pytest.approx(want.best_score, abs=1e-6)
    assert [logs["epoch"] for logs in history.epochs] == [1, 2, 3, 4]
    for got, expected in zip(_without_timing(history.epochs), _without_timing(want.epochs)):
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    saved = History.read(tmp_path / "history.json")
    assert [logs["epoch"] for logs in saved.epochs] == [1, 2, 3, 4] and saved.best_epoch == 2
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-4")
    assert tf.train.latest_checkpoint(str(tmp_path / "best")).endswith("best-2")


def test_a_fresh_run_starts_its_folder_over(tmp_path):
    tasks = make_tasks()

    def trainer(epochs):
        return Trainer(lambda: build_model(tasks), tasks, "adam", epochs=epochs, verbose=0, checkpoint_dir=tmp_path)

    trainer(4).fit(toy_dataset(64), toy_dataset(64, seed=1))
    trainer(1).fit(toy_dataset(64), toy_dataset(64, seed=1))
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.index")) == ["ckpt-1.index"]
    assert sorted(p.name for p in (tmp_path / "best").glob("best-*.index")) == ["best-1.index"]
    assert len(History.read(tmp_path / "history.json").epochs) == 1
    seen = []
    trainer(2).fit(toy_dataset(64), toy_dataset(64, seed=1), resume=True,
                   on_epoch_end=lambda epoch, logs: seen.append(epoch))
    assert seen == [2]


def _one_epoch(directory, units, configuration=None):
    tasks = make_tasks()
    return Trainer(lambda: build_model(tasks, units=units), tasks, "adam", epochs=2, verbose=0,
                   checkpoint_dir=directory, configuration=configuration)


def _refusal(capfd, directory, units, configuration=None):
    with pytest.raises(IncompatibleCheckpoint) as caught:
        _one_epoch(directory, units, configuration).fit(toy_dataset(64), resume=True)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"checkpoints in {directory} were ")
    assert message.endswith("; use another checkpoint_dir or fit without resume")
    stderr = capfd.readouterr().err
    assert "Value in checkpoint could not be found" not in stderr and "unrestored values" not in stderr
    return message


def test_resuming_another_configuration_names_what_differs(tmp_path, capfd):
    _one_epoch(tmp_path, 8, {"architecture": {"name": "mmoe", "experts": 4}, "tower": {"name": "mlp"}}).fit(
        toy_dataset(64))
    message = _refusal(capfd, tmp_path, 16, {"architecture": {"name": "hps"}, "tower": {"name": "mlp"}})
    assert 'written by architecture {"name": "mmoe", "experts": 4}; this run builds architecture {"name": "hps"}' \
        in message
    assert "tower" not in message


def test_resuming_a_model_with_other_variables_names_the_first_that_differs(tmp_path, capfd):
    _one_epoch(tmp_path, 8).fit(toy_dataset(64))
    message = _refusal(capfd, tmp_path, 16)
    assert "written by another model: trunk/kernel is (3, 8) float32 there and (3, 16) float32 here" in message


def test_a_folder_without_fingerprint_still_refuses_in_one_line(tmp_path, capfd):
    _one_epoch(tmp_path, 8).fit(toy_dataset(64))
    (tmp_path / FINGERPRINT_FILE).unlink()
    message = _refusal(capfd, tmp_path, 16)
    assert "written by another model configuration (restoring " in message
    assert "(3, 8)" in message and "(3, 16)" in message


def test_resuming_the_same_model_writes_nothing_new_into_the_fingerprint(tmp_path):
    _one_epoch(tmp_path, 8, {"architecture": {"name": "hps"}}).fit(toy_dataset(64))
    written = json.loads((tmp_path / FINGERPRINT_FILE).read_text())
    assert written["configuration"] == {"architecture": {"name": "hps"}}
    assert [name for name, _, _ in written["variables"]["model"]][:2] == ["trunk/kernel", "trunk/bias"]
    _one_epoch(tmp_path, 8, {"architecture": {"name": "hps"}}).fit(toy_dataset(64), resume=True)
    assert json.loads((tmp_path / FINGERPRINT_FILE).read_text()) == written


def _regression_run(directory, standardize, epochs=2):
    """One regression task whose label has mean 1e4, std 1e3 (as dataset.json says)."""
    from mtl_tf.data.spec import LabelStats, RegressionStats, TaskSpec
    from mtl_tf.tasks import RegressionTask

    stats = RegressionStats({"train": LabelStats(count=64, mean=1.0e4, std=1.0e3, min=7.0e3, max=1.3e4)})
    spec = TaskSpec(name="spend", type="regression", label_key="spend", dtype="float32", stats=stats)
    tasks = [RegressionTask("spend", spec=spec, standardize=standardize)]
    features, _ = toy_arrays(64)
    data = as_dataset(features, {"spend": 1.0e4 + 1.0e3 * features["x1"]}, tasks=tasks)
    trainer = Trainer(lambda: build_model(tasks), tasks, "adam", epochs=epochs, verbose=0, checkpoint_dir=directory)
    return trainer, data


@pytest.mark.parametrize("before, after", [(False, True), (True, False)])
def test_resuming_across_a_regression_heads_standardisation_is_refused(tmp_path, capfd, before, after):
    # Both heads hold the same variables: only the fingerprint's heads tell them apart.
    trainer, data = _regression_run(tmp_path, before, epochs=1)
    trainer.fit(data)
    resumed, data = _regression_run(tmp_path, after)
    layouts = {False: "plain", True: "standardized"}
    with pytest.raises(IncompatibleCheckpoint, match=f"written by a model with spend: {layouts[before]} heads; "
                                                     f"this run builds spend: {layouts[after]} heads") as caught:
        resumed.fit(data, resume=True)
    assert "\n" not in str(caught.value) and "tasks[].standardize" in str(caught.value)
    assert "unrestored values" not in capfd.readouterr().err


def test_a_standardised_regression_head_resumes_from_its_own_checkpoints(tmp_path):
    trainer, data = _regression_run(tmp_path, True, epochs=1)
    trainer.fit(data)
    assert json.loads((tmp_path / FINGERPRINT_FILE).read_text())["heads"] == {"spend": "standardized"}
    resumed, data = _regression_run(tmp_path, True)
    seen = []
    resumed.fit(data, resume=True, on_epoch_end=lambda epoch, logs: seen.append(epoch))
    assert seen == [2]
