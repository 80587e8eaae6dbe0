"""Cross-task attention fusion: one task's features attend to the other tasks' features."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_tf")
class CrossTaskAttention(keras.layers.Layer):
    """``[own, other_1, ..., other_m]`` -> ``own + scale * attention(own, others)``.

    Single-head scaled dot-product attention whose tokens are tasks: the query comes from
    the task's own features, keys and values from every other task's, at each position for
    feature maps. ``scale`` is learned and starts at 0, so training starts from the task's
    own features and adds the other tasks' as far as they help.

    Args:
        key_dim: width of queries and keys.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, key_dim: int = 16, **kwargs):
        super().__init__(**kwargs)
        if isinstance(key_dim, bool) or not isinstance(key_dim, int) or key_dim < 1:
            raise ValueError(f"layer '{self.name}': key_dim must be a positive integer; received {key_dim!r}")
        self.key_dim = key_dim

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"layer '{self.name}': needs the task's features and at least one other "
                             f"task's; received {len(input_shape)} input(s)")
        own = tuple(input_shape[0])
        if len({tuple(shape[1:]) for shape in input_shape}) != 1:
            raise ValueError(f"layer '{self.name}': every task's features must have one shape; "
                             f"received {[tuple(s) for s in input_shape]}")
        self.value = keras.layers.Dense(own[-1], name="value")
        self.value.build(own)
        # With one other task the attention weight is 1 whatever the scores: no query or key.
        self.scored = len(input_shape) > 2
        if self.scored:
            self.query = keras.layers.Dense(self.key_dim, use_bias=False, name="query")
            self.key = keras.layers.Dense(self.key_dim, use_bias=False, name="key")
            self.query.build(own)
            self.key.build(own)
        self.scale = self.add_weight(name="scale", shape=(), initializer="zeros")

    def call(self, inputs):
        own, others = inputs[0], ops.stack(inputs[1:], axis=-2)  # (..., m, channels)
        values = self.value(others)
        if not self.scored:
            return own + self.scale * values[..., 0, :]
        query = self.query(own)[..., None, :]
        scores = ops.sum(query * self.key(others), axis=-1) / math.sqrt(self.key_dim)
        attention = ops.softmax(scores, axis=-1)[..., None]
        return own + self.scale * ops.sum(attention * values, axis=-2)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "key_dim": self.key_dim}
