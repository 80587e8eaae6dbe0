"""Decoding and checking one image, mask, depth map or box list, with PIL and NumPy.

Each function returns a NumPy array in the source image's pixels or raises
:class:`~pipelines.images.items.ItemRejected` with the reason kind and a one-line reason:

- images: the file exists, is not empty, decodes (a truncated or corrupt file does not), has
  at most :data:`MAX_PIXELS` pixels (decompression bombs: checked from the header, before
  the pixels are decoded), is 8-bit, and has the feature's channels or converts to them
  without changing what it shows (RGBA -> RGB and LA -> L drop the alpha channel, gray ->
  RGB repeats it, palette and CMYK images become RGB, an RGB image whose three channels are
  equal is gray). 16-bit images (16-bit PNGs, integer arrays wider than 8 bits) are
  rejected (``not_8_bit``) unless the feature's ``bit_depth`` is 16; then they are mapped
  to 8 bits by its window (:func:`window_to_8_bit`). Float images are always rejected;
- masks: one channel of integer class indices (an indexed or grayscale PNG, a ``.npy``
  array or an npz array); an RGB mask is accepted only when its channels are equal;
- depth: a 16-bit (or 8-bit) PNG, whose values are divided by ``depth_scale``, or a float
  ``.npy`` / npz array of depths as they are; finite, non-negative (0 = no depth) and within
  float16's range (the tf.Example stores float16);
- boxes: ``[[x_min, y_min, x_max, y_max, class], ...]`` (4 values: class 0), the class a
  name or an index, in source pixels or fractions (``box_units``); inside the image within
  :data:`BOX_TOLERANCE` pixels (sub-pixel overshoot is clipped), of positive size, of a
  known class and at most ``max_boxes`` of them. npz arrays are padded with rows of -1.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from pipelines.images.items import ItemRejected

MAX_PIXELS = 1 << 26  # 67 million: an 8192 x 8192 image
BOX_TOLERANCE = 1.0  # source pixels a box may overshoot the image by (then clipped)
FLOAT16_MAX = 65504.0
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_HIGH_BIT_MODES = (*_SIXTEEN_BIT_MODES, "F")
_SHOWN = 5  # offending values quoted in a reason


def resolve(path: str, base: str = "") -> str:
    """``path`` as read: remote paths and absolute paths as they are, others under ``base``."""
    path = str(path).strip()
    if "://" in path or os.path.isabs(path) or not base:
        return path
    return os.path.join(base, path)


def _file(path: str, what: str):
    """The bytes of a file, as a seekable binary file object; rejects a missing or empty file."""
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems

        if not FileSystems.exists(path):
            raise ItemRejected("file_not_found", f"{what} file not found: {path}")
        with FileSystems.open(path) as handle:
            data = handle.read()
        handle = io.BytesIO(data)
    else:
        if not os.path.isfile(path):
            raise ItemRejected("file_not_found", f"{what} file not found: {path}")
        handle = open(path, "rb")
    handle.seek(0, os.SEEK_END)
    if handle.tell() == 0:
        handle.close()
        raise ItemRejected("unreadable_image" if what == "image" else "unreadable_label",
                           f"{what} file is empty: {path}")
    handle.seek(0)
    return handle


@contextlib.contextmanager
def open_image(path: str, what: str = "image", max_pixels: int = MAX_PIXELS) -> Iterator[Any]:
    """A decoded PIL image of the file at ``path``; rejects a missing, empty, corrupt,
    truncated or too large file (``what`` names the file in the reason: image, mask, depth)."""
    from PIL import Image, UnidentifiedImageError

    unreadable = "unreadable_image" if what == "image" else "unreadable_label"
    with _file(path, what) as handle:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(handle)
        except Image.DecompressionBombError as err:
            raise ItemRejected("image_too_large", f"{what} {path}: {err}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise ItemRejected(unreadable, f"{what} {path} does not decode: {err}") from None
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise ItemRejected("image_too_large", f"{what} {path} is {width} x {height} = {width * height} "
                                   f"pixels; at most {max_pixels} are read (decompression bomb guard)")
            try:
                image.load()
            except (OSError, SyntaxError, ValueError, EOFError) as err:
                raise ItemRejected(unreadable, f"{what} {path} does not decode (corrupt or truncated): "
                                   f"{err}") from None
            yield image


def decode_image(source: Any, channels: int, base: str = "", max_pixels: int = MAX_PIXELS, bit_depth: int = 8,
                 window: Any = "none") -> np.ndarray:
    """An image file (path) or array -> uint8 (height, width, channels).

    Args:
        source: a path (absolute, or relative to ``base``) or an array.
        channels: the feature's channels.
        base: the folder relative paths are read from.
        max_pixels: larger images are rejected.
        bit_depth: 16 accepts 16-bit images and maps them to 8 bits by ``window``; 8
            rejects them (``not_8_bit``).
        window: ``{center, width}`` (or an object with those attributes), ``per_image`` or
            ``none`` (see :func:`window_to_8_bit`).

    Raises:
        ItemRejected: see the module docstring for the checks.
    """
    if isinstance(source, np.ndarray):
        if bit_depth == 16 and source.dtype.kind in "ui" and source.dtype.itemsize > 1:
            return image_array(window_to_8_bit(source, window), channels, "image array")
        return image_array(source, channels, "image array")
    path = resolve(source, base)
    with open_image(path, "image", max_pixels) as image:
        if image.mode in _SIXTEEN_BIT_MODES and bit_depth == 16:
            return image_array(window_to_8_bit(np.asarray(image), window), channels, f"image {path}")
        if image.mode in _HIGH_BIT_MODES:
            hint = ("float images are not read" if image.mode == "F"
                    else "set the feature's bit_depth: 16 (with a window) to read 16-bit images")
            raise ItemRejected("not_8_bit", f"image {path} is {image.mode} (16-bit or float); {hint}")
        if image.mode == "1":
            image = image.convert("L")
        elif image.mode in ("P", "PA"):
            image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
        elif image.mode in ("CMYK", "YCbCr"):
            image = image.convert("RGB")
        elif image.mode not in ("L", "LA", "RGB", "RGBA"):
            raise ItemRejected("wrong_channels", f"image {path} has mode {image.mode}; allowed: 1, L, LA, P, RGB, "
                               "RGBA, CMYK, YCbCr")
        return image_array(np.asarray(image), channels, f"image {path}")


def window_to_8_bit(array: np.ndarray, window: Any) -> np.ndarray:
    """A 16-bit (or any integer) image -> uint8, as the served model's graph does it too
    (:func:`mtl_tf.data.images.window_to_8_bit`), in float64 so both give the same levels.

    ``window``: ``{center, width}`` maps ``center - width / 2 .. center + width / 2`` onto
    0..255; ``per_image`` maps the image's own min..max (a flat image becomes 0); ``none``
    maps 0..65535 (``value / 257``). Values outside are clipped; levels are rounded half up:
    ``floor(clip((v - low) / (high - low) * 255, 0, 255) + 0.5)``.
    """
    values = array.astype(np.float64)
    low, span = window_bounds(values, window)
    if span <= 0:
        return np.zeros(array.shape, np.uint8)
    return np.floor(np.clip((values - low) / span * 255.0, 0.0, 255.0) + 0.5).astype(np.uint8)


def window_bounds(values: np.ndarray, window: Any) -> tuple[float, float]:
    """``(low, high - low)`` of a window over ``values``."""
    if window == "per_image":
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        return low, high - low
    if window in (None, "none"):
        return 0.0, 65535.0
    center, width = (window["center"], window["width"]) if isinstance(window, dict) else (window.center,
                                                                                           window.width)
    return float(center) - float(width) / 2.0, float(width)


def image_array(array: np.ndarray, channels: int, what: str) -> np.ndarray:
    """An (h, w), (h, w, 1..4) integer array -> uint8 (h, w, channels), or a reject."""
    if array.dtype.kind == "f" or array.dtype.kind not in "uib":
        raise ItemRejected("not_8_bit", f"{what} holds {array.dtype} values; images hold integers (8-bit, or 16-bit "
                           "with the feature's bit_depth: 16)")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or 0 in array.shape:
        raise ItemRejected("wrong_channels", f"{what} has shape {list(array.shape)}; allowed: (height, width) or "
                           "(height, width, 1 to 4 channels)")
    if array.dtype != np.uint8:
        low, high = (int(array.min()), int(array.max()))
        if low < 0 or high > 255:
            raise ItemRejected("not_8_bit", f"{what} holds values {low}..{high} ({array.dtype}); 8-bit images "
                               "hold 0..255 (set the feature's bit_depth: 16, with a window, for wider ones)")
        array = array.astype(np.uint8)
    if array.shape[2] in (2, 4):  # drop the alpha channel
        array = array[:, :, :-1]
    have = array.shape[2]
    if have == channels:
        return np.ascontiguousarray(array)
    if channels == 3:
        return np.repeat(array, 3, axis=2)
    if (array[:, :, 0:1] == array).all():
        return np.ascontiguousarray(array[:, :, :1])
    raise ItemRejected("wrong_channels", f"{what} is a colour image (3 channels that differ); the feature takes "
                       "1 channel")


def decode_mask(source: Any, base: str = "", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A mask file (indexed or grayscale PNG, ``.npy``) or array -> int64 (height, width) class indices."""
    if isinstance(source, np.ndarray):
        return _class_indices(source, "mask array")
    path = resolve(source, base)
    if path.lower().endswith(".npy"):
        return _class_indices(_load_npy(path, "mask"), f"mask {path}")
    with open_image(path, "mask", max_pixels) as image:
        return _class_indices(np.asarray(image), f"mask {path} ({image.mode})")


