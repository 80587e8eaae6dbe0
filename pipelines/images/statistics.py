"""Statistics of the image pipeline, merged with one CombineFn: counts, pixels and labels.

:class:`ImageSummaryFn` merges the partial summaries of batches of items (one per batch, as
the CSV pipeline does) into the ``summary.json`` contents:

- counts: items read, examples per split, rejects per reason kind (with one reason each);
- the image feature over train: per-channel sums and sums of squares of the stored pixels
  (0-255), as exact integers, so the mean and standard deviation are exact whatever the
  number of images;
- other features over train (:class:`pipelines.statistics.FeatureStatsFn`);
- per task and split: labelled items and positives (binary: positives; multiclass,
  multilabel: per class; segmentation: images holding each class; detection: boxes per class)
  or, for a regression label (a column, or a derived ``box_count``), its count, mean, std,
  min and max (:func:`pipelines.statistics.label_stats`);
- per dense task over train: segmentation pixels per class and ignored pixels, depth valid
  and invalid pixels with min, max and mean, detection boxes per class, labelled images and
  the most boxes in one image.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping, Sequence

import apache_beam as beam
import numpy as np

from mtl_tf.recipe.schema import Feature, Task
from pipelines.statistics import FeatureStatsFn, NumericStatsFn, merge_moments, label_stats

_PER_CLASS = ("multiclass", "multilabel", "segmentation", "detection")


class ImageSummaryFn(beam.CombineFn):
    """Merges partial summaries of the image pipeline; see the module docstring.

    Args:
        image: the recipe's image feature.
        features: its other features.
        tasks: the recipe tasks.
    """

    def __init__(self, image: Feature, features: Sequence[Feature], tasks: Sequence[Task]):
        self.channels = image.channels
        self.features = FeatureStatsFn(features)
        self.tasks = [(t.name, t.type, t.derive, len(t.classes or []), t.ignore_index) for t in tasks]
        self.moments = NumericStatsFn()

    # --- accumulators -------------------------------------------------------------------------------------------

    def create_accumulator(self) -> dict[str, Any]:
        return {"items_in": 0, "written": {}, "rejected": {}, "examples": {},
                "image": [0, [0] * self.channels, [0] * self.channels, 0],
                "features": self.features.create_accumulator(), "labels": {},
                "dense": {name: self._dense_accumulator(kind, classes) for name, kind, _, classes, _ in self.tasks
                          if kind in ("segmentation", "depth", "detection")}}

    @staticmethod
    def _dense_accumulator(kind: str, classes: int) -> list:
        if kind == "segmentation":
            return [[0] * classes, 0]  # pixels per class, ignored pixels
        if kind == "depth":
            return [0, 0, None, None, 0.0]  # valid, invalid, min, max, sum
        return [[0] * classes, 0, 0]  # boxes per class, images, most boxes in one image

    def _label_accumulator(self) -> dict[str, list]:
        return {name: [0, self._no_positives(kind, classes)] for name, kind, _, classes, _ in self.tasks}

    def _no_positives(self, kind: str, classes: int) -> Any:
        if kind == "regression":
            return self.moments.create_accumulator()  # the label's moments
        return [0] * classes if kind in _PER_CLASS else 0

    # --- folding one batch in -----------------------------------------------------------------------------------

    def add_reject(self, acc: dict[str, Any], kind: str, reason: str) -> None:
        """Counts one rejected item (and keeps its reason if it is the first of its kind)."""
        acc["rejected"][kind] = acc["rejected"].get(kind, 0) + 1
        acc["examples"].setdefault(kind, reason)

    def add_example(self, acc: dict[str, Any], split: str, image: np.ndarray, features: Mapping[str, Any],
                    labels: Mapping[str, Any]) -> None:
        """Counts one written example of ``split``.

        Args:
            acc: the accumulator, updated in place.
            split: the example's split.
            image: the stored uint8 (height, width, channels) image.
            features: the other features' typed values.
            labels: task name -> its stored label (absent: unlabelled): a uint8 mask, a float32
                depth map, an int64 array of box classes, or an image-level typed value.
        """
        acc["written"][split] = acc["written"].get(split, 0) + 1
        counts = acc["labels"].setdefault(split, self._label_accumulator())
        for name, kind, derive, classes, ignore in self.tasks:
            if name not in labels:
                continue
            label = labels[name]
            counts[name][0] += 1
            if kind == "regression":
                self.moments.add_input(counts[name][1], float(label))
            else:
                counts[name][1] = _add_positives(counts[name][1], kind, label, classes, ignore)
            if split == "train" and name in acc["dense"]:
                acc["dense"][name] = _add_dense(acc["dense"][name], kind, label, classes, ignore)
        if split == "train":
            pixels = image.reshape(-1, image.shape[-1]).astype(np.int64)
            stats = acc["image"]
            stats[0] += 1
            stats[1] = [a + int(b) for a, b in zip(stats[1], pixels.sum(axis=0))]
            stats[2] = [a + int(b) for a, b in zip(stats[2], (pixels * pixels).sum(axis=0))]
            stats[3] += pixels.shape[0]
            acc["features"] = self.features.add_batch(acc["features"], [features])

    # --- CombineFn ----------------------------------------------------------------------------------------------

    def add_input(self, acc: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
        return self.merge_accumulators([acc, partial])

    def merge_accumulators(self, accumulators) -> dict[str, Any]:
        accumulators = list(accumulators) or [self.create_accumulator()]
        merged = self.create_accumulator()
        merged["items_in"] = sum(acc["items_in"] for acc in accumulators)
        for key in ("written", "rejected"):
            totals: Counter = Counter()
            for acc in accumulators:
                totals.update(acc[key])
            merged[key] = dict(totals)
        for acc in accumulators:
            for kind, reason in acc["examples"].items():
                merged["examples"].setdefault(kind, reason)
        merged["image"] = [sum(acc["image"][0] for acc in accumulators),
                           [sum(v) for v in zip(*(acc["image"][1] for acc in accumulators))],
                           [sum(v) for v in zip(*(acc["image"][2] for acc in accumulators))],
                           sum(acc["image"][3] for acc in accumulators)]
        merged["features"] = self.features.merge_accumulators([acc["features"] for acc in accumulators])
        for split in sorted({split for acc in accumulators for split in acc["labels"]}):
            merged["labels"][split] = self._merge_labels([acc["labels"][split] for acc in accumulators
                                                          if split in acc["labels"]])
        kinds = {name: kind for name, kind, *_ in self.tasks}
        for name in merged["dense"]:
            merged["dense"][name] = _merge_dense(kinds[name], [acc["dense"][name] for acc in accumulators])
        return merged

    def _merge_labels(self, parts: list[dict[str, list]]) -> dict[str, list]:
        kinds = {name: kind for name, kind, *_ in self.tasks}
        merged = self._label_accumulator()
        for part in parts:
            for name, (labelled, positives) in part.items():
                merged[name][0] += labelled
                if kinds[name] == "regression":
                    merged[name][1] = merge_moments(merged[name][1], positives)
                else:
                    merged[name][1] = (_add_lists(merged[name][1], positives) if isinstance(positives, list)
                                       else merged[name][1] + positives)
        return merged

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        kinds = {name: kind for name, kind, *_ in self.tasks}
        labels = {split: {name: self._label_output(kinds[name], labelled, positives)
                          for name, (labelled, positives) in counts.items()}
                  for split, counts in acc["labels"].items()}
        return {"counts": {"items_in": acc["items_in"], "written": dict(acc["written"]),
                           "rejected": dict(acc["rejected"])},
                "reject_examples": dict(acc["examples"]),
                "image": image_stats(*acc["image"]),
                "features": self.features.extract_output(acc["features"]),
                "labels": labels,
                "dense": {name: _dense_output(kinds[name], stats) for name, stats in acc["dense"].items()}}

    def _label_output(self, kind: str, labelled: int, positives: Any) -> dict[str, Any]:
        if kind == "regression":
            return {"labelled": labelled, "positives": None,
                    "stats": label_stats(self.moments.extract_output(positives))}
        return {"labelled": labelled, "positives": None if kind == "depth" else positives}


def image_stats(count: int, sums: Sequence[int], squares: Sequence[int], pixels: int) -> dict[str, Any]:
    """``ImageStats`` fields from exact integer sums: population mean and std per channel."""
    if pixels == 0:
        return {"count": count, "missing": 0, "mean": [0.0] * len(sums), "std": [0.0] * len(sums)}
    means = [s / pixels for s in sums]
    # (n * sum(x^2) - sum(x)^2) / n^2 in integers: exact, never negative.
    stds = [math.sqrt((pixels * q - s * s) / (pixels * pixels)) for s, q in zip(sums, squares)]
    return {"count": count, "missing": 0, "mean": means, "std": stds}


def _add_lists(a: list, b: list) -> list:
    return [x + y for x, y in zip(a, b)]


def _add_positives(positives: Any, kind: str, label: Any, classes: int, ignore: int) -> Any:
    if kind == "binary":
        return positives + (label == 1.0)
    if kind == "multiclass":
        positives[label] += 1
        return positives
    if kind == "multilabel":
        return [n + (v == 1.0) for n, v in zip(positives, label)]
    if kind == "segmentation":
        present = np.bincount(label[label != ignore].ravel(), minlength=classes)[:classes] > 0
        return [n + int(p) for n, p in zip(positives, present)]
    if kind == "detection":
        return _add_lists(positives, np.bincount(label, minlength=classes)[:classes].tolist())
    return positives


def _add_dense(stats: list, kind: str, label: np.ndarray, classes: int, ignore: int) -> list:
    if kind == "segmentation":
        counts = np.bincount(label.ravel(), minlength=256)
        return [_add_lists(stats[0], counts[:classes].tolist()), stats[1] + int(counts[ignore])]
    if kind == "depth":
        valid = label[label > 0]
        if not len(valid):
            return [stats[0], stats[1] + label.size, *stats[2:]]
        low, high = float(valid.min()), float(valid.max())
        return [stats[0] + valid.size, stats[1] + label.size - valid.size,
                low if stats[2] is None else min(stats[2], low), high if stats[3] is None else max(stats[3], high),
                stats[4] + float(valid.astype(np.float64).sum())]
    return [_add_lists(stats[0], np.bincount(label, minlength=classes)[:classes].tolist()), stats[1] + 1,
            max(stats[2], len(label))]


def _merge_dense(kind: str, parts: list[list]) -> list:
    if kind == "segmentation":
        return [[sum(v) for v in zip(*(p[0] for p in parts))], sum(p[1] for p in parts)]
    if kind == "depth":
        lows = [p[2] for p in parts if p[2] is not None]
        highs = [p[3] for p in parts if p[3] is not None]
        return [sum(p[0] for p in parts), sum(p[1] for p in parts), min(lows) if lows else None,
                max(highs) if highs else None, math.fsum(p[4] for p in parts)]
    return [[sum(v) for v in zip(*(p[0] for p in parts))], sum(p[1] for p in parts), max(p[2] for p in parts)]


def _dense_output(kind: str, stats: list) -> dict[str, Any]:
    if kind == "segmentation":
        return {"pixels": stats[0], "ignored": stats[1]}
    if kind == "depth":
        return {"valid": stats[0], "invalid": stats[1], "min": stats[2], "max": stats[3],
                "mean": stats[4] / stats[0] if stats[0] else None}
    return {"boxes": stats[0], "images": stats[1], "max_per_image": stats[2]}
