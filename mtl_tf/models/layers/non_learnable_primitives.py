"""The non-learnable primitives (NLP) block of ETR-NLP (Ding et al., CVPR 2023)."""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
from keras import ops

#: Primitives for (batch, features) inputs, each giving ``units`` features.
DENSE_PRIMITIVES = ("random_projection", "random_fourier")
#: Primitives for (batch, H, W, C) inputs, applied per channel; the number is per channel.
CONV_PRIMITIVES = {"random_filters": 1, "classical_filters": 3, "dilated_filters": 1,
                   "avg_pool": 1, "max_pool": 1, "shift": 4, "noise": 1}

_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "float32") / 4.0
_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], "float32") / 4.0


@keras.saving.register_keras_serializable(package="mtl_tf")
class NonLearnablePrimitives(keras.layers.Layer):
    """Several fixed operations in parallel, concatenated; nothing in it is trainable.

    Tabular inputs (batch, d): ``random_projection`` (a fixed Gaussian projection to
    ``units`` features) and ``random_fourier`` (random Fourier features
    ``sqrt(2) cos(x W + b)``). Output (batch, units * P), the P primitives of feature ``i``
    side by side.

    Images (batch, H, W, C), per channel with 'same' padding: ``random_filters`` (a fixed
    random 3x3 filter), ``classical_filters`` (Sobel x, Sobel y, Laplacian),
    ``dilated_filters`` (a fixed random 3x3 filter with dilation 2), ``avg_pool`` and
    ``max_pool`` (3x3, stride 1), ``shift`` (the map moved one pixel up, down, left, right)
    and ``noise`` (plus a fixed Gaussian noise pattern). Output (batch, H, W, C * P), the
    primitives of channel ``c`` side by side, so a grouped 1x1 layer mixes all primitives
    of a set of channels.

    The fixed weights are non-trainable variables drawn from ``seed``: they are saved with
    the model, reload identically and never receive gradients.

    Args:
        primitives: names from the lists above; default every primitive of the input's kind.
        units: features per primitive (tabular inputs only).
        seed: seed of the fixed random weights.
        noise_std: standard deviation of the fixed noise pattern.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, primitives: Sequence[str] | None = None, units: int = 32, seed: int = 0,
                 noise_std: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.primitives = None if primitives is None else list(primitives)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"layer '{self.name}': units must be a positive integer; received {units!r}")
        self.units, self.seed, self.noise_std = units, int(seed), float(noise_std)
        self.trainable = False

    @property
    def multiplicity(self) -> int:
        """Outputs per input channel (images) or per projected feature (tabular)."""
        if self._spatial:
            return sum(CONV_PRIMITIVES[p] for p in self._chosen)
        return len(self._chosen)

    def build(self, input_shape):
        self._spatial = len(input_shape) == 4
        allowed = tuple(CONV_PRIMITIVES) if self._spatial else DENSE_PRIMITIVES
        self._chosen = list(allowed) if self.primitives is None else self.primitives
        unknown = [p for p in self._chosen if p not in allowed]
        if unknown or not self._chosen:
            kind = "images" if self._spatial else "tabular features"
            raise ValueError(f"layer '{self.name}': primitives {self._chosen!r} are not all available "
                             f"for {kind}; allowed: {', '.join(allowed)}")
        channels = input_shape[-1]
        for offset, primitive in enumerate(self._chosen):
            getattr(self, f"_make_{primitive}")(input_shape, channels, self.seed * 101 + offset)

    def _fixed(self, name, shape, initializer):
        return self.add_weight(name=name, shape=shape, initializer=initializer, trainable=False)

    # --- tabular primitives -------------------------------------------------------------
    def _make_random_projection(self, shape, width, seed):
        std = 1.0 / math.sqrt(width)
        self.projection = self._fixed("projection", (width, self.units),
                                      keras.initializers.RandomNormal(stddev=std, seed=seed))

    def _make_random_fourier(self, shape, width, seed):
        std = 1.0 / math.sqrt(width)
        self.frequencies = self._fixed("frequencies", (width, self.units),
                                       keras.initializers.RandomNormal(stddev=std, seed=seed))
        self.phases = self._fixed("phases", (self.units,),
                                  keras.initializers.RandomUniform(0.0, 2 * math.pi, seed=seed + 1))

    def _random_projection(self, x):
        return ops.matmul(x, self.projection)

    def _random_fourier(self, x):
        return math.sqrt(2.0) * ops.cos(ops.matmul(x, self.frequencies) + self.phases)

    # --- image primitives ---------------------------------------------------------------
    def _make_random_filters(self, shape, channels, seed):
        self.random_kernel = self._fixed("random_kernel", (3, 3, channels, 1),
                                         keras.initializers.RandomNormal(stddev=1 / 3, seed=seed))

    def _make_dilated_filters(self, shape, channels, seed):
        self.dilated_kernel = self._fixed("dilated_kernel", (3, 3, channels, 1),
                                          keras.initializers.RandomNormal(stddev=1 / 3, seed=seed))

    def _make_classical_filters(self, shape, channels, seed):
        bank = np.stack([_SOBEL_X, _SOBEL_X.T, _LAPLACIAN], axis=-1)  # (3, 3, 3)
        kernel = np.repeat(bank[:, :, None, :], channels, axis=2)  # (3, 3, C, 3)
        self.classical_kernel = self._fixed("classical_kernel", kernel.shape,
                                            keras.initializers.Constant(kernel))

    def _make_noise(self, shape, channels, seed):
        size = tuple(shape[1:3]) if None not in shape[1:3] else (1, 1)
        self.noise_pattern = self._fixed("noise_pattern", size + (channels,),
                                         keras.initializers.RandomNormal(stddev=self.noise_std, seed=seed))

    def _make_avg_pool(self, shape, channels, seed):
        pass

    def _make_max_pool(self, shape, channels, seed):
        pass

    def _make_shift(self, shape, channels, seed):
        pass

    def _random_filters(self, x):
        return ops.depthwise_conv(x, self.random_kernel, padding="same")[..., None]

    def _dilated_filters(self, x):
        return ops.depthwise_conv(x, self.dilated_kernel, padding="same", dilation_rate=2)[..., None]

    def _classical_filters(self, x):
        out = ops.depthwise_conv(x, self.classical_kernel, padding="same")  # channel c*3 + j
        shape = ops.shape(x)
        return ops.reshape(out, (shape[0], shape[1], shape[2], x.shape[-1], 3))

    def _avg_pool(self, x):
        return ops.average_pool(x, 3, strides=1, padding="same")[..., None]

    def _max_pool(self, x):
        return ops.max_pool(x, 3, strides=1, padding="same")[..., None]

    def _shift(self, x):
        padded = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        moves = [padded[:, 2:, 1:-1], padded[:, :-2, 1:-1], padded[:, 1:-1, 2:], padded[:, 1:-1, :-2]]
        return ops.stack(moves, axis=-1)

    def _noise(self, x):
        return (x + ops.cast(self.noise_pattern, x.dtype))[..., None]

    def call(self, inputs):
        outputs = [getattr(self, f"_{primitive}")(inputs) for primitive in self._chosen]
        if self._spatial:
            joined = ops.concatenate(outputs, axis=-1)  # (batch, H, W, C, P)
            shape = ops.shape(joined)
            return ops.reshape(joined, (shape[0], shape[1], shape[2], joined.shape[3] * joined.shape[4]))
        return ops.reshape(ops.stack(outputs, axis=-1), (-1, self.units * len(outputs)))

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 4:
            chosen = list(CONV_PRIMITIVES) if self.primitives is None else self.primitives
            per_channel = sum(CONV_PRIMITIVES.get(p, 0) for p in chosen)
            return (*input_shape[:3], input_shape[3] * per_channel)
        chosen = list(DENSE_PRIMITIVES) if self.primitives is None else self.primitives
        return (input_shape[0], self.units * len(chosen))

    def get_config(self):
        return {**super().get_config(), "primitives": self.primitives, "units": self.units,
                "seed": self.seed, "noise_std": self.noise_std}
