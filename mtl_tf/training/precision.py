"""Mixed precision: the Keras dtype policy a model is built under, and loss scaling.

Layers take their compute dtype from the global Keras policy when they are created, so the
Trainer builds the model with the policy set and puts the previous one back afterwards (other
models built in the same process keep theirs). Weights stay float32; each task's last layer
computes in float32, so losses, metrics and served outputs are float32.

With ``mixed_float16`` the optimizers are Keras ``LossScaleOptimizer`` s: the step multiplies
the losses by the current scale before differentiating (small gradients survive float16),
divides the Gram matrix of the per-task gradients by the scale squared before an aggregator
or weighting reads it (their coefficients see true gradients), and hands the still-scaled
update to the optimizer, which unscales it, skips a step whose gradients overflowed and
halves the scale (doubling it after 2,000 finite steps). bfloat16 has float32's range and needs
no scaling.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import keras


@contextlib.contextmanager
def dtype_policy(name: str | None) -> Iterator[None]:
    """Sets the global Keras dtype policy to ``name`` (None: leave it) for the ``with`` block."""
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def loss_scaled(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """``optimizer`` wrapped in a dynamic ``LossScaleOptimizer`` (unless it already is one)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


def current_scale(optimizer: keras.optimizers.Optimizer):
    """The loss scale a ``LossScaleOptimizer`` applies now (1.0 for any other optimizer)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.dynamic_scale if optimizer.built else optimizer.initial_scale
    return 1.0
