"""The base of image trunks: stages run in sequence, the last map or every stage's map."""

from __future__ import annotations

import math

import keras

from mtl_tf.models.pyramid import Pyramid


class SpatialTrunk(keras.layers.Layer):
    """An image trunk made of stages; it returns the last map (pooled or not) or a pyramid.

    Subclasses build their layers in ``__init__`` and implement :meth:`stages` (the layers of
    each stage, in order), ``widths`` and ``strides`` (per stage) and ``block``.

    Called plainly the trunk returns the last stage's map, averaged over space with
    ``global_pool`` (the representation of the architectures' per-row path). After
    :meth:`pyramid` it returns the output of every stage instead (``return_pyramid``, which
    its config records, so a saved model reloads the same way).

    Args:
        global_pool: average the last map over space (plain calls only).
        return_pyramid: return every stage's output (set by :meth:`pyramid`).
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).
    """

    spatial = True
    #: The decoder dense tasks get when the recipe names none (see the model builder).
    default_decoder = "fpn"

    def __init__(self, global_pool: bool = True, return_pyramid: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.global_pool = bool(global_pool)
        self.return_pyramid = bool(return_pyramid)
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool") if self.global_pool else None

    # --- the block protocol (see mtl_tf.models.trunks) ------------------------------------
    def stages(self) -> list[list[keras.layers.Layer]]:
        """The layers of each stage, in order."""
        raise NotImplementedError

    @property
    def widths(self) -> list[int]:
        raise NotImplementedError

    @property
    def strides(self) -> list[int]:
        raise NotImplementedError

    @property
    def pooled(self) -> bool:
        """Whether the trunk ends with global pooling (architectures pool each task's output)."""
        return self.global_pool

    @property
    def pyramid_strides(self) -> list[int]:
        """The stride of each stage's output relative to the input (cumulative)."""
        return [math.prod(self.strides[: i + 1]) for i in range(len(self.strides))]

    def block(self, index: int, name: str) -> keras.layers.Layer:
        raise NotImplementedError

    def split(self, prefix: str) -> list[keras.layers.Layer]:
        """Fresh one-stage trunks without pooling, named ``"<prefix>_<i>"``."""
        return [self.block(i, f"{prefix}_{i}") for i in range(len(self.widths))]

    def pyramid(self, x: keras.KerasTensor) -> Pyramid:
        """Calls the trunk on ``x`` (in the functional graph) and returns every stage's map.

        Stages that keep the resolution (stride 1) are merged into the next one's level: a
        pyramid holds one map per stride, the deepest of that stride.
        """
        if self.built and not self.return_pyramid:
            raise ValueError(f"layer '{self.name}' was already called for its last map; make a fresh "
                             "trunk for a pyramid")
        self.return_pyramid = True
        return pyramid_of(self(x), self.pyramid_strides)

    # --- Keras --------------------------------------------------------------------------
    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"layer '{self.name}': the {type(self).__name__} trunk expects images (batch, "
                             f"height, width, channels); received shape {tuple(input_shape)}. Use the mlp "
                             "trunk for tabular features.")
        shape = tuple(input_shape)
        for stage in self.stages():
            for layer in stage:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x, outputs = inputs, []
        for stage in self.stages():
            for layer in stage:
                x = layer(x, training=training)
            outputs.append(x)
        if self.return_pyramid:
            return outputs
        return self.pool(x) if self.pool is not None else x

    def compute_output_shape(self, input_shape):
        shape, shapes = tuple(input_shape), []
        for stage in self.stages():
            for layer in stage:
                shape = tuple(layer.compute_output_shape(shape))
            shapes.append(shape)
        if self.return_pyramid:
            return shapes
        return (shape[0], shape[-1]) if self.global_pool else shape

    def get_config(self):
        return {**super().get_config(), "global_pool": self.global_pool, "return_pyramid": self.return_pyramid}


def pyramid_of(maps, strides) -> Pyramid:
    """A :class:`Pyramid` of stage outputs, keeping the last map of each stride."""
    kept: dict[int, object] = {}
    for map_, stride in zip(maps, strides):
        kept[stride] = map_
    return Pyramid(list(kept.values()), list(kept))
