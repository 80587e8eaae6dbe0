"""Images and dense labels in tf.data: their tf.Example rules and the decoding of a parsed batch.

Driven by dataset.json alone (``FeatureSpec.image``; ``TaskSpec`` type, shape and
``ignore_index``), so the training reader and the serving signature read alike.

Reading happens in two steps. Parsing (``tf.io.parse_example``) keeps what is cheap to hold
per row: the encoded bytes of images, masks and depth maps, and the boxes already padded to
``max_boxes`` (they are small), with each label's presence mask. Decoding turns a parsed
batch into the tensors the model and the losses take:

=============  ====================================  =========================================
kind           decoded, per batch                    absent
=============  ====================================  =========================================
image          uint8 (B, H, W, C)                    all 0
segmentation   int32 (B, H, W): class or ignore      every pixel ``ignore_index``; mask 0
depth          float32 (B, H, W), 0 = no depth       all 0; mask 0
detection      float32 (B, max_boxes, 5): x_min,     every row [0, 0, 0, 0, -1]; mask 0 (an
               y_min, x_max, y_max (fractions),      image labelled with no box has mask 1)
               class; padding [0, 0, 0, 0, -1]
=============  ====================================  =========================================

PNG and JPEG bytes decode one row at a time (``tf.map_fn``: TensorFlow's decoders take one
image); depth bytes decode for the whole batch at once (``tf.io.decode_raw``). JPEG decodes
with the accurate integer DCT, which gives exactly what PIL (the Beam side) decodes; the
default fast one is several levels off on sharp edges.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from mtl_tf.data.spec import FeatureSpec, TaskSpec

DENSE_TYPES = ("segmentation", "depth", "detection")


def _decode_jpeg(data: tf.Tensor, channels: int) -> tf.Tensor:
    return tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")


_DECODERS = {"png": tf.io.decode_png, "jpeg": _decode_jpeg}


def image_rule() -> tf.io.FixedLenFeature:
    """The parsing rule of an image feature: one encoded image, ``""`` when absent."""
    return tf.io.FixedLenFeature([], tf.string, default_value="")


def decode_images(encoded: tf.Tensor, feature: FeatureSpec) -> tf.Tensor:
    """Stored images (already height x width) -> uint8 (batch, height, width, channels).

    Args:
        encoded: string (batch,): one encoded image per row (``""``: absent, decoded as 0).
        feature: the image feature's spec; its ``image`` gives the size, channels and encoding.

    Raises:
        tf.errors.InvalidArgumentError (when run): an image of another size or unreadable bytes.
    """
    info = _image_info(feature)
    decode = _DECODERS[info.encoding]
    shape = [info.height, info.width, info.channels]
    blank = tf.zeros(shape, tf.uint8)

    def one(data: tf.Tensor) -> tf.Tensor:
        image = tf.cond(tf.strings.length(data) > 0, lambda: decode(data, channels=info.channels), lambda: blank)
        return tf.ensure_shape(image, shape)

    return _map_rows(one, encoded, tf.TensorSpec(shape, tf.uint8))


def decode_any_images(encoded: tf.Tensor, feature: FeatureSpec) -> tf.Tensor:
    """Images of any size and channels (PNG, JPEG, BMP, GIF's first frame) -> uint8
    (batch, height, width, channels), resized as the feature's ``resize`` says.

    What serving does with a request's images. Channels are converted to the feature's
    (gray -> RGB, RGBA -> RGB dropping alpha, RGB -> gray; JPEG with the accurate DCT, as in
    training);
    an image already at the stored size is not resampled, so it decodes as in training.
    For a feature with ``bit_depth`` 16, a 16-bit PNG is mapped to 8 bits by the feature's
    window first (:func:`window_to_8_bit`), as the image pipeline mapped the training images;
    an 8-bit image is taken as already windowed.
    """
    info = _image_info(feature)
    shape = [info.height, info.width, info.channels]
    blank = tf.zeros(shape, tf.uint8)
    decode_any = _decode_any if info.bit_depth != 16 else lambda data, channels: _decode_windowed(data, channels,
                                                                                                   info.window)

    def one(data: tf.Tensor) -> tf.Tensor:
        def decoded() -> tf.Tensor:
            image = decode_any(data, info.channels)
            return resize_image(tf.ensure_shape(image, [None, None, info.channels]), info.height, info.width,
                                info.resize)

        return tf.ensure_shape(tf.cond(tf.strings.length(data) > 0, decoded, lambda: blank), shape)

    return _map_rows(one, encoded, tf.TensorSpec(shape, tf.uint8))


def _decode_any(data: tf.Tensor, channels: int) -> tf.Tensor:
    """One image of any format -> uint8 (h, w, channels)."""
    is_png = tf.equal(tf.strings.substr(data, 0, 4), b"\x89PNG")

    def other() -> tf.Tensor:  # BMP and GIF decode as stored, then convert
        return _to_channels(tf.io.decode_image(data, channels=0, expand_animations=False), channels)

    return tf.case([(tf.io.is_jpeg(data), lambda: _decode_jpeg(data, channels)),
                    (is_png, lambda: tf.io.decode_png(data, channels=channels))], default=other, exclusive=True)


def _decode_windowed(data: tf.Tensor, channels: int, window: Any) -> tf.Tensor:
    """One image of any format -> uint8 (h, w, channels); a 16-bit PNG through ``window``."""
    is_png = tf.equal(tf.strings.substr(data, 0, 4), b"\x89PNG")
    # A PNG's bit depth is the byte after the IHDR chunk's width and height (offset 24).
    sixteen = tf.logical_and(is_png, tf.equal(tf.strings.substr(data, 24, 1), b"\x10"))
    return tf.cond(sixteen, lambda: window_to_8_bit(tf.io.decode_png(data, channels=channels, dtype=tf.uint16),
                                                    window),
                   lambda: _decode_any(data, channels))


def window_to_8_bit(image: tf.Tensor, window: Any) -> tf.Tensor:
    """An integer image -> uint8 through an intensity window, in float64 as the image
    pipeline does it (:func:`pipelines.images.validation.window_to_8_bit`), so a 16-bit
    request gets the levels its training images got.

    Args:
        image: integer tensor of any shape (one image).
        window: ``{center, width}`` (a mapping or an object with those attributes: values
            ``center - width / 2 .. center + width / 2`` -> 0..255), ``per_image`` (the
            image's min..max; a flat image becomes 0) or ``none`` (0..65535).
    """
    values = tf.cast(image, tf.float64)
    if window == "per_image":
        low = tf.reduce_min(values)
        span = tf.reduce_max(values) - low
    elif window in (None, "none"):
        low, span = tf.constant(0.0, tf.float64), tf.constant(65535.0, tf.float64)
    else:
        center, width = (window["center"], window["width"]) if isinstance(window, dict) else (window.center,
                                                                                               window.width)
        low = tf.constant(float(center) - float(width) / 2.0, tf.float64)
        span = tf.constant(float(width), tf.float64)
    levels = tf.floor(tf.clip_by_value((values - low) / span * 255.0, 0.0, 255.0) + 0.5)
    return tf.where(span > 0, tf.cast(levels, tf.uint8), tf.zeros_like(values, tf.uint8))


def _to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """uint8 (h, w, 1 to 4) -> (h, w, channels): gray repeated, alpha dropped, RGB to gray."""
    count = tf.shape(image)[-1]
    if channels == 3:
        return tf.cond(count < 3, lambda: tf.repeat(image[..., :1], 3, axis=-1), lambda: image[..., :3])
    return tf.cond(count < 3, lambda: image[..., :1], lambda: tf.image.rgb_to_grayscale(image[..., :3]))


def resize_image(image: tf.Tensor, height: int, width: int, mode: str) -> tf.Tensor:
    """One uint8 (h, w, c) image -> uint8 (height, width, c), as Beam stores images.

    ``stretch``: bilinear to the size. ``pad``: scaled by ``min(height / h, width / w)`` to
    ``round(h * s) x round(w * s)`` (at least 1), then padded with 0 on every side
    (``(height - h') // 2`` above and left, the rest below and right). ``crop``: scaled by
    ``max(height / h, width / w)``, then the centre ``height x width`` kept (offsets
    ``(h' - height) // 2``, ``(w' - width) // 2``). Resampling is bilinear with antialiasing
    when shrinking (as PIL's bilinear filter); values are rounded to the nearest integer.
    An image already ``height x width`` comes back unchanged.
    """
    if mode not in ("stretch", "pad", "crop"):
        raise ValueError(f"resize must be one of stretch, pad, crop; received {mode!r}")
    size = tf.shape(image)[:2]

    def resized() -> tf.Tensor:
        if mode == "stretch":
            return _bilinear(image, tf.constant([height, width]))
        h, w = tf.cast(size[0], tf.float64), tf.cast(size[1], tf.float64)
        ratios = tf.stack([height / h, width / w])
        scale = tf.reduce_min(ratios) if mode == "pad" else tf.reduce_max(ratios)
        scaled = tf.maximum(tf.cast(tf.round(tf.stack([h, w]) * scale), tf.int32), 1)
        if mode == "pad":
            scaled = tf.minimum(scaled, [height, width])
            top, left = (height - scaled[0]) // 2, (width - scaled[1]) // 2
            return tf.image.pad_to_bounding_box(_bilinear(image, scaled), top, left, height, width)
        scaled = tf.maximum(scaled, [height, width])
        top, left = (scaled[0] - height) // 2, (scaled[1] - width) // 2
        return tf.image.crop_to_bounding_box(_bilinear(image, scaled), top, left, height, width)

    same = tf.reduce_all(tf.equal(size, [height, width]))
    return tf.cond(same, lambda: tf.identity(image), resized)


def _bilinear(image: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    out = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)


def _image_info(feature: FeatureSpec):
    if feature.kind != "image" or feature.image is None:
        raise ValueError(f"feature '{feature.name}' is not an image feature; received kind {feature.kind!r}")
    return feature.image


def _map_rows(fn, values: tf.Tensor, signature: tf.TensorSpec) -> tf.Tensor:
    # parallel_iterations lets the loop decode several rows of a batch at once (in a graph;
    # called eagerly, as the export check does, the rows go one by one).
    parallel = None if tf.executing_eagerly() else 16
    return tf.map_fn(fn, values, fn_output_signature=signature, parallel_iterations=parallel)


# --- dense labels ------------------------------------------------------------------------

class DenseLabel:
    """How one dense task's label is read: its tf.Example rules, what parsing keeps per row,
    and the decoding of a parsed batch into the reader's form.

    Args:
        task: the task's spec from dataset.json (type, label_key, shape, ignore_index).
    """

    kind = ""

    def __init__(self, task: TaskSpec):
        self.task = task
        self.key = task.label_key
        self.shape = list(task.shape)
        self._check_shape()

    def _check_shape(self) -> None:
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise ValueError(f"task '{self.task.name}' ({self.kind}): dataset.json shape must be "
                             f"{self._shape_doc}; received {self.task.shape}")

    _shape_doc = "[height, width]"

    def rules(self) -> dict[str, Any]:
        """tf.Example key -> parsing rule."""
        return {self.key: tf.io.FixedLenFeature([], tf.string, default_value="")}

    def parse(self, parsed: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """(what a batch keeps until decoding, the presence mask float32 (batch,))."""
        raw = parsed[self.key]
        return raw, tf.cast(tf.strings.length(raw) > 0, tf.float32)

    def decode(self, kept: tf.Tensor) -> tf.Tensor:
        """The kept form of a batch -> the label tensor the task receives."""
        raise NotImplementedError

    @property
    def decoded_bytes(self) -> int:
        """Bytes of one row's decoded label (and its mask)."""
        return self.shape[0] * self.shape[1] * 4 + 4


class SegmentationLabel(DenseLabel):
    """A 1-channel 8-bit PNG of class indices -> int32 (batch, height, width)."""

    kind = "segmentation"

    def __init__(self, task: TaskSpec):
        super().__init__(task)
        if task.ignore_index is None:
            raise ValueError(f"task '{task.name}' (segmentation): dataset.json needs ignore_index; received none")
        self.ignore_index = int(task.ignore_index)

    def decode(self, kept: tf.Tensor) -> tf.Tensor:
        shape = [*self.shape, 1]
        unlabelled = tf.fill(shape, tf.constant(self.ignore_index, tf.uint8))

        def one(data: tf.Tensor) -> tf.Tensor:
            mask = tf.cond(tf.strings.length(data) > 0, lambda: tf.io.decode_png(data, channels=1),
                           lambda: unlabelled)
            return tf.ensure_shape(mask, shape)

        masks = _map_rows(one, kept, tf.TensorSpec(shape, tf.uint8))
        return tf.cast(masks[..., 0], tf.int32)


class DepthLabel(DenseLabel):
    """height x width float16 values, little-endian, row-major -> float32 (batch, height, width)."""

    kind = "depth"

    def decode(self, kept: tf.Tensor) -> tf.Tensor:
        height, width = self.shape
        zeros = tf.constant(bytes(height * width * 2))
        filled = tf.where(tf.strings.length(kept) > 0, kept, zeros)
        values = tf.io.decode_raw(filled, tf.float16, little_endian=True)
        return tf.reshape(tf.cast(values, tf.float32), [-1, height, width])


class DetectionLabel(DenseLabel):
    """``<key>/boxes``, ``<key>/classes``, ``<key>/labelled`` -> float32 (batch, max_boxes, 5).

    Boxes are padded (or, beyond ``max_boxes``, cut) when parsed, so a batch keeps its
    decoded form; decoding is the identity.
    """

    kind = "detection"
    _shape_doc = "[max_boxes, 5]"

    def _check_shape(self) -> None:
        if len(self.shape) != 2 or self.shape[1] != 5 or self.shape[0] < 1:
            raise ValueError(f"task '{self.task.name}' (detection): dataset.json shape must be "
                             f"{self._shape_doc}; received {self.task.shape}")

    @property
    def max_boxes(self) -> int:
        return self.shape[0]

    def rules(self) -> dict[str, Any]:
        return {f"{self.key}/boxes": tf.io.RaggedFeature(tf.float32),
                f"{self.key}/classes": tf.io.RaggedFeature(tf.int64),
                f"{self.key}/labelled": tf.io.FixedLenFeature([], tf.int64, default_value=0)}

    def parse(self, parsed: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        flat = parsed[f"{self.key}/boxes"]
        rows = tf.shape(flat.row_lengths())[0]
        boxes = tf.RaggedTensor.from_row_lengths(tf.reshape(flat.flat_values, [-1, 4]), flat.row_lengths() // 4)
        boxes = boxes.to_tensor(0.0, shape=[None, self.max_boxes, 4])
        classes = parsed[f"{self.key}/classes"].to_tensor(-1, shape=[None, self.max_boxes])
        label = tf.concat([boxes, tf.cast(classes, tf.float32)[..., None]], axis=-1)
        labelled = parsed[f"{self.key}/labelled"] > 0
        padding = tf.tile(tf.constant([[[0.0, 0.0, 0.0, 0.0, -1.0]]]), [rows, self.max_boxes, 1])
        label = tf.where(labelled[:, None, None], label, padding)
        return tf.ensure_shape(label, [None, self.max_boxes, 5]), tf.cast(labelled, tf.float32)

    def decode(self, kept: tf.Tensor) -> tf.Tensor:
        return kept

    @property
    def decoded_bytes(self) -> int:
        return self.max_boxes * 5 * 4 + 4


DENSE_LABELS: dict[str, type[DenseLabel]] = {"segmentation": SegmentationLabel, "depth": DepthLabel,
                                             "detection": DetectionLabel}


def dense_label(task: TaskSpec) -> DenseLabel:
    """The reading of a dense task's label (``task.type`` one of segmentation, depth, detection)."""
    if task.type not in DENSE_LABELS:
        raise ValueError(f"task '{task.name}' is not dense; received type {task.type!r}; dense types: "
                         f"{', '.join(DENSE_TYPES)}")
    return DENSE_LABELS[task.type](task)
