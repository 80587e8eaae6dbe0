"""A ResNet basic block, the building block of the conv trunk and the U-Net decoder."""

from __future__ import annotations

import keras

from mtl_tf.models.layers.mlp import _check_activation


@keras.saving.register_keras_serializable(package="mtl_tf")
class ResidualBlock(keras.layers.Layer):
    """(batch, H, W, C) -> (batch, H / stride, W / stride, filters).

    conv(k, stride) -> [BN] -> activation -> conv(k) -> [BN], plus the input (through a 1x1
    conv when the shape changes), then the activation: He et al.'s basic block.

    Args:
        filters: output channels.
        stride: spatial stride of the first convolution (1 keeps the resolution).
        kernel_size: side of the square kernels.
        activation: a Keras activation name.
        batch_norm: batch-normalise after each convolution (the convolutions then have no bias).
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, filters: int, stride: int = 1, kernel_size: int = 3, activation: str = "relu",
                 batch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        for key, value in (("filters", filters), ("stride", stride), ("kernel_size", kernel_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"layer '{self.name}': {key} must be a positive integer; received {value!r}")
        self.filters, self.stride, self.kernel_size = filters, stride, kernel_size
        self.activation = _check_activation(activation, self.name)
        self.batch_norm = bool(batch_norm)
        self.conv_a = self._conv(kernel_size, stride, "conv_a")
        self.conv_b = self._conv(kernel_size, 1, "conv_b")
        self.norms = [keras.layers.BatchNormalization(name=f"batch_norm_{i}") for i in range(2)] \
            if self.batch_norm else []
        self.shortcut = None
        self.act = keras.layers.Activation(activation)

    def _conv(self, size: int, stride: int, name: str) -> keras.layers.Conv2D:
        return keras.layers.Conv2D(self.filters, size, strides=stride, padding="same",
                                   use_bias=not self.batch_norm, name=name)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"layer '{self.name}': expects (batch, height, width, channels) inputs; "
                             f"received shape {tuple(input_shape)}")
        if self.stride != 1 or input_shape[-1] != self.filters:
            self.shortcut = keras.layers.Conv2D(self.filters, 1, strides=self.stride, name="shortcut")
            self.shortcut.build(input_shape)
        self.conv_a.build(input_shape)
        middle = self.conv_a.compute_output_shape(input_shape)
        self.conv_b.build(middle)
        for norm in self.norms:
            norm.build(middle)

    def call(self, inputs, training=None):
        x = self.conv_a(inputs)
        if self.norms:
            x = self.norms[0](x, training=training)
        x = self.conv_b(self.act(x))
        if self.norms:
            x = self.norms[1](x, training=training)
        skip = self.shortcut(inputs) if self.shortcut is not None else inputs
        return self.act(x + skip)

    def compute_output_shape(self, input_shape):
        return self.conv_a.compute_output_shape(input_shape)[:-1] + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "stride": self.stride,
                "kernel_size": self.kernel_size, "activation": self.activation,
                "batch_norm": self.batch_norm}
