"""A tiny image dataset on disk (GZIP TFRecords in the image layout + dataset.json), a tiny
image model and stand-in dense tasks, for tests of every part.

Items (deterministic for a seed), ``height`` x ``width`` (default 16 x 24):
  image     uint8, ``channels`` 3 or 1, PNG or JPEG. Channel 0 tells the mask's class
            (``CLASS_VALUES``: 40 ground, 120 object, 200 sky); channel 1 rises with the
            column, channel 2 with the row (so a flip shows).
  semantic  segmentation ``mask``: sky in the top quarter, ground below, the object's
            rectangle; a 2 x 2 patch of ``IGNORE`` in some items; every 4th item unlabelled.
  depth     ``depth``: 1 + row / 2 + column / 100 (float16), 0 on the ignore patch; items
            with i % 4 == 2 unlabelled.
  objects   detection ``boxes``: the object's rectangle (class 0, "box"), relative edges;
            items with i % 6 == 5 are labelled with no box (and hold no object), i % 5 == 4
            unlabelled.
  scene     multiclass ``weather``: i % 3; missing when i % 7 == 6.

Splits: ``train`` (3/4 of the items, 2 shards) and ``test`` (the rest, 1 shard), statistics
over train as the Beam pipeline computes them.

Usage:
    from tests.helpers.tiny_images import make_tiny_images, tiny_image_tasks, tiny_image_model
    spec = make_tiny_images(tmp_path, rows=24)
    tasks = tiny_image_tasks()
    model = tiny_image_model(spec)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.data.spec import DatasetSpec
from mtl_tf.tasks import MulticlassTask
from mtl_tf.tasks.base import TaskType

CLASSES = ["ground", "object", "sky"]
CLASS_VALUES = np.array([40, 120, 200], np.uint8)
OBJECT_CLASSES = ["box", "ball"]
SCENES = ["clear", "fog", "rain"]
IGNORE = 255
MAX_BOXES = 4
IMAGE = "image"
KEYS = {"semantic": "mask", "depth": "depth", "objects": "boxes", "scene": "weather"}
TRAIN_SHARDS = 2


def tiny_image_items(rows: int = 24, height: int = 16, width: int = 24, channels: int = 3,
                     seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The items of each split: dicts of numpy arrays; None marks an absent label."""
    rng = np.random.default_rng(seed)
    items = [_item(i, rng, height, width, channels) for i in range(rows)]
    cut = max(1, (rows * 3) // 4)
    return {"train": items[:cut], "test": items[cut:]}


def make_tiny_images(tmp_path: str | Path, rows: int = 24, height: int = 16, width: int = 24,
                     channels: int = 3, encoding: str = "png", seed: int = 0) -> DatasetSpec:
    """Writes the tiny image dataset under ``tmp_path/images`` and reads its dataset.json back."""
    splits = tiny_image_items(rows, height, width, channels, seed)
    return write_image_dataset(Path(tmp_path) / "images", splits, height, width, channels, encoding)


def write_image_dataset(folder: str | Path, splits: dict[str, list[dict[str, Any]]], height: int, width: int,
                        channels: int = 3, encoding: str = "png", classes: Sequence[str] = CLASSES,
                        resize: str = "stretch") -> DatasetSpec:
    """Writes items (as :func:`tiny_image_items` gives them) as TFRecords in the image layout
    with their dataset.json (``classes``: the segmentation classes; ``resize``: the image
    feature's mode); returns the spec read back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    split_specs = {}
    for split, items in splits.items():
        shards = TRAIN_SHARDS if split == "train" and len(items) > 1 else 1
        for shard in range(shards):
            path = folder / f"{split}-{shard:05d}-of-{shards:05d}.tfrecord.gz"
            with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
                for item in items[shard::shards]:
                    writer.write(image_example(item, encoding))
        split_specs[split] = {"pattern": f"{split}-*.tfrecord.gz", "num_examples": len(items), "num_shards": shards}
    train = splits["train"]
    pixels = np.stack([item["image"] for item in train]).reshape(-1, channels).astype(np.float64)
    spec = {
        "name": "tiny_images", "created": "2024-01-01T00:00:00Z", "rows_in": sum(map(len, splits.values())),
        "features": [{"name": IMAGE, "kind": "image", "dtype": "uint8",
                      "image": {"height": height, "width": width, "channels": channels, "encoding": encoding,
                                "resize": resize},
                      "stats": {"count": len(train), "mean": pixels.mean(0).tolist(),
                                "std": pixels.std(0).tolist()}}],
        "tasks": _task_specs(splits, height, width, list(classes)),
        "splits": split_specs,
    }
    DatasetSpec.model_validate(spec).write(folder)
    return DatasetSpec.read(folder)


def image_example(item: dict[str, Any], encoding: str = "png") -> bytes:
    """One serialized tf.Example in the image layout; absent labels leave their keys out."""
    feature = {IMAGE: _bytes(encode(item["image"], encoding))}
    if item.get("semantic") is not None:
        feature[KEYS["semantic"]] = _bytes(encode(item["semantic"].astype(np.uint8)[..., None], "png"))
    if item.get("depth") is not None:
        feature[KEYS["depth"]] = _bytes(item["depth"].astype("<f2").tobytes())
    if item.get("objects") is not None:
        boxes = np.asarray(item["objects"], np.float32).reshape(-1, 5)
        key = KEYS["objects"]
        feature[f"{key}/boxes"] = tf.train.Feature(float_list=tf.train.FloatList(value=boxes[:, :4].ravel()))
        feature[f"{key}/classes"] = tf.train.Feature(int64_list=tf.train.Int64List(value=boxes[:, 4].astype(int)))
        feature[f"{key}/labelled"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))
    if item.get("scene") is not None:
        feature[KEYS["scene"]] = tf.train.Feature(int64_list=tf.train.Int64List(value=[item["scene"]]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def encode(array: np.ndarray, encoding: str = "png") -> bytes:
    """uint8 (h, w, c) -> PNG or JPEG bytes (JPEG at quality 100, still lossy)."""
    if encoding == "png":
        return tf.io.encode_png(array).numpy()
    return tf.io.encode_jpeg(array, quality=100).numpy()


def boxes_label(item: dict[str, Any], max_boxes: int = MAX_BOXES) -> np.ndarray:
    """The reader's form of an item's detection label: (max_boxes, 5), padding [0, 0, 0, 0, -1]."""
    label = np.tile(np.array([0, 0, 0, 0, -1], np.float32), (max_boxes, 1))
    if item.get("objects") is not None:
        boxes = np.asarray(item["objects"], np.float32).reshape(-1, 5)[:max_boxes]
        label[:len(boxes)] = boxes
    return label


# --- tasks and model --------------------------------------------------------------------

class _StandIn(TaskType):
    """What the reader and the exporter use of a dense task type: its name and its
    serving outputs (the dense task types of :mod:`mtl_tf.tasks` bring the rest)."""

    default_metrics = ("count",)

    def metric_factories(self):
        return {"count": lambda: keras.metrics.Mean(name="count")}


class PixelClassesTask(_StandIn):
    """Serving outputs of a segmentation task: per-pixel class ids."""

    registered_type = "segmentation"

    def serving_outputs(self, output):
        return {self.name: tf.argmax(output, axis=-1, output_type=tf.int32)}


class PixelDepthTask(_StandIn):
    """Serving outputs of a depth task: the depth map itself (the base default)."""

    registered_type = "depth"


class BoxesTask(_StandIn):
    """Serving outputs of a detection task: the ``k`` highest heatmap cells as boxes."""

    registered_type = "detection"
    k = 3

    def serving_outputs(self, output):
        classes = len(self.classes)
        heat = output[..., :classes]
        cells = tf.shape(heat)[1] * tf.shape(heat)[2]
        scores, index = tf.math.top_k(tf.reshape(heat, [tf.shape(heat)[0], -1]), k=self.k)
        cell, cls = index // classes, index % classes
        rows, cols = tf.shape(heat)[1], tf.shape(heat)[2]
        y = (tf.cast(cell // cols, tf.float32) + 0.5) / tf.cast(rows, tf.float32)
        x = (tf.cast(cell % cols, tf.float32) + 0.5) / tf.cast(cols, tf.float32)
        size = tf.gather(tf.reshape(output[..., classes:classes + 2], [tf.shape(heat)[0], cells, 2]), cell,
                         batch_dims=1)
        boxes = tf.stack([x - size[..., 0] / 2, y - size[..., 1] / 2, x + size[..., 0] / 2, y + size[..., 1] / 2],
                         axis=-1)
        return {f"{self.name}_boxes": boxes, f"{self.name}_scores": scores, f"{self.name}_classes": cls}


def tiny_image_tasks(names: Sequence[str] = ("semantic", "depth", "objects", "scene")) -> list[TaskType]:
    """Task objects for the tiny image dataset (stand-ins for the dense types, the real multiclass)."""
    made = {"semantic": lambda: PixelClassesTask("semantic", classes=CLASSES),
            "depth": lambda: PixelDepthTask("depth"),
            "objects": lambda: BoxesTask("objects", classes=OBJECT_CLASSES),
            "scene": lambda: MulticlassTask("scene", classes=SCENES)}
    return [made[name]() for name in names]


def tiny_image_model(spec: DatasetSpec, names: Sequence[str] = ("semantic", "depth", "objects", "scene"),
                     seed: int = 3) -> keras.Model:
    """uint8 image -> normalised -> one small conv -> a dict of outputs: semantic (B, H, W, 3)
    softmax, depth (B, H, W) softplus, objects (B, H/4, W/4, 2 + 4) sigmoid, scene (B, 3) softmax."""
    keras.utils.set_random_seed(seed)
    feature = spec.feature(IMAGE)
    height, width, channels = feature.shape
    image = keras.Input(shape=(height, width, channels), dtype="uint8", name=IMAGE)
    x = keras.layers.Rescaling(1 / 255.0, name="shared_image_normalize")(image)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="shared_conv")(x)
    outputs = {}
    if "semantic" in names:
        outputs["semantic"] = keras.layers.Conv2D(len(CLASSES), 1, activation="softmax", name="semantic")(x)
    if "depth" in names:
        depth = keras.layers.Conv2D(1, 1, activation="softplus", name="depth_head")(x)
        outputs["depth"] = keras.layers.Reshape((height, width), name="depth")(depth)
    if "objects" in names:
        pooled = keras.layers.AveragePooling2D(4, name="objects_pool")(x)
        outputs["objects"] = keras.layers.Conv2D(len(OBJECT_CLASSES) + 4, 1, activation="sigmoid",
                                                 name="objects")(pooled)
    if "scene" in names:
        pooled = keras.layers.GlobalAveragePooling2D(name="scene_pool")(x)
        outputs["scene"] = keras.layers.Dense(len(SCENES), activation="softmax", name="scene")(pooled)
    return keras.Model({IMAGE: image}, outputs)


# --- items ------------------------------------------------------------------------------

def _item(i: int, rng: np.random.Generator, height: int, width: int, channels: int) -> dict[str, Any]:
    mask = np.zeros((height, width), np.int64)
    mask[: max(1, height // 4)] = 2
    has_object = i % 6 != 5
    box = None
    if has_object:
        h = int(rng.integers(3, max(4, height // 2)))
        w = int(rng.integers(3, max(4, width // 2)))
        y0 = int(rng.integers(height // 4, height - h + 1))
        x0 = int(rng.integers(0, width - w + 1))
        mask[y0:y0 + h, x0:x0 + w] = 1
        box = [x0 / width, y0 / height, (x0 + w) / width, (y0 + h) / height, 0]
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([CLASS_VALUES[mask], (cols * 200 // max(1, width - 1)).astype(np.uint8),
                      (rows * 200 // max(1, height - 1)).astype(np.uint8)], axis=-1).astype(np.uint8)
    image = image[..., :channels]
    depth = (1.0 + rows / 2.0 + cols / 100.0).astype(np.float32)
    semantic = mask.copy()
    if i % 3 == 0:
        py, px = int(rng.integers(height // 4, height - 1)), int(rng.integers(0, width - 1))
        semantic[py:py + 2, px:px + 2] = IGNORE
        depth[py:py + 2, px:px + 2] = 0.0
    return {
        "image": image,
        "semantic": semantic if i % 4 != 3 else None,
        "depth": depth.astype(np.float16).astype(np.float32) if i % 4 != 2 else None,
        "objects": (np.array([box], np.float32) if box else np.zeros((0, 5), np.float32)) if i % 5 != 4 else None,
        "scene": i % 3 if i % 7 != 6 else None,
    }


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _task_specs(splits: dict[str, list[dict[str, Any]]], height: int, width: int,
                classes: list[str]) -> list[dict[str, Any]]:
    train = splits["train"]

    def labelled(name):
        return {s: sum(item.get(name) is not None for item in items) for s, items in splits.items()}

    masks = [item["semantic"] for item in train if item.get("semantic") is not None]
    depths = np.concatenate([item["depth"].ravel() for item in train if item.get("depth") is not None])
    boxes = [np.asarray(item["objects"]).reshape(-1, 5) for item in train if item.get("objects") is not None]
    per_class = [int(sum((b[:, 4] == c).sum() for b in boxes)) for c in range(len(OBJECT_CLASSES))]
    valid = depths[depths > 0]
    return [
        {"name": "semantic", "type": "segmentation", "label_key": KEYS["semantic"], "dtype": "int32",
         "classes": classes, "shape": [height, width], "ignore_index": IGNORE, "labelled": labelled("semantic"),
         "positives": {s: [sum(bool((item["semantic"] == c).any()) for item in items
                                if item.get("semantic") is not None) for c in range(len(classes))]
                       for s, items in splits.items()},
         "stats": {"pixels": [int(sum((m == c).sum() for m in masks)) for c in range(len(classes))],
                   "ignored": int(sum((m == IGNORE).sum() for m in masks))}},
        {"name": "depth", "type": "depth", "label_key": KEYS["depth"], "dtype": "float32",
         "shape": [height, width], "labelled": labelled("depth"),
         "stats": {"valid": int(valid.size), "invalid": int(depths.size - valid.size),
                   "min": float(valid.min()), "max": float(valid.max()), "mean": float(valid.mean())}},
        {"name": "objects", "type": "detection", "label_key": KEYS["objects"], "dtype": "float32",
         "classes": OBJECT_CLASSES, "shape": [MAX_BOXES, 5], "labelled": labelled("objects"),
         "positives": {s: [int(sum((np.asarray(item["objects"]).reshape(-1, 5)[:, 4] == c).sum()
                                   for item in items if item.get("objects") is not None))
                           for c in range(len(OBJECT_CLASSES))] for s, items in splits.items()},
         "stats": {"boxes": per_class, "images": len(boxes), "max_per_image": max((len(b) for b in boxes), default=0)}},
        {"name": "scene", "type": "multiclass", "label_key": KEYS["scene"], "dtype": "int64", "classes": SCENES,
         "labelled": labelled("scene"),
         "positives": {s: [sum(item.get("scene") == c for item in items) for c in range(len(SCENES))]
                       for s, items in splits.items()}},
    ]
