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
  in Keras 3.15, moves boxes by the wrong axis' offset, so this step is our own
  (:class:`RandomCropResize`), with the boxes shifted and scaled to match.
* ``rotation``: ``keras.layers.RandomRotation`` by up to ``rotation`` degrees either way.
* ``scale``: ``keras.layers.RandomZoom`` with the same factor for both axes, drawn so that
  the content is scaled by a factor in ``[low, high]`` (> 1 zooms in). Keras zooms out at
  most 2x, so ``low`` must be at least 0.5.
* ``translate``: ``keras.layers.RandomTranslation`` by up to ``translate`` of the height
  and of the width (drawn apart).

The layers draw each step's transformation (per image) and move the boxes, step after
step. Images and masks are resampled once, through the composition of the steps' pixel
maps (each the map the layer's own ``transform_images`` resamples with; a test holds them
equal): images bilinearly, masks and depth maps with nearest neighbour (so a depth value is
never blended across an edge). Resampling once keeps every mask within half a pixel of the
image whatever the number of steps (a chain of nearest-neighbour resamplings drifts by up
to half a pixel per step), blurs the image once and costs one resampling. Without a
rotation the map is axis-aligned and goes through ``tf.image.crop_and_resize``, otherwise
through ``ImageProjectiveTransformV3`` (the op of Keras's layers). A pixel is kept when its
position, followed back through the steps, stays inside the image after each of them (as
resampling step by step would keep it); the others are brought in from outside and
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

    Has the parts of Keras's image preprocessing layers that :class:`Augmenter` uses:
    ``get_random_transformation`` and ``transform_bounding_boxes`` (boxes in absolute
    ``xyxy``), plus :meth:`matrix`, its output -> input pixel map.
    """

    def __init__(self, fraction: float):
        if not 0 < fraction <= 1:
            raise ValueError(f"crop must be a fraction in (0, 1]; received {fraction!r}")
        self.fraction = float(fraction)

    def get_random_transformation(self, data: dict, training: bool = True, seed: Any = None) -> dict:
        shape = tf.shape(data["images"])
        draws = [keras.random.uniform([shape[0]], seed=seed) for _ in range(4)]
        sides = [self.fraction + (1.0 - self.fraction) * draw for draw in draws[:2]]  # height, width
        starts = [(1.0 - side) * draw for side, draw in zip(sides, draws[2:])]  # fractions of the image
        return {"sides": sides, "starts": starts, "height": shape[1], "width": shape[2]}

    def matrix(self, t: dict, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
        # Output pixel centre j + 0.5 shows the input at start * size + side * (j + 0.5);
        # in pixel indices (centres at integers) x_in = side * x_out + offset.
        (side_y, side_x), (start_y, start_x) = t["sides"], t["starts"]
        return _affine(side_x, start_x * width + 0.5 * side_x - 0.5, side_y, start_y * height + 0.5 * side_y - 0.5)

    def transform_bounding_boxes(self, boxes: dict, transformation: dict, training: bool = True) -> dict:
        t = transformation
        height, width = tf.cast(t["height"], tf.float32), tf.cast(t["width"], tf.float32)
        (side_y, side_x), (start_y, start_x) = t["sides"], t["starts"]
        origin = tf.stack([start_x * width, start_y * height] * 2, axis=1)[:, None, :]
        scale = tf.stack([side_x, side_y] * 2, axis=1)[:, None, :]
        moved = {"boxes": (boxes["boxes"] - origin) / scale, "labels": boxes["labels"]}
        return keras.utils.bounding_boxes.clip_to_image_size(moved, height=height, width=width,
                                                              bounding_box_format="xyxy")


def _affine(scale_x: tf.Tensor, shift_x: tf.Tensor, scale_y: tf.Tensor, shift_y: tf.Tensor) -> tf.Tensor:
    """(batch, 3, 3) maps x_in = scale_x * x_out + shift_x, y_in = scale_y * y_out + shift_y."""
    zeros, ones = tf.zeros_like(scale_x), tf.ones_like(scale_x)
    rows = [scale_x, zeros, shift_x, zeros, scale_y, shift_y, zeros, zeros, ones]
    return tf.reshape(tf.stack(rows, axis=1), [-1, 3, 3])


def _from_keras(transform: tf.Tensor) -> tf.Tensor:
    """Keras's (batch, 8) projective transform -> (batch, 3, 3)."""
    transform = tf.cast(transform, tf.float32)
    return tf.reshape(tf.concat([transform, tf.ones_like(transform[:, :1])], axis=1), [-1, 3, 3])


def _to_keras(matrix: tf.Tensor) -> tf.Tensor:
    return tf.reshape(matrix, [-1, 9])[:, :8]


class GeometricStep:
    """One geometric step: its layer draws the transformation and moves the boxes, and
    ``matrix`` gives the output -> input pixel map the layer would resample images with.

    The maps of every step are composed so that images and masks are resampled once (a
    chain of nearest-neighbour resamplings would let masks drift by up to half a pixel per
    step from the bilinearly resampled image); tests check that each map resamples exactly
    as its layer's ``transform_images`` does.
    """

    def __init__(self, layer: Any, matrix, axis_aligned: bool = True, keeps_inside: bool = False):
        self.layer = layer
        self.matrix = matrix
        self.axis_aligned = axis_aligned  # maps x and y apart (no rotation)
        self.keeps_inside = keeps_inside  # never sends a pixel of the image outside it (flip, crop)

    def draw(self, data: dict, seed: tf.Tensor) -> Any:
        return self.layer.get_random_transformation(data, training=True, seed=BatchSeeds(seed))

    def boxes(self, boxes: dict, transformation: Any) -> dict:
        return self.layer.transform_bounding_boxes(dict(boxes), transformation, training=True)


def _flip_matrix(horizontal: bool):
    def matrix(t: dict, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
        flips = tf.reshape(tf.cast(t["flips"], tf.float32), [-1])
        sign = 1.0 - 2.0 * flips
        ones, zeros = tf.ones_like(sign), tf.zeros_like(sign)
        if horizontal:
            return _affine(sign, flips * (width - 1.0), ones, zeros)
        return _affine(ones, zeros, sign, flips * (height - 1.0))

    return matrix


def _rotation_matrix(t: dict, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    return _from_keras(t["rotation_matrix"])


def _zoom_matrix(t: dict, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    zoom_x, zoom_y = tf.cast(t["width_zoom"][:, 0], tf.float32), tf.cast(t["height_zoom"][:, 0], tf.float32)
    return _affine(zoom_x, (width - 1.0) / 2.0 * (1.0 - zoom_x), zoom_y, (height - 1.0) / 2.0 * (1.0 - zoom_y))


def _translation_matrix(t: dict, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    shift = tf.cast(t["translations"], tf.float32)
    ones = tf.ones_like(shift[:, 0])
    return _affine(ones, -shift[:, 0], ones, -shift[:, 1])


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

    def _geometric_steps(self) -> list[GeometricStep]:
        a = self.augment
        # fill and interpolation only matter to the layers' own resampling, which is not used
        fill = {"fill_mode": "constant", "fill_value": 0.0, "interpolation": "bilinear"}
        common = {"bounding_box_format": "xyxy", "dtype": "float32"}
        steps = []
        if a.flip_horizontal:
            steps.append(GeometricStep(keras.layers.RandomFlip("horizontal", **common), _flip_matrix(True),
                                       keeps_inside=True))
        if a.flip_vertical:
            steps.append(GeometricStep(keras.layers.RandomFlip("vertical", **common), _flip_matrix(False),
                                       keeps_inside=True))
        if a.crop is not None and a.crop < 1:
            crop = RandomCropResize(a.crop)
            steps.append(GeometricStep(crop, crop.matrix, keeps_inside=True))
        if a.rotation:
            steps.append(GeometricStep(keras.layers.RandomRotation(a.rotation / 360.0, **fill, **common),
                                       _rotation_matrix, axis_aligned=False))
        if a.scale is not None and tuple(a.scale) != (1.0, 1.0):
            low, high = a.scale
            if low < _MIN_SCALE:
                raise ValueError(f"data.augment.scale: low must be at least {_MIN_SCALE} (Keras's RandomZoom "
                                 f"zooms out at most 2x); received {list(a.scale)}")
            # RandomZoom samples a region (1 + factor) times the image: scale s shows 1 / s of it.
            zoom = keras.layers.RandomZoom((1.0 / high - 1.0, 1.0 / low - 1.0), None, **fill, **common)
            steps.append(GeometricStep(zoom, _zoom_matrix))
        if a.translate:
            steps.append(GeometricStep(keras.layers.RandomTranslation(a.translate, a.translate, **fill, **common),
                                       _translation_matrix))
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
        if self.geometric:  # the labels move with the image
            data = self._geometry(self._pack(features[name], labels), seed)
            labels.update(self._unpack(data, labels))
            image = data["images"]
        else:
            image = tf.cast(features[name], tf.float32)
        if self.colour:
            image = image / 255.0
            for index, step in enumerate(self.colour):
                seeds = BatchSeeds(tf.random.experimental.stateless_fold_in(seed, 1000 + index))
                transformation = step.get_random_transformation({"images": image}, training=True, seed=seeds)
                image = step.transform_images(image, transformation, training=True)
            image = image * 255.0
        features[name] = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        return features, labels, masks

    def _geometry(self, data: dict, seed: tf.Tensor) -> dict:
        """Every geometric step drawn; boxes moved step by step by the layers, images and
        masks resampled once through the composed pixel map (0 where it leaves the image,
        or where any step in between pushed the pixel out, as resampling step by step would)."""
        shape = tf.shape(data["images"])
        height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
        out, matrices = dict(data), []
        for index, step in enumerate(self.geometric):
            transformation = step.draw(data, tf.random.experimental.stateless_fold_in(seed, index))
            matrices.append(step.matrix(transformation, height, width))
            if "bounding_boxes" in out:
                out["bounding_boxes"] = step.boxes(out["bounding_boxes"], transformation)
        # a step's map sends its output pixels to its input: the first step's map goes leftmost
        composed = matrices[0]
        for matrix in matrices[1:]:
            composed = composed @ matrix
        aligned = all(step.axis_aligned for step in self.geometric)
        kept = _kept_pixels(matrices, self.geometric, shape[1], shape[2])
        out["images"] = _resample(data["images"], composed, "bilinear", kept, aligned)
        if "segmentation_masks" in data:
            out["segmentation_masks"] = _resample(data["segmentation_masks"], composed, "nearest", kept, aligned)
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


def _kept_pixels(matrices: list[tf.Tensor], steps: list[GeometricStep], height: tf.Tensor,
                 width: tf.Tensor) -> tf.Tensor | None:
    """(batch, height, width, 1) bool: output pixels whose position stays inside the image
    after every step, as resampling step by step with nearest neighbour would keep them
    (the pixel read, the position rounded, lies in the image); None when no step can send
    a pixel out (flips and crops only)."""
    if all(step.keeps_inside for step in steps):
        return None
    ys, xs = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
    xs, ys = tf.cast(tf.reshape(xs, [-1]), tf.float32), tf.cast(tf.reshape(ys, [-1]), tf.float32)
    points = tf.tile(tf.stack([xs, ys, tf.ones_like(xs)], axis=1)[None], [tf.shape(matrices[0])[0], 1, 1])
    kept = tf.ones(tf.shape(points)[:2], tf.bool)
    w, h = tf.cast(width, tf.float32), tf.cast(height, tf.float32)
    for matrix, step in zip(reversed(matrices), reversed(steps)):
        points = points @ tf.transpose(matrix, [0, 2, 1])
        if not step.keeps_inside:
            x, y = points[..., 0], points[..., 1]
            kept &= (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)
    return tf.reshape(kept, [-1, height, width, 1])


def _resample(images: tf.Tensor, matrix: tf.Tensor, interpolation: str, kept: tf.Tensor | None,
              axis_aligned: bool) -> tf.Tensor:
    """``images`` resampled through the (batch, 3, 3) output -> input map; 0 outside ``kept``.

    The input gets a one-pixel border repeating its edge, so a position within half a pixel
    of the edge (a crop's rim, or the last kept pixel of a zoom-out) reads the edge pixel
    rather than blending in black; what lies outside is then cut by ``kept``, the same for
    the image and the masks. A map without rotation goes through ``tf.image.crop_and_resize``
    (about 3x faster on CPU than a projective transform; a flip is a box the wrong way
    round), others through ``ImageProjectiveTransformV3``, the op Keras's layers use.
    """
    shape = tf.shape(images)
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    shift = tf.constant([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    matrix = shift[None] @ matrix  # into the bordered image's pixel indices
    if axis_aligned:
        height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
        a, b, c, d = matrix[:, 0, 0], matrix[:, 0, 2], matrix[:, 1, 1], matrix[:, 1, 2]
        # output pixels 0 and size - 1 sample the box's corners, in fractions of (padded size - 1)
        boxes = tf.stack([d / (height + 1.0), b / (width + 1.0), (c * (height - 1.0) + d) / (height + 1.0),
                          (a * (width - 1.0) + b) / (width + 1.0)], axis=1)
        out = tf.image.crop_and_resize(padded, boxes, tf.range(shape[0]), shape[1:3], method=interpolation,
                                       extrapolation_value=0.0)
    else:
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=padded, transforms=_to_keras(matrix), output_shape=shape[1:3], fill_value=0.0,
            interpolation=interpolation.upper(), fill_mode="CONSTANT")
    return out if kept is None else tf.where(kept, out, 0.0)


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
