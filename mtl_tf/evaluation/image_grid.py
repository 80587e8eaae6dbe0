"""A grid of images with their dense labels: input, then truth (and prediction) per task.

For looking at data and at predictions side by side: one row per example; the first
column is the input image, then for each :class:`Panel` the truth and, when the example has
one, the prediction. Segmentation masks are coloured per class (ignored pixels black),
depth maps shaded from near (bright) to far (dark) with no depth black, boxes drawn
on the input image in a colour per class (with their class and score when asked), and
image-level labels written as text. NumPy and PIL only.

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
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

PANEL_TYPES = ("segmentation", "depth", "detection", "text")
TEXT_BACKGROUND = (40, 40, 40)
TEXT_COLOUR = (255, 255, 255)


class Caption(NamedTuple):
    """A text panel's label: the text (lines split at newlines) and its colour."""

    text: str
    colour: tuple[int, int, int] = TEXT_COLOUR


@dataclass(frozen=True)
class Panel:
    """One task's column(s) in the grid.

    Attributes:
        name: the key of the task's labels in each example's ``truth`` / ``prediction``.
        type: ``segmentation`` (an (H, W) class-index map), ``depth`` (an (H, W) map, 0 =
            none), ``detection`` (boxes ``[x_min, y_min, x_max, y_max, class]``, optionally
            a score sixth) or ``text`` (a string or a :class:`Caption`: an image-level label).
        classes: class names (segmentation, detection), for the colours and the legend.
        ignore_index: segmentation: the value drawn black.
        max_depth: depth: the depth drawn darkest; default the largest in the grid.
        relative: detection: box coordinates are fractions of the image size.
        captions: detection: write each box's class (and score) at its top-left corner.
    """

    name: str
    type: str
    classes: Sequence[str] | None = None
    ignore_index: int | None = 255
    max_depth: float | None = None
    relative: bool = False
    captions: bool = False

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
               relative: bool = False, scale: int = 1, captions: bool = False) -> np.ndarray:
    """An image (H, W, 3) with ``boxes`` ``[x_min, y_min, x_max, y_max, class]`` drawn, scaled by ``scale``.

    The class is an index or a name among ``classes``; each class has its own colour. A
    sixth value is the box's score. With ``captions`` each box's class name (and score,
    ``car .87``) is written at its top-left corner, above the box where there is room.
    """
    from PIL import Image, ImageDraw

    image = _rgb(image)
    height, width = image.shape[:2]
    picture = Image.fromarray(image).resize((width * scale, height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    names = list(classes or [])
    colours = palette(max(len(names), 1))
    labels = []
    for box in boxes:
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        if relative:
            x0, x1, y0, y1 = x0 * width, x1 * width, y0 * height, y1 * height
        cls = box[4] if len(box) > 4 else 0
        index = names.index(cls) if isinstance(cls, str) and cls in names else (int(cls) if not isinstance(cls, str)
                                                                                else 0)
        colour = tuple(int(c) for c in colours[index % len(colours)])
        draw.rectangle([x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1], outline=colour, width=1)
        if captions:
            name = names[index] if 0 <= index < len(names) else str(cls)
            score = f" {float(box[5]):.2f}".replace(" 0.", " .") if len(box) > 5 else ""
            labels.append((x0 * scale, y0 * scale, name + score, colour))
    for x, y, text, colour in labels:  # after every box, so no edge crosses a caption
        _caption(draw, x, y, text, colour)
    return np.asarray(picture)


def _caption(draw: Any, x: float, y: float, text: str, colour: tuple[int, int, int]) -> None:
    """``text`` on a black strip whose bottom-left is at (x, y), or just below y near the top."""
    left, top, right, bottom = draw.textbbox((0, 0), text)
    height = bottom + 1
    y = y - height if y >= height else y + 1
    draw.rectangle([x, y, x + right + 1, y + height - 1], fill=(0, 0, 0))
    draw.text((x + 1, y), text, fill=colour)


def text_tile(label: str | Caption | Sequence[str | Caption], height: int, width: int) -> np.ndarray:
    """A dark ``height`` x ``width`` tile with ``label`` (one, or a list of lines, each in its
    colour) written on it, wrapped at the tile's width; what does not fit is cut off."""
    from PIL import Image, ImageDraw

    labels = [label] if isinstance(label, (str, Caption)) else list(label)
    picture = Image.new("RGB", (width, height), TEXT_BACKGROUND)
    draw = ImageDraw.Draw(picture)
    y, step = 2, draw.textbbox((0, 0), "Ag")[3] + 2
    for item in labels:
        caption = item if isinstance(item, Caption) else Caption(str(item))
        for line in _wrap(draw, caption.text, width - 4):
            draw.text((2, y), line, fill=tuple(caption.colour))
            y += step
    return np.asarray(picture)


def _wrap(draw: Any, text: str, width: int) -> list[str]:
    """Lines of ``text`` (split at newlines, then between words) no wider than ``width`` pixels."""
    lines = []
    for paragraph in str(text).split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and draw.textlength(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


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
        return draw_boxes(image, label, panel.classes, panel.relative, scale, panel.captions)
    height, width = tile.shape[:2]
    return np.asarray(Image.fromarray(tile).resize((width * scale, height * scale), Image.NEAREST))


def image_grid(examples: Sequence[Mapping[str, Any]], panels: Sequence[Panel], scale: int = 2,
               gap: int = 2) -> Any:
    """A PIL image: one row per example; input, then per panel its truth and (if any) prediction.

    Text panels (image-level labels) share one last column, ``labels``: per panel a line
    ``<name>: <truth>`` and, with predictions, a line ``  pred <prediction>`` in the
    prediction's colour.

    Args:
        examples: dicts with ``image`` (uint8 (H, W, C)), ``truth`` and optionally
            ``prediction`` (each ``{panel name: label}``; a missing label is a grey tile).
            Tiles sit at ``(gap + column * (tile width + gap), 12 + gap + row * (tile height
            + gap))`` below a 12-pixel title line, a tile being the image's size times ``scale``.
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
    sources = ["truth", "prediction"] if with_prediction else ["truth"]
    pictured = [p for p in panels if p.type != "text"]
    texts = [p for p in panels if p.type == "text"]
    headers = ["input"] + [f"{p.name}{suffix}" for p in pictured
                           for suffix in ([" truth", " pred"] if with_prediction else [""])]
    headers += ["labels"] if texts else []
    depth_top = {p.name: p.max_depth or _largest(examples, p.name) for p in pictured if p.type == "depth"}
    rows = []
    for example in examples:
        image = example["image"]
        tiles = [_tile(Panel("input", "detection"), image, [], scale, None)]
        for panel in pictured:
            for source in sources:
                label = (example.get(source) or {}).get(panel.name)
                tiles.append(_tile(panel, image, label, scale, depth_top.get(panel.name)))
        if texts:
            height, width = np.asarray(image).shape[:2]
            tiles.append(text_tile(_label_lines(example, texts, with_prediction), height * scale, width * scale))
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


def _label_lines(example: Mapping[str, Any], panels: Sequence[Panel], with_prediction: bool) -> list[Caption]:
    """The ``labels`` tile of one example: each text panel's truth, then its prediction."""
    lines = []
    for panel in panels:
        truth = (example.get("truth") or {}).get(panel.name)
        lines.append(Caption(f"{panel.name}: {_text(truth) if truth is not None else '(no label)'}"))
        predicted = (example.get("prediction") or {}).get(panel.name)
        if with_prediction and predicted is not None:
            colour = predicted.colour if isinstance(predicted, Caption) else TEXT_COLOUR
            lines.append(Caption(f"  pred {_text(predicted)}", colour))
    return lines


def _text(label: str | Caption) -> str:
    return label.text if isinstance(label, Caption) else str(label)


def _largest(examples: Sequence[Mapping[str, Any]], name: str) -> float:
    values = [float(np.max(label)) for e in examples for source in ("truth", "prediction")
              for label in [(e.get(source) or {}).get(name)] if label is not None and np.size(label)]
    return max(values, default=1.0) or 1.0
