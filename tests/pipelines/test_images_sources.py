"""The other source kinds end to end (image folder, npz, CSV manifest through the CLI) and the
driver-side checks that fail before any worker starts."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mtl_tf.data.spec import DatasetSpec
from mtl_tf.recipe.loader import parse_recipe
from pipelines import run as run_pipeline
from pipelines.images.pipeline import run
from pipelines.images.sources import image_source
from tests.pipelines.images_tiny import (HEIGHT, WIDTH, decode_depth, decode_png, random_image, random_mask,
                                        read_examples, save_png, scene_recipe)


def _folder_recipe(root, out, classes=("cat", "dog"), column="image", **image):
    raw = {"name": "pets", "data": {"source": {"kind": "image_folder", "path": str(root)},
                                    "features": [{"name": "photo", "kind": "image", "column": column, "height": 16,
                                                  "width": 16, **image}],
                                    "split": {"train": 0.5, "validation": 0.25, "test": 0.25}, "output_dir": str(out),
                                    "shards": 1},
           "tasks": [{"name": "kind", "type": "multiclass", "label": "label", "classes": list(classes)}]}
    return parse_recipe(raw, check=False)


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    """Gray images in cat/ and dog/ (one of them colour), plus files that are not images."""
    root = tmp_path_factory.mktemp("pets")
    rng = np.random.default_rng(1)
    images = {}
    for folder in ("cat", "dog"):
        for i in range(8):
            gray = rng.integers(0, 256, (HEIGHT, WIDTH), dtype=np.uint8)
            images[save_png(root / "raw" / folder / f"{i}.PNG", np.repeat(gray[:, :, None], 3, 2))] = (folder, gray)
    save_png(root / "raw" / "dog" / "deep" / "colour.png", random_image(rng))  # colour: wrong for 1 channel
    (root / "raw" / "README.txt").write_text("not an image")
    (root / "raw" / "cat" / "notes.json").write_text("{}")
    recipe = _folder_recipe(root / "raw", root / "unused", channels=1, resize="pad")
    return run(recipe, out_dir=str(root / "dataset")), images


@pytest.mark.integration
def test_an_image_folder_reads_one_class_per_sub_folder_and_counts_skipped_files(pets):
    result, images = pets
    assert result.rows_in == 17 and result.skipped_files == 2
    assert result.rejects_by_reason == {"wrong_channels": 1}
    assert "2 non-image files skipped" in result.summary()
    examples = read_examples(result.path.parent)
    assert len(examples) == 16
    for example in examples:
        stored = decode_png(example["photo"][0])
        assert stored.shape == (16, 16)  # one channel, 32 x 24 padded into 16 x 16
        assert (stored[:2] == 0).all() and (stored[-2:] == 0).all()
    kinds = [e["label"][0] for e in examples]
    assert kinds.count(0) == kinds.count(1) == 8
    positives = result.spec.task("kind").positives
    assert [sum(p[c] for p in positives.values()) for c in (0, 1)] == [8, 8]
    assert result.spec.feature("photo").shape == [16, 16, 1]


def test_image_folder_classes_and_columns_are_checked_before_beam_starts(tmp_path):
    for folder in ("cat", "dgo"):
        save_png(tmp_path / "raw" / folder / "0.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError) as err:
        image_source(_folder_recipe(tmp_path / "raw", tmp_path / "out"))
    message = str(err.value)
    assert "tasks.0.classes" in message and "dgo" in message and "did you mean 'dog'" in message
    assert "classes without a sub-folder: dog" in message
    with pytest.raises(ValueError, match="column 'picture' is missing .* columns present: image, label"):
        image_source(_folder_recipe(tmp_path / "raw", tmp_path / "out", classes=("cat", "dgo"), column="picture"))
    with pytest.raises(ValueError, match="no folder"):
        image_source(_folder_recipe(tmp_path / "nowhere", tmp_path / "out"))


def _npz(path, rng, counts=(("train", 6), ("val", 3))):
    arrays = {}
    for prefix, n in counts:
        arrays[f"{prefix}_images"] = rng.integers(0, 256, (n, HEIGHT, WIDTH, 3), dtype=np.uint8)
        arrays[f"{prefix}_labels"] = np.stack([random_mask(rng) for _ in range(n)])
        arrays[f"{prefix}_depth"] = rng.uniform(0, 30, (n, HEIGHT, WIDTH)).astype(np.float32)
        boxes = np.full((n, 3, 4), -1, np.float32)
        boxes[:, 0] = [8, 2, 20, 14]
        boxes[::2, 1] = [0, 0, 6, 24]
        arrays[f"{prefix}_boxes"] = boxes
    np.savez_compressed(path, **arrays)
    return arrays


def _npz_recipe(path, out, splits=None, **data):
    source = {"kind": "npz", "path": str(path)}
    if splits:
        source["splits"] = splits
    tasks = [{"name": "semantic", "type": "segmentation", "label": "labels", "classes": ["a", "b", "c"]},
             {"name": "depth", "type": "depth", "label": "depth"},
             {"name": "people", "type": "detection", "label": "boxes", "classes": ["person"], "max_boxes": 3}]
    return scene_recipe(source, str(out), size=(16, 16), resize="crop", tasks=tasks, column="images", **data)


@pytest.mark.integration
def test_npz_splits_come_from_the_array_prefixes_and_dense_labels_follow_the_crop(tmp_path):
    arrays = _npz(tmp_path / "d.npz", np.random.default_rng(2))
    result = run(_npz_recipe(tmp_path / "d.npz", tmp_path / "out", {"train": "train", "validation": "val"}))
    assert result.rows_written == {"train": 6, "validation": 3} and result.rows_rejected == 0
    assert result.spec.split_key is None and list(result.spec.splits) == ["train", "validation"]
    for split, prefix in (("train", "train"), ("validation", "val")):
        for example in read_examples(tmp_path / "out", split):
            assert decode_png(example["image"][0]).shape == (16, 16, 3)
            # crop: the middle 24 of 32 columns at scale 2/3; nearest picks source pixel centres; the
            # random masks tell the items apart
            mask = decode_png(example["labels"][0])
            matches = [i for i, source in enumerate(arrays[f"{prefix}_labels"])
                       if np.array_equal(_crop_nearest(source), mask)]
            assert len(matches) == 1
            index = matches[0]
            np.testing.assert_array_equal(decode_depth(example["depth"][0], 16, 16),
                                          _crop_nearest(arrays[f"{prefix}_depth"][index]).astype(np.float16))
            boxes = np.reshape(example["boxes/boxes"], (-1, 4))
            # [8, 2, 20, 14] -> ((8 - 4) * 2/3, 2 * 2/3, (20 - 4) * 2/3, 14 * 2/3) / 16; the box in columns 0..6
            # keeps columns 4..6 -> (0, 0, 4/3, 16) / 16
            expected = [[4 / 24, 2 / 24, 16 / 24, 14 / 24]] + ([[0, 0, 2 / 24, 1.0]] if index % 2 == 0 else [])
            np.testing.assert_allclose(boxes, expected, rtol=1e-6, atol=1e-7)
            assert example["boxes/classes"] == [0] * len(expected)


def _crop_nearest(array):
    """Nearest-neighbour sampling of the centre crop, written out: output pixel i samples source
    coordinate 4 + (i + 0.5) * 1.5 (columns) and (i + 0.5) * 1.5 (rows)."""
    rows = np.floor((np.arange(16) + 0.5) * 1.5).astype(int)
    cols = np.floor(4 + (np.arange(16) + 0.5) * 1.5).astype(int)
    return array[rows][:, cols]


@pytest.mark.integration
def test_npz_without_splits_is_split_by_data_split(tmp_path):
    rng = np.random.default_rng(3)
    arrays = _npz(tmp_path / "d.npz", rng, counts=(("", 12),))
    np.savez(tmp_path / "plain.npz", **{k.lstrip("_"): v for k, v in arrays.items()})
    recipe = _npz_recipe(tmp_path / "plain.npz", tmp_path / "out", split={"train": 0.5, "validation": 0.5,
                                                                          "test": 0.0})
    result = run(recipe)
    assert sum(result.rows_written.values()) == 12 and set(result.rows_written) == {"train", "validation"}


def test_npz_arrays_must_exist_and_agree_in_length(tmp_path):
    rng = np.random.default_rng(4)
    arrays = _npz(tmp_path / "d.npz", rng)
    with pytest.raises(ValueError) as err:
        image_source(_npz_recipe(tmp_path / "d.npz", tmp_path / "out", {"train": "train", "validation": "valid"}))
    assert "array 'valid_images' is missing" in str(err.value) and "did you mean 'val_images'" in str(err.value)
    arrays["train_depth"] = arrays["train_depth"][:4]
    np.savez(tmp_path / "short.npz", **arrays)
    with pytest.raises(ValueError, match=r"disagree in length .* train_images 6, train_labels 6, train_depth 4"):
        image_source(_npz_recipe(tmp_path / "short.npz", tmp_path / "out", {"train": "train", "validation": "val"}))
    (tmp_path / "broken.npz").write_bytes(b"no zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        image_source(_npz_recipe(tmp_path / "broken.npz", tmp_path / "out", {"train": "train"}))


def _csv_manifest(root, rng, rows=8):
    lines = ["file,segments,objects,weather,cam"]
    masks = {}
    for i in range(rows):
        image, mask = random_image(rng), random_mask(rng)
        save_png(root / "img" / f"{i}.png", image)
        save_png(root / "seg" / f"{i}.png", mask, "L")
        masks[image.tobytes()] = mask
        boxes = json.dumps([[0.25, 0.5, 0.75, 1.0, "car"]]).replace('"', '""')
        lines.append(f'img/{i}.png,seg/{i}.png,"{boxes}",{["clear", "fog"][i % 2]},c{i}')
    lines.append("img/0.png,seg/0.png")  # too few fields
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return masks


@pytest.mark.integration
def test_a_csv_manifest_through_mtl_data_preprocess(tmp_path):
    import yaml

    from mtl_tf.cli.main import cli

    masks = _csv_manifest(tmp_path / "raw", np.random.default_rng(5))
    recipe = {"name": "csv_scenes",
              "data": {"source": {"kind": "manifest", "path": str(tmp_path / "raw" / "manifest.csv")},
                       "features": [{"name": "frame", "kind": "image", "column": "file", "height": 12,
                                     "width": 16}],
                       "split": {"key": "cam", "train": 0.6, "validation": 0.2, "test": 0.2, "seed": 8},
                       "output_dir": str(tmp_path / "dataset"), "shards": 1},
              "tasks": [{"name": "seg", "type": "segmentation", "label": "segments", "classes": ["a", "b", "c"]},
                        {"name": "cars", "type": "detection", "label": "objects", "classes": ["car"],
                         "box_units": "relative"},
                        {"name": "weather", "type": "multiclass", "label": "weather", "classes": ["clear", "fog"]}]}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(cli, ["data", "preprocess", str(path), "--set", "data.shards=2"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "items in 9 = written 8" in result.output and "rejected 1: wrong_field_count" in result.output
    spec = DatasetSpec.read(tmp_path / "dataset")
    assert spec.splits["train"].num_shards == 2
    for example in read_examples(tmp_path / "dataset"):
        # stretch 32 x 24 -> 16 x 12: the mask samples every second pixel's centre (odd rows and columns)
        image = decode_png(example["frame"][0])
        mask = decode_png(example["segments"][0])
        assert image.shape == (12, 16, 3) and mask.shape == (12, 16)
        assert any(np.array_equal(mask, source[1::2, 1::2]) for source in masks.values())
        np.testing.assert_allclose(example["objects/boxes"], [0.25, 0.5, 0.75, 1.0], rtol=1e-6)
    described = CliRunner().invoke(cli, ["data", "describe", str(tmp_path / "dataset")], catch_exceptions=False)
    assert "feature frame (image)" in described.output and "12 x 16 x 3" in described.output


def test_a_missing_manifest_column_is_named_before_beam_starts(tmp_path):
    _csv_manifest(tmp_path, np.random.default_rng(6), rows=2)
    recipe = scene_recipe({"kind": "manifest", "path": str(tmp_path / "manifest.csv")}, str(tmp_path / "out"),
                          tasks=[{"name": "w", "type": "multiclass", "label": "wether", "classes": ["clear", "fog"]}])
    with pytest.raises(ValueError) as err:
        run_pipeline(recipe)
    lines = str(err.value).splitlines()
    assert any("feature 'image': column 'image' is missing" in line for line in lines)
    assert any("column 'wether'" in line and "did you mean 'weather'" in line for line in lines)
    with pytest.raises(ValueError, match="no files match"):
        run_pipeline(scene_recipe({"kind": "manifest", "path": str(tmp_path / "none*.jsonl")}, str(tmp_path / "o")))


def test_an_image_source_needs_an_image_feature(tmp_path):
    raw = {"name": "t", "data": {"source": {"kind": "manifest", "path": str(tmp_path / "m.jsonl")},
                                 "features": [{"name": "speed", "kind": "numeric"}], "output_dir": str(tmp_path)},
           "tasks": [{"name": "y", "type": "binary", "label": "y"}]}
    with pytest.raises(ValueError, match="no image feature .* speed \\(numeric\\)"):
        run_pipeline(parse_recipe(raw, check=False))


@pytest.mark.integration
def test_a_cp1252_csv_manifest_reads_its_paths_and_labels_and_rejects_only_an_undecodable_row(tmp_path):
    rng = np.random.default_rng(9)
    lines = ["fichier,météo"]
    for i in range(6):
        save_png(tmp_path / "raw" / "été" / f"{i}.png", random_image(rng))
        lines.append(f"été/{i}.png,{['clair', 'brumé'][i % 2]}")
    data = ("\n".join(lines) + "\n").encode("cp1252") + b"\xe9t\xe9/0.png,brum\x81\n"  # 0x81: not cp1252
    (tmp_path / "raw" / "manifest.csv").write_bytes(data)
    raw = {"name": "weather", "data": {
        "source": {"kind": "manifest", "path": str(tmp_path / "raw" / "manifest.csv"), "encoding": "cp1252"},
        "features": [{"name": "photo", "kind": "image", "column": "fichier", "height": HEIGHT, "width": WIDTH}],
        "split": {"by_file": [{"files": "*", "train": 1.0}]}, "output_dir": str(tmp_path / "out"), "shards": 1},
        "tasks": [{"name": "sky", "type": "multiclass", "label": "météo", "classes": ["clair", "brumé"]}]}
    recipe = parse_recipe(raw, check=False)
    result = run(recipe)

    assert (result.rows_in, result.rows_written["train"], result.rows_rejected) == (7, 6, 1)
    assert result.rejects_by_reason == {"encoding": 1}
    (reject,) = [json.loads(line) for line in next((tmp_path / "out" / "rejects").glob("*.jsonl")).open()]
    assert reject["item"] == 8 and "not cp1252: byte 0x81 in field 2" in reject["reason"]
    spec = DatasetSpec.read(tmp_path / "out")
    assert spec.task("sky").positives["train"] == [3, 3] and spec.source_encoding == "cp1252"


def test_a_manifest_encoding_applies_to_csv_and_names_the_json_lines_file(tmp_path):
    from mtl_tf.recipe import RecipeError

    path = tmp_path / "m.jsonl"
    path.write_text('{"image": "a.png"}\n')
    source = {"kind": "manifest", "path": str(path), "encoding": "latin-1"}
    with pytest.raises(ValueError) as err:
        image_source(scene_recipe(source, str(tmp_path / "out")))
    assert str(path) in str(err.value) and "JSON lines, which are UTF-8" in str(err.value)
    with pytest.raises(RecipeError, match="'encoding' applies to CSV manifests; JSON lines are UTF-8"):
        scene_recipe({**source, "format": "jsonl"}, str(tmp_path / "out"))


@pytest.mark.integration
def test_a_json_lines_manifest_line_that_is_not_utf8_is_rejected_and_the_others_are_read(tmp_path):
    rng = np.random.default_rng(10)
    lines = []
    for i in range(4):
        save_png(tmp_path / "raw" / f"{i}.png", random_image(rng))
        lines.append(json.dumps({"file": f"{i}.png", "sky": ["clear", "fog"][i % 2]}).encode())
    lines.insert(2, b'{"file": "0.png", "sky": "brum\\xe9"}'.replace(b"\\xe9", b"\xe9"))  # latin-1, not UTF-8
    (tmp_path / "raw" / "manifest.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    raw = {"name": "weather", "data": {
        "source": {"kind": "manifest", "path": str(tmp_path / "raw" / "manifest.jsonl")},
        "features": [{"name": "photo", "kind": "image", "column": "file", "height": HEIGHT, "width": WIDTH}],
        "split": {"by_file": [{"files": "*", "train": 1.0}]}, "output_dir": str(tmp_path / "out"), "shards": 1},
        "tasks": [{"name": "sky", "type": "multiclass", "label": "sky", "classes": ["clear", "fog"]}]}
    result = run(parse_recipe(raw, check=False))

    assert (result.rows_in, result.rows_written["train"], result.rows_rejected) == (5, 4, 1)
    assert result.rejects_by_reason == {"encoding": 1}
    (reject,) = [json.loads(line) for line in next((tmp_path / "out" / "rejects").glob("*.jsonl")).open()]
    assert reject["item"] == 3 and "not UTF-8: byte 0xe9" in reject["reason"]
