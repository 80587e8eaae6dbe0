"""Small layers the task heads share."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_tf")
class SqueezeLast(keras.layers.Layer):
    """(batch, 1) -> (batch,): scalar tasks answer one number per row."""

    def call(self, inputs):
        return ops.squeeze(inputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])
