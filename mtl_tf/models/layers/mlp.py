"""A stack of Dense blocks, the building block of trunks and towers."""

from __future__ import annotations

from typing import Sequence

import keras


@keras.saving.register_keras_serializable(package="mtl_tf")
class MLP(keras.layers.Layer):
    """Dense -> [BatchNormalization] -> activation -> [Dropout], once per entry of ``units``.

    An empty ``units`` is the identity (a task that reads the shared representation as is).

    Args:
        units: width of each Dense layer, in order.
        activation: a Keras activation name ("relu", "gelu", "swish", ...).
        dropout: dropout rate after each block, in [0, 1).
        batch_norm: batch-normalise each Dense output before the activation.
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    # Option names a recipe may set; the registry refuses others with a did-you-mean.
    options = ["units", "activation", "dropout", "batch_norm"]
    default_units: tuple[int, ...] = ()

    def __init__(self, units: Sequence[int] | None = None, activation: str = "relu",
                 dropout: float = 0.0, batch_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = _check_units(self.default_units if units is None else units, self.name)
        self.activation = _check_activation(activation, self.name)
        self.dropout = _check_dropout(dropout, self.name)
        if not isinstance(batch_norm, bool):
            raise TypeError(f"layer '{self.name}': batch_norm must be true or false; "
                            f"received {batch_norm!r}")
        self.batch_norm = batch_norm
        self.blocks = [self._block(i, width) for i, width in enumerate(self.units)]

    def _block(self, index: int, width: int) -> list[keras.layers.Layer]:
        block = [keras.layers.Dense(width, use_bias=not self.batch_norm, name=f"dense_{index}")]
        if self.batch_norm:
            block.append(keras.layers.BatchNormalization(name=f"batch_norm_{index}"))
        block.append(keras.layers.Activation(self.activation, name=f"{self.activation}_{index}"))
        if self.dropout > 0:
            block.append(keras.layers.Dropout(self.dropout, name=f"dropout_{index}"))
        return block

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layers_in_order():
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self._layers_in_order():
            if isinstance(layer, (keras.layers.Dropout, keras.layers.BatchNormalization)):
                x = layer(x, training=training)
            else:
                x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        if not self.units:
            return tuple(input_shape)
        return (*input_shape[:-1], self.units[-1])

    def get_config(self):
        return {**super().get_config(), "units": list(self.units), "activation": self.activation,
                "dropout": self.dropout, "batch_norm": self.batch_norm}

    def _layers_in_order(self) -> list[keras.layers.Layer]:
        return [layer for block in self.blocks for layer in block]


def _check_units(units: Sequence[int], where: str, key: str = "units") -> list[int]:
    if isinstance(units, (str, bytes)) or not isinstance(units, Sequence):
        raise TypeError(f"layer '{where}': {key} must be a list of positive integers such as "
                        f"[128, 64]; received {units!r}")
    bad = [u for u in units if isinstance(u, bool) or not isinstance(u, int) or u < 1]
    if bad:
        raise ValueError(f"layer '{where}': {key} must be positive integers; received {list(units)!r}")
    return list(units)


def _check_activation(activation: str, where: str) -> str:
    if not isinstance(activation, str):
        raise TypeError(f"layer '{where}': activation must be a Keras activation name; "
                        f"received {activation!r}")
    try:
        keras.activations.get(activation)
    except ValueError:
        raise ValueError(f"layer '{where}': unknown activation {activation!r}; use a Keras "
                         "activation name such as relu, gelu, swish, tanh, elu") from None
    return activation


def _check_dropout(dropout: float, where: str) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"layer '{where}': dropout must be a rate in [0, 1); received {dropout!r}")
    return float(dropout)
