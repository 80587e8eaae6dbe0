"""Synthetic road scenes: deterministic, geometrically consistent labels, corrupt items that the
image pipeline rejects, and the `mtl data synth` command."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mtl_tf.data.synth import synthesize, synthesize_images
from mtl_tf.data.synth.driving_perception import (CLASSES, DEPTH_SCALE, LANE, OBJECT_CLASSES, PEDESTRIAN, ROAD, SKY,
                                                  TIMES_OF_DAY, WEATHER)

ROWS = 24


def _load(folder: Path):
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    scenes = []
    for row in rows:
        scenes.append({"row": row, "image": np.asarray(Image.open(folder / row["image"])),
                       "mask": np.asarray(Image.open(folder / row["mask"])),
                       "depth": np.asarray(Image.open(folder / row["depth"])).astype(np.float64) / DEPTH_SCALE})
    return scenes


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("driving")
    synthesize_images("driving_perception", ROWS, folder, seed=3)
    return _load(folder)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_same_seed_writes_the_same_bytes_and_another_seed_others(tmp_path):
    synthesize_images("driving_perception", 5, tmp_path / "a", seed=1, height=48, width=64)
    synthesize_images("driving_perception", 5, tmp_path / "b", seed=1, height=48, width=64)
    synthesize_images("driving_perception", 5, tmp_path / "c", seed=2, height=48, width=64)
    first = _files(tmp_path / "a")
    assert len(first) == 16 and first == _files(tmp_path / "b")
    assert first["manifest.jsonl"] != _files(tmp_path / "c")["manifest.jsonl"]
    assert np.asarray(Image.open(tmp_path / "a" / "images" / "000000.png")).shape == (48, 64, 3)


def test_the_manifest_names_the_files_and_the_scene_labels(scenes):
    for scene in scenes:
        row = scene["row"]
        assert scene["image"].shape == (96, 128, 3) and scene["image"].dtype == np.uint8
        assert scene["mask"].shape == scene["depth"].shape == (96, 128)
        assert row["weather"] in WEATHER and row["time_of_day"] in TIMES_OF_DAY and row["corruption"] is None
        assert set(np.unique(scene["mask"])) <= set(range(len(CLASSES)))
    # a sequence is one street: same weather and light in all its frames
    by_sequence = {}
    for scene in scenes:
        by_sequence.setdefault(scene["row"]["sequence_id"], set()).add((scene["row"]["weather"],
                                                                         scene["row"]["time_of_day"]))
    assert len(by_sequence) == 3 and all(len(v) == 1 for v in by_sequence.values())
    classes_seen = set(np.concatenate([np.unique(s["mask"]) for s in scenes]))
    assert {SKY, ROAD, LANE} <= classes_seen


def test_road_depth_falls_towards_the_bottom_and_the_sky_has_none(scenes):
    for scene in scenes:
        mask, depth = scene["mask"], scene["depth"]
        assert (depth[mask == SKY] == 0).all()
        for column in range(0, 128, 8):
            rows = np.nonzero(np.isin(mask[:, column], (ROAD, LANE)) & (depth[:, column] > 0))[0]
            values = depth[rows, column]
            # ground: depth = f * camera height / (row - horizon): strictly nearer lower down
            assert (np.diff(values) < 0).all()
        ground = np.isin(mask, (ROAD, LANE))
        assert depth[-1][ground[-1]].max() < 6.0  # the bottom row is a few metres ahead
        assert (depth[mask != SKY] >= 0).all()


def test_boxes_are_tight_around_pixels_of_their_class(scenes):
    boxes = 0
    for scene in scenes:
        mask = scene["mask"]
        for x0, y0, x1, y1, name in scene["row"]["boxes"]:
            assert name in OBJECT_CLASSES and 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 96
            inside = mask[y0:y1, x0:x1] == CLASSES.index(name)
            # every edge of the box touches a pixel of the object
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            boxes += 1
    assert boxes >= ROWS


def test_nearer_pedestrians_are_taller_in_the_image(scenes):
    heights, depths = [], []
    for scene in scenes:
        for x0, y0, x1, y1, name in scene["row"]["boxes"]:
            if name == "pedestrian" and y0 > 0 and y1 < 96:
                region = (scene["mask"][y0:y1, x0:x1] == PEDESTRIAN)
                heights.append(y1 - y0)
                depths.append(np.median(scene["depth"][y0:y1, x0:x1][region]))
    assert len(heights) >= 5
    # height in pixels * distance ~ focal length * person height (0.8..1.0 * 128 px * 1.5..1.95 m)
    ratio = np.median(np.array(heights) * np.array(depths))
    assert 0.8 * 128 * 1.3 < ratio < 1.0 * 128 * 2.0
    assert np.corrcoef(heights, 1 / np.array(depths))[0, 1] > 0.8


@pytest.mark.integration
def test_corrupt_items_are_the_ones_the_image_pipeline_rejects(tmp_path):
    from mtl_tf.recipe.loader import parse_recipe
    from pipelines import run

    manifest = synthesize_images("driving_perception", 20, tmp_path / "raw", seed=5, height=32, width=48,
                                 corrupt=0.25)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    kinds = sorted(r["corruption"] for r in rows if r["corruption"])
    assert kinds == sorted(["truncated_image", "mask_out_of_range", "box_outside_image", "missing_image",
                            "garbage_image"])
    recipe = parse_recipe({
        "name": "driving", "data": {"source": {"kind": "manifest", "path": str(manifest)},
                                    "features": [{"name": "image", "kind": "image", "height": 32, "width": 48}],
                                    "split": {"train": 0.5, "validation": 0.5, "test": 0.0},
                                    "output_dir": str(tmp_path / "dataset"), "shards": 1},
        "tasks": [{"name": "semantic", "type": "segmentation", "label": "mask", "classes": list(CLASSES)},
                  {"name": "objects", "type": "detection", "label": "boxes", "classes": list(OBJECT_CLASSES)},
                  {"name": "weather", "type": "multiclass", "label": "weather", "classes": list(WEATHER)}]},
        check=False)
    result = run(recipe)
    assert result.rows_in == 20 and result.rows_rejected == 5
    assert result.rejects_by_reason == {"unreadable_image": 2, "mask_class_out_of_range": 1,
                                        "box_outside_image": 1, "file_not_found": 1}


def test_mtl_data_synth_writes_scenes_and_refuses_table_options(tmp_path):
    from mtl_tf.cli.main import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["data", "synth", "driving_perception", "--rows", "3", "--out", str(tmp_path / "d"),
                                 "--height", "32", "--width", "40", "--corrupt", "0.34"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 scenes" in result.output and "1 corrupted on purpose" in result.output
    assert len((tmp_path / "d" / "manifest.jsonl").read_text().splitlines()) == 3
    refused = runner.invoke(cli, ["data", "synth", "driving_perception", "--rows", "3", "--out", str(tmp_path / "e"),
                                  "--malformed", "0.1"])
    assert refused.exit_code == 2 and "--malformed do not apply to 'driving_perception'" in refused.output
    refused = runner.invoke(cli, ["data", "synth", "fraud_signals", "--rows", "3", "--out", str(tmp_path / "f"),
                                  "--corrupt", "0.1"])
    assert refused.exit_code == 2 and "--corrupt do not apply to 'fraud_signals'" in refused.output
    with pytest.raises(ValueError, match="writes images"):
        synthesize("driving_perception", 3, tmp_path / "g")
    with pytest.raises(ValueError, match="corrupt must be a fraction"):
        synthesize_images("driving_perception", 3, tmp_path / "h", corrupt=1.0)
