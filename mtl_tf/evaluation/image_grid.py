"""A grid of images with their dense labels: input, then truth (and prediction) per task.

For looking at data and at predictions side by side: one row per example; the first
column is the input image, then for each :class:`Panel` the truth and, when the example has
one, the prediction. Segmentation masks are coloured per class (ignored pixels black),
depth maps shaded from near (bright) to far (dark) with no depth black, and boxes drawn
on the input image in a colour per class. NumPy and PIL only.

Example:
    >>> grid = image_grid([{"image": image, "truth": {"semantic": mask, "depth": depth,
    ...                                               "objects": boxes}}],
    ...                   [Panel("semantic", "segmentation", classes=CLASSES),
    ...                    Panel("depth", "depth"), Panel("objects", "detection", classes=["car"])])
    >>> grid.save("/tmp/grid.png")
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

PANEL_TYPES = ("segmentation", "depth", "detection")


@dataclass(frozen=True)
class Panel:
    """One task's column(s) in the grid.

    Attributes:
        name: the key of the task's labels in each example's ``truth`` / ``prediction``.
        type: ``segmentation`` (an (H, W) class-index map), ``depth`` (an (H, W) map, 0 =
            none) or ``detection`` (boxes ``[x_min, y_min, x_max, y_max, class]``).
        classes: class names (segmentation, detection), for the colours and the legend.
        ignore_index: segmentation: the value drawn black.
        max_depth: depth: the depth drawn darkest; default the largest in the grid.
        relative: detection: box coordinates are fractions of the image size.
    """

    name: str
    type: str
    classes: Sequence[str] | None = None
    ignore_index: int | None = 255
    max_depth: float | None = None
    relative: bool = False

    def __post_init__(self):
        if self.type not in PANEL_TYPES:
            raise ValueError(f"panel '{self.name}': unknown type {self.type!r}; allowed: {', '.join(PANEL_TYPES)}")


def palette(count: int) -> np.ndarray:
    """``count`` distinct uint8 RGB colours (evenly spaced hues, alternating brightness)."""
    colours = [colorsys.hsv_to_rgb(i / max(count, 1), 0.75, 1.0 if i % 2 == 0 else 0.7) for i in range(count)]
    return (np.asarray(colours).reshape(-1, 3) * 255).astype(np.uint8)


def colour_mask(mask: np.ndarray, classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """(H, W) class indices -> uint8 (H, W, 3); the ignore value and unknown values are black."""
    mask = np.asarray(mask).astype(np.int64)
    colours = np.zeros((max(classes, int(mask.max(initial=0)) + 1), 3), np.uint8)
    colours[:classes] = palette(classes)
    out = colours[np.clip(mask, 0, len(colours) - 1)]
    if ignore_index is not None:
        out[mask == ignore_index] = 0
    return out


def colour_depth(depth: np.ndarray, max_depth: float | None = None) -> np.ndarray:
    """(H, W) depths -> uint8 (H, W, 3): near bright yellow, far dark purple, no depth (0) black."""
    depth = np.asarray(depth, np.float64)
    valid = depth > 0
    top = max_depth or (float(depth[valid].max()) if valid.any() else 1.0)
    # Inverse depth spreads the near range, where the detail is.
    t = np.where(valid, np.clip(1.0 - np.log1p(depth) / np.log1p(top), 0, 1), 0.0)[..., None]
    far, mid, near = np.array([40, 10, 80.0]), np.array([200, 60, 90.0]), np.array([255, 235, 120.0])
    colour = np.where(t < 0.5, far + (mid - far) * (t * 2), mid + (near - mid) * (t * 2 - 1))
    return np.where(valid[..., None], colour, 0).astype(np.uint8)


def draw_boxes(image: np.ndarray, boxes: Sequence[Sequence[Any]], classes: Sequence[str] | None = None,
               relative: bool = False, scale: int = 1) -> np.ndarray:
    """An image (H, W, 3) with ``boxes`` ``[x_min, y_min, x_max, y_max, class]`` drawn, scaled by ``scale``.

    The class is an index or a name among ``classes``; each class has its own colour.
    """
    from PIL import Image, ImageDraw

    image = _rgb(image)
    height, width = image.shape[:2]
    picture = Image.fromarray(image).resize((width * scale, height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    names = list(classes or [])
    colours = palette(max(len(names), 1))
    for box in boxes:
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        if relative:
            x0, x1, y0, y1 = x0 * width, x1 * width, y0 * height, y1 * height
        cls = box[4] if len(box) > 4 else 0
        index = names.index(cls) if isinstance(cls, str) and cls in names else (int(cls) if not isinstance(cls, str)
                                                                                else 0)
        colour = tuple(int(c) for c in colours[index % len(colours)])
        draw.rectangle([x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1], outline=colour, width=1)
    return np.asarray(picture)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image.astype(np.uint8)


def _tile(panel: Panel, image: np.ndarray, label: Any, scale: int, max_depth: float | None) -> np.ndarray:
    from PIL import Image

    if label is None:
        tile = np.full_like(_rgb(image), 128)
    elif panel.type == "segmentation":
        tile = colour_mask(label, len(panel.classes or []) or int(np.max(label)) + 1, panel.ignore_index)
    elif panel.type == "depth":
        tile = colour_depth(label, max_depth)
    else:
        return draw_boxes(image, label, panel.classes, panel.relative, scale)
    height, width = tile.shape[:2]
    return np.asarray(Image.fromarray(tile).resize((width * scale, height * scale), Image.NEAREST))


def image_grid(examples: Sequence[Mapping[str, Any]], panels: Sequence[Panel], scale: int = 2,
               gap: int = 2) -> Any:
    """A PIL image: one row per example; input, then per panel its truth and (if any) prediction.

    Args:
        examples: dicts with ``image`` (uint8 (H, W, C)), ``truth`` and optionally
            ``prediction`` (each ``{panel name: label}``; a missing label is a grey tile).
        panels: the tasks to show, in order.
        scale: each pixel drawn as ``scale`` x ``scale``.
        gap: pixels between tiles.

    Returns:
        The grid as a ``PIL.Image.Image`` (save it with ``.save(path)``).
    """
    from PIL import Image, ImageDraw

    if not examples:
        raise ValueError("image_grid needs at least one example; received none")
    with_prediction = any("prediction" in e for e in examples)
    headers = ["input"] + [f"{p.name}{suffix}" for p in panels
                           for suffix in ([" truth", " pred"] if with_prediction else [""])]
    depth_top = {p.name: p.max_depth or _largest(examples, p.name) for p in panels if p.type == "depth"}
    rows = []
    for example in examples:
        image = example["image"]
        tiles = [_tile(Panel("input", "detection"), image, [], scale, None)]
        for panel in panels:
            sources = ["truth", "prediction"] if with_prediction else ["truth"]
            for source in sources:
                label = (example.get(source) or {}).get(panel.name)
                tiles.append(_tile(panel, image, label, scale, depth_top.get(panel.name)))
        rows.append(tiles)
    tile_h, tile_w = rows[0][0].shape[:2]
    title = 12
    grid = Image.new("RGB", (len(headers) * (tile_w + gap) + gap, title + len(rows) * (tile_h + gap) + gap),
                     (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for c, header in enumerate(headers):
        draw.text((gap + c * (tile_w + gap), 0), header, fill=(0, 0, 0))
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            grid.paste(Image.fromarray(tile), (gap + c * (tile_w + gap), title + gap + r * (tile_h + gap)))
    return grid


def _largest(examples: Sequence[Mapping[str, Any]], name: str) -> float:
    values = [float(np.max(label)) for e in examples for source in ("truth", "prediction")
              for label in [(e.get(source) or {}).get(name)] if label is not None and np.size(label)]
    return max(values, default=1.0) or 1.0
