"""The soft parameter sharing penalty: the L2 distance between the task columns' weights."""

from __future__ import annotations

import itertools

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl_tf")
class SoftSharingPenalty(keras.layers.Layer):
    """Identity on its input; adds ``weight * sum_{i<j} ||theta_i - theta_j||^2`` as a loss.

    The layers that consume this layer's output (one trunk per task, all of one spec) are
    its columns; ``theta_i`` are column ``i``'s trainable weights, compared position by
    position. The penalty goes through ``add_loss``, so it is part of ``model.losses``: the
    Trainer adds it to the objective and reports it as ``regularization``. Because it reads
    the columns' weights rather than their outputs, serving one task still runs that task's
    column alone.

    Args:
        weight: the penalty coefficient (0 trains independent columns).
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, weight: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"layer '{self.name}': weight must be a number >= 0; received {weight!r}")
        self.weight = float(weight)

    def columns(self) -> list[keras.layers.Layer]:
        """The layers reading this layer's output, in the order they were connected."""
        found: dict[int, keras.layers.Layer] = {}
        # Keras records every call on this layer's output as an outbound node, also when a
        # saved model is rebuilt from its config, so the columns are found again after loading.
        for node in self._outbound_nodes:
            found.setdefault(id(node.operation), node.operation)
        return list(found.values())

    def penalty(self):
        """The current penalty (a scalar tensor), computed from the columns' weights."""
        columns = [column.trainable_weights for column in self.columns()]
        total = ops.convert_to_tensor(0.0)
        for left, right in itertools.combinations(columns, 2):
            self._check_pair(left, right)
            for a, b in zip(left, right):
                total = total + ops.sum(ops.square(ops.cast(a, "float32") - ops.cast(b, "float32")))
        return self.weight * total

    def _check_pair(self, left, right) -> None:
        shapes = [tuple(v.shape) for v in left], [tuple(v.shape) for v in right]
        if shapes[0] != shapes[1]:
            raise ValueError(f"layer '{self.name}': soft sharing compares columns weight by weight, "
                             f"but two columns differ: {shapes[0]} vs {shapes[1]}")

    def call(self, inputs):
        if self.weight > 0 and len(self.columns()) > 1:
            self.add_loss(self.penalty())
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}
