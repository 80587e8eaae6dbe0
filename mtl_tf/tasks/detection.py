"""Object detection as centre points (CenterNet): per-class centre heatmaps plus box sizes."""

from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf

from mtl_tf.tasks import TASK_TYPES
from mtl_tf.tasks.centernet import HEATMAP_PRIOR_BIAS, center_targets, decode_detections, focal_loss, regression_l1
from mtl_tf.tasks.coco_metric import CocoAveragePrecision, DetectionStore
from mtl_tf.tasks.dense import DenseTask, int_option, number_option

_PARTS = (("heatmap", None), ("size", 2), ("offset", 2))


@TASK_TYPES.register("detection")
class DetectionTask(DenseTask):
    """Label: padded boxes float32 ``(B, max_boxes, 5)`` ``[x_min, y_min, x_max, y_max, class]``
    relative to the image, padding rows ``[0, 0, 0, 0, -1]`` (a labelled image may have no box).
    Output: the packed CenterNet maps float32 ``(B, H/s, W/s, classes + 4)`` on the feature map
    at ``output_stride`` s: per-class centre heatmaps (sigmoid, bias -2.19), the box size
    ``(w, h)`` as fractions of the image (sigmoid) and the centre's offset ``(dx, dy)`` in
    its cell (sigmoid). Each part is a 3x3 convolution with ReLU and a 1x1 convolution
    (``<task>_heatmap``, ``<task>_size``, ``<task>_offset``), concatenated as ``<task>``.

    Loss ``centernet`` per row: ``heatmap * focal + size * L1(size) + offset * L1(offset)``,
    the penalty-reduced focal loss (alpha 2, beta 4) against Gaussian targets built in the
    graph from the boxes (radius from the box size at IoU 0.7), divided by the row's number
    of objects, and the L1 losses at the boxes' centre cells (mean over boxes and
    coordinates); a row without boxes pays the heatmap term only. Options (weights):
    ``heatmap`` 1, ``size`` 1, ``offset`` 1. CenterNet weighs its size term 0.1 because it
    regresses sizes in output pixels (tens of cells); sizes here are fractions of the image,
    so their errors are 10-100 times smaller and a weight of 1 keeps the term comparable.

    Head options: ``output_stride`` (default 4), ``channels`` (width of each part's 3x3
    convolution, default 64), ``max_detections`` (decoded per image, default 100).

    Metrics: ``map`` (COCO mAP@[.5:.95]) and ``map_50`` (AP@0.5), by pycocotools over the
    whole evaluation pass, in pixels of the stored image size; they run in Python
    (``metrics_support_jit`` is False).

    Serving: ``<task>_boxes`` (B, K, 4) relative, ``<task>_scores`` (B, K), ``<task>_classes``
    (B, K) int32, K = ``max_detections``, best first.

    Args:
        max_boxes: boxes per image in the label (dataset.json's shape must agree).
        image_size: ``(height, width)`` of the stored images (from the image feature).
        (others): see :class:`~mtl_tf.tasks.dense.DenseTask`.
    """

    registered_type = "detection"
    default_metrics = ("map", "map_50")
    jit_incompatible_metrics = frozenset({"map", "map_50"})
    losses = {"centernet": ("heatmap", "size", "offset")}
    default_loss = "centernet"
    head_options = ("output_stride", "channels", "max_detections")

    def __init__(self, name: str, classes: Sequence[str] | None = None, *, max_boxes: int = 32,
                 image_size: Sequence[int] | None = None, **options: Any):
        super().__init__(name, classes=classes, **options)
        if not self.classes:
            raise ValueError(f"{self._where('classes')}: a detection task needs its class names; received {classes!r}")
        self.max_boxes = int_option(self._where("max_boxes"), max_boxes)
        if list(self.spec.shape) not in ([], [self.max_boxes, 5]):
            raise ValueError(f"{self._where('max_boxes')}: {self.max_boxes} disagrees with the dataset's label "
                             f"shape {self.spec.shape}; run `mtl data preprocess` again for this recipe")
        head = self.head_config
        self._stride = int_option(self._where("head.output_stride"), head.get("output_stride", 4))
        self.channels = int_option(self._where("head.channels"), head.get("channels", 64))
        self.max_detections = int_option(self._where("head.max_detections"), head.get("max_detections", 100))
        self.loss_weights = {part: number_option(self._where(f"loss.{part}"), self.loss_options.get(part, 1.0))
                             for part in ("heatmap", "size", "offset")}
        self.image_size = self._check_image_size(image_size)

    @classmethod
    def recipe_options(cls, task, spec, path):
        options = super().recipe_options(task, spec, path)
        images = [f for f in spec.features if f.kind == "image"]
        if len(images) != 1:
            raise ValueError(f"{path}: a detection task needs the dataset's one image feature (its size); "
                             f"dataset '{spec.name}' has {len(images)}: {[f.name for f in images]}")
        return {**options, "max_boxes": task.max_boxes, "image_size": images[0].shape[:2]}

    def _check_image_size(self, image_size: Sequence[int] | None) -> tuple[int, int]:
        where = self._where("image_size")
        if image_size is None or len(image_size) != 2 or any(int(v) < 1 for v in image_size):
            raise ValueError(f"{where}: a detection task needs the stored image (height, width); received "
                             f"{image_size!r}")
        height, width = (int(v) for v in image_size)
        if height % self._stride or width % self._stride:
            raise ValueError(f"{self._where('head.output_stride')}: {self._stride} must divide the image size "
                             f"{height}x{width}")
        return height, width

    # --- data ---------------------------------------------------------------------------------
    @property
    def label_shape(self):
        return [self.max_boxes, 5]

    def mask(self, label):
        """Fallback presence mask (the reader gives the real one, which also marks images
        labelled with no box): some box is present."""
        return tf.cast(tf.reduce_any(label[..., 4] >= 0, axis=-1), tf.float32)

    def missing_label(self, rows):
        padding = tf.constant([0.0, 0.0, 0.0, 0.0, -1.0], tf.float32)
        return tf.tile(padding[None, None], [rows, self.max_boxes, 1])

    # --- model --------------------------------------------------------------------------------
    @property
    def units(self):
        return len(self.classes) + 4

    @property
    def output_stride(self):
        return self._stride

    def head(self, x):
        parts = []
        for part, width in _PARTS:
            hidden = keras.layers.Conv2D(self.channels, 3, padding="same", activation="relu",
                                         name=f"{self.name}_{part}_conv")(x)
            bias = keras.initializers.Constant(HEATMAP_PRIOR_BIAS) if part == "heatmap" else "zeros"
            parts.append(keras.layers.Conv2D(width or len(self.classes), 1, activation="sigmoid",
                                             bias_initializer=bias, dtype="float32",
                                             name=f"{self.name}_{part}")(hidden))
        return keras.layers.Concatenate(axis=-1, dtype="float32", name=self.name)(parts)

    def per_example_loss(self, label, output):
        output = tf.cast(output, tf.float32)
        shape = tf.shape(output)
        classes = len(self.classes)
        targets = center_targets(label, shape[1], shape[2], classes)
        heatmap = focal_loss(output[..., :classes], targets.heatmap)
        size, offset = regression_l1(output, targets, classes)
        weights = self.loss_weights
        return weights["heatmap"] * heatmap + weights["size"] * size + weights["offset"] * offset

    def decode(self, output: tf.Tensor) -> dict[str, tf.Tensor]:
        """``decode_detections`` with this task's ``max_detections``."""
        return decode_detections(output, self.max_detections)

    def serving_outputs(self, output):
        return {f"{self.name}_{key}": value for key, value in self.decode(output).items()}

    # --- metrics ------------------------------------------------------------------------------
    def _metric(self, kind: str, store: DetectionStore | None = None, records: bool = True):
        return CocoAveragePrecision(kind, classes=len(self.classes), image_size=self.image_size,
                                    max_detections=self.max_detections, name=kind, store=store, records=records)

    def metric_factories(self):
        return {kind: (lambda kind=kind: self._metric(kind)) for kind in ("map", "map_50")}

    def make_metrics(self):
        """The task's metrics, sharing one store of detections (decoded and evaluated once)."""
        store = DetectionStore(len(self.classes), self.image_size, self.max_detections)
        return {name: self._metric(name, store, records=(i == 0)) for i, name in enumerate(self.metric_names)}

    def describe(self):
        return {**super().describe(), "loss": self.loss_name, "loss_weights": self.loss_weights,
                "max_boxes": self.max_boxes, "output_stride": self.output_stride,
                "max_detections": self.max_detections}
