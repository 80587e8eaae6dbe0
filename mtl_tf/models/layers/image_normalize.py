"""Image feature encoder: uint8 pixels -> per-channel standardised floats."""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_tf")
class ImageNormalize(keras.layers.Layer):
    """(batch, H, W, C) uint8 -> (batch, H, W, C) floats ``(x - mean[c]) / std[c]``.

    The statistics are the train split's per-channel mean and standard deviation on the
    0-255 scale (dataset.json ``ImageStats``); nothing is recomputed here. The arithmetic is
    float32 whatever the dtype policy; the result is cast to the layer's compute dtype
    (bfloat16 under ``mixed_bfloat16``).

    Args:
        mean: one value per channel.
        std: one value per channel; 0 (a constant channel) divides by 1 instead.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = _per_channel(mean, "mean", self.name), _per_channel(std, "std", self.name)
        if len(self.mean) != len(self.std):
            raise ValueError(f"layer '{self.name}': mean and std need one value per channel each; received "
                             f"{len(self.mean)} means and {len(self.std)} stds")
        if any(s < 0 for s in self.std):
            raise ValueError(f"layer '{self.name}': std must be >= 0; received {self.std}")

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] != len(self.mean):
            raise ValueError(f"layer '{self.name}': expects (batch, height, width, {len(self.mean)}) images "
                             f"(one statistic per channel); received shape {tuple(input_shape)}")
        self._mean = np.asarray(self.mean, "float32")
        self._scale = np.asarray([1.0 / s if s > 0 else 1.0 for s in self.std], "float32")

    def call(self, inputs):
        x = (ops.cast(inputs, "float32") - self._mean) * self._scale
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mean": list(self.mean), "std": list(self.std)}


def _per_channel(values, key: str, where: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values \
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ValueError(f"layer '{where}': {key} must be a non-empty list of finite numbers, one per channel; "
                         f"received {values!r}")
    return [float(v) for v in values]
