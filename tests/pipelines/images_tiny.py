"""Tiny image datasets for the image pipeline tests: files, recipes and reading examples back."""

from __future__ import annotations

import glob
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from mtl_tf.recipe.loader import parse_recipe

HEIGHT, WIDTH = 24, 32
CLASSES = ["sky", "road", "car"]
OBJECTS = ["car", "person"]


def save_png(path: Path, array: np.ndarray, mode: str | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(path)
    return str(path)


def save_png_header_only(path: Path, width: int, height: int) -> str:
    """A PNG that claims ``width`` x ``height`` RGB pixels and holds none (a decompression bomb's header)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return str(path)


def random_image(rng, height=HEIGHT, width=WIDTH) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def random_mask(rng, height=HEIGHT, width=WIDTH, classes=len(CLASSES)) -> np.ndarray:
    # Blocks of one class, so there are boundaries and also flat regions.
    coarse = rng.integers(0, classes, (height // 4 + 1, width // 4 + 1)).astype(np.uint8)
    return np.kron(coarse, np.ones((4, 4), np.uint8))[:height, :width]


def random_depth(rng, height=HEIGHT, width=WIDTH) -> np.ndarray:
    """16-bit depth in 1/256 m, with some invalid (0) pixels."""
    depth = rng.integers(256, 40 * 256, (height, width)).astype(np.uint16)
    depth[rng.random((height, width)) < 0.1] = 0
    return depth


def scene_recipe(source: dict, out: str, size=(HEIGHT, WIDTH), resize="stretch", split=None, tasks=None,
                 features=None, shards=2, **image):
    raw = {
        "name": "scenes",
        "data": {"source": source,
                 "features": [{"name": "image", "kind": "image", "height": size[0], "width": size[1],
                               "resize": resize, **image}, *(features or [])],
                 "output_dir": out, "shards": shards},
        "tasks": tasks if tasks is not None else [
            {"name": "semantic", "type": "segmentation", "label": "mask", "classes": CLASSES},
            {"name": "depth", "type": "depth", "label": "depth", "depth_scale": 256},
            {"name": "objects", "type": "detection", "label": "boxes", "classes": OBJECTS, "max_boxes": 3},
            {"name": "weather", "type": "multiclass", "label": "weather", "classes": ["clear", "fog"]},
            {"name": "presence", "type": "multilabel", "label": "mask", "derive": "class_presence",
             "classes": CLASSES},
            {"name": "edges", "type": "segmentation", "label": "mask", "derive": "boundaries",
             "classes": ["background", "boundary"]},
            {"name": "count", "type": "regression", "label": "boxes", "derive": "box_count"},
        ],
    }
    if split is not None:
        raw["data"]["split"] = split
    return parse_recipe(raw, check=False)


def write_jsonl(path: Path, rows) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return str(path)


def read_examples(folder, split: str | None = None) -> list[dict]:
    """Every example of the split's shards (all splits: None) as {key: list of values}, with "_split"."""
    import tensorflow as tf

    examples = []
    for split_name in ([split] if split else ["train", "validation", "test"]):
        for path in sorted(glob.glob(f"{folder}/{split_name}-*.tfrecord.gz")):
            for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
                example = tf.train.Example.FromString(record.numpy())
                values = {"_split": split_name}
                for key, feature in example.features.feature.items():
                    kind = feature.WhichOneof("kind")
                    values[key] = list(getattr(feature, kind).value) if kind else []
                examples.append(values)
    return examples


def decode_png(data: bytes) -> np.ndarray:
    import io

    return np.asarray(Image.open(io.BytesIO(data)))


def decode_depth(data: bytes, height: int, width: int) -> np.ndarray:
    return np.frombuffer(data, "<f2").reshape(height, width).astype(np.float32)


def boundaries_by_loops(mask: np.ndarray, ignore: int, out_ignore: int) -> np.ndarray:
    """The boundary map, pixel by pixel: 1 where a labelled 4-neighbour has another class."""
    height, width = mask.shape
    out = np.zeros((height, width), np.uint8)
    for y in range(height):
        for x in range(width):
            if mask[y, x] == ignore:
                out[y, x] = out_ignore
                continue
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                ny, nx = y + dy, x + dx
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] != ignore and mask[ny, nx] != mask[y, x]:
                    out[y, x] = 1
    return out
