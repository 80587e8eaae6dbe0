"""The softmax gate of mixture-of-experts architectures (MMoE, PLE)."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_tf")
class ExpertGate(keras.layers.Layer):
    """Gate input -> (batch, n_experts) weights that sum to 1 (a softmax of a Dense layer).

    Image inputs (batch, H, W, C) are averaged over space first, so one weight per expert
    and row decides the mixture. The gate knows the names of the experts it weighs, which
    lets :func:`mtl_tf.models.experts.expert_utilisation` tell which expert each weight is for.

    Args:
        experts: names of the expert layers, in the order of the weights.
        level: the extraction level (PLE); 0 for single-level mixtures.
        task: the task whose mixture this gate decides, None for a shared gate (the layer
            name may be shared even for a task's gate, when other tasks train through it).
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, experts: Sequence[str], level: int = 0, task: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(experts, str) or not experts:
            raise ValueError(f"layer '{self.name}': experts must be a non-empty list of expert layer "
                             f"names; received {experts!r}")
        self.experts = list(experts)
        self.level = int(level)
        self.task = task

    def build(self, input_shape):
        self.dense = keras.layers.Dense(len(self.experts), name="logits")
        self.dense.build((input_shape[0], input_shape[-1]))

    def call(self, inputs):
        x = ops.mean(inputs, axis=(1, 2)) if len(inputs.shape) == 4 else inputs
        return ops.softmax(self.dense(x), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.experts))

    def get_config(self):
        return {**super().get_config(), "experts": list(self.experts), "level": self.level,
                "task": self.task}
