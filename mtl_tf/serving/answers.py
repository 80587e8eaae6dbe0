"""The JSON answer of one image row: image-level outputs as they are, dense maps as PNG files
(or a summary), detections as boxes in the input image's pixels.

A row's object starts with ``"image"`` (the input path) and holds, per output of the
signature, keyed by task name:

- image-level tasks (binary, multiclass, multilabel, regression): the output as for a
  tabular row (a probability, a vector of probabilities, a number);
- segmentation (and ``derive: boundaries``): with a folder for files, ``{"png": PATH}``, the
  8-bit class-index PNG (a recipe's segmentation task has at most 255 classes, as its
  ``ignore_index`` is at most 255) at the stored size (the feature's height x width, as the
  model saw the image); else ``{"size": [w, h], "pixels": {class: count}}``;
- depth: with a folder, ``{"png": PATH, "scale": s}``, a 16-bit PNG of ``round(depth * s)``
  (clipped to 0..65535), ``s`` the task's ``depth_scale`` (256 where it is 1, i.e. depth
  labels not stored as integer PNGs), so it reads back as the depth labels do; else
  ``{"size": [w, h], "min", "mean", "max"}``;
- per-pixel probabilities (``export.dense_probabilities``): with a folder, ``{"npy": PATH}``
  (float32 height x width x classes); else ``{"shape": [...]}``;
- detection: ``[{"box": [x_min, y_min, x_max, y_max], "class": name, "score": p}, ...]``,
  the detections with ``score >= min_score``, best first, in the input image's pixels: the
  placement (scale, padding offset, crop) undone and the box clipped to the image; a box
  that lies wholly in the padding is left out.

Rows with a mask or depth map also get ``"placement"``: ``{"region": [x0, y0, x1, y1]}``,
the input's region (its pixels) that was resized, and ``"at": [x, y, w, h]``, where it lies in
the maps. PATH is relative to the folder holding the output file: ``<folder name>/<row>_<output>.png``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from mtl_tf.evaluation.prediction_grid import class_name
from mtl_tf.recipe.schema import Recipe
from mtl_tf.serving.predict import json_value

DEFAULT_MIN_SCORE = 0.3
DEFAULT_DEPTH_PNG_SCALE = 256.0
UINT16_MAX = 65535


def dense_folder(output_path: str | Path) -> Path:
    """Where the PNG files of an output file go: ``answers.jsonl`` -> ``answers/`` beside it."""
    path = Path(output_path)
    return path.with_suffix("") if path.suffix else path.with_name(f"{path.name}_files")


def depth_png_scale(task: Any) -> float:
    """What a predicted depth is multiplied by in its 16-bit PNG: the task's depth_scale, 256 where it is 1."""
    scale = float(task.depth_scale)
    return scale if scale != 1.0 else DEFAULT_DEPTH_PNG_SCALE


def depth_png(depth: np.ndarray, scale: float) -> bytes:
    """Depths (h, w) -> a 16-bit PNG of ``round(depth * scale)``, clipped to 0..65535."""
    values = np.round(np.asarray(depth, np.float32).astype(np.float64) * scale)
    return _png(np.clip(values, 0, UINT16_MAX).astype(np.uint16))


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    from pipelines.images.convert import PNG_COMPRESS_LEVEL

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


