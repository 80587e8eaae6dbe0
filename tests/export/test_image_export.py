"""Export of an image model: tf.Examples with encoded images of any size, uint8 features,
per-task serving outputs, and the skew check on real test examples."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mtl_tf.data.images import decode_any_images, resize_image
from mtl_tf.data.reader import raw_examples
from mtl_tf.export import SERVE_FEATURES, SERVING_DEFAULT, SkewError, check_skew, export_model
from mtl_tf.export.skew import id_mismatches
from tests.helpers.tiny_images import (encode, image_example, make_tiny_images, tiny_image_items, tiny_image_model,
                                       tiny_image_tasks, write_image_dataset)

H, W = 16, 24
OUTPUTS = {"semantic": ("int32", [None, H, W]), "depth": ("float32", [None, H, W]),
           "objects_boxes": ("float32", [None, 3, 4]), "objects_scores": ("float32", [None, 3]),
           "objects_classes": ("int32", [None, 3]), "scene": ("float32", [None, 3])}
TASK_OUTPUTS = {"semantic": ["semantic"], "depth": ["depth"],
                "objects": ["objects_boxes", "objects_scores", "objects_classes"], "scene": ["scene"]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    spec = make_tiny_images(tmp_path_factory.mktemp("images"), rows=24, height=H, width=W)
    tasks = tiny_image_tasks()
    model = tiny_image_model(spec)
    result = export_model(model, spec, tasks, tmp_path_factory.mktemp("export") / "1")
    return spec, tasks, model, result, tf.saved_model.load(str(result.saved_model_dir))


def _expected(model, tasks, images):
    """The in-memory model's serving outputs on uint8 images."""
    outputs = model({"image": tf.constant(images, tf.uint8)}, training=False)
    served = {}
    for task in tasks:
        served.update({k: v.numpy() for k, v in task.serving_outputs(outputs[task.name]).items()})
    return served


def _assert_same(served, expected):
    assert set(served) == set(expected)
    for key, value in expected.items():
        if np.issubdtype(value.dtype, np.integer):
            np.testing.assert_array_equal(np.asarray(served[key]), value, err_msg=key)
        else:
            np.testing.assert_allclose(np.asarray(served[key]), value, atol=1e-5, err_msg=key)


def test_reloaded_signatures_return_the_documented_keys_and_dtypes(exported):
    spec, _, _, result, loaded = exported
    assert set(loaded.signatures) == {SERVING_DEFAULT, SERVE_FEATURES, "predict_semantic", "predict_depth",
                                      "predict_objects", "predict_scene"}
    described = json.loads(result.signatures_file.read_text())["signatures"]
    assert described[SERVING_DEFAULT]["outputs"] == {k: {"dtype": d, "shape": s} for k, (d, s) in OUTPUTS.items()}
    assert described[SERVE_FEATURES]["inputs"] == {"image": {"dtype": "uint8", "shape": [None, H, W, 3]}}
    served = loaded.signatures[SERVING_DEFAULT](examples=tf.constant(raw_examples(spec, "test", 3)))
    assert {k: (v.dtype.name, v.shape.as_list()) for k, v in served.items()} == {
        k: (d, [3, *s[1:]]) for k, (d, s) in OUTPUTS.items()}


def test_serving_default_answers_stored_examples_as_the_model_does(exported):
    spec, tasks, model, _, loaded = exported
    items = tiny_image_items(24, H, W)["test"]
    served = loaded.signatures[SERVING_DEFAULT](examples=tf.constant(raw_examples(spec, "test", len(items))))
    _assert_same(served, _expected(model, tasks, np.stack([i["image"] for i in items])))


def test_serving_default_resizes_an_image_of_another_size_in_the_graph(exported):
    _, tasks, model, _, loaded = exported
    item = tiny_image_items(24, H, W)["test"][0]
    big = np.repeat(np.repeat(item["image"], 2, axis=0), 2, axis=1)  # 32 x 48
    odd = np.asarray(Image.fromarray(item["image"]).resize((31, 13)))  # 13 x 31, another aspect
    examples = [image_example({"image": big}), image_example({"image": odd}, "jpeg"),
                image_example({"image": item["image"]})]
    served = loaded.signatures[SERVING_DEFAULT](examples=tf.constant(examples))
    images = [decode_any_images(tf.constant([encode(a, e)]), tf_feature(exported))[0].numpy()
              for a, e in ((big, "png"), (odd, "jpeg"), (item["image"], "png"))]
    _assert_same(served, _expected(model, tasks, np.stack(images)))
    # a 2x image brought back to 16 x 24 is close to the original (resampling blurs edges)
    assert np.abs(images[0].astype(int) - item["image"]).mean() < 12
    np.testing.assert_array_equal(images[2], item["image"])


def tf_feature(exported):
    return exported[0].feature("image")


def test_serve_features_takes_uint8_images(exported):
    _, tasks, model, _, loaded = exported
    images = np.stack([i["image"] for i in tiny_image_items(24, H, W)["test"][:2]])
    served = loaded.signatures[SERVE_FEATURES](image=tf.constant(images, tf.uint8))
    _assert_same(served, _expected(model, tasks, images))


def test_a_task_signature_returns_only_its_outputs(exported):
    spec, _, _, _, loaded = exported
    examples = tf.constant(raw_examples(spec, "test", 4))
    everything = loaded.signatures[SERVING_DEFAULT](examples=examples)
    for task, keys in TASK_OUTPUTS.items():
        alone = loaded.signatures[f"predict_{task}"](examples=examples)
        assert sorted(alone) == sorted(keys)
        _assert_same(alone, {k: everything[k].numpy() for k in keys})


