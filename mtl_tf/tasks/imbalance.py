"""Losses for rare positives: cross-entropy with per-class positive weights, and focal loss.

Findings on medical images are rare (a few percent of scans, some far fewer), and a plain
cross-entropy lets a model learn "never" for them. Two remedies, as binary and multi-label
task options (``loss: {name: cross_entropy, pos_weight: ...}`` or ``loss: {name: focal, ...}``):

- **positive weights** (``pos_weight``): each positive label's term is multiplied by its
  class's weight, ``- (w y log p + (1 - y) log(1 - p))``; ``auto`` takes ``w_c = negatives_c /
  positives_c`` from dataset.json's train label counts (so both classes weigh the same in
  total), capped at :data:`MAX_POS_WEIGHT`; a class without train positives gets 1;
- **focal loss** (Lin et al., 2017): ``- alpha_t (1 - p_t)^gamma log p_t`` with ``p_t`` the
  probability of the true value, so confident, easy rows count little; ``gamma`` (default 2)
  sets how much, ``alpha`` (optional, in (0, 1)) weighs positives by ``alpha`` and negatives
  by ``1 - alpha``.

Both take probabilities (the heads end in a sigmoid), clipped to ``[EPSILON, 1 - EPSILON]``
as Keras' cross-entropy does; a row's loss is the mean over its classes.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import tensorflow as tf

MAX_POS_WEIGHT = 100.0
EPSILON = 1e-7


def positive_weights(value: Any, classes: int, spec: Any, where: str) -> list[float] | None:
    """The per-class positive weights a ``pos_weight`` option asks for (None: unweighted).

    Args:
        value: ``none``, ``auto``, a number (every class) or a list of one number per class.
        classes: the task's classes (1 for a binary task).
        spec: the task's dataset.json entry (``TaskSpec``), needed by ``auto``.
        where: the option's recipe path, for errors.
    """
    if value is None or value == "none":
        return None
    if value == "auto":
        if spec is None or "train" not in spec.labelled:
            raise ValueError(f"{where}: auto needs the train label counts of dataset.json; build the task with "
                             "build_tasks(recipe.tasks, spec), or give a number or a list")
        positives = spec.positives.get("train", 0)
        positives = list(positives) if isinstance(positives, list) else [positives]
        if len(positives) != classes:
            raise ValueError(f"{where}: dataset.json counts positives of {len(positives)} classes, the task has "
                             f"{classes}")
        return auto_weights(positives, spec.labelled["train"])
    if isinstance(value, (list, tuple)):
        if len(value) != classes:
            raise ValueError(f"{where}: needs one weight per class ({classes}); received {len(value)}: {list(value)!r}")
        return [_weight(f"{where}.{i}", v) for i, v in enumerate(value)]
    return [_weight(where, value)] * classes


def auto_weights(positives: Sequence[int], labelled: int, cap: float = MAX_POS_WEIGHT) -> list[float]:
    """``negatives / positives`` per class, capped at ``cap``; 1 for a class without positives."""
    return [min(cap, (labelled - p) / p) if p > 0 else 1.0 for p in positives]


def _weight(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
        raise ValueError(f"{where} must be a positive number, 'auto' or 'none'; received {value!r}")
    return float(value)


def focal_options(options: dict[str, Any], where: str) -> tuple[float, float | None]:
    """``(gamma, alpha)`` of a focal loss's options (gamma >= 0, default 2; alpha in (0, 1) or None)."""
    gamma = options.get("gamma", 2.0)
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or gamma < 0:
        raise ValueError(f"{where}.gamma must be a number >= 0; received {gamma!r}")
    alpha = options.get("alpha")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1):
        raise ValueError(f"{where}.alpha must be a number in (0, 1), or left out; received {alpha!r}")
    return float(gamma), None if alpha is None else float(alpha)


def weighted_binary_crossentropy(label: tf.Tensor, probability: tf.Tensor,
                                 pos_weight: Sequence[float]) -> tf.Tensor:
    """``- mean_c (w_c y log p + (1 - y) log(1 - p))`` per row; ``label`` and ``probability`` (B, C)."""
    p = tf.clip_by_value(tf.cast(probability, tf.float32), EPSILON, 1.0 - EPSILON)
    y = tf.cast(label, tf.float32)
    weight = tf.constant(pos_weight, tf.float32)
    return -tf.reduce_mean(weight * y * tf.math.log(p) + (1.0 - y) * tf.math.log(1.0 - p), axis=-1)


def binary_focal_loss(label: tf.Tensor, probability: tf.Tensor, gamma: float, alpha: float | None) -> tf.Tensor:
    """``- mean_c alpha_t (1 - p_t)^gamma log p_t`` per row; ``label`` and ``probability`` (B, C)."""
    p = tf.clip_by_value(tf.cast(probability, tf.float32), EPSILON, 1.0 - EPSILON)
    y = tf.cast(label, tf.float32)
    p_true = y * p + (1.0 - y) * (1.0 - p)
    loss = -tf.pow(1.0 - p_true, gamma) * tf.math.log(p_true)
    if alpha is not None:
        loss *= y * alpha + (1.0 - y) * (1.0 - alpha)
    return tf.reduce_mean(loss, axis=-1)