class ImageAnswers:
    """Turns an image row's signature outputs into its JSON object (see the module docstring).

    Args:
        recipe: the recipe the model was trained with (its tasks and image feature).
        folder: where dense maps are written as files; None: summarised in the JSON.
        min_score: detections with a lower score are left out.

    Raises:
        ValueError: ``min_score`` is outside [0, 1], or the recipe has no image feature.
    """

    def __init__(self, recipe: Recipe, folder: str | Path | None = None, min_score: float = DEFAULT_MIN_SCORE):
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be within [0, 1]; received {min_score}")
        feature = recipe.data.image_feature
        if feature is None:
            raise ValueError("ImageAnswers answers image recipes; the recipe has no image feature")
        self.size = (feature.width, feature.height)
        self.folder = Path(folder) if folder is not None else None
        self.min_score = float(min_score)
        self.files = 0
        self._parts: dict[str, tuple[str, Any]] = {}
        for task in recipe.tasks:
            if task.type == "detection":
                for part in ("boxes", "scores", "classes"):
                    self._parts[f"{task.name}_{part}"] = ("detection", task)
            elif task.type == "segmentation":
                self._parts[task.name] = ("mask", task)
                self._parts[f"{task.name}_probabilities"] = ("probabilities", task)
            elif task.type == "depth":
                self._parts[task.name] = ("depth", task)

    def __call__(self, row: Any, outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
        answer: dict[str, Any] = {"image": row.image}
        maps = False
        for name, value in outputs.items():
            kind, task = self._parts.get(name, (None, None))
            if kind is None:
                answer[name] = json_value(value)
            elif kind == "detection":
                if task.name not in answer:
                    answer[task.name] = self._detections(row, task, outputs)
            else:
                answer[name] = self._dense[kind](self, row, name, task, value)
                maps = True
        if maps:
            x0, y0, x1, y1 = row.placement.box
            answer["placement"] = {"region": [float(x0), float(y0), float(x1), float(y1)],
                                   "at": [*row.placement.offset, *row.placement.size]}
        return answer

    def _detections(self, row: Any, task: Any, outputs: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
        from pipelines.images.geometry import source_boxes

        name = task.name
        boxes = np.asarray(outputs[f"{name}_boxes"], np.float32).astype(np.float64).reshape(-1, 4)
        scores = np.asarray(outputs[f"{name}_scores"], np.float32).reshape(-1)
        classes = np.asarray(outputs[f"{name}_classes"]).astype(np.int64).reshape(-1)
        keep = np.flatnonzero((scores >= self.min_score) & (classes >= 0))
        width, height = self.size
        mapped, kept = source_boxes(boxes[keep] * [width, height, width, height], row.placement, *row.source_size)
        return [{"box": [float(v) for v in box], "class": class_name(task, int(classes[keep[i]])),
                 "score": json_value(scores[keep[i]])} for box, i in zip(mapped, kept)]

    def _mask(self, row: Any, name: str, task: Any, value: Any) -> dict[str, Any]:
        from pipelines.images.convert import encode_mask

        mask = np.asarray(value).astype(np.int64)
        if self.folder is None:
            counts = np.bincount(np.clip(mask, 0, None).ravel(), minlength=len(task.classes or []))
            return {"size": [mask.shape[1], mask.shape[0]],
                    "pixels": {class_name(task, i): int(count) for i, count in enumerate(counts)}}
        return {"png": self._write(row, name, ".png", encode_mask(mask))}

    def _depth(self, row: Any, name: str, task: Any, value: Any) -> dict[str, Any]:
        depth = np.asarray(value, np.float32)
        if self.folder is None:
            return {"size": [depth.shape[1], depth.shape[0]], "min": json_value(depth.min()),
                    "mean": json_value(depth.mean()), "max": json_value(depth.max())}
        scale = depth_png_scale(task)
        return {"png": self._write(row, name, ".png", depth_png(depth, scale)), "scale": scale}

    def _probabilities(self, row: Any, name: str, task: Any, value: Any) -> dict[str, Any]:
        probabilities = np.asarray(value, np.float32)
        if self.folder is None:
            return {"shape": list(probabilities.shape)}
        buffer = io.BytesIO()
        np.save(buffer, probabilities, allow_pickle=False)
        return {"npy": self._write(row, name, ".npy", buffer.getvalue())}

    _dense: dict[str, Callable[..., dict[str, Any]]] = {"mask": _mask, "depth": _depth,
                                                        "probabilities": _probabilities}

    def _write(self, row: Any, name: str, suffix: str, data: bytes) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        file_name = f"{row.row}_{name}{suffix}"
        (self.folder / file_name).write_bytes(data)
        self.files += 1
        return f"{self.folder.name}/{file_name}"

