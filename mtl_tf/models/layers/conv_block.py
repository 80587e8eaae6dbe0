"""Convolution -> [batch normalisation] -> activation, as one layer."""

from __future__ import annotations

import keras

from mtl_tf.models.layers.mlp import _check_activation


@keras.saving.register_keras_serializable(package="mtl_tf")
class ConvBlock(keras.layers.Layer):
    """(batch, H, W, C) -> (batch, H / stride, W / stride, filters).

    The unit of stems, U-Net levels, decoders and convolutional experts: one 'same'-padded
    convolution (no bias when batch-normalised), then batch normalisation, then the activation.

    Args:
        filters: output channels.
        kernel_size: side of the square kernel.
        stride: spatial stride.
        dilation: dilation rate (atrous convolution; stride must then be 1).
        activation: a Keras activation name, or None for a linear output.
        batch_norm: batch-normalise the convolution's output.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, filters: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1,
                 activation: str | None = "relu", batch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        for key, value in (("filters", filters), ("kernel_size", kernel_size), ("stride", stride),
                           ("dilation", dilation)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"layer '{self.name}': {key} must be a positive integer; received {value!r}")
        if stride > 1 and dilation > 1:
            raise ValueError(f"layer '{self.name}': a dilated convolution has stride 1; received stride "
                             f"{stride} with dilation {dilation}")
        self.filters, self.kernel_size, self.stride, self.dilation = filters, kernel_size, stride, dilation
        self.activation = None if activation is None else _check_activation(activation, self.name)
        self.batch_norm = bool(batch_norm)
        self.conv = keras.layers.Conv2D(filters, kernel_size, strides=stride, dilation_rate=dilation,
                                        padding="same", use_bias=not self.batch_norm, name="conv")
        self.norm = keras.layers.BatchNormalization(name="batch_norm") if self.batch_norm else None
        self.act = keras.layers.Activation(activation) if activation else None

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"layer '{self.name}': expects (batch, height, width, channels) inputs; "
                             f"received shape {tuple(input_shape)}")
        self.conv.build(input_shape)
        if self.norm is not None:
            self.norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        if self.norm is not None:
            x = self.norm(x, training=training)
        return self.act(x) if self.act is not None else x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "stride": self.stride, "dilation": self.dilation, "activation": self.activation,
                "batch_norm": self.batch_norm}
