"""One item of an image source (an image with its raw labels) and the ways it can be rejected.

An :class:`Item` is what a source reader yields and the converter turns into a tf.Example:
the raw values of its columns (an image path or array, label cells, paths of mask and depth
files, box lists) with where it came from, for the rejects file. A reader that cannot make
sense of a row (a manifest line that is not JSON, a CSV line with too few fields) still
yields an item, with its ``error`` set, so every row read is counted once: written or
rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Reasons an item is set aside (besides those of image-level labels, pipelines.rows.REJECT_KINDS,
# and "error: <ExceptionType>" for an unexpected failure).
REJECT_KINDS = (
    "unparsable_row", "wrong_field_count", "encoding", "missing_image", "file_not_found", "unreadable_image",
    "image_too_large", "not_8_bit", "wrong_channels", "too_small", "unreadable_label",
    "mask_not_class_indices", "mask_class_out_of_range", "mask_size_mismatch", "depth_size_mismatch",
    "depth_not_finite", "depth_negative", "depth_out_of_range", "unparsable_boxes", "box_outside_image",
    "box_empty", "box_unknown_class", "too_many_boxes", "split_key_unmatched",
)
# The tf.Example key of each example's split key (the patient id, say), as bytes, written when
# the recipe names data.split.key: evaluation groups test predictions by it. Not a feature.
EXAMPLE_KEY = "__key__"


class ItemRejected(ValueError):
    """An item that cannot be used; ``kind`` is one of :data:`REJECT_KINDS` (or a label reject kind)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class Item:
    """One image and its raw labels, as a source reader found them.

    Attributes:
        source: the file the item came from (a manifest, an image file, an npz file).
        index: its line number in the manifest (1 = the first line) or its row in the npz
            arrays; None for an image folder's file.
        values: column -> raw value: the image (a path, absolute or relative to ``base``, or
            an array), label cells (strings, numbers, lists, arrays), mask and depth file
            paths or arrays, box lists or JSON text; a missing value is absent or None.
        base: the folder relative paths are read from (a manifest's folder).
        key: the split key; None: the image path (or, for an array, its bytes) decides.
        split: a split fixed by the source (npz ``splits``); None: the hashed key decides.
        error: ``(kind, reason)`` when the reader already knows the item is unusable.
    """

    source: str
    index: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    base: str = ""
    key: str | None = None
    split: str | None = None
    error: tuple[str, str] | None = None


def reject_record(item: Item, kind: str, reason: str, image: Any = None) -> dict[str, Any]:
    """The rejects-file entry of an item: where it came from, its image path, the reason and its kind."""
    return {"file": item.source, "item": item.index, "image": image if isinstance(image, str) else None,
            "kind": kind, "reason": reason}
