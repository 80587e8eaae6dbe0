"""Bringing a source image and its dense labels to the stored ``height`` x ``width``.

A feature's ``resize`` picks the :class:`Placement` (which region of the source is resized to
which rectangle of the stored image):

- ``stretch``: the whole source to the whole stored size (the aspect ratio changes);
- ``pad``: the whole source, scaled to fit inside, centred; the rest is padding
  (0 in images and depth, the ignore value in masks);
- ``crop``: scaled to cover the stored size, the centre region kept.

Images are resized bilinearly (PIL, which averages over the source pixels when shrinking),
masks with nearest neighbour (class indices are never blended), depth with nearest neighbour
too, so an invalid (0) pixel never bleeds into its neighbours and no depth between a near
object and the far background is invented at their edge. Boxes follow the same affine map,
are clipped to the stored image and dropped when nothing of them is left; :func:`source_boxes`
maps boxes of the stored image (a model's detections) back to the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("stretch", "pad", "crop")


@dataclass(frozen=True)
class Placement:
    """The source region ``box`` (x0, y0, x1, y1, in source pixels) is resized to ``size``
    (w, h) and pasted at ``offset`` (x, y) into a ``width`` x ``height`` image."""

    width: int
    height: int
    box: tuple[float, float, float, float]
    size: tuple[int, int]
    offset: tuple[int, int]

    @property
    def identity(self) -> bool:
        """Whether the source already has the stored size (nothing to resize)."""
        return (self.box == (0.0, 0.0, float(self.width), float(self.height)) and self.size == (self.width, self.height)
                and self.offset == (0, 0))

    @property
    def scale(self) -> tuple[float, float]:
        """Stored pixels per source pixel, along x and y."""
        x0, y0, x1, y1 = self.box
        return self.size[0] / (x1 - x0), self.size[1] / (y1 - y0)

    def map_points(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source pixel coordinates -> stored pixel coordinates (continuous, edges at integers)."""
        sx, sy = self.scale
        return (x - self.box[0]) * sx + self.offset[0], (y - self.box[1]) * sy + self.offset[1]

    def unmap_points(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stored pixel coordinates -> source pixel coordinates: the inverse of :meth:`map_points`."""
        sx, sy = self.scale
        return (x - self.offset[0]) / sx + self.box[0], (y - self.offset[1]) / sy + self.box[1]


def placement(source_width: int, source_height: int, width: int, height: int, mode: str) -> Placement:
    """Where a ``source_width`` x ``source_height`` image goes in a ``width`` x ``height`` one.

    Raises:
        ValueError: ``mode`` is not one of :data:`MODES`.
    """
    full = (0.0, 0.0, float(source_width), float(source_height))
    if mode == "stretch":
        return Placement(width, height, full, (width, height), (0, 0))
    if mode == "pad":
        scale = min(width / source_width, height / source_height)
        size = (min(width, max(1, round(source_width * scale))), min(height, max(1, round(source_height * scale))))
        return Placement(width, height, full, size, ((width - size[0]) // 2, (height - size[1]) // 2))
    if mode == "crop":
        scale = max(width / source_width, height / source_height)
        kept_w, kept_h = width / scale, height / scale
        x0, y0 = (source_width - kept_w) / 2, (source_height - kept_h) / 2
        return Placement(width, height, (x0, y0, x0 + kept_w, y0 + kept_h), (width, height), (0, 0))
    raise ValueError(f"unknown resize mode {mode!r}; allowed: {', '.join(MODES)}")


def _place(array: np.ndarray, where: Placement, resample: int, fill: float, mode: str | None = None) -> np.ndarray:
    from PIL import Image

    if where.identity:
        return array
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    resized = np.asarray(image.resize(where.size, resample, box=where.box))
    if where.size == (where.width, where.height):
        return resized
    canvas = np.full((where.height, where.width, *array.shape[2:]), fill, array.dtype)
    x, y = where.offset
    canvas[y:y + where.size[1], x:x + where.size[0]] = resized
    return canvas


def resize_image(image: np.ndarray, where: Placement) -> np.ndarray:
    """uint8 (h, w, c) -> uint8 (height, width, c), bilinear; padding is 0."""
    from PIL import Image

    if image.shape[2] == 1:
        return _place(image[:, :, 0], where, Image.BILINEAR, 0)[:, :, None]
    return _place(image, where, Image.BILINEAR, 0)


def resize_mask(mask: np.ndarray, where: Placement, ignore: int) -> np.ndarray:
    """Class indices (h, w), all in 0..255 -> uint8 (height, width), nearest; padding is ``ignore``."""
    from PIL import Image

    return _place(mask.astype(np.uint8), where, Image.NEAREST, ignore)


def resize_depth(depth: np.ndarray, where: Placement) -> np.ndarray:
    """float32 (h, w) depths -> float32 (height, width), nearest; padding is 0 (no depth)."""
    from PIL import Image

    return _place(depth.astype(np.float32), where, Image.NEAREST, 0.0, "F")


def transform_boxes(boxes: np.ndarray, classes: np.ndarray, where: Placement) -> tuple[np.ndarray, np.ndarray]:
    """Source-pixel boxes (n, 4) -> stored-pixel boxes, clipped; boxes left with no area are dropped."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4), classes
    x0, y0 = where.map_points(boxes[:, 0], boxes[:, 1])
    x1, y1 = where.map_points(boxes[:, 2], boxes[:, 3])
    mapped = np.stack([x0, y0, x1, y1], axis=1)
    mapped = np.clip(mapped, 0, [where.width, where.height, where.width, where.height])
    kept = (mapped[:, 2] > mapped[:, 0]) & (mapped[:, 3] > mapped[:, 1])
    return mapped[kept], classes[kept]


def source_boxes(boxes: np.ndarray, where: Placement, source_width: int,
                 source_height: int) -> tuple[np.ndarray, np.ndarray]:
    """Stored-pixel boxes (n, 4) ``[x_min, y_min, x_max, y_max]`` -> source-pixel boxes, clipped
    to the ``source_width`` x ``source_height`` source: the inverse of :func:`transform_boxes`
    (a predicted box, say). Returns the boxes kept and which of the inputs they are: a box
    that lies in the padding or the cropped-off border has no area left and is dropped."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, y0 = where.unmap_points(boxes[:, 0], boxes[:, 1])
    x1, y1 = where.unmap_points(boxes[:, 2], boxes[:, 3])
    mapped = np.clip(np.stack([x0, y0, x1, y1], axis=1), 0,
                     [source_width, source_height, source_width, source_height])
    kept = (mapped[:, 2] > mapped[:, 0]) & (mapped[:, 3] > mapped[:, 1])
    return mapped[kept], np.flatnonzero(kept)
