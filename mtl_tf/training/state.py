"""Method state: variables that every replica updates with the same value.

Weightings, aggregators and samplers update their state inside the replica step from
quantities already reduced across replicas (global losses, the global Gram matrix), so every
replica computes the same new value; ``ONLY_FIRST_REPLICA`` lets them assign it in replica
context under any strategy and keeps checkpoints identical on every worker.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def state_variable(initial: Any, name: str, dtype: tf.DType = tf.float32) -> tf.Variable:
    """A non-trainable method-state variable (create it inside ``strategy.scope()``).

    Args:
        initial: the initial value (a number, list or tensor).
        name: the variable name (shown in checkpoints).
        dtype: the variable dtype.

    Returns:
        The variable.
    """
    return tf.Variable(tf.cast(initial, dtype), trainable=False, name=name,
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def stateless_seed(seed: int, step: tf.Tensor, salt: int = 0) -> tf.Tensor:
    """A ``tf.random.stateless_*`` seed from a fixed seed and the step counter.

    Random methods draw from it so every replica, and a resumed run, draws the same numbers.
    """
    step = tf.cast(step, tf.int64)
    return tf.stack([tf.constant(int(seed), tf.int64) * 1_000_003 + salt, step])
