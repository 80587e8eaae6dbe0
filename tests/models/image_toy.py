"""Tiny image models for the image-model tests: a dense stand-in task, a dataset.json, a recipe.

``PixelClasses`` is a minimal dense task type (a 1x1 convolution to per-pixel class
probabilities and a pixel cross-entropy) standing in for the segmentation and detection
types in the model tests: the model code only relies on ``dense``, ``output_stride`` and
``head``. ``output_stride=4`` makes it a detection-like task (a map at a quarter of the size).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.data.spec import DatasetSpec
from mtl_tf.models import build_model
from mtl_tf.recipe import parse_recipe
from mtl_tf.tasks import MulticlassTask
from mtl_tf.tasks.base import TaskType

IMAGE = (32, 32, 3)
TRUNK = {"name": "resnet", "filters": [8, 16, 32], "depth": 1}
DECODER = {"name": "fpn", "filters": 8}
TOWER = {"name": "mlp", "units": [8]}


class PixelAccuracy(keras.metrics.Metric):
    """Share of pixels whose most probable class is the label (rows weighted by the mask)."""

    def __init__(self, name: str = "pixel_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        right = tf.cast(tf.equal(tf.argmax(y_pred, -1, output_type=tf.int32), tf.cast(y_true, tf.int32)), "float32")
        weight = tf.ones_like(right) if sample_weight is None else \
            tf.ones_like(right) * tf.reshape(tf.cast(sample_weight, "float32"), (-1, 1, 1))
        self.hits.assign_add(tf.reduce_sum(right * weight))
        self.count.assign_add(tf.reduce_sum(weight))

    def result(self):
        return self.hits / tf.maximum(self.count, 1.0)


class PixelClasses(TaskType):
    """A dense task: per-pixel class probabilities (B, H / stride, W / stride, classes)."""

    registered_type = "segmentation"
    default_metrics = ("pixel_accuracy",)
    label_dtype = tf.int32
    dense = True

    def __init__(self, name: str, classes: Sequence[str] = ("background", "square"), output_stride: int = 1):
        super().__init__(name, classes=classes)
        self._output_stride = output_stride

    @property
    def output_stride(self) -> int:
        return self._output_stride

    def head(self, x):
        return keras.layers.Conv2D(len(self.classes), 1, activation="softmax", dtype="float32", name=self.name)(x)

    def mask(self, label):
        return tf.ones(tf.shape(label)[:1], tf.float32)

    def clean(self, label):
        return label

    def per_example_loss(self, label, output):
        pixels = keras.losses.sparse_categorical_crossentropy(label, output)
        return tf.reduce_mean(pixels, axis=[1, 2])

    def metric_factories(self):
        return {"pixel_accuracy": PixelAccuracy}


def image_tasks(detection: bool = False) -> list[TaskType]:
    """A dense task ``mask`` (stride 1), an image-level task ``scene``, and with ``detection``
    a stride-4 dense task ``boxes``."""
    tasks: list[TaskType] = [PixelClasses("mask"), MulticlassTask("scene", classes=["day", "night", "fog"])]
    if detection:
        tasks.append(PixelClasses("boxes", classes=["car", "person", "w", "h"], output_stride=4))
    return tasks


def image_spec(shape=IMAGE, tasks: Sequence[TaskType] | None = None, numeric: bool = False) -> DatasetSpec:
    """An in-memory dataset.json with an image feature ``image`` (and a numeric ``speed``)."""
    height, width, channels = shape
    features = [{"name": "image", "kind": "image", "dtype": "uint8",
                 "image": {"height": height, "width": width, "channels": channels, "encoding": "png"},
                 "stats": {"count": 10, "mean": [100.0 + 10 * c for c in range(channels)],
                           "std": [50.0 + c for c in range(channels)]}}]
    if numeric:
        features.append({"name": "speed", "kind": "numeric", "dtype": "float32",
                         "stats": {"count": 10, "mean": 30.0, "variance": 100.0}})
    specs = []
    for task in tasks or image_tasks():
        if task.dense:
            specs.append({"name": task.name, "type": "segmentation", "label_key": task.name, "dtype": "int32",
                          "classes": task.classes, "shape": [height, width], "ignore_index": 255})
        else:
            specs.append({"name": task.name, "type": task.registered_type, "label_key": task.name,
                          "dtype": "int64", "classes": task.classes})
    return DatasetSpec.model_validate({
        "name": "toy_images", "created": "2024-01-01T00:00:00Z", "rows_in": 10, "features": features,
        "tasks": specs, "splits": {"train": {"pattern": "train-*", "num_examples": 10, "num_shards": 1}}})


def image_recipe(architecture: Any = "hps", trunk: Any = None, decoder: Any = None, shape=IMAGE,
                 tasks: Sequence[TaskType] | None = None, numeric: bool = False, tower: Any = None,
                 check: bool = True):
    """The validated recipe of an image model on :func:`image_spec`'s dataset."""
    height, width, channels = shape
    features = [{"name": "image", "kind": "image", "height": height, "width": width, "channels": channels}]
    if numeric:
        features.append({"name": "speed", "kind": "numeric"})
    recipe_tasks = []
    for task in tasks or image_tasks():
        entry = {"name": task.name, "type": task.registered_type, "label": task.name, "classes": task.classes}
        recipe_tasks.append(entry)
    model = {"architecture": architecture, "trunk": trunk or TRUNK, "tower": tower or TOWER}
    if decoder is not None:
        model["decoder"] = decoder
    raw = {"name": "toy_images", "data": {"source": {"kind": "npz", "path": "unused.npz"}, "features": features,
                                          "output_dir": "unused"},
           "tasks": recipe_tasks, "model": model}
    return parse_recipe(raw, check=check)


def image_model(architecture: Any = "hps", trunk: Any = None, decoder: Any = DECODER, shape=IMAGE,
                tasks: Sequence[TaskType] | None = None, numeric: bool = False, seed: int = 0) -> keras.Model:
    """build_model on the toy image dataset (the decoder left to the default with ``decoder=None``)."""
    keras.utils.set_random_seed(seed)
    tasks = list(tasks or image_tasks())
    recipe = image_recipe(architecture, trunk, decoder, shape, tasks, numeric)
    return build_model(recipe, image_spec(shape, tasks, numeric), tasks=tasks)


def image_batch(rows: int = 2, shape=IMAGE, numeric: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = {"image": rng.integers(0, 256, size=(rows, *shape), dtype=np.uint8)}
    if numeric:
        batch["speed"] = rng.normal(30, 10, size=(rows,)).astype("float32")
    return batch


def numpy(outputs) -> dict[str, np.ndarray]:
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
