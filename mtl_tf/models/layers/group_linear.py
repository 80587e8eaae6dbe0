"""A group-wise linear (1x1) layer: a block-diagonal Dense, or a grouped 1x1 convolution."""

from __future__ import annotations

import keras
from keras import ops

from mtl_tf.models.layers.mlp import _check_activation


@keras.saving.register_keras_serializable(package="mtl_tf")
class GroupLinear(keras.layers.Layer):
    """(..., D) -> (..., units), each of ``groups`` input slices mapped to its output slice.

    On (batch, d) inputs the kernel is block-diagonal: ``groups`` blocks of (d / groups,
    units / groups). On images it is a grouped 1x1 convolution with stride ``stride``.
    ``groups`` must divide both the input width and ``units``.

    Args:
        units: output width.
        groups: number of independent groups.
        stride: spatial stride (images only).
        activation: a Keras activation name, or None for a linear output.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, units: int, groups: int = 1, stride: int = 1, activation: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        for key, value in (("units", units), ("groups", groups), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"layer '{self.name}': {key} must be a positive integer; received {value!r}")
        if units % groups:
            raise ValueError(f"layer '{self.name}': groups ({groups}) must divide units ({units})")
        self.units, self.groups, self.stride = units, groups, stride
        self.activation = activation if activation is None else _check_activation(activation, self.name)
        self.conv = None

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.groups:
            raise ValueError(f"layer '{self.name}': groups ({self.groups}) must divide the input "
                             f"width ({width})")
        if len(input_shape) == 4:
            self.conv = keras.layers.Conv2D(self.units, 1, strides=self.stride, groups=self.groups,
                                            name="conv")
            self.conv.build(input_shape)
            return
        self.kernel = self.add_weight(name="kernel", initializer="glorot_uniform",
                                      shape=(self.groups, width // self.groups, self.units // self.groups))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        if self.conv is not None:
            out = self.conv(inputs)
        else:
            grouped = ops.reshape(inputs, (-1, self.groups, inputs.shape[-1] // self.groups))
            out = ops.reshape(ops.einsum("bgi,gio->bgo", grouped, self.kernel), (-1, self.units)) + self.bias
        return keras.activations.get(self.activation)(out) if self.activation else out

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 4:
            def size(n):
                return None if n is None else -(-n // self.stride)
            return (input_shape[0], size(input_shape[1]), size(input_shape[2]), self.units)
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "groups": self.groups,
                "stride": self.stride, "activation": self.activation}
