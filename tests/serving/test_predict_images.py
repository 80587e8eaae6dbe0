"""`mtl predict` on a registered image model: manifests and folders read as the image pipeline
reads them, masks and depth maps as PNG files, boxes in the input image's pixels, the same
answers as the export's serving_default on the pipeline's own examples, here and over REST and gRPC."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

from mtl_tf.cli.main import cli
from mtl_tf.recipe import load_recipe
from mtl_tf.serving.image_rows import ImageExampleEncoder
from tests.pipelines.images_tiny import save_png_header_only
from tests.serving.fake_serving import GrpcServer, RestServer, ServedModels
from tests.serving.registered_images import CLASSES, DEPTH_SCALE, LABEL_KEYS, NAME, SCENES, SIZE, SOURCE_SIZES

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # the session fixture runs `mtl run` on images (~40 s)

# 40 x 30 and 30 x 40 padded into 32 x 32: scale 0.8, the source at (x, y, w, h) in the stored image
PLACED = {(40, 30): (0, 4, 32, 24), (30, 40): (4, 0, 24, 32)}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def pipeline_examples(registered_scenes):
    """frame -> the serialized example the image pipeline wrote for that scene (labels included)."""
    records = tf.data.TFRecordDataset(sorted(str(p) for p in registered_scenes.dataset.glob("*.tfrecord.gz")),
                                      compression_type="GZIP")
    examples = {}
    for record in records:
        example = tf.train.Example.FromString(record.numpy())
        examples[int(round(example.features.feature["frame"].float_list.value[0]))] = record.numpy()
    return examples


def without_labels(serialized):
    example = tf.train.Example.FromString(serialized)
    for key in LABEL_KEYS:
        if key in example.features.feature:
            del example.features.feature[key]
    return example.SerializeToString(deterministic=True)


def served_on_pipeline_examples(registered_scenes):
    """serving_default of the registered export on the pipeline's examples, by frame."""
    examples = pipeline_examples(registered_scenes)
    assert sorted(examples) == list(range(SCENES))
    function = tf.saved_model.load(registered_scenes.export_dir()).signatures["serving_default"]
    outputs = function(examples=tf.constant([examples[i] for i in range(SCENES)]))
    return {name: value.numpy() for name, value in outputs.items()}


def png(path):
    with Image.open(path) as image:
        return image.mode, np.asarray(image)


def boxes_by_hand(relative, source_size):
    """Relative boxes of the stored 32 x 32 image -> source pixels: minus the padding, over 0.8."""
    x, y, _, _ = PLACED[source_size]
    width, height = source_size
    boxes = (np.asarray(relative, np.float64) * SIZE - [x, y, x, y]) / 0.8
    boxes = np.clip(boxes, 0, [width, height, width, height])
    return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]


def test_manifest_rows_become_the_examples_the_image_pipeline_wrote(registered_scenes):
    encoder = ImageExampleEncoder(load_recipe(registered_scenes.recipe, check=False))
    rows = list(encoder.read(registered_scenes.manifest))
    assert [row.image for row in rows] == [f"images/{i:03d}.png" for i in range(SCENES)]
    assert all(row.ok for row in rows)
    examples = pipeline_examples(registered_scenes)
    for i, row in enumerate(rows):
        assert tf.train.Example.FromString(row.example).SerializeToString(deterministic=True) == \
            without_labels(examples[i])
        assert row.source_size == SOURCE_SIZES[i % 2]


