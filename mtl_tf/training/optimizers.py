"""Optimizers by name: the Keras 3 core optimizers, registered under short names.

Keras 3 core has what tensorflow-addons used to provide (AdamW, Lamb, Lion, Adafactor), so
no extra package is needed.

Example:
    >>> build_optimizer({"name": "adamw", "learning_rate": 2e-3, "weight_decay": 1e-4})
"""

from __future__ import annotations

from typing import Any, Mapping

import keras

from mtl_tf.registry import Registry

OPTIMIZERS = Registry("optimizer")

for _name, _cls in {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
    "adadelta": keras.optimizers.Adadelta,
    "adamax": keras.optimizers.Adamax,
    "nadam": keras.optimizers.Nadam,
    "ftrl": keras.optimizers.Ftrl,
    "lion": keras.optimizers.Lion,
    "lamb": keras.optimizers.Lamb,
    "adafactor": keras.optimizers.Adafactor,
}.items():
    OPTIMIZERS.add(_name, _cls)


def build_optimizer(spec: str | Mapping[str, Any] | keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """A fresh Keras optimizer from a name or a ``{"name": ..., **options}`` spec.

    Build it inside ``strategy.scope()`` so its variables are distributed like the model's.

    Args:
        spec: ``"adam"``, ``{"name": "adamw", "learning_rate": 2e-3}`` or an optimizer instance
            (returned as is).

    Returns:
        The optimizer.
    """
    if isinstance(spec, keras.optimizers.Optimizer):
        return spec
    return OPTIMIZERS.get(spec, "training.optimizer")
