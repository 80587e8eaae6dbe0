"""One item of an image source -> its split and serialized tf.Example, in plain Python.

:class:`ItemConverter` is the whole per-item work of the image pipeline: decode and check
the image and its dense labels (:mod:`pipelines.images.validation`), bring them to the
stored size (:mod:`pipelines.images.geometry`), parse the image-level labels and other
features, compute the derived labels (:mod:`pipelines.images.labels`), pick the split and
encode the example (layout: :mod:`mtl_tf.data.spec`). Any failure of one item, expected or
not, rejects that item only: an unexpected exception becomes the reason kind
``error: <ExceptionType>``.

The split key is the item's key (the ``data.split.key`` column, or what ``key_pattern``
takes from it), else its image path as the source names it (relative paths as written, so a
moved folder keeps its splits), else, for an array, a hash of its bytes. With a key column
the key is also stored in the example, as bytes under ``__key__``
(:data:`~pipelines.images.items.EXAMPLE_KEY`), so evaluation can group test rows by it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from mtl_tf.recipe.schema import Recipe
from pipelines.encoding import Int64List, encode_example
from pipelines.images.geometry import (Placement, placement, resize_depth, resize_image, resize_mask,
                                      transform_boxes)
from pipelines.images.items import EXAMPLE_KEY, Item, ItemRejected, reject_record
from pipelines.images.labels import (boundaries, class_presence, column_plan, feature_reader, label_reader,
                                     reading)
from pipelines.images.statistics import ImageSummaryFn
from pipelines.images.validation import (MAX_PIXELS, check_mask_values, check_size, decode_depth, decode_image,
                                         decode_mask, parse_boxes)
from pipelines.rows import RowRejected
from pipelines.splits import active_splits, assign_split, file_fractions

JPEG_QUALITY = 95
PNG_COMPRESS_LEVEL = 3  # zlib level: much faster than the default 6 for a few percent more bytes


@dataclass
class ConvertedBatch:
    """What one batch of items became.

    Attributes:
        examples: split -> the serialized examples of the items assigned to it.
        rejects: the rejects-file entries of the items set aside.
        summary: the batch's partial summary, an accumulator of :class:`ImageSummaryFn`.
    """

    examples: dict[str, list[bytes]]
    rejects: list[dict[str, Any]]
    summary: dict[str, Any]


@dataclass
class _Stored:
    """One converted item before encoding; ``placement`` is where its source image (of
    ``source_size``, width x height) went in the stored one."""

    split: str
    image: np.ndarray
    values: dict[str, Any]
    features: dict[str, Any]
    labels: dict[str, Any]
    placement: Placement | None = None
    source_size: tuple[int, int] | None = None


class ItemConverter:
    """Turns items into examples per split, rejects and a partial summary.

    Args:
        recipe: the recipe (one image feature; its tasks and split).
        max_pixels: source images (and label images) with more pixels are rejected.

    Raises:
        ValueError: the recipe has no image feature, or two tasks read a column differently.
    """

    def __init__(self, recipe: Recipe, max_pixels: int = MAX_PIXELS):
        image = recipe.data.image_feature
        if image is None:
            raise ValueError("an image pipeline needs an image feature (kind: image); the recipe has none")
        self.image = image
        self.plan = column_plan(recipe)
        self.tasks = list(recipe.tasks)
        self.max_pixels = max_pixels
        na = frozenset(getattr(recipe.data.source, "na_values", []) or [])
        self.features = [(f.name, f.source_column, feature_reader(f, na))
                         for f in recipe.data.features if f.kind != "image"]
        self.labels = {t.name: label_reader(t, na | frozenset(t.na_values)) for t in self.tasks
                       if reading(t) == "label"}
        self.split = recipe.data.split
        self.fractions = active_splits(recipe.data.split)
        self.splits = recipe.data.split_names()
        self.summary_fn = ImageSummaryFn(image, [f for f in recipe.data.features if f.kind != "image"], self.tasks)

    def convert(self, items: Sequence[Item]) -> ConvertedBatch:
        """Converts a batch of items; every item is written to one split or rejected."""
        acc = self.summary_fn.create_accumulator()
        acc["items_in"] = len(items)
        examples: dict[str, list[bytes]] = {split: [] for split in self.splits}
        rejects = []
        for item in items:
            try:
                stored = self.convert_item(item)
                encoded = encode_example(stored.values)
            except (ItemRejected, RowRejected) as reject:
                kind, reason = reject.kind, reject.message
            except Exception as err:  # one item never stops the job
                kind, reason = f"error: {type(err).__name__}", f"error: {type(err).__name__}: {err}"
            else:
                examples[stored.split].append(encoded)
                self.summary_fn.add_example(acc, stored.split, stored.image, stored.features, stored.labels)
                continue
            rejects.append(reject_record(item, kind, reason, item.values.get(self.image.source_column)))
            self.summary_fn.add_reject(acc, kind, reason)
        return ConvertedBatch(examples, rejects, acc)

    def convert_item(self, item: Item) -> _Stored:
        """One item -> its split, tf.Example values, stored image and labels (for statistics),
        and where its source image went in the stored one.

        Raises:
            ItemRejected, RowRejected: the item is unusable, with the reason.
        """
        if item.error is not None:
            raise ItemRejected(*item.error)
        values = item.values
        source = values.get(self.image.source_column)
        if source is None or (isinstance(source, str) and not source.strip()):
            raise ItemRejected("missing_image", f"no image in column '{self.image.source_column}'")
        image = decode_image(source, self.image.channels, item.base, self.max_pixels, self.image.bit_depth,
                             self.image.window)
        height, width = image.shape[:2]
        feature = self.image
        if height < feature.min_height or width < feature.min_width:
            raise ItemRejected("too_small", f"image is {width} x {height} (width x height); at least "
                               f"{feature.min_width} x {feature.min_height} is needed")
        where = placement(width, height, feature.width, feature.height, feature.resize)
        dense = self._dense(item, where, width, height)
        stored = resize_image(image, where)
        out: dict[str, Any] = {feature.name: encode_image(stored, feature.encoding)}
        typed = {}
        for name, column, read in self.features:
            value = read(values.get(column))
            if value is not None:
                out[name] = typed[name] = value
        labels = self._labels(item, dense, out)
        if self.split.key:
            out[EXAMPLE_KEY] = item.key
        return _Stored(self._split(item, source), stored, out, typed, labels, where, (width, height))

    def _dense(self, item: Item, where, width: int, height: int) -> dict[str, Any]:
        """Column -> its stored dense label (uint8 mask, float32 depth, (boxes, classes)); absent: no label."""
        dense: dict[str, Any] = {}
        for column, mask_reading in self.plan.masks.items():
            raw = item.values.get(column)
            if _present(raw):
                mask = decode_mask(raw, item.base, self.max_pixels)
                check_size(mask, width, height, "mask", column)
                check_mask_values(mask, mask_reading.classes, mask_reading.ignore, column)
                dense[column] = resize_mask(mask, where, mask_reading.ignore)
        for column, scale in self.plan.depths.items():
            raw = item.values.get(column)
            if _present(raw):
                depth = decode_depth(raw, scale, item.base, self.max_pixels)
                check_size(depth, width, height, "depth", column)
                dense[column] = resize_depth(depth, where)
        for column, box_reading in self.plan.boxes.items():
            raw = item.values.get(column)
            if _present(raw):
                boxes, classes = parse_boxes(raw, box_reading, width, height, column)
                dense[column] = transform_boxes(boxes, classes, where)
        return dense

    def _labels(self, item: Item, dense: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """Adds every task's label to ``out``; returns task name -> its stored label (for statistics)."""
        labels: dict[str, Any] = {}
        feature = self.image
        for task in self.tasks:
            key = task.label_key
            if task.name in self.labels:
                value = self.labels[task.name](item.values.get(task.label))
                if value is not None:
                    out[key] = labels[task.name] = value
                continue
            if task.label not in dense:
                continue
            label = dense[task.label]
            if task.derive == "class_presence":
                mask_reading = self.plan.masks[task.label]
                value = class_presence(label, len(task.classes), mask_reading.ignore)
                out[key] = labels[task.name] = value
            elif task.derive == "boundaries":
                edges = boundaries(label, self.plan.masks[task.label].ignore, task.ignore_index)
                out[key] = encode_mask(edges)
                labels[task.name] = edges
            elif task.type == "segmentation":
                out[key] = encode_mask(label)
                labels[task.name] = label
            elif task.type == "depth":
                out[key] = label.astype("<f2").tobytes()
                labels[task.name] = label
            elif task.derive == "box_count":
                out[key] = labels[task.name] = float(len(label[0]))
            else:  # detection
                boxes, classes = label
                relative = boxes / [feature.width, feature.height, feature.width, feature.height]
                out[f"{key}/boxes"] = [float(v) for v in relative.ravel()]
                out[f"{key}/classes"] = Int64List(int(c) for c in classes)
                out[f"{key}/labelled"] = Int64List([1])
                labels[task.name] = classes
        return labels

    def _split(self, item: Item, source: Any) -> str:
        if item.split is not None:
            return item.split
        key = item.key
        if key is None:
            key = (hashlib.sha256(np.ascontiguousarray(source).tobytes()).hexdigest()
                   if isinstance(source, np.ndarray) else str(source).strip())
        fractions = file_fractions(self.split, item.source) if self.split.by_file else self.fractions
        return assign_split(key, fractions, self.split.seed)


def _present(raw: Any) -> bool:
    """Whether a raw dense-label value is there (None and empty text are no label; ``[]`` is no box)."""
    if raw is None:
        return False
    if isinstance(raw, str):
        return bool(raw.strip())
    return True


def encode_image(image: np.ndarray, encoding: str) -> bytes:
    """uint8 (h, w, c) -> PNG or JPEG bytes."""
    from PIL import Image

    picture = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    buffer = io.BytesIO()
    if encoding == "jpeg":
        picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        picture.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def encode_mask(mask: np.ndarray) -> bytes:
    """uint8 (h, w) class indices -> single-channel 8-bit PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8), "L").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()