def _load_npy(path: str, what: str) -> np.ndarray:
    with _file(path, what) as handle:
        try:
            return np.load(handle, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ItemRejected("unreadable_label", f"{what} {path} is not a readable .npy array: {err}") from None


def _class_indices(array: np.ndarray, what: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] >= 1:
        if not (array[:, :, 0:1] == array).all():
            raise ItemRejected("mask_not_class_indices", f"{what} has {array.shape[2]} channels that differ; a "
                               "mask holds one class index per pixel (an indexed or grayscale image)")
        array = array[:, :, 0]
    if array.ndim != 2 or 0 in array.shape:
        raise ItemRejected("mask_not_class_indices", f"{what} has shape {list(array.shape)}; allowed: (height, width)")
    if array.dtype.kind == "b":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or (array != np.round(array)).any():
            raise ItemRejected("mask_not_class_indices", f"{what} holds non-integer values; a mask holds class "
                               "indices")
    elif array.dtype.kind not in "ui":
        raise ItemRejected("mask_not_class_indices", f"{what} holds {array.dtype} values; a mask holds class indices")
    return array.astype(np.int64)


def check_mask_values(mask: np.ndarray, classes: int | None, ignore: int, column: str) -> None:
    """Every value is a class index below ``classes`` or ``ignore``; ``classes`` None: any of 0..255."""
    high = 256 if classes is None else classes
    bad = (mask < 0) | ((mask >= high) & (mask != ignore))
    if bad.any():
        values = np.unique(mask[bad])
        shown = ", ".join(str(v) for v in values[:_SHOWN]) + (", ..." if len(values) > _SHOWN else "")
        allowed = f"0..{high - 1} or the ignore value {ignore}"
        raise ItemRejected("mask_class_out_of_range", f"mask '{column}' holds values {shown} outside the classes; "
                           f"allowed: {allowed}")


def decode_depth(source: Any, depth_scale: float, base: str = "", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A depth file or array -> float32 (height, width) depths, 0 = no depth.

    Image files (16-bit PNG) are divided by ``depth_scale``; ``.npy`` and npz arrays are
    depths as they are.
    """
    if isinstance(source, np.ndarray):
        return _depths(source, "depth array")
    path = resolve(source, base)
    if path.lower().endswith(".npy"):
        return _depths(_load_npy(path, "depth"), f"depth {path}")
    with open_image(path, "depth", max_pixels) as image:
        if image.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F", "L"):
            raise ItemRejected("unreadable_label", f"depth {path} has mode {image.mode}; allowed: a one-channel "
                               "16-bit (or 8-bit) PNG")
        values = np.asarray(image).astype(np.float64) / depth_scale
    return _depths(values, f"depth {path}")


def _depths(array: np.ndarray, what: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2 or 0 in array.shape or array.dtype.kind not in "uif":
        raise ItemRejected("unreadable_label", f"{what} has shape {list(array.shape)} of {array.dtype}; allowed: "
                           "(height, width) numbers")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ItemRejected("depth_not_finite", f"{what} holds {int((~np.isfinite(array)).sum())} NaN or infinite "
                           "values; use 0 for pixels without a depth")
    if (array < 0).any():
        raise ItemRejected("depth_negative", f"{what} holds negative depths (min {array.min():g}); allowed: >= 0, "
                           "0 for pixels without a depth")
    if array.max() > FLOAT16_MAX:
        raise ItemRejected("depth_out_of_range", f"{what} holds depths up to {array.max():g}, above float16's "
                           f"{FLOAT16_MAX:g} (check depth_scale)")
    return array.astype(np.float32)


def check_size(label: np.ndarray, width: int, height: int, kind: str, column: str) -> None:
    """A mask or depth map has the source image's size (``kind``: mask or depth)."""
    if label.shape[:2] != (height, width):
        raise ItemRejected(f"{kind}_size_mismatch", f"{kind} '{column}' is {label.shape[1]} x {label.shape[0]} "
                           f"(width x height); the image is {width} x {height}")


@dataclass(frozen=True)
class BoxReading:
    """How one box column is read: class names (None: any class), units and the box limit."""

    classes: tuple[str, ...] | None = None
    units: str = "pixels"
    max_boxes: int | None = None


def parse_boxes(value: Any, reading: BoxReading, width: int, height: int,
                column: str) -> tuple[np.ndarray, np.ndarray]:
    """A box list -> float64 (n, 4) ``[x_min, y_min, x_max, y_max]`` in source pixels and int64 (n,) classes.

    Args:
        value: a list of boxes, JSON text of one, or an (K, 4) / (K, 5) array padded with rows of -1.
        reading: the column's classes, units and box limit.
        width: the source image's width in pixels.
        height: its height.
        column: the column, for the reasons.

    Raises:
        ItemRejected: see the module docstring for the checks.
    """
    rows = _box_rows(value, column)
    if reading.max_boxes is not None and len(rows) > reading.max_boxes:
        raise ItemRejected("too_many_boxes", f"'{column}' holds {len(rows)} boxes; max_boxes is {reading.max_boxes}")
    boxes = np.zeros((len(rows), 4), np.float64)
    classes = np.zeros(len(rows), np.int64)
    for i, row in enumerate(rows):
        boxes[i] = _coordinates(row[:4], column)
        classes[i] = _box_class(row[4], reading.classes, column) if len(row) == 5 else 0
    if reading.units == "relative":
        boxes *= [width, height, width, height]
    low, high = -BOX_TOLERANCE, np.array([width, height, width, height]) + BOX_TOLERANCE
    outside = ((boxes < low) | (boxes > high)).any(axis=1)
    if outside.any():
        box = boxes[np.argmax(outside)]
        raise ItemRejected("box_outside_image", f"'{column}': box {_show(box)} ({reading.units}: source pixels) lies "
                           f"outside the {width} x {height} image (tolerance {BOX_TOLERANCE:g} px)")
    boxes = np.clip(boxes, 0, [width, height, width, height])
    empty = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if empty.any():
        raise ItemRejected("box_empty", f"'{column}': box {_show(boxes[np.argmax(empty)])} has zero or negative "
                           "size; x_max > x_min and y_max > y_min are needed")
    return boxes, classes


def _box_rows(value: Any, column: str) -> list[Sequence[Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ItemRejected("unparsable_boxes", f"'{column}' is not a JSON list of boxes: {value[:80]!r}") from None
    if isinstance(value, np.ndarray):
        if value.ndim != 2 or value.shape[1] not in (4, 5):
            raise ItemRejected("unparsable_boxes", f"'{column}' box array has shape {list(value.shape)}; allowed: "
                               "(boxes, 4) or (boxes, 5)")
        value = [row for row in value.tolist() if not all(v == -1 for v in row)]
    if not isinstance(value, (list, tuple)):
        raise ItemRejected("unparsable_boxes", f"'{column}' is {type(value).__name__}, not a list of boxes "
                           "[[x_min, y_min, x_max, y_max, class], ...]")
    for row in value:
        if not isinstance(row, (list, tuple)) or len(row) not in (4, 5):
            raise ItemRejected("unparsable_boxes", f"'{column}': {row!r} is not a box [x_min, y_min, x_max, y_max, "
                               "class] (or 4 values: class 0)")
    return list(value)


def _coordinates(values: Sequence[Any], column: str) -> list[float]:
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
        raise ItemRejected("unparsable_boxes", f"'{column}': box coordinates {list(values)!r} are not finite numbers")
    return [float(v) for v in values]


def _box_class(value: Any, classes: tuple[str, ...] | None, column: str) -> int:
    allowed = f"allowed: {', '.join(classes)} or 0..{len(classes) - 1}" if classes else "allowed: an index >= 0"
    if isinstance(value, str):
        if classes is None:
            return -1  # no task names the classes (only counted): any name is a box
        if value in classes:
            return classes.index(value)
        if value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise ItemRejected("box_unknown_class", f"'{column}': unknown box class {value!r}; {allowed}")
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value)):
        raise ItemRejected("box_unknown_class", f"'{column}': box class {value!r} is neither a name nor an index; "
                           f"{allowed}")
    index = int(value)
    if index < 0 or (classes is not None and index >= len(classes)):
        raise ItemRejected("box_unknown_class", f"'{column}': box class index {index} is out of range; {allowed}")
    return index


def _show(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"
