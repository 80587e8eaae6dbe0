"""The Architecture interface: how the shared and task-specific parts are wired.

An architecture takes the preprocessed features and returns one representation per task;
the task's head goes on top. It builds Keras layers into the functional graph and is not
itself saved: the model's config holds the layers, so a saved model reloads without it.

Naming convention (:mod:`mtl_tf.models.naming`; the training loop relies on it to tell
shared from task-specific variables): a layer that belongs to one task is named
``"<task>_..."`` (``"fraud_tower"``, ``"fraud_gate"``); every other layer is shared and its
name starts with ``"shared_"`` (``"shared_trunk"``, ``"shared_expert_0"``).

Per-task serving: the export builds one sub-model per task from the task's output back to
the inputs, so a task computes only the layers its output depends on. Architectures
therefore keep each task's layers separate (one gate, one tower, one branch per task) rather
than one layer that computes every task at once.

Images (:meth:`Architecture.build_images`): the architecture gives each task a feature
pyramid (:meth:`Architecture.pyramids`: the shared trunk's, or maps of the task's own);
then per task a dense task's decoder (``<task>_decoder_...``, see
:mod:`mtl_tf.models.decoders`) turns it into one map at the task's output stride, and an
image-level task averages the deepest map (``<task>_pool``), joined with the encoded
tabular features if there are any (``<task>_features``), and goes through its tower.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras

from mtl_tf.models.decoders import DECODERS
from mtl_tf.models.naming import shared_name
from mtl_tf.models.pyramid import Pyramid, check_pyramid_sizes
from mtl_tf.models.towers import TOWERS
from mtl_tf.models.trunks import TRUNKS

ComponentSpec = str | Mapping[str, Any]

_BLOCK_PROTOCOL = ("widths", "strides", "spatial", "pooled", "block", "split")


class Architecture:
    """Base class of architectures.

    Args:
        trunk: the trunk spec of the recipe (``"mlp"`` or ``{"name": "mlp", **options}``).
        tower: the tower spec of the recipe, used once per task.

    Subclasses add their own options as keyword arguments and implement :meth:`build`.
    """

    #: The decoder of dense tasks when the recipe names none; None: the trunk's default
    #: (``unet`` for the unet trunk, else ``fpn``).
    default_decoder: str | None = None

    def __init__(self, trunk: ComponentSpec = "mlp", tower: ComponentSpec = "mlp"):
        self.trunk = trunk
        self.tower = tower

    def build(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        """Wires the layers on ``x`` (batch, features) or (batch, H, W, C).

        Args:
            x: the preprocessed features (or images).
            tasks: TaskType objects, in recipe order.

        Returns:
            Task name -> the task's representation, on which its head is built.
        """
        raise NotImplementedError

    def encodes_sequences(self, has_sequences: bool) -> bool:
        """Whether the model builder hands sequence features to :meth:`build_sequences`.

        False by default: sequence features then enter :meth:`build` flattened with the
        rest (normalised values and missing flags, step by step).

        Args:
            has_sequences: the recipe has at least one sequence feature.
        """
        return False

    def build_sequences(self, x: keras.KerasTensor | None,
                        sequences: Mapping[int, tuple[keras.KerasTensor, keras.KerasTensor]],
                        tasks: Sequence[Any]) -> dict[str, keras.KerasTensor]:
        """Wires the layers on the static features ``x`` and the per-step sequence tensors.

        Args:
            x: the preprocessed non-sequence features (batch, width), or None when there are none.
            sequences: length -> ``(steps, presence)`` from
                :func:`mtl_tf.models.preprocessing.sequence_steps`.
            tasks: TaskType objects, in recipe order.

        Returns:
            Task name -> the task's representation.
        """
        raise NotImplementedError(f"architecture {type(self).__name__} has no sequence encoder")

    # --- images ---------------------------------------------------------------------------
    def pyramids(self, x: keras.KerasTensor, tasks: Sequence[Any]) -> dict[str, Pyramid]:
        """Each task's feature pyramid over the normalised image ``x`` (batch, H, W, C).

        Raises:
            ValueError: the architecture does not build image models.
        """
        from mtl_tf.models.architectures import image_architectures

        raise ValueError(f"architecture '{type(self).__name__}' does not build image models (feature maps "
                         f"for dense or image-level tasks); architectures that do: "
                         f"{', '.join(image_architectures())}")

    def build_images(self, x: keras.KerasTensor, tasks: Sequence[Any], decoder: ComponentSpec | None = None,
                     features: keras.KerasTensor | None = None) -> dict[str, keras.KerasTensor]:
        """Wires an image model: pyramids, then a decoder per dense task, pooling and a tower per
        image-level task.

        Args:
            x: the normalised image (batch, H, W, C).
            tasks: TaskType objects (``task.dense``, ``task.output_stride``), in recipe order.
            decoder: the recipe's ``model.decoder``; None for :meth:`decoder_name`'s default.
            features: the encoded tabular features (batch, width), joined to each
                image-level task's pooled vector; None when there are none.

        Returns:
            Task name -> a dense task's (batch, H / stride, W / stride, F) map or an
            image-level task's tower output, on which the task's head is built.
        """
        pyramids = self.pyramids(x, tasks)
        height, width = x.shape[1:3]
        for task in tasks:
            check_pyramid_sizes(pyramids[task.name], height, width, f"task '{task.name}'")
        built = DECODERS.get(decoder if decoder is not None else self.decoder_name(), "model.decoder")
        dense = [task for task in tasks if task.dense]
        maps = self.decode(pyramids, dense, built) if dense else {}
        return {task.name: maps[task.name] if task.dense
                else self.image_level(task.name, pyramids[task.name], features, built) for task in tasks}

    def decoder_name(self) -> str:
        """The decoder dense tasks get when the recipe names none."""
        if self.default_decoder:
            return self.default_decoder
        trunk, _ = TRUNKS.split(self.trunk, "model.trunk")
        return getattr(trunk, "default_decoder", "fpn")

    def decode(self, pyramids: dict[str, Pyramid], tasks: Sequence[Any], decoder) -> dict[str, keras.KerasTensor]:
        """Each dense task's map: its own decoder (``<task>_decoder_...``) at its output stride."""
        return {task.name: decoder.decode(pyramids[task.name], task.output_stride, f"{task.name}_decoder")
                for task in tasks}

    def image_level(self, task_name: str, pyramid: Pyramid, features, decoder) -> keras.KerasTensor:
        """An image-level task's representation: the deepest map averaged, [features], tower."""
        pooled = keras.layers.GlobalAveragePooling2D(name=f"{task_name}_pool")(pyramid.deepest)
        if features is not None:
            pooled = keras.layers.Concatenate(name=f"{task_name}_features")([pooled, features])
        return self.make_tower(task_name)(pooled)

    def make_pyramid(self, x: keras.KerasTensor, name: str = shared_name("trunk")) -> Pyramid:
        """A fresh trunk from the recipe's spec, called on ``x``, as a :class:`Pyramid`."""
        trunk = self.make_trunk(name)
        if not getattr(trunk, "spatial", False) or not hasattr(trunk, "pyramid"):
            raise ValueError(f"model.trunk: image models need an image trunk that gives a feature pyramid "
                             f"({', '.join(image_trunks())}); received {TRUNKS.name_of(type(trunk))}")
        return trunk.pyramid(x)

    def spatial_blocks(self) -> keras.layers.Layer:
        """:meth:`trunk_blocks` for images: an image trunk that splits into blocks."""
        template = self.trunk_blocks()
        if not template.spatial:
            raise ValueError(f"model.trunk: architecture '{type(self).__name__}' on images needs an image trunk "
                             f"that splits into blocks (conv, resnet, unet); received "
                             f"{TRUNKS.name_of(type(template))}")
        return template

    def make_trunk(self, name: str = shared_name("trunk")) -> keras.layers.Layer:
        """A fresh trunk layer built from the recipe's trunk spec."""
        return TRUNKS.get(self.trunk, "model.trunk", name=name)

    def make_tower(self, task_name: str, suffix: str = "tower") -> keras.layers.Layer:
        """A fresh tower layer for one task, named ``"<task>_<suffix>"``."""
        return TOWERS.get(self.tower, "model.tower", name=f"{task_name}_{suffix}")

    def trunk_blocks(self) -> keras.layers.Layer:
        """An unused trunk that describes the blocks (widths, strides) and makes fresh ones.

        Raises:
            ValueError: the trunk cannot be split into blocks.
        """
        trunk = self.make_trunk(shared_name("trunk_template"))
        missing = [attribute for attribute in _BLOCK_PROTOCOL if not hasattr(trunk, attribute)]
        if missing:
            raise ValueError(f"model.trunk: architecture '{type(self).__name__}' routes between tasks "
                             f"after each trunk block, but trunk {type(trunk).__name__} does not "
                             f"describe its blocks (missing {', '.join(missing)}); use mlp, conv, resnet or unet")
        return trunk

    def pool(self, x: keras.KerasTensor, task_name: str, template: keras.layers.Layer) -> keras.KerasTensor:
        """Global average pooling of a task's feature map when the trunk pools, else ``x``."""
        if len(x.shape) == 4 and template.pooled:
            return keras.layers.GlobalAveragePooling2D(name=f"{task_name}_pool")(x)
        return x


def image_trunks() -> list[str]:
    """The registered trunks that give a feature pyramid."""
    return [name for name in TRUNKS.names() if hasattr(TRUNKS.lookup(name), "pyramid")]


def check_count(value: Any, key: str, minimum: int = 1) -> int:
    """An integer option >= ``minimum``, or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}; received {value!r}")
    return value


def check_fraction(value: Any, key: str) -> float:
    """A number in [0, 1], or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{key} must be a number in [0, 1]; received {value!r}")
    return float(value)