def test_masks_depth_and_boxes_come_back_as_serving_default_gives_them_on_the_pipelines_examples(
        registered_scenes, tmp_path):
    out = tmp_path / "answers.jsonl"
    result = invoke("predict", "--model-uri", f"{NAME}/1", "--input", registered_scenes.manifest, "--output", out,
                    "--min-score", 0, "--tracking-uri", registered_scenes.uri)
    assert result.exit_code == 0, result.output
    assert f"rows {SCENES} = answered {SCENES} + rejected 0" in result.output
    assert f"masks and depth maps in {tmp_path / 'answers'}" in result.output
    served = served_on_pipeline_examples(registered_scenes)
    answers = read_jsonl(out)
    assert len(answers) == SCENES
    boxes_seen = 0
    for i, answer in enumerate(answers):
        source = SOURCE_SIZES[i % 2]
        assert answer["image"] == f"images/{i:03d}.png"
        np.testing.assert_allclose(answer["weather"], served["weather"][i], rtol=1e-6)
        np.testing.assert_allclose(answer["frame"], served["frame"][i], rtol=1e-6)
        x, y, w, h = PLACED[source]
        assert answer["placement"] == {"region": [0.0, 0.0, float(source[0]), float(source[1])], "at": [x, y, w, h]}

        assert answer["semantic"] == {"png": f"answers/{i}_semantic.png"}
        mode, mask = png(tmp_path / answer["semantic"]["png"])
        assert mode == "L" and mask.shape == (SIZE, SIZE)
        assert set(np.unique(mask)) <= set(range(len(CLASSES)))
        np.testing.assert_array_equal(mask, served["semantic"][i])

        assert answer["depth"] == {"png": f"answers/{i}_depth.png", "scale": float(DEPTH_SCALE)}
        mode, depth = png(tmp_path / answer["depth"]["png"])
        assert mode.startswith("I") and depth.shape == (SIZE, SIZE)
        np.testing.assert_allclose(depth / DEPTH_SCALE, served["depth"][i], atol=0.5 / DEPTH_SCALE + 1e-6)

        keep = served["objects_scores"][i] >= 0
        expected = boxes_by_hand(served["objects_boxes"][i][keep], source)
        boxes = np.array([d["box"] for d in answer["objects"]]).reshape(-1, 4)
        np.testing.assert_allclose(boxes, expected, rtol=1e-6, atol=1e-6)
        assert ((boxes >= 0) & (boxes <= [*source, *source])).all()  # inside the input image
        assert all(d["class"] == "car" for d in answer["objects"])
        assert [d["score"] for d in answer["objects"]] == sorted((d["score"] for d in answer["objects"]),
                                                                 reverse=True)
        boxes_seen += len(boxes)
    assert boxes_seen > 0

    # A threshold above every score leaves no box; the other outputs stay.
    high = tmp_path / "high.jsonl"
    top = float(served["objects_scores"].max())
    assert invoke("predict", "--model-uri", f"{NAME}/1", "--input", registered_scenes.manifest, "--output", high,
                  "--min-score", min(1.0, top + 1e-3), "--tracking-uri", registered_scenes.uri).exit_code == 0
    assert all(a["objects"] == [] and "semantic" in a for a in read_jsonl(high))


