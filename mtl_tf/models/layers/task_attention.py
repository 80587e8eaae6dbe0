"""MTAN's task-specific attention module (Liu et al., 2019)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_tf")
class TaskAttention(keras.layers.Layer):
    """``[shared]`` or ``[shared, previous]`` -> ``mask * shared`` for one task.

    The mask is ``sigmoid(W2 relu(W1 [shared, previous]))``, a soft feature selection from the
    shared block output, where ``previous`` is the task's attended features of the block
    before. On images the projections are 1x1 (pointwise) and ``previous`` is average-pooled
    by ``stride`` to the shared map's resolution.

    Args:
        stride: spatial downsampling between ``previous`` and ``shared`` (images only).
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"layer '{self.name}': stride must be a positive integer; received {stride!r}")
        self.stride = stride

    def build(self, input_shape):
        shared = input_shape[0]
        width = shared[-1]
        self.pool = None
        if len(input_shape) > 1 and len(shared) == 4 and self.stride > 1:
            self.pool = keras.layers.AveragePooling2D(self.stride, padding="same", name="pool")
        inputs = sum(shape[-1] for shape in input_shape)
        self.hidden = keras.layers.Dense(width, activation="relu", name="hidden")
        self.mask = keras.layers.Dense(width, activation="sigmoid", name="mask")
        self.hidden.build(tuple(shared[:-1]) + (inputs,))
        self.mask.build(tuple(shared[:-1]) + (width,))

    def call(self, inputs):
        shared = inputs[0]
        parts = [shared]
        if len(inputs) > 1:
            parts.append(self.pool(inputs[1]) if self.pool is not None else inputs[1])
        joined = ops.concatenate(parts, axis=-1) if len(parts) > 1 else shared
        return self.mask(self.hidden(joined)) * shared

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}
