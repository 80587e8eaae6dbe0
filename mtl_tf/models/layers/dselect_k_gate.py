"""DSelect-k: a differentiable gate that learns to pick k experts (Hazimeh et al., 2021)."""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
from keras import ops

from mtl_tf.models.layers.expert_gate import ExpertGate


@keras.saving.register_keras_serializable(package="mtl_tf")
class DSelectKGate(ExpertGate):
    """Gate input -> (batch, n_experts) weights concentrated on at most ``k`` experts.

    Each of the ``k`` selectors holds ``m = ceil(log2 n)`` logits; a smooth step turns them
    into a soft binary code, and expert ``e``'s share of the selector is the product over
    bits of ``S(z)`` where ``e``'s bit is 1 and ``1 - S(z)`` where it is 0. As the logits leave
    ``[-gamma/2, gamma/2]`` the code becomes exact, so each selector ends on one expert. A
    softmax over the selectors mixes them. With ``n`` not a power of two, code ``c`` selects
    expert ``c mod n``, so every code lands on an expert and the weights always sum to 1.

    Args:
        experts: names of the expert layers, in the order of the weights.
        k: number of selectors (experts kept at convergence).
        gamma: width of the smooth step's transition.
        level: the extraction level (PLE); 0 for single-level mixtures.
        task: the task whose mixture this gate decides, None for a shared gate.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, experts: Sequence[str], k: int = 2, gamma: float = 1.0, level: int = 0,
                 task: str | None = None, **kwargs):
        super().__init__(experts, level, task, **kwargs)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"layer '{self.name}': k must be a positive integer; received {k!r}")
        if not gamma > 0:
            raise ValueError(f"layer '{self.name}': gamma must be > 0; received {gamma!r}")
        self.k, self.gamma = k, float(gamma)
        self.bits = max(1, math.ceil(math.log2(len(self.experts))))
        every_code = np.arange(2 ** self.bits)
        self._codes = ((every_code[:, None] >> np.arange(self.bits)[None, :]) & 1).astype("float32")
        self._assign = np.eye(len(self.experts), dtype="float32")[every_code % len(self.experts)]

    def build(self, input_shape):
        # Logits start inside the transition, where the smooth step still has a gradient.
        start = keras.initializers.RandomUniform(-self.gamma / 2, self.gamma / 2)
        self.dense = keras.layers.Dense(self.k * self.bits, bias_initializer=start, name="codes")
        self.mix = keras.layers.Dense(self.k, name="selectors")
        shape = (input_shape[0], input_shape[-1])
        self.dense.build(shape)
        self.mix.build(shape)

    def call(self, inputs):
        x = ops.mean(inputs, axis=(1, 2)) if len(inputs.shape) == 4 else inputs
        z = ops.reshape(self.dense(x), (-1, self.k, 1, self.bits))
        step = self._smooth_step(z)
        codes = ops.convert_to_tensor(self._codes, dtype=step.dtype)
        # (batch, k, codes): product over bits of S(z) or 1 - S(z) by each code's bits
        shares = ops.prod(codes * step + (1.0 - codes) * (1.0 - step), axis=-1)
        shares = ops.matmul(shares, ops.convert_to_tensor(self._assign, dtype=step.dtype))
        if self.k == 1:
            return shares[:, 0]
        return ops.sum(ops.softmax(self.mix(x), axis=-1)[..., None] * shares, axis=1)

    def _smooth_step(self, t):
        g = self.gamma
        cubic = -2.0 / g ** 3 * t ** 3 + 3.0 / (2.0 * g) * t + 0.5
        return ops.where(t <= -g / 2, ops.zeros_like(t), ops.where(t >= g / 2, ops.ones_like(t), cubic))

    def get_config(self):
        return {**super().get_config(), "k": self.k, "gamma": self.gamma}
