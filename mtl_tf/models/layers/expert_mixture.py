"""The weighted sum of expert outputs that a gate decides."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_tf")
class ExpertMixture(keras.layers.Layer):
    """``[weights (batch, n), expert_1, ..., expert_n]`` -> ``sum_i weights[:, i] * expert_i``.

    The experts' outputs must have one shape: (batch, d) or (batch, H, W, C).

    Args:
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def build(self, input_shape):
        weights, *experts = input_shape
        if len(experts) != weights[-1]:
            raise ValueError(f"layer '{self.name}': the gate weighs {weights[-1]} experts but "
                             f"{len(experts)} expert outputs were given")
        shapes = {tuple(shape[1:]) for shape in experts}
        if len(shapes) != 1:
            raise ValueError(f"layer '{self.name}': the experts' outputs differ in shape: "
                             f"{sorted(shapes)}; every expert must output the same shape")

    def call(self, inputs):
        weights, *experts = inputs
        stacked = ops.stack(experts, axis=1)
        weights = ops.reshape(weights, (-1, len(experts)) + (1,) * (len(stacked.shape) - 2))
        return ops.sum(ops.cast(weights, stacked.dtype) * stacked, axis=1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])