def test_the_skew_check_passes_on_real_test_examples_and_stops_another_model(exported):
    spec, tasks, model, result, _ = exported
    examples = raw_examples(spec, "test", 6)
    report = check_skew(model, result.saved_model_dir, examples, spec, 1e-4, tasks=tasks)
    assert report.ok and set(report.export_vs_model) == set(OUTPUTS) and not report.id_mismatches
    other = tiny_image_model(spec, seed=11)
    with pytest.raises(SkewError, match=r"semantic: \d+ class id\(s\) differ without a tie") as error:
        check_skew(other, result.saved_model_dir, examples, spec, 1e-4, tasks=tasks)
    assert {"depth", "scene", "semantic"} <= set(error.value.report.failed_tasks)


def test_class_ids_may_differ_only_where_probabilities_tie():
    probabilities = np.array([[[0.5, 0.5, 0.0], [0.2, 0.7, 0.1], [0.4, 0.35, 0.25]]])
    reference = np.array([[0, 1, 0]])
    assert id_mismatches(np.array([[1, 1, 0]]), reference, probabilities, 1e-4) == 0  # a tie
    assert id_mismatches(np.array([[0, 2, 1]]), reference, probabilities, 1e-4) == 2
    assert id_mismatches(np.array([[0, 2, 1]]), reference, probabilities, 0.6) == 0
    assert id_mismatches(np.array([[1, 1, 0]]), reference, None, 1e-4) == 1  # no probabilities: exact


def test_pad_mode_centres_a_scaled_image_between_black_bars(tmp_path):
    splits = tiny_image_items(8, H, W)
    spec = write_image_dataset(tmp_path / "pad", splits, H, W, resize="pad")
    tasks = tiny_image_tasks()
    model = tiny_image_model(spec)
    loaded = tf.saved_model.load(str(export_model(model, spec, tasks, tmp_path / "export").saved_model_dir))
    wide = np.full((4, 12, 3), 100, np.uint8)  # scaled 2x to 8 x 24, then 4 black rows above and below
    served = loaded.signatures[SERVING_DEFAULT](examples=tf.constant([image_example({"image": wide})]))
    canvas = np.zeros((1, H, W, 3), np.uint8)
    canvas[0, 4:12] = 100
    _assert_same(served, _expected(model, tasks, canvas))


def _pil_resize(image, height, width, mode):
    """The Beam side's resizing, with PIL: bilinear; pad and crop centred."""
    h, w = image.shape[:2]
    pil = Image.fromarray(image)
    if mode == "stretch":
        return np.asarray(pil.resize((width, height), Image.BILINEAR))
    scale = min(height / h, width / w) if mode == "pad" else max(height / h, width / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    scaled = pil.resize((nw, nh), Image.BILINEAR)
    if mode == "pad":
        canvas = Image.new(pil.mode, (width, height))
        canvas.paste(scaled, ((width - nw) // 2, (height - nh) // 2))
        return np.asarray(canvas)
    left, top = (nw - width) // 2, (nh - height) // 2
    return np.asarray(scaled.crop((left, top, left + width, top + height)))


@pytest.mark.parametrize("mode", ["stretch", "pad", "crop"])
@pytest.mark.parametrize("size", [(40, 60), (8, 12), (30, 20), (16, 50)])
def test_resizing_matches_pil_within_one_level(mode, size):
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:size[0], 0:size[1]]
    image = np.stack([rows * 255 // size[0], cols * 255 // size[1], rng.integers(0, 256, size)], -1).astype(np.uint8)
    ours = resize_image(tf.constant(image), H, W, mode).numpy().astype(int)
    theirs = _pil_resize(image, H, W, mode).astype(int)
    assert ours.shape == theirs.shape == (H, W, 3)
    difference = np.abs(ours - theirs)  # rounding of the same filter (PIL works in fixed point)
    assert difference.max() <= 1 and difference.mean() < 0.25, (difference.max(), difference.mean())
    if mode == "pad":
        np.testing.assert_array_equal(ours == 0, theirs == 0)


def test_served_images_convert_channels_as_the_feature_says(tmp_path):
    rgb = tiny_image_items(4, H, W)["test"][0]["image"]
    rgba = np.concatenate([rgb, np.full((H, W, 1), 7, np.uint8)], axis=-1)
    spec = make_tiny_images(tmp_path, rows=4, height=H, width=W)
    bmp = io.BytesIO()
    Image.fromarray(rgb).save(bmp, format="BMP")
    encoded = [encode(rgba), encode(rgb[..., :1]), bmp.getvalue()]
    decoded = decode_any_images(tf.constant(encoded), spec.feature("image")).numpy()
    np.testing.assert_array_equal(decoded[0], rgb)
    np.testing.assert_array_equal(decoded[1], np.repeat(rgb[..., :1], 3, axis=-1))
    np.testing.assert_array_equal(decoded[2], rgb)
    gray = make_tiny_images(tmp_path / "gray", rows=4, height=H, width=W, channels=1).feature("image")
    as_gray = decode_any_images(tf.constant(encoded), gray).numpy().astype(int)
    assert as_gray.shape == (3, H, W, 1)
    expected = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)[..., None]
    assert np.abs(as_gray[0] - expected).max() <= 1 and np.abs(as_gray[2] - expected).max() <= 1
