"""The cross-stitch unit (Misra et al., 2016): one task's learned mix of every task's column."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_tf")
class CrossStitch(keras.layers.Layer):
    """``[column_1, ..., column_n]`` -> ``sum_s alpha[s] * column_s`` for one task.

    One unit per task and block: the unit of task ``index`` owns its row of the cross-stitch
    matrix, initialised to ``self_weight`` on its own column and the rest spread evenly over
    the others, so training starts close to separate networks and learns how much to share.

    Args:
        index: position of this unit's task among the columns.
        self_weight: initial weight of the task's own column, in [0, 1].
        per_channel: learn one weight per column and channel instead of one per column.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, index: int, self_weight: float = 0.9, per_channel: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"layer '{self.name}': index must be an integer >= 0; received {index!r}")
        if not 0 <= self_weight <= 1:
            raise ValueError(f"layer '{self.name}': self_weight must be in [0, 1]; received {self_weight!r}")
        self.index, self.self_weight, self.per_channel = index, float(self_weight), bool(per_channel)

    def build(self, input_shape):
        columns = len(input_shape)
        if self.index >= columns:
            raise ValueError(f"layer '{self.name}': index {self.index} but only {columns} columns")
        if len({tuple(shape[1:]) for shape in input_shape}) != 1:
            raise ValueError(f"layer '{self.name}': every column must have one shape; received "
                             f"{[tuple(s) for s in input_shape]}")
        row = np.full(columns, (1.0 - self.self_weight) / max(columns - 1, 1), "float32")
        row[self.index] = self.self_weight if columns > 1 else 1.0
        shape = (columns, input_shape[0][-1]) if self.per_channel else (columns,)
        start = np.broadcast_to(row.reshape((columns,) + (1,) * (len(shape) - 1)), shape)
        self.alpha = self.add_weight(name="alpha", shape=shape,
                                     initializer=keras.initializers.Constant(start.copy()))

    def call(self, inputs):
        stacked = ops.stack(inputs, axis=1)  # (batch, n, ..., channels)
        alpha = ops.cast(self.alpha, stacked.dtype)
        if not self.per_channel:
            alpha = ops.reshape(alpha, (-1,) + (1,) * (len(stacked.shape) - 2))
        elif len(stacked.shape) == 4:
            alpha = ops.reshape(alpha, (alpha.shape[0], 1, 1, alpha.shape[1]))
        return ops.sum(alpha * stacked, axis=1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "index": self.index, "self_weight": self.self_weight,
                "per_channel": self.per_channel}
