"""An image row's answer from signature outputs (boxes back in the input's pixels, dense maps as
files or summaries), and image inputs read as the image pipeline reads them, without a model."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mtl_tf.recipe.loader import parse_recipe
from mtl_tf.serving.answers import ImageAnswers, dense_folder
from mtl_tf.serving.image_rows import ImageExampleEncoder, ImageRowInput
from pipelines.images.geometry import placement
from tests.pipelines.images_tiny import random_image, save_png, write_jsonl


def recipe(tasks, features=(), resize="pad", source=None, split=None):
    data = {"source": source or {"kind": "manifest", "path": "m.jsonl"}, "output_dir": "out", "shards": 1,
            "features": [{"name": "image", "kind": "image", "height": 32, "width": 32, "resize": resize}, *features]}
    if split:
        data["split"] = split
    return parse_recipe({"name": "scenes", "data": data, "tasks": tasks}, check=False)


DETECTION = {"name": "objects", "type": "detection", "label": "boxes", "classes": ["car", "person"]}
SEGMENTATION = {"name": "semantic", "type": "segmentation", "label": "mask", "classes": ["sky", "road"]}
DEPTH = {"name": "depth", "type": "depth", "label": "depth"}  # depth_scale 1: arrays of metres


def landscape_row(row=0):
    """A 40 x 30 source padded into 32 x 32: scale 0.8, rows 4..28 hold it."""
    return ImageRowInput(row, example=b"x", image="shots/a.png", placement=placement(40, 30, 32, 32, "pad"),
                         source_size=(40, 30))


def test_detections_above_the_score_are_boxes_in_the_input_images_pixels():
    answers = ImageAnswers(recipe([DETECTION]), min_score=0.3)
    outputs = {"objects_boxes": np.array([[0.0, 0.125, 0.5, 0.5],      # stored (0, 4)-(16, 16)
                                          [0.25, 0.0, 0.5, 0.1],       # wholly in the top padding
                                          [0.5, 0.5, 1.0, 1.0],        # runs into the bottom padding
                                          [0.1, 0.2, 0.3, 0.4]], np.float32),
               "objects_scores": np.array([0.9, 0.8, 0.5, 0.2], np.float32),
               "objects_classes": np.array([1, 0, 0, 0], np.int32)}
    answer = answers(landscape_row(), outputs)
    assert list(answer) == ["image", "objects"]
    assert answer["image"] == "shots/a.png"
    got = answer["objects"]
    assert [d["class"] for d in got] == ["person", "car"]
    np.testing.assert_allclose([d["score"] for d in got], [0.9, 0.5], rtol=1e-6)
    # minus the padding (4 rows), over the scale 0.8, clipped to the 40 x 30 input
    np.testing.assert_allclose([d["box"] for d in got], [[0, 0, 20, 15], [20, 15, 40, 30]], atol=1e-5)
    # at min_score 0 the low score is kept; a padding row of the decoded output (class -1) is no detection
    low = ImageAnswers(recipe([DETECTION]), min_score=0.0)
    outputs["objects_classes"] = np.array([1, 0, -1, 0], np.int32)
    got = low(landscape_row(), outputs)["objects"]
    assert [d["class"] for d in got] == ["person", "car"]
    np.testing.assert_allclose([d["score"] for d in got], [0.9, 0.2], rtol=1e-6)
    np.testing.assert_allclose(got[1]["box"], [0.1 * 32 / 0.8, (0.2 * 32 - 4) / 0.8, 0.3 * 32 / 0.8,
                                               (0.4 * 32 - 4) / 0.8], atol=1e-5)


def test_masks_and_depth_maps_are_pngs_beside_the_output(tmp_path):
    folder = dense_folder(tmp_path / "answers.jsonl")
    assert folder == tmp_path / "answers"
    answers = ImageAnswers(recipe([SEGMENTATION, DEPTH]), folder)
    mask = np.zeros((32, 32), np.int32)
    mask[20:] = 1
    depth = np.linspace(0.5, 300.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    probabilities = np.random.default_rng(0).random((32, 32, 2)).astype(np.float32)
    answer = answers(landscape_row(7), {"semantic": mask, "semantic_probabilities": probabilities, "depth": depth})
    assert answer["semantic"] == {"png": "answers/7_semantic.png"}
    assert answer["semantic_probabilities"] == {"npy": "answers/7_semantic_probabilities.npy"}
    assert answer["depth"] == {"png": "answers/7_depth.png", "scale": 256.0}
    assert answer["placement"] == {"region": [0.0, 0.0, 40.0, 30.0], "at": [0, 4, 32, 24]}
    with Image.open(tmp_path / answer["semantic"]["png"]) as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), mask)
    with Image.open(tmp_path / answer["depth"]["png"]) as image:
        stored = np.asarray(image).astype(np.float64)
    near = depth < 65535 / 256
    np.testing.assert_allclose(stored[near] / 256, depth[near], atol=0.5 / 256)
    assert (stored[~near] == 65535).all() and (~near).any()  # beyond 16 bits: clipped, not wrapped
    np.testing.assert_array_equal(np.load(tmp_path / answer["semantic_probabilities"]["npy"]), probabilities)
    assert answers.files == 3


def test_without_a_folder_masks_and_depth_maps_are_summarised():
    answers = ImageAnswers(recipe([SEGMENTATION, DEPTH, {"name": "fog", "type": "binary", "label": "fog"}]))
    mask = np.zeros((32, 32), np.int32)
    mask[:8] = 1
    depth = np.full((32, 32), 2.0, np.float32)
    depth[0, 0], depth[1, 1] = 0.5, 34.5
    answer = answers(landscape_row(), {"semantic": mask, "depth": depth, "fog": np.float32(0.25)})
    assert answer["semantic"] == {"size": [32, 32], "pixels": {"sky": 32 * 24, "road": 32 * 8}}
    mean = 2.0 + (0.5 - 2.0 + 34.5 - 2.0) / 1024
    assert answer["depth"] == {"size": [32, 32], "min": 0.5, "mean": pytest.approx(mean), "max": 34.5}
    assert answer["fog"] == 0.25
    json.dumps(answer)


def test_a_score_threshold_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="min_score must be within"):
        ImageAnswers(recipe([DETECTION]), min_score=1.5)


@pytest.mark.integration  # the real Beam image pipeline on 12 images (about 2 s)
def test_a_manifest_with_a_tabular_feature_gives_the_pipelines_examples(tmp_path):
    from pipelines.images.pipeline import run

    rng = np.random.default_rng(4)
    rows = []
    for i in range(12):
        save_png(tmp_path / "raw" / "images" / f"{i}.png", random_image(rng, 20 + 4 * (i % 3), 28))
        rows.append({"image": f"images/{i}.png", "exposure": None if i == 5 else 0.5 * i, "weather": "clear"})
    manifest = write_jsonl(tmp_path / "raw" / "manifest.jsonl", rows)
    weather = {"name": "weather", "type": "multiclass", "label": "weather", "classes": ["clear", "fog"]}
    scenes = recipe([weather], features=[{"name": "exposure", "kind": "numeric"}], resize="crop",
                    source={"kind": "manifest", "path": manifest},
                    split={"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 1})
    run(scenes, ["--runner=DirectRunner"], out_dir=str(tmp_path / "dataset"))
    records = tf.data.TFRecordDataset(sorted(str(p) for p in (tmp_path / "dataset").glob("*.tfrecord.gz")),
                                      compression_type="GZIP")
    written = sorted(deterministic(record.numpy(), drop="weather") for record in records)
    assert len(written) == 12

    # The rows to answer: the same images seen from another folder, a manifest without the label column.
    new = [{"image": f"../raw/images/{i}.png", "exposure": row["exposure"]} for i, row in enumerate(rows)]
    inputs = list(ImageExampleEncoder(scenes).read(write_jsonl(tmp_path / "new" / "rows.jsonl", new)))
    assert [row.image for row in inputs] == [r["image"] for r in new]
    assert sorted(deterministic(row.example) for row in inputs) == written
    assert [row.source_size for row in inputs] == [(28, 20 + 4 * (i % 3)) for i in range(12)]


def deterministic(serialized, drop=None):
    example = tf.train.Example.FromString(serialized)
    if drop is not None and drop in example.features.feature:
        del example.features.feature[drop]
    return example.SerializeToString(deterministic=True)


def test_a_folder_is_for_a_recipe_whose_only_feature_is_the_image(tmp_path):
    with_exposure = recipe([SEGMENTATION], features=[{"name": "exposure", "kind": "numeric"}])
    with pytest.raises(ValueError, match="only feature is the image; this one also has exposure"):
        ImageExampleEncoder(with_exposure).read(tmp_path)
    (tmp_path / "notes.txt").write_text("no image here")
    with pytest.raises(ValueError, match=r"no image files \(.png, .jpg.*1 other files"):
        ImageExampleEncoder(recipe([SEGMENTATION])).read(tmp_path)


def test_an_image_over_the_pixel_limit_is_a_row_of_its_own(tmp_path):
    rng = np.random.default_rng(1)
    save_png(tmp_path / "small.png", random_image(rng, 10, 10))
    save_png(tmp_path / "large.png", random_image(rng, 40, 40))
    Image.fromarray(random_image(rng, 12, 12)).convert("L").save(tmp_path / "gray.png")
    rows = list(ImageExampleEncoder(recipe([SEGMENTATION]), max_pixels=1000).read(tmp_path))
    assert [(row.image.rsplit("/", 1)[1], row.kind) for row in rows] == [
        ("gray.png", None), ("large.png", "image_too_large"), ("small.png", None)]
    stored = tf.train.Example.FromString(rows[0].example).features.feature["image"].bytes_list.value[0]
    with Image.open(io.BytesIO(stored)) as image:
        assert image.mode == "RGB" and image.size == (32, 32)  # gray converted to the feature's 3 channels



def test_a_csv_manifest_to_answer_is_decoded_in_the_trained_recipes_encoding(tmp_path):
    rng = np.random.default_rng(8)
    for i in range(2):
        save_png(tmp_path / "été" / f"{i}.png", random_image(rng, 32, 32))
    manifest = tmp_path / "rows.csv"
    manifest.write_bytes("image,météo\nété/0.png,clair\nété/1.png,brumé\n".encode("cp1252"))
    weather = {"name": "weather", "type": "multiclass", "label": "météo", "classes": ["clair", "brumé"]}
    scenes = recipe([weather], source={"kind": "manifest", "path": str(manifest), "encoding": "cp1252"})
    inputs = list(ImageExampleEncoder(scenes).read(manifest))
    assert [(row.kind, row.image) for row in inputs] == [(None, "été/0.png"), (None, "été/1.png")]
    assert all(row.example for row in inputs)
