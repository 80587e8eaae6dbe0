"""Timestamp encoder: hour of day and day of week on the unit circle."""

from __future__ import annotations

import math

import keras
from keras import ops

SECONDS_PER_DAY = 86_400
# 1970-01-01, day 0 of the epoch, was a Thursday: shifting by 3 makes Monday day 0.
_EPOCH_WEEKDAY = 3


@keras.saving.register_keras_serializable(package="mtl_tf")
class CyclicalTime(keras.layers.Layer):
    """(batch,) int64 epoch seconds (UTC) -> (batch, 5) float.

    Columns: sin and cos of the time of day (to the second, so 23:59 sits next to 00:00),
    sin and cos of the day of the week (Monday = 0), and a missing indicator. A missing
    timestamp (negative, -1 in the tf.Example layout) encodes as zeros with the indicator 1.

    Args:
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def call(self, inputs):
        seconds = ops.cast(inputs, "int64")
        present = ops.cast(seconds >= 0, self.compute_dtype)
        time_of_day = ops.cast(ops.mod(seconds, SECONDS_PER_DAY), self.compute_dtype)
        weekday = ops.mod(ops.floor_divide(seconds, SECONDS_PER_DAY) + _EPOCH_WEEKDAY, 7)
        day_angle = time_of_day * (2.0 * math.pi / SECONDS_PER_DAY)
        week_angle = ops.cast(weekday, self.compute_dtype) * (2.0 * math.pi / 7.0)
        waves = ops.stack([ops.sin(day_angle), ops.cos(day_angle),
                           ops.sin(week_angle), ops.cos(week_angle)], axis=-1)
        return ops.concatenate([waves * present[..., None], (1.0 - present)[..., None]], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape, 5)
