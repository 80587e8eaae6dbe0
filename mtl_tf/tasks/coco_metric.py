"""COCO box AP of a detection task, computed by pycocotools over a whole evaluation pass.

The metric decodes each batch in the graph, then hands the boxes to Python
(``tf.py_function``) where they wait until ``result()`` runs ``COCOeval`` on everything seen
since the last ``reset_state()``. That works inside a ``tf.function`` step (MirroredStrategy
included) but not under XLA: the metric has ``supports_jit = False`` so a compiled
evaluation step can leave XLA off when such a metric is present. Replicas of one machine
add to the same store; under several workers each worker scores the images it read.
pycocotools is imported when a result is first computed.
"""

from __future__ import annotations

import contextlib
import io
import threading
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.tasks.centernet import decode_detections

# COCOeval's summary: AP@[.5:.95], AP@.5, AP@.75 (all areas, the largest maxDets).
_STAT_INDEX = {"map": 0, "map_50": 1, "map_75": 2}


class DetectionStore:
    """Ground truth and decoded detections of the images seen since the last ``clear``.

    Args:
        classes: the number of classes.
        image_size: ``(height, width)`` of the stored images: boxes go to COCO in pixels.
        max_detections: detections kept per image (COCOeval's largest maxDets).
    """

    def __init__(self, classes: int, image_size: Sequence[int], max_detections: int):
        self.classes, self.image_size, self.max_detections = int(classes), tuple(image_size), int(max_detections)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.images = 0
            self.ground_truth: list[dict[str, Any]] = []
            self.detections: list[dict[str, Any]] = []
            self._stats: np.ndarray | None = None

    def add(self, labels: np.ndarray, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
            weights: np.ndarray) -> None:
        """One batch: ``labels`` (B, K, 5) padded relative boxes; decoded ``boxes`` (B, D, 4),
        ``scores`` and ``classes`` (B, D); rows with weight 0 (unlabelled) are skipped."""
        height, width = self.image_size
        scale = np.array([width, height, width, height], np.float64)
        with self._lock:
            for row in np.flatnonzero(np.asarray(weights) > 0):
                image = self.images
                self.images += 1
                truth = labels[row][labels[row][:, 4] >= 0]
                for box in truth:
                    x0, y0, x1, y1 = box[:4] * scale
                    self.ground_truth.append({"id": len(self.ground_truth) + 1, "image_id": image,
                                              "category_id": int(round(box[4])) + 1, "iscrowd": 0,
                                              "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0)})
                keep = classes[row] >= 0
                for box, score, label in zip(boxes[row][keep] * scale, scores[row][keep], classes[row][keep]):
                    x0, y0, x1, y1 = box
                    self.detections.append({"image_id": image, "category_id": int(label) + 1, "score": float(score),
                                            "bbox": [x0, y0, x1 - x0, y1 - y0]})
            self._stats = None

    def stats(self) -> np.ndarray:
        """COCOeval's 12 summary numbers (cached until the next ``add`` or ``clear``); AP is 0
        when nothing was detected, and every number is 0 when no ground-truth box was seen."""
        with self._lock:
            if self._stats is None:
                self._stats = self._evaluate()
            return self._stats

    def _evaluate(self) -> np.ndarray:
        if not self.ground_truth or not self.detections:
            return np.zeros(12)
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        height, width = self.image_size
        with contextlib.redirect_stdout(io.StringIO()):
            truth = COCO()
            truth.dataset = {"images": [{"id": i, "height": height, "width": width} for i in range(self.images)],
                             "annotations": list(self.ground_truth),
                             "categories": [{"id": c + 1, "name": str(c)} for c in range(self.classes)]}
            truth.createIndex()
            found = truth.loadRes([dict(d) for d in self.detections])
            evaluation = COCOeval(truth, found, "bbox")
            evaluation.params.maxDets = [1, 10, max(100, self.max_detections)]
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        return np.maximum(np.asarray(evaluation.stats, np.float64), 0.0)


@keras.saving.register_keras_serializable(package="mtl_tf")
class CocoAveragePrecision(keras.metrics.Metric):
    """COCO box AP of a packed CenterNet output against padded boxes, over a whole pass.

    ``update_state(labels, output, sample_weight)``: labels ``(B, K, 5)`` relative
    ``[x_min, y_min, x_max, y_max, class]`` (class -1 pads), the packed output
    ``(B, h, w, C + 4)``, one weight per row (rows with weight 0 are left out; a labelled
    row without boxes is an image without objects). ``result()`` runs pycocotools' COCOeval.

    Args:
        kind: ``map`` (AP@[.5:.95]), ``map_50`` (AP@.5) or ``map_75``.
        classes: the task's number of classes.
        image_size: ``(height, width)`` of the stored images.
        max_detections: detections decoded per image.
        store: a :class:`DetectionStore` shared with other kinds of the same task (then only
            the metric with ``records=True`` adds to it and clears it).
        records: whether this metric adds batches to the store and clears it.
    """

    supports_jit = False

    def __init__(self, kind: str = "map", classes: int = 1, image_size: Sequence[int] = (1, 1),
                 max_detections: int = 100, name: str | None = None, dtype: str = "float32",
                 store: DetectionStore | None = None, records: bool = True):
        if kind not in _STAT_INDEX:
            raise ValueError(f"COCO metric: unknown kind {kind!r}; allowed: {', '.join(_STAT_INDEX)}")
        super().__init__(name=name or kind, dtype=dtype)
        self.kind, self.classes = kind, int(classes)
        self.image_size, self.max_detections = tuple(int(v) for v in image_size), int(max_detections)
        self.records = records if store is not None else True
        self._store = store or DetectionStore(self.classes, self.image_size, self.max_detections)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if not self.records:
            return
        found = decode_detections(y_pred, self.max_detections)
        labels = tf.cast(y_true, tf.float32)
        weights = tf.ones(tf.shape(labels)[:1]) if sample_weight is None else tf.cast(sample_weight, tf.float32)
        tf.py_function(self._add, [labels, found["boxes"], found["scores"], found["classes"], weights], [])

    def _add(self, labels, boxes, scores, classes, weights):
        self._store.add(labels.numpy(), boxes.numpy(), scores.numpy(), classes.numpy(), weights.numpy())

    def result(self):
        index = _STAT_INDEX[self.kind]
        value = tf.py_function(lambda: np.float32(self._store.stats()[index]), [], tf.float32)
        return tf.ensure_shape(value, [])

    def reset_state(self):
        if not self.records:
            return
        if tf.executing_eagerly():
            self._store.clear()
        else:
            tf.py_function(self._store.clear, [], [])

    def get_config(self):
        return {"kind": self.kind, "classes": self.classes, "image_size": list(self.image_size),
                "max_detections": self.max_detections, "name": self.name, "dtype": self.dtype}
