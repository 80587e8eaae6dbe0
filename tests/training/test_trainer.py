"""The training loop on a tiny two-task problem: learning, weights, early stopping,
resume, divergence and the per-task gradient path."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.training import History, Trainer, TrainingDiverged
from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator
from training_toy import as_dataset, build_model, make_tasks, toy_arrays, toy_dataset, weights_of


def make_trainer(tasks=None, lr=0.05, **kwargs):
    tasks = tasks or make_tasks()
    kwargs.setdefault("verbose", 0)
    return Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": lr}, **kwargs)


def test_loss_falls_val_auc_rises_and_logs_have_the_documented_keys():
    trainer = make_trainer(epochs=3, lr=0.02)
    history = trainer.fit(toy_dataset(256), toy_dataset(128, seed=1))
    first, last = history.epochs[0], history.epochs[-1]
    assert last["loss"] < first["loss"]
    assert last["a/val_auc"] > first["a/val_auc"] and last["a/val_auc"] > 0.9
    assert last["b/val_auc"] > 0.9
    for key in ("a/loss", "b/loss", "a/val_loss", "b/val_loss", "a/val_auc", "a/val_accuracy",
                "b/val_auc", "loss", "val_loss", "epoch_time_s", "steps_per_s"):
        assert np.isfinite(last[key]), key
    assert last["val_loss"] == pytest.approx(last["a/val_loss"] + last["b/val_loss"], rel=1e-5)
    assert history.stopped_reason == "completed" and len(history.epochs) == 3
    results = trainer.evaluate(toy_dataset(128, seed=1))
    assert set(results) == {"a", "b"} and set(results["a"]) == {"loss", "auc", "accuracy"}
    assert results["a"]["auc"] == pytest.approx(last["a/val_auc"], abs=1e-6)


def test_weight_zero_leaves_that_tasks_tower_unchanged():
    tasks = make_tasks(weights=(1.0, 0.0))
    trainer = make_trainer(tasks, epochs=1)
    before = {v.path: v.numpy().copy() for v in trainer.model.trainable_variables}
    trainer.fit(toy_dataset(128))
    after = {v.path: v.numpy() for v in trainer.model.trainable_variables}
    b_vars = [p for p in before if p.startswith(("b_tower", "b_head"))]
    a_vars = [p for p in before if p.startswith(("a_tower", "a_head"))]
    assert b_vars and a_vars
    for path in b_vars:
        np.testing.assert_array_equal(after[path], before[path], err_msg=path)
    assert any(not np.array_equal(after[p], before[p]) for p in a_vars)


def _inverted_val():
    features, labels = toy_arrays(128, seed=1, missing=0.0)
    return as_dataset(features, {k: 1.0 - v for k, v in labels.items()})


def test_early_stopping_stops_and_keeps_the_best_epochs_weights(tmp_path):
    # Validation labels are inverted, so the better the model learns, the worse it scores.
    trainer = make_trainer(epochs=8, lr=0.01, early_stopping={"patience": 1}, checkpoint_dir=tmp_path)
    val = _inverted_val()
    history = trainer.fit(toy_dataset(256), val)
    assert history.stopped_reason == "early_stopping"
    assert len(history.epochs) < 8
    assert history.best_epoch < len(history.epochs)
    best = history.epochs[history.best_epoch - 1]
    results = trainer.evaluate(val)
    assert results["a"]["auc"] == pytest.approx(best["a/val_auc"], abs=1e-6)
    assert results["b"]["auc"] == pytest.approx(best["b/val_auc"], abs=1e-6)
    assert history.best_score == pytest.approx((best["a/val_auc"] + best["b/val_auc"]) / 2, abs=1e-6)
    assert tf.train.latest_checkpoint(str(tmp_path / "best")).endswith(f"best-{history.best_epoch}")


def test_resume_continues_at_the_next_epoch_and_ends_like_an_uninterrupted_run(tmp_path):
    train, val = toy_dataset(128), toy_dataset(64, seed=1)
    reference = make_trainer(epochs=4)
    reference.fit(train, val)

    make_trainer(epochs=2, checkpoint_dir=tmp_path).fit(train, val)
    seen = []
    resumed = make_trainer(epochs=4, checkpoint_dir=tmp_path, seed=123)
    history = resumed.fit(train, val, resume=True, on_epoch_end=lambda epoch, logs: seen.append(epoch))
    assert seen == [3, 4]
    assert [logs["epoch"] for logs in history.epochs] == [1, 2, 3, 4]
    for got, want in zip(weights_of(resumed.model), weights_of(reference.model)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert History.read(tmp_path / "history.json").epochs[-1]["epoch"] == 4


def test_an_infinite_label_stops_training_naming_the_task_and_keeps_the_checkpoint(tmp_path):
    features, labels = toy_arrays(96, missing=0.0)
    labels["a"][80] = np.inf  # in the third batch, read in epoch 2
    trainer = make_trainer(epochs=3, steps_per_epoch=2, checkpoint_dir=tmp_path)
    with pytest.raises(TrainingDiverged) as caught:
        trainer.fit(as_dataset(features, labels))
    err = caught.value
    assert err.tasks == ["a"] and err.epoch == 2 and err.step == 1
    assert "task(s) a " in str(err) and "epoch 2, step 1" in str(err)
    assert err.checkpoint.endswith("ckpt-1") and err.checkpoint in str(err)
    assert tf.train.latest_checkpoint(str(tmp_path)) == err.checkpoint


def test_a_huge_learning_rate_diverges_before_any_checkpoint(tmp_path):
    trainer = make_trainer(epochs=2, lr=1e30, checkpoint_dir=tmp_path)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+; no checkpoint had been written"):
        trainer.fit(toy_dataset(256))
    assert tf.train.latest_checkpoint(str(tmp_path)) is None


class _PerTaskSum(GradientAggregator):
    """The sum, computed from per-task gradients: exercises the per-task path of the step."""

    def aggregate(self, task_grads, weights):
        return [sum(weights[t] * grads[v] for t, grads in enumerate(task_grads))
                for v in range(len(task_grads[0]))]


def test_the_per_task_gradient_path_matches_one_backward_pass():
    AGGREGATORS.add("test_per_task_sum", _PerTaskSum)
    tasks = make_tasks(weights=(1.0, 0.5))
    fast = make_trainer(tasks, epochs=1)
    per_task = make_trainer(tasks, epochs=1, gradient="test_per_task_sum")
    fast.fit(toy_dataset(128))
    per_task.fit(toy_dataset(128))
    for got, want in zip(weights_of(per_task.model), weights_of(fast.model)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_clear_errors_for_a_missing_output_and_early_stopping_without_validation():
    tasks = make_tasks()
    only_a = make_tasks()
    trainer = Trainer(lambda: build_model(only_a[:1]), tasks, "adam", verbose=0)
    with pytest.raises(ValueError, match="no output for task\\(s\\) b"):
        trainer.fit(toy_dataset(64))
    with pytest.raises(ValueError, match="val_ds is None"):
        make_trainer(early_stopping={"patience": 2}).fit(toy_dataset(64))
    with pytest.raises(ValueError, match="epochs must be an integer >= 1; received 0"):
        make_trainer(epochs=0)
