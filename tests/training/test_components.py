"""Optimizer and strategy lookup, and the masked loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.training import build_optimizer, make_strategy
from mtl_tf.training.losses import masked_losses
from training_toy import build_model, make_tasks


def test_build_optimizer_passes_options_and_lists_names_on_typo():
    opt = build_optimizer({"name": "adamw", "learning_rate": 0.002, "weight_decay": 1e-4})
    assert isinstance(opt, keras.optimizers.AdamW)
    assert float(opt.learning_rate) == pytest.approx(0.002)
    assert isinstance(build_optimizer("lion"), keras.optimizers.Lion)
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'.*did you mean 'adam'.*allowed: .*lamb"):
        build_optimizer("adamm")


def test_make_strategy_names_and_errors(monkeypatch):
    assert make_strategy("default") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match=r"unknown distribution strategy 'mirored'.*did you mean 'mirrored'"):
        make_strategy("mirored")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi_worker")


def _loss_and_grads(model, tasks, features, labels, masks):
    with tf.GradientTape() as tape:
        outputs = model(features, training=False)
        losses, _ = masked_losses(tasks, labels, masks, outputs)
    grads = tape.gradient(losses[0], model.trainable_variables)
    return losses.numpy(), [np.zeros(v.shape) if g is None else g.numpy()
                            for g, v in zip(grads, model.trainable_variables)]


def test_unlabelled_rows_do_not_change_a_task_loss_or_gradient():
    tasks = make_tasks()
    model = build_model(tasks)
    rng = np.random.default_rng(0)
    features = {k: rng.normal(size=8).astype("float32") for k in ("x1", "x2", "x3")}
    labels = {"a": rng.integers(0, 2, 8).astype("float32"), "b": rng.integers(0, 2, 8).astype("float32")}
    masks = {"a": np.ones(8, "float32"), "b": np.ones(8, "float32")}
    base_loss, base_grads = _loss_and_grads(model, tasks, features, labels, masks)

    extra = {k: np.concatenate([v, rng.normal(size=4).astype("float32") * 50]) for k, v in features.items()}
    extra_labels = {"a": np.concatenate([labels["a"], [7.0, -3.0, 0.5, 1e6]]).astype("float32"),
                    "b": np.concatenate([labels["b"], [1.0, 0.0, 1.0, 0.0]]).astype("float32")}
    extra_masks = {"a": np.concatenate([masks["a"], np.zeros(4)]).astype("float32"),
                   "b": np.ones(12, "float32")}
    loss, grads = _loss_and_grads(model, tasks, extra, extra_labels, extra_masks)

    assert loss[0] == pytest.approx(base_loss[0], rel=1e-6)
    assert loss[1] != pytest.approx(base_loss[1], rel=1e-3)  # b's labels on the new rows count
    for g, base in zip(grads, base_grads):
        np.testing.assert_allclose(np.asarray(g), np.asarray(base), rtol=1e-5, atol=1e-7)


def test_a_batch_without_labels_for_a_task_gives_it_zero_loss():
    tasks = make_tasks()
    model = build_model(tasks)
    features = {k: np.ones(4, "float32") for k in ("x1", "x2", "x3")}
    labels = {"a": np.ones(4, "float32"), "b": np.ones(4, "float32")}
    masks = {"a": np.zeros(4, "float32"), "b": np.ones(4, "float32")}
    losses, grads = _loss_and_grads(model, tasks, features, labels, masks)
    assert losses[0] == 0.0 and losses[1] > 0.0
    assert all(not np.any(np.asarray(g)) for g in grads)
