"""The Decoder interface and the resampling steps decoders share."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from mtl_tf.models.layers.mlp import _check_activation
from mtl_tf.models.pyramid import Pyramid

INTERPOLATIONS = ("bilinear", "nearest")


class Decoder:
    """Base class of decoders: wires layers from a :class:`Pyramid` to one map.

    A decoder is not saved: the layers it creates are part of the model's config, so a saved
    model reloads without it (as architectures).

    Args:
        activation: a Keras activation name for the conv blocks.
        batch_norm: batch-normalise after each convolution of a conv block.
        interpolation: ``bilinear`` or ``nearest``, for upsampling a merged map.
    """

    def __init__(self, activation: str = "relu", batch_norm: bool = True, interpolation: str = "bilinear"):
        self.activation = _check_activation(activation, "decoder")
        if not isinstance(batch_norm, bool):
            raise TypeError(f"batch_norm must be true or false; received {batch_norm!r}")
        self.batch_norm = batch_norm
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; received {interpolation!r}")
        self.interpolation = interpolation

    def decode(self, pyramid: Pyramid, stride: int, prefix: str) -> keras.KerasTensor:
        """The (batch, H / stride, W / stride, channels) map of a task.

        Args:
            pyramid: the task's feature pyramid.
            stride: the task's output stride (1 = the input resolution).
            prefix: the name of every layer starts with it (``<task>_decoder`` or
                ``shared_decoder``).
        """
        raise NotImplementedError

    def levels(self, pyramid: Pyramid, stride: int) -> list[tuple[int, Any, int]]:
        """``(index, map, stride)`` of the pyramid levels at ``stride`` or coarser, finest first.

        Finer levels than the output are left out; when every level is finer, the deepest
        one alone is used (and average-pooled down by :meth:`resample`).
        """
        check_stride(stride)
        used = [(i, m, s) for i, (m, s) in enumerate(pyramid) if s >= stride]
        return used or [(len(pyramid) - 1, pyramid.deepest, pyramid.strides[-1])]

    def resample(self, x, current: int, stride: int, name: str, interpolation: str | None = None):
        """``x`` at stride ``current`` brought to ``stride``: upsampled, average-pooled or as is."""
        if current == stride:
            return x
        if current > stride:
            return keras.layers.UpSampling2D(_factor(current, stride), interpolation=interpolation or
                                             self.interpolation, name=name)(x)
        return keras.layers.AveragePooling2D(_factor(stride, current), name=name)(x)


def check_stride(stride: Any) -> int:
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"a decoder's output stride must be a positive integer; received {stride!r}")
    return stride


def check_filters(value: Any, key: str, allow_list: bool = False) -> int | list[int] | None:
    """A positive int (or, with ``allow_list``, a list of them, or None)."""
    if allow_list and value is None:
        return None
    if allow_list and isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if not value or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
            raise ValueError(f"{key} must be positive integers; received {list(value)!r}")
        return list(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "a positive integer" + (", a list of them (one per level) or null" if allow_list else "")
        raise ValueError(f"{key} must be {allowed}; received {value!r}")
    return value


def _factor(coarse: int, fine: int) -> int:
    if coarse % fine:
        raise ValueError(f"cannot resample a map from stride {coarse} to stride {fine}: the ratio is not "
                         "an integer")
    return coarse // fine