def test_unreadable_images_get_an_error_row_and_the_others_are_answered(registered_scenes, tmp_path):
    raw = registered_scenes.manifest.parent
    (tmp_path / "shots").mkdir()
    for i in (0, 1):
        shutil.copy(raw / "images" / f"{i:03d}.png", tmp_path / "shots" / f"{i}.png")
    whole = (raw / "images" / "002.png").read_bytes()
    (tmp_path / "shots" / "cut.png").write_bytes(whole[: len(whole) // 2])
    save_png_header_only(tmp_path / "shots" / "huge.png", 9000, 9000)
    manifest = tmp_path / "new.csv"  # a CSV manifest; its label column is ignored
    manifest.write_text("image,weather\nshots/0.png,fog\nshots/missing.png,\nshots/cut.png,clear\n"
                        "shots/huge.png,\nshots/1.png,clear,extra\nshots/1.png,\n")
    out = tmp_path / "out.jsonl"
    result = invoke("predict", "--model-uri", f"{NAME}/1", "--input", manifest, "--output", out,
                    "--tracking-uri", registered_scenes.uri)
    assert result.exit_code == 0, result.output
    assert ("rows 6 = answered 2 + rejected 4 (file_not_found 1, image_too_large 1, unreadable_image 1, "
            "wrong_field_count 1)") in result.output
    answers = read_jsonl(out)
    assert [a.get("kind") for a in answers] == [None, "file_not_found", "unreadable_image", "image_too_large",
                                                "wrong_field_count", None]
    assert answers[1] == {"row": 1, "error": f"image file not found: {tmp_path / 'shots' / 'missing.png'}",
                          "kind": "file_not_found", "image": "shots/missing.png"}
    assert answers[2]["row"] == 2 and answers[2]["image"] == "shots/cut.png"
    assert answers[4] == {"row": 4, "error": "wrong number of fields: 3 (the header has 2)",
                          "kind": "wrong_field_count"}
    served = served_on_pipeline_examples(registered_scenes)
    for row, frame in ((0, 0), (5, 1)):
        np.testing.assert_allclose(answers[row]["weather"], served["weather"][frame], rtol=1e-6)
        mode, mask = png(tmp_path / answers[row]["semantic"]["png"])
        np.testing.assert_array_equal(mask, served["semantic"][frame])
    assert not (tmp_path / "out" / "1_semantic.png").exists()  # no file for a rejected row


def test_a_folder_of_images_is_answered_in_name_order_with_summaries_on_stdout(registered_scenes, tmp_path):
    raw = registered_scenes.manifest.parent
    folder = tmp_path / "camera"
    folder.mkdir()
    for frame, name in ((3, "b.png"), (4, "a.PNG"), (5, "c.png")):
        shutil.copy(raw / "images" / f"{frame:03d}.png", folder / name)
    (folder / "notes.txt").write_text("not an image")
    result = invoke("predict", "--model-uri", f"{NAME}/1", "--input", folder, "--tracking-uri", registered_scenes.uri)
    assert result.exit_code == 0, result.output
    assert "rows 3 = answered 3 + rejected 0; 1 files skipped (not images)" in result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["image"] for a in answers] == [str(folder / n) for n in ("a.PNG", "b.png", "c.png")]
    served = served_on_pipeline_examples(registered_scenes)
    for answer, frame in zip(answers, (4, 3, 5)):
        np.testing.assert_allclose(answer["weather"], served["weather"][frame], rtol=1e-6)
        counts = np.bincount(served["semantic"][frame].ravel(), minlength=len(CLASSES))
        assert answer["semantic"] == {"size": [SIZE, SIZE],
                                      "pixels": {c: int(n) for c, n in zip(CLASSES, counts)}}
        depth = served["depth"][frame]
        assert answer["depth"]["size"] == [SIZE, SIZE]
        np.testing.assert_allclose([answer["depth"][k] for k in ("min", "mean", "max")],
                                   [depth.min(), depth.mean(), depth.max()], rtol=1e-5)
    assert not list(tmp_path.glob("**/*_semantic.png"))


def test_predict_over_rest_and_grpc_writes_what_the_local_model_writes(registered_scenes, tmp_path):
    root = tmp_path / "deploy"
    assert invoke("models", "deploy", f"{NAME}/1", "--to", root, "--tracking-uri", registered_scenes.uri).exit_code == 0
    assert invoke("models", "deploy", "--to", root, "--finalize").exit_code == 0
    served = ServedModels(root / "models.config", mounts={"/models": root})
    args = ["predict", "--model-uri", f"{NAME}/1", "--input", registered_scenes.manifest, "--min-score", 0,
            "--tracking-uri", registered_scenes.uri]
    local = tmp_path / "local" / "answers.jsonl"
    local.parent.mkdir()
    assert invoke(*args, "--output", local).exit_code == 0
    with RestServer(served) as rest, GrpcServer(served) as grpc_server:
        for protocol, server in (("rest", rest), ("grpc", grpc_server)):
            out = tmp_path / protocol / "answers.jsonl"
            out.parent.mkdir()
            result = invoke(*args, "--output", out, "--server", server.address, "--protocol", protocol)
            assert result.exit_code == 0, result.output
            assert read_jsonl(out) == read_jsonl(local), protocol
            for answer in read_jsonl(out):
                for task in ("semantic", "depth"):
                    path = answer[task]["png"]
                    assert (out.parent / path).read_bytes() == (local.parent / path).read_bytes(), (protocol, path)
        assert rest.requests[0]["path"] == f"/v1/models/{NAME}/versions/1:predict"
        assert grpc_server.requests[0].model_spec.version.value == 1


def test_a_manifest_without_the_image_column_is_one_line(registered_scenes, tmp_path):
    manifest = tmp_path / "rows.jsonl"
    manifest.write_text(json.dumps({"picture": "a.png"}) + "\n")
    result = invoke("predict", "--model-uri", f"{NAME}/1", "--input", manifest,
                    "--tracking-uri", registered_scenes.uri)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code != 0 and "Traceback" not in result.output and len(errors) == 1, result.output
    assert "column 'image' is missing" in errors[0] and "picture" in errors[0]


def test_export_dense_probabilities_adds_per_pixel_probabilities_that_agree_with_the_mask(registered_scenes):
    served = served_on_pipeline_examples(registered_scenes)
    probabilities, mask = served["semantic_probabilities"], served["semantic"]
    assert probabilities.shape == (*mask.shape, len(CLASSES))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(probabilities.argmax(axis=-1), mask)
