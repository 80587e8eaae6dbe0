"""Random augmentation of training batches in tf.data (never in the served model).

:class:`Augmenter` applies a recipe's ``data.augment`` to a decoded batch
``(features, labels, masks)``: the image feature and every dense label (segmentation
masks, depth maps, boxes) go through the same geometric changes; colour changes touch the
image only; image-level labels and the presence masks pass unchanged.

Geometric steps, in this order, each drawn per image:

* ``flip_horizontal`` / ``flip_vertical``: ``keras.layers.RandomFlip`` (one layer per
  direction, so the two are drawn independently), probability 0.5 each.
* ``crop``: a window of ``u * height`` x ``v * width`` (``u``, ``v`` drawn in
  ``[crop, 1]``, apart) at a random place, resized back to the image size. Keras's
  ``RandomCrop`` does something else (one window per batch, output at the crop size) and,
  in Keras 3.15, moves boxes by the wrong axis' offset, so this step is our own: one
  ``keras.ops.image.affine_transform`` per batch, and the boxes shifted and scaled to
  match.
* ``rotation``: ``keras.layers.RandomRotation`` by up to ``rotation`` degrees either way.
* ``scale``: ``keras.layers.RandomZoom`` with the same factor for both axes, drawn so that
  the content is scaled by a factor in ``[low, high]`` (> 1 zooms in). Keras zooms out at
  most 2x, so ``low`` must be at least 0.5.
* ``translate``: ``keras.layers.RandomTranslation`` by up to ``translate`` of the height
  and of the width (drawn apart).

Images are resampled bilinearly; masks and depth maps with nearest neighbour (so a depth
value is never blended across an edge). Pixels a step brings in from outside the image
become 0 in the image, the task's ``ignore_index`` in masks (the masks travel shifted by +1
with fill 0, and 0 becomes the ignore value) and 0 (no depth) in depth maps. Boxes follow
the Keras layers' box transforms (a rotated box becomes the box around its rotated
corners), are clipped to the image, and a box left with no area is dropped: its row
becomes padding ``[0, 0, 0, 0, -1]``, and the kept boxes come first. Labels derived from a
dense label (``class_presence``, ``box_count``) are not recomputed: a crop, zoom, shift or
rotation that pushes a class or box out of the image leaves them as they were.

Colour steps, on the image only (values scaled to [0, 1] for them): ``brightness``
(``RandomBrightness``, adds up to ``brightness`` of the range), ``contrast``
(``RandomContrast``, a factor in ``[1 - c, 1 + c]`` around each channel's mean),
``saturation`` and ``hue`` (``RandomSaturation``, ``RandomHue``; RGB images only).

Randomness is stateless: each batch brings its own seed (the reader draws one per batch
from the dataset seed and reshuffles them each pass), every step folds its index into it,
and every draw of a step gets a seed of its own. The same seed gives the same augmented
batches, however many threads run the map.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf

from mtl_tf.data.parsing import dense_labels, image_features
from mtl_tf.data.spec import DatasetSpec

_VALUE_RANGE = (0.0, 1.0)
_MIN_SCALE = 0.5


class BatchSeeds(keras.random.SeedGenerator):
    """The seeds of one batch: a new seed per draw, folded from the batch's seed.

    Keras preprocessing layers take a ``SeedGenerator`` in ``get_random_transformation``;
    this one holds no state variable (a plain generator in a parallel tf.data map would be
    advanced by threads in any order), so a batch's draws depend only on its seed.

    Args:
        seed: int64 tensor of shape [2].
    """

    def __init__(self, seed: tf.Tensor):  # no super().__init__: it would create a state variable
        self._seed = tf.cast(seed, tf.int64)
        self._draws = 0

    def next(self, ordered: bool = True) -> tf.Tensor:
        self._draws += 1
        return tf.random.experimental.stateless_fold_in(self._seed, self._draws)


class RandomCropResize:
    """A random window of each image (at least ``fraction`` of each side), resized back.

    Follows the protocol of Keras's image preprocessing layers
    (``get_random_transformation``, ``transform_images``, ``transform_segmentation_masks``,
    ``transform_bounding_boxes`` with boxes in absolute ``xyxy``), so :class:`Augmenter`
    runs it like them.
    """

    def __init__(self, fraction: float):
        if not 0 < fraction <= 1:
            raise ValueError(f"crop must be a fraction in (0, 1]; received {fraction!r}")
        self.fraction = float(fraction)

    def get_random_transformation(self, data: dict, training: bool = True, seed: Any = None) -> dict:
        shape = tf.shape(data["images"])
        batch = shape[0]
        draws = [keras.random.uniform([batch], seed=seed) for _ in range(4)]
        sides = [self.fraction + (1.0 - self.fraction) * draw for draw in draws[:2]]  # height, width
        starts = [(1.0 - side) * draw for side, draw in zip(sides, draws[2:])]  # fractions of the image
        return {"sides": sides, "starts": starts, "height": shape[1], "width": shape[2]}

    def _matrix(self, t: dict) -> tf.Tensor:
        # Output pixel centre j + 0.5 shows the input at start * size + side * (j + 0.5); the
        # transform maps output indices to input indices (centres at integers).
        (side_y, side_x), (start_y, start_x) = t["sides"], t["starts"]
        height, width = tf.cast(t["height"], tf.float32), tf.cast(t["width"], tf.float32)
        offset_x = start_x * width + 0.5 * side_x - 0.5
        offset_y = start_y * height + 0.5 * side_y - 0.5
        zeros = tf.zeros_like(side_x)
        return tf.stack([side_x, zeros, offset_x, zeros, side_y, offset_y, zeros, zeros], axis=1)

    def _warp(self, images: tf.Tensor, t: dict, interpolation: str) -> tf.Tensor:
        # The window lies inside the image; "nearest" fill only answers the half-pixel rims.
        return keras.ops.image.affine_transform(tf.cast(images, tf.float32), self._matrix(t),
                                                interpolation=interpolation, fill_mode="nearest")

    def transform_images(self, images: tf.Tensor, transformation: dict, training: bool = True) -> tf.Tensor:
        return self._warp(images, transformation, "bilinear")

    def transform_segmentation_masks(self, masks: tf.Tensor, transformation: dict,
                                     training: bool = True) -> tf.Tensor:
        return self._warp(masks, transformation, "nearest")

    def transform_bounding_boxes(self, boxes: dict, transformation: dict, training: bool = True) -> dict:
        t = transformation
        height, width = tf.cast(t["height"], tf.float32), tf.cast(t["width"], tf.float32)
        (side_y, side_x), (start_y, start_x) = t["sides"], t["starts"]
        origin = tf.stack([start_x * width, start_y * height] * 2, axis=1)[:, None, :]
        scale = tf.stack([side_x, side_y] * 2, axis=1)[:, None, :]
        moved = {"boxes": (boxes["boxes"] - origin) / scale, "labels": boxes["labels"]}
        return keras.utils.bounding_boxes.clip_to_image_size(moved, height=height, width=width,
                                                              bounding_box_format="xyxy")


class Augmenter:
    """``data.augment`` as a tf.data map over decoded batches.

    Create it outside the map (it builds the Keras layers once) and call it inside:
    ``ds.map(lambda batch, seed: augmenter(*batch, seed=seed))``.

    Args:
        augment: the recipe's ``data.augment`` (an ``Augment`` or its mapping).
        spec: the dataset spec: its one image feature is augmented, with every dense label
            of ``tasks`` (types, shapes and ``ignore_index`` from dataset.json).
        tasks: the tasks read (TaskType objects or anything with ``.name``).

    Raises:
        ValueError: no image feature, several, an option the images cannot take
            (saturation or hue on 1-channel images) or a scale below 0.5.
    """

    def __init__(self, augment: Any, spec: DatasetSpec, tasks: Sequence[Any]):
        from mtl_tf.recipe.schema import Augment

        self.augment = augment if isinstance(augment, Augment) else Augment.model_validate(dict(augment))
        images = image_features(spec)
        if len(images) != 1:
            raise ValueError(f"data.augment needs exactly one image feature to augment; dataset '{spec.name}' has "
                             f"{len(images)}{': ' + ', '.join(f.name for f in images) if images else ''}")
        self.image = images[0]
        names = [task.name for task in tasks]
        self.dense = dense_labels(spec, names)
        self.masks = [name for name, d in self.dense.items() if d.kind in ("segmentation", "depth")]
        self.boxes = [name for name, d in self.dense.items() if d.kind == "detection"]
        self.geometric = self._geometric_steps()
        self.colour = self._colour_steps()

    def _geometric_steps(self) -> list[Any]:
        a = self.augment
        fill = {"fill_mode": "constant", "fill_value": 0.0, "interpolation": "bilinear"}
        common = {"bounding_box_format": "xyxy", "dtype": "float32"}
        steps = []
        if a.flip_horizontal:
            steps.append(keras.layers.RandomFlip("horizontal", **common))
        if a.flip_vertical:
            steps.append(keras.layers.RandomFlip("vertical", **common))
        if a.crop is not None and a.crop < 1:
            steps.append(RandomCropResize(a.crop))
        if a.rotation:
            steps.append(keras.layers.RandomRotation(a.rotation / 360.0, **fill, **common))
        if a.scale is not None and tuple(a.scale) != (1.0, 1.0):
            low, high = a.scale
            if low < _MIN_SCALE:
                raise ValueError(f"data.augment.scale: low must be at least {_MIN_SCALE} (Keras's RandomZoom "
                                 f"zooms out at most 2x); received {list(a.scale)}")
            # RandomZoom samples a region (1 + factor) times the image: scale s shows 1 / s of it.
            steps.append(keras.layers.RandomZoom((1.0 / high - 1.0, 1.0 / low - 1.0), None, **fill, **common))
        if a.translate:
            steps.append(keras.layers.RandomTranslation(a.translate, a.translate, **fill, **common))
        return steps

    def _colour_steps(self) -> list[Any]:
        a = self.augment
        common = {"value_range": _VALUE_RANGE, "dtype": "float32"}
        rgb_only = [name for name in ("saturation", "hue") if getattr(a, name)]
        if rgb_only and self.image.image.channels != 3:
            raise ValueError(f"data.augment: {' and '.join(rgb_only)} need RGB images; feature "
                             f"'{self.image.name}' has {self.image.image.channels} channel(s)")
        steps = []
        if a.brightness:
            steps.append(keras.layers.RandomBrightness(a.brightness, **common))
        if a.contrast:
            # A pair: a single number c would draw from [1, 1 + c] only (Keras 3.15).
            steps.append(keras.layers.RandomContrast((a.contrast, a.contrast), **common))
        if a.saturation:
            # RandomSaturation scales saturation by f / (1 - f); these bounds give [1 - s, 1 + s].
            s = a.saturation
            steps.append(keras.layers.RandomSaturation(((1 - s) / (2 - s), (1 + s) / (2 + s)), **common))
        if a.hue:
            # RandomHue shifts by up to half its factor of the circle.
            steps.append(keras.layers.RandomHue(min(1.0, 2 * a.hue), **common))
        return steps

    @property
    def active(self) -> bool:
        """Whether any step changes the batches."""
        return bool(self.geometric or self.colour)

    def __call__(self, features: dict, labels: dict, masks: dict, seed: tf.Tensor) -> tuple[dict, dict, dict]:
        """One augmented batch. ``seed``: int64 tensor of shape [2], the batch's seed."""
        features, labels = dict(features), dict(labels)
        name = self.image.name
        data = self._pack(features[name], labels)
        for index, step in enumerate(self.geometric):
            data = self._apply(step, data, tf.random.experimental.stateless_fold_in(seed, index))
        image = data["images"]
        if self.colour:
            image = image / 255.0
            for index, step in enumerate(self.colour):
                seeds = BatchSeeds(tf.random.experimental.stateless_fold_in(seed, 1000 + index))
                transformation = step.get_random_transformation({"images": image}, training=True, seed=seeds)
                image = step.transform_images(image, transformation, training=True)
            image = image * 255.0
        features[name] = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        labels.update(self._unpack(data, labels))
        return features, labels, masks

    @staticmethod
    def _apply(step: Any, data: dict, seed: tf.Tensor) -> dict:
        transformation = step.get_random_transformation(data, training=True, seed=BatchSeeds(seed))
        out = {"images": step.transform_images(data["images"], transformation, training=True)}
        if "segmentation_masks" in data:
            out["segmentation_masks"] = step.transform_segmentation_masks(data["segmentation_masks"],
                                                                          transformation, training=True)
        if "bounding_boxes" in data:
            out["bounding_boxes"] = step.transform_bounding_boxes(dict(data["bounding_boxes"]), transformation,
                                                                  training=True)
        return out

    def _pack(self, image: tf.Tensor, labels: dict) -> dict:
        """The Keras dict form: images, every mask and depth map as channels of one
        ``segmentation_masks`` tensor (so one draw moves them all), every box in one list."""
        data = {"images": tf.cast(image, tf.float32)}
        if self.masks:
            channels = []
            for task in self.masks:
                value = tf.cast(labels[task], tf.float32)
                channels.append(value + 1.0 if self.dense[task].kind == "segmentation" else value)
            data["segmentation_masks"] = tf.stack(channels, axis=-1)
        if self.boxes:
            size = tf.cast(tf.shape(image)[1:3], tf.float32)
            scale = tf.stack([size[1], size[0], size[1], size[0]])
            boxes = tf.concat([labels[task][..., :4] for task in self.boxes], axis=1) * scale
            classes = tf.concat([labels[task][..., 4] for task in self.boxes], axis=1)
            data["bounding_boxes"] = {"boxes": boxes, "labels": tf.cast(classes, tf.int32)}
        return data

    def _unpack(self, data: dict, labels: dict) -> dict:
        out = {}
        for channel, task in enumerate(self.masks):
            value = data["segmentation_masks"][..., channel]
            dense = self.dense[task]
            if dense.kind == "segmentation":
                ids = tf.cast(tf.round(value), tf.int32)
                out[task] = tf.where(ids > 0, ids - 1, dense.ignore_index)
            else:
                out[task] = tf.cast(value, tf.float32)
        if self.boxes:
            size = tf.cast(tf.shape(data["images"])[1:3], tf.float32)
            scale = tf.stack([size[1], size[0], size[1], size[0]])
            boxes = tf.clip_by_value(tf.cast(data["bounding_boxes"]["boxes"], tf.float32) / scale, 0.0, 1.0)
            classes = tf.cast(data["bounding_boxes"]["labels"], tf.float32)
            start = 0
            for task in self.boxes:
                count = self.dense[task].max_boxes
                out[task] = _compact(boxes[:, start:start + count], classes[:, start:start + count])
                start += count
        return out


def _compact(boxes: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
    """(batch, n, 5) rows with the kept boxes first and dropped ones as [0, 0, 0, 0, -1]."""
    kept = classes >= 0
    rows = tf.concat([tf.where(kept[..., None], boxes, 0.0), tf.where(kept, classes, -1.0)[..., None]], axis=-1)
    order = tf.argsort(tf.cast(tf.logical_not(kept), tf.int32), axis=1, stable=True)
    return tf.gather(rows, order, batch_dims=1)


def as_augmenter(augment: Any, spec: DatasetSpec, tasks: Sequence[Any]) -> Augmenter | None:
    """An :class:`Augmenter` for ``augment`` (an ``Augment``, its mapping or None), or None
    when nothing would change."""
    from mtl_tf.recipe.schema import Augment

    if augment is None:
        return None
    augment = augment if isinstance(augment, Augment) else Augment.model_validate(dict(augment))
    if not augment.active:
        return None
    augmenter = Augmenter(augment, spec, tasks)
    return augmenter if augmenter.active else None
