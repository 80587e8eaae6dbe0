"""Tiny multi-task data and model for the training tests (also used by the worker script)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.tasks import BinaryTask

FEATURES = ("x1", "x2", "x3")


def make_tasks(weights=(1.0, 1.0)):
    return [BinaryTask("a", metrics=["auc", "accuracy"], weight=weights[0]),
            BinaryTask("b", metrics=["auc"], weight=weights[1])]


def toy_arrays(rows=256, seed=0, missing=0.25):
    """Features and raw labels (NaN where missing): a = x1 + x2 > 0, b = x3 - x1 > 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3)).astype("float32")
    features = {name: x[:, i] for i, name in enumerate(FEATURES)}
    a = (x[:, 0] + x[:, 1] > 0).astype("float32")
    b = (x[:, 2] - x[:, 0] > 0).astype("float32")
    a[rng.random(rows) < missing] = np.nan
    b[rng.random(rows) < missing] = np.nan
    return features, {"a": a, "b": b}


def as_dataset(features, labels, batch_size=32, tasks=None):
    """(features, cleaned labels, masks) batches, in order."""
    tasks = tasks or make_tasks()
    masks = {t.name: np.logical_not(np.isnan(labels[t.name])).astype("float32") for t in tasks}
    clean = {t.name: np.where(np.isnan(labels[t.name]), 0.0, labels[t.name]).astype("float32") for t in tasks}
    return tf.data.Dataset.from_tensor_slices((features, clean, masks)).batch(batch_size)


def toy_dataset(rows=256, seed=0, batch_size=32, missing=0.25):
    return as_dataset(*toy_arrays(rows, seed, missing), batch_size=batch_size)


def shuffled_toy_dataset(rows=256, batch_size=32, missing=0.25, seed=3):
    """Toy batches reshuffled at every pass (as the reader's training split is), seeded."""
    tasks = make_tasks()
    features, labels = toy_arrays(rows, seed=0, missing=missing)
    masks = {t.name: np.logical_not(np.isnan(labels[t.name])).astype("float32") for t in tasks}
    clean = {t.name: np.nan_to_num(labels[t.name]).astype("float32") for t in tasks}
    ds = tf.data.Dataset.from_tensor_slices((features, clean, masks))
    return ds.shuffle(rows, seed=seed, reshuffle_each_iteration=True).batch(batch_size)


def build_model(tasks=None, units=8, seed=0):
    """x1..x3 -> shared Dense trunk -> one small tower and binary head per task."""
    tasks = tasks or make_tasks()
    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = {name: keras.Input(shape=(), name=name) for name in FEATURES}
    columns = [keras.layers.Reshape((1,))(inputs[name]) for name in FEATURES]
    x = keras.layers.Concatenate()(columns)
    x = keras.layers.Dense(units, activation="relu", kernel_initializer=init, name="trunk")(x)
    outputs = {}
    for i, task in enumerate(tasks):
        tower = keras.layers.Dense(4, activation="relu", name=f"{task.name}_tower",
                                   kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i + 1))(x)
        outputs[task.name] = task.head(tower)
    return keras.Model(inputs, outputs)


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def make_many_tasks(num_tasks):
    """``num_tasks`` binary tasks t0, t1, ..."""
    return [BinaryTask(f"t{i}", metrics=["auc"]) for i in range(num_tasks)]


def many_task_dataset(num_tasks, rows=96, seed=0, batch_size=32):
    """Task ``t_i`` is the sign of a random linear function of x1..x3; 20% of labels missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3)).astype("float32")
    y = (x @ rng.normal(size=(3, num_tasks)) > 0).astype("float32")
    features = {name: x[:, i] for i, name in enumerate(FEATURES)}
    labels = {f"t{i}": y[:, i] for i in range(num_tasks)}
    masks = {f"t{i}": (rng.random(rows) > 0.2).astype("float32") for i in range(num_tasks)}
    return tf.data.Dataset.from_tensor_slices((features, labels, masks)).batch(batch_size)
