"""Numeric feature encoder: standardised value plus a missing indicator."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_tf")
class Standardize(keras.layers.Layer):
    """(batch,) floats -> (batch, 2): ``[(x - mean) / sqrt(variance), missing]``.

    A missing value (NaN) becomes 0, the train mean once standardised, and its indicator 1,
    so the model can tell an average value from an absent one. The statistics come from
    dataset.json; nothing is recomputed here.

    Args:
        mean: the train-split mean.
        variance: the train-split variance; 0 (a constant feature) divides by 1 instead.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, mean: float = 0.0, variance: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not math.isfinite(mean):
            raise ValueError(f"layer '{self.name}': mean must be a finite number; received {mean!r}")
        if not math.isfinite(variance) or variance < 0:
            raise ValueError(f"layer '{self.name}': variance must be a finite number >= 0; "
                             f"received {variance!r}")
        self.mean = float(mean)
        self.variance = float(variance)
        # A constant feature standardises to 0 instead of dividing by zero.
        self._scale = 1.0 / math.sqrt(variance) if variance > 0 else 1.0

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        missing = ops.isnan(x)
        z = ops.where(missing, ops.zeros_like(x), (x - self.mean) * self._scale)
        return ops.stack([z, ops.cast(missing, self.compute_dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape, 2)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "variance": self.variance}
