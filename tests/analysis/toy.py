"""A model whose task relationships are known in closed form.

One shared weight w (initially 0) feeds three regression tasks through fixed heads of
weight 1, so task t predicts w and its loss is (w - y_t)^2 on every row. Targets: a = 1,
b = 2, c = -1. A step on a's gradient moves w up, which helps b and hurts c.
"""

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.tasks import RegressionTask
from mtl_tf.tasks.heads import SqueezeLast

TARGETS = {"a": 1.0, "b": 2.0, "c": -1.0}


def tasks():
    return [RegressionTask(name) for name in TARGETS]


def model(width=1):
    inputs = {"x": keras.Input(shape=(), name="x")}
    x = keras.layers.Reshape((1,))(inputs["x"])
    w = keras.layers.Dense(width, use_bias=False, kernel_initializer="zeros", name="shared_w")(x)
    outputs = {}
    for name in TARGETS:
        head = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(1.0 / width),
                                  name=f"{name}_head")(w)
        outputs[name] = SqueezeLast(name=name)(head)
    return keras.Model(inputs, outputs)


def batch(rows=8, missing=None):
    """(features, labels, masks); ``missing`` names a task with no label in the batch."""
    features = {"x": tf.ones([rows])}
    labels = {name: tf.fill([rows], value) for name, value in TARGETS.items()}
    masks = {name: tf.zeros([rows]) if name == missing else tf.ones([rows]) for name in TARGETS}
    return features, labels, masks


def weights(m):
    return [np.array(w, copy=True) for w in m.get_weights()]
