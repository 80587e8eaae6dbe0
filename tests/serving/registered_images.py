"""A tiny image recipe trained and registered with `mtl run`, for the image tests of `mtl predict`.

Scenes (deterministic): source images of two sizes, 40 x 30 (landscape) and 30 x 40
(portrait), stored at 32 x 32 with ``resize: pad``, so every prediction has a scale and a
padding offset to undo. Each scene is sky above, road below and one car (a rectangle of its
own colour); its manifest row holds the image, a class-index mask PNG, a 16-bit depth PNG
(1/256 m), the car's box in source pixels, a weather label and ``frame``, the scene's index,
learned as a regression task and stored in the example: it tells which TFRecord example is
which manifest row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

NAME = "tiny_scenes"
SIZE = 32
SOURCE_SIZES = ((40, 30), (30, 40))  # (width, height): pad scale 0.8, offsets (0, 4) and (4, 0)
CLASSES = ["sky", "road", "car"]
WEATHER = ["clear", "fog"]
DEPTH_SCALE = 256
SCENES = 24
LABEL_KEYS = ("mask", "depth", "boxes/boxes", "boxes/classes", "boxes/labelled", "weather", "frame")


@dataclass(frozen=True)
class RegisteredImages:
    """Where the registered image model lives."""

    root: Path
    uri: str
    recipe: Path
    manifest: Path
    dataset: Path

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def export_dir(self, version: int = 1) -> str:
        return self.client().get_model_version(NAME, str(version)).source


def scene(i: int) -> dict:
    """Scene ``i``: its image (h, w, 3), mask, depth (metres), car box (source pixels) and weather."""
    rng = np.random.default_rng(100 + i)
    width, height = SOURCE_SIZES[i % 2]
    horizon = int(rng.integers(height // 4, height // 2))
    mask = np.ones((height, width), np.uint8)
    mask[:horizon] = 0
    w, h = int(rng.integers(6, width // 2)), int(rng.integers(5, height // 3))
    x0, y0 = int(rng.integers(0, width - w)), int(rng.integers(horizon, height - h))
    mask[y0:y0 + h, x0:x0 + w] = 2
    colours = np.array([[90, 150, 230], [70, 70, 70], [200, 30, 30]], np.uint8)
    image = colours[mask] + rng.integers(0, 20, (height, width, 3)).astype(np.uint8)
    if i % 3 == 1:  # fog lifts the contrast
        image = (image // 2 + 110).astype(np.uint8)
    rows = np.arange(height, dtype=np.float64)[:, None].repeat(width, 1)
    depth = np.where(mask == 0, 0.0, 2.0 + 30.0 * (rows - horizon + 1) / height)
    depth[mask == 2] = 4.0 + i % 5
    return {"image": image, "mask": mask, "depth": depth, "box": [x0, y0, x0 + w, y0 + h],
            "weather": WEATHER[int(i % 3 == 1)]}


def write_scenes(folder: Path, count: int = SCENES) -> Path:
    """Writes ``count`` scenes and ``manifest.jsonl`` (paths relative to it) under ``folder``."""
    for sub in ("images", "masks", "depth"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        s = scene(i)
        name = f"{i:03d}.png"
        Image.fromarray(s["image"]).save(folder / "images" / name)
        Image.fromarray(s["mask"], "L").save(folder / "masks" / name)
        Image.fromarray(np.round(s["depth"] * DEPTH_SCALE).astype(np.uint16)).save(folder / "depth" / name)
        rows.append({"image": f"images/{name}", "mask": f"masks/{name}", "depth": f"depth/{name}",
                     "boxes": [[*s["box"], "car"]], "weather": s["weather"], "frame": i})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest


def recipe_mapping(root: Path) -> dict:
    return {
        "name": NAME, "output_dir": str(root / "run"),
        "data": {"source": {"kind": "manifest", "path": str(root / "raw" / "manifest.jsonl")},
                 "features": [{"name": "image", "kind": "image", "height": SIZE, "width": SIZE, "resize": "pad"}],
                 "split": {"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 3},
                 "output_dir": str(root / "dataset"), "shards": 1},
        "tasks": [{"name": "semantic", "type": "segmentation", "label": "mask", "classes": CLASSES},
                  {"name": "depth", "type": "depth", "label": "depth", "depth_scale": DEPTH_SCALE},
                  {"name": "objects", "type": "detection", "label": "boxes", "classes": ["car"], "max_boxes": 2,
                   "head": {"channels": 4, "max_detections": 6}},
                  {"name": "weather", "type": "multiclass", "label": "weather", "classes": WEATHER},
                  {"name": "frame", "type": "regression", "label": "frame"}],
        "model": {"trunk": {"name": "conv", "filters": [4, 8], "stem": 4}, "decoder": {"name": "fpn", "filters": 4},
                  "tower": {"name": "mlp", "units": [4]}},
        "training": {"epochs": 1, "batch_size": 8},
        "analysis": {"conflict_batches": 0, "affinity_batches": 0},
        "tracking": {"register_as": NAME},
        "export": {"skew_examples": 4, "dense_probabilities": True},
    }


def train_and_register(root: Path) -> RegisteredImages:
    """Writes the scenes and the recipe under ``root`` and runs `mtl run` (version 1)."""
    manifest = write_scenes(root / "raw")
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(recipe_mapping(root)))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # In a process of its own, as a user runs it. oneDNN off: with TensorFlow 2.21's oneDNN
    # kernels this model's training aborted the process ("munmap_chunk(): invalid pointer")
    # in about half the runs on a loaded 2-core machine (2 of 4), and never without them (0 of 4).
    result = subprocess.run([sys.executable, "-m", "mtl_tf.cli.main", "run", str(recipe), "--tracking-uri", uri,
                             "-q"], cwd=root, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                                 "TF_ENABLE_ONEDNN_OPTS": "0"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return RegisteredImages(root=root, uri=uri, recipe=recipe, manifest=manifest, dataset=root / "dataset")
