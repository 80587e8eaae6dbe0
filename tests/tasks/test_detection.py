"""Detection task (CenterNet): heads, in-graph Gaussian targets, focal and L1 losses, decoding, COCO AP."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.recipe import parse_recipe
from mtl_tf.tasks import DetectionTask, build_tasks, decode_detections
from mtl_tf.tasks.centernet import center_targets
from mtl_tf.training import Trainer
from mtl_tf.training.losses import masked_losses
from mtl_tf.training.task_metrics import TaskMetrics
from tests.tasks.dense_specs import detection_spec, image_dataset

PAD = [0.0, 0.0, 0.0, 0.0, -1.0]
# Two images, up to 4 boxes: image 0 has a car and a person, image 1 has one person.
BOXES = np.array([[[0.10, 0.20, 0.40, 0.60, 0], [0.55, 0.50, 0.95, 0.90, 1], PAD, PAD],
                  [[0.30, 0.05, 0.70, 0.45, 1], PAD, PAD, PAD]], "float32")


def make_task(classes=("car", "person"), **options):
    return DetectionTask("obj", classes=list(classes), spec=detection_spec(classes=classes), max_boxes=4,
                         image_size=(32, 32), **options)


def numpy_radius(h, w, o=0.7):
    """CenterNet's gaussian_radius (the reference's root (b + sqrt(b^2 - 4ac)) / 2)."""
    b1, c1 = h + w, w * h * (1 - o) / (1 + o)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2, c2 = 2 * (h + w), (1 - o) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3, b3, c3 = 4 * o, -2 * o * (h + w), (o - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def numpy_heatmap(boxes, h, w, classes):
    heat = np.zeros((len(boxes), h, w, classes))
    for i, row in enumerate(boxes):
        for x0, y0, x1, y1, c in row:
            if c < 0:
                continue
            cx, cy = int((x0 + x1) / 2 * w), int((y0 + y1) / 2 * h)
            sigma = (2 * max(int(numpy_radius((y1 - y0) * h, (x1 - x0) * w)), 0) + 1) / 6
            yy, xx = np.mgrid[0:h, 0:w]
            g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2))
            heat[i, :, :, int(c)] = np.maximum(heat[i, :, :, int(c)], g)
    return heat


def perfect_output(boxes, h, w, classes):
    """A packed output that puts a score-1 peak, the exact size and offset at each box's centre."""
    out = np.zeros((len(boxes), h, w, classes + 4), "float32")
    for i, row in enumerate(boxes):
        for x0, y0, x1, y1, c in row:
            if c < 0:
                continue
            cx, cy = (x0 + x1) / 2 * w, (y0 + y1) / 2 * h
            out[i, int(cy), int(cx), int(c)] = 1.0
            out[i, int(cy), int(cx), classes:] = [x1 - x0, y1 - y0, cx - int(cx), cy - int(cy)]
    return out


def test_head_packs_heatmaps_sizes_and_offsets_in_float32_under_mixed_precision():
    task = make_task(head={"channels": 8})
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        x = keras.Input((8, 8, 6))
        model = keras.Model(x, task.head(keras.layers.Conv2D(6, 3, padding="same", name="shared_c")(x)))
        out = model(np.random.default_rng(0).normal(size=(2, 8, 8, 6)).astype("float32"))
        loss = task.per_example_loss(tf.constant(BOXES), out)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.shape == (2, 8, 8, 6) and out.dtype == tf.float32 and np.all(np.isfinite(loss))
    names = {layer.name for layer in model.layers}
    assert {"obj_heatmap", "obj_size", "obj_offset", "obj", "obj_heatmap_conv"} <= names
    np.testing.assert_allclose(model.get_layer("obj_heatmap").bias.numpy(), -2.19)
    assert task.output_stride == 4 and make_task(head={"output_stride": 8}).output_stride == 8


def test_gaussian_targets_peak_at_one_at_the_centre_cell_and_match_centernet():
    targets = center_targets(tf.constant(BOXES), 8, 8, 2)
    heat = targets.heatmap.numpy()
    # Box 0 of image 0: centre (0.25, 0.4) of an 8x8 grid -> cell row 3, column 2, class 0.
    assert heat[0, 3, 2, 0] == 1.0 and heat[0, 3, 2, 1] < 1.0
    assert np.sum(heat == 1.0) == 3
    np.testing.assert_allclose(heat, numpy_heatmap(BOXES, 8, 8, 2), atol=1e-6)
    np.testing.assert_array_equal(targets.cells.numpy()[0, :2], [[3, 2], [5, 6]])
    np.testing.assert_allclose(targets.offset.numpy()[0, 0], [0.0, 0.2], atol=1e-6)
    np.testing.assert_allclose(targets.size.numpy()[0, 0], [0.3, 0.4], atol=1e-6)
    np.testing.assert_array_equal(targets.valid.numpy(), [[1, 1, 0, 0], [1, 0, 0, 0]])


def numpy_centernet(boxes, out, classes, weights=(1.0, 1.0, 1.0)):
    h, w = out.shape[1:3]
    target = numpy_heatmap(boxes, h, w, classes)
    rows = []
    for i in range(len(boxes)):
        p = np.clip(out[i, ..., :classes].astype(np.float64), 1e-4, 1 - 1e-4)
        t = target[i]
        pos = t == 1.0
        focal = (-(1 - p[pos]) ** 2 * np.log(p[pos])).sum() + (
            -((1 - t[~pos]) ** 4) * p[~pos] ** 2 * np.log(1 - p[~pos])).sum()
        focal /= max(pos.sum(), 1)
        size_err = off_err = 0.0
        n = 0
        for x0, y0, x1, y1, c in boxes[i]:
            if c < 0:
                continue
            cx, cy = (x0 + x1) / 2 * w, (y0 + y1) / 2 * h
            reg = out[i, int(cy), int(cx), classes:]
            size_err += abs(reg[0] - (x1 - x0)) + abs(reg[1] - (y1 - y0))
            off_err += abs(reg[2] - (cx - int(cx))) + abs(reg[3] - (cy - int(cy)))
            n += 2
        rows.append(weights[0] * focal + weights[1] * size_err / max(n, 1) + weights[2] * off_err / max(n, 1))
    return np.array(rows)


def test_centernet_loss_matches_numpy():
    out = np.random.default_rng(1).uniform(0.01, 0.99, size=(2, 8, 8, 6)).astype("float32")
    task = make_task(loss={"name": "centernet", "size": 0.5, "offset": 2.0})
    np.testing.assert_allclose(task.per_example_loss(tf.constant(BOXES), tf.constant(out)),
                               numpy_centernet(BOXES, out, 2, (1.0, 0.5, 2.0)), rtol=1e-4)


def test_an_image_without_boxes_pays_the_heatmap_term_only_and_masked_rows_nothing():
    out = np.random.default_rng(2).uniform(0.01, 0.99, size=(1, 8, 8, 6)).astype("float32")
    empty = np.array([[PAD] * 4], "float32")
    p = np.clip(out[0, ..., :2].astype(np.float64), 1e-4, 1 - 1e-4)
    expected = (-(p ** 2) * np.log(1 - p)).sum()
    loss = make_task().per_example_loss(tf.constant(empty), tf.constant(out)).numpy()
    np.testing.assert_allclose(loss, [expected], rtol=1e-4)
    task = make_task()
    labelled = np.random.default_rng(3).uniform(0.01, 0.99, size=(1, 8, 8, 6)).astype("float32")
    outputs = np.concatenate([labelled, out])
    losses, _ = masked_losses([task], {"obj": tf.constant(np.concatenate([BOXES[:1], empty]))},
                              {"obj": tf.constant([1.0, 0.0])}, {"obj": tf.constant(outputs)})
    np.testing.assert_allclose(losses.numpy()[0], numpy_centernet(BOXES[:1], outputs[:1], 2)[0], rtol=1e-4)


def test_decode_recovers_hand_built_boxes():
    out = perfect_output(BOXES, 8, 8, 2)
    found = decode_detections(tf.constant(out), max_detections=5)
    assert found["boxes"].shape == (2, 5, 4) and found["classes"].dtype == tf.int32
    np.testing.assert_allclose(found["boxes"].numpy()[0, :2], BOXES[0, :2, :4], atol=1e-6)  # ties: lower cell first
    np.testing.assert_array_equal(found["classes"].numpy()[0, :2], [0, 1])
    np.testing.assert_allclose(found["scores"].numpy()[0], [1, 1, 0, 0, 0])
    np.testing.assert_allclose(found["boxes"].numpy()[1, 0], BOXES[1, 0, :4], atol=1e-6)
    # More detections asked than class-cells: padded with score 0 and class -1.
    small = decode_detections(tf.constant(out[:, :1, :1]), max_detections=4)
    np.testing.assert_array_equal(small["classes"].numpy()[:, 2:], -1)
    served = make_task(head={"max_detections": 7}).serving_outputs(tf.constant(out))
    assert {k: tuple(v.shape) for k, v in served.items()} == {"obj_boxes": (2, 7, 4), "obj_scores": (2, 7),
                                                              "obj_classes": (2, 7)}


def test_a_box_outside_the_peak_is_suppressed_by_the_max_pool():
    out = perfect_output(BOXES[:1], 8, 8, 2)
    out[0, 3, 3, 0] = 0.9  # next to the car's peak at (3, 2): not a peak
    scores = decode_detections(tf.constant(out), 3)["scores"].numpy()[0]
    np.testing.assert_allclose(scores, [1, 1, 0])


def evaluate(task, labels, outputs, masks):
    metrics = task.make_metrics()

    @tf.function
    def update(y, o, m):
        for metric in metrics.values():
            metric.update_state(y, o, sample_weight=m)

    for y, o, m in zip(labels, outputs, masks):
        update(tf.constant(y), tf.constant(o), tf.constant(m))
    return {name: float(metric.result()) for name, metric in metrics.items()}


def test_coco_ap_is_one_for_a_perfect_prediction_and_lower_for_a_shifted_one():
    task = make_task()
    perfect = perfect_output(BOXES, 8, 8, 2)
    # Two batches, accumulated across update_state calls.
    results = evaluate(task, [BOXES[:1], BOXES[1:]], [perfect[:1], perfect[1:]], [[1.0], [1.0]])
    assert results["map_50"] == pytest.approx(1.0) and results["map"] > 0.95
    shifted = perfect.copy()
    shifted[..., 4] += 0.3  # every offset 0.3 cells too far right: IoU drops below 0.75 for small boxes
    worse = evaluate(task, [BOXES], [shifted], [[1.0, 1.0]])
    assert worse["map"] < results["map"] - 0.05
    missed = evaluate(task, [BOXES], [np.zeros_like(perfect)], [[1.0, 1.0]])
    assert missed["map_50"] < 0.05


def test_coco_ap_skips_masked_rows_and_resets():
    task = make_task()
    perfect = perfect_output(BOXES, 8, 8, 2)
    wrong = perfect.copy()
    wrong[1] = 0.0  # the second image predicts nothing, but it is not labelled
    assert evaluate(task, [BOXES], [wrong], [[1.0, 0.0]])["map_50"] == pytest.approx(1.0)
    metrics = task.make_metrics()
    for metric in metrics.values():
        metric.update_state(BOXES, wrong, sample_weight=tf.constant([1.0, 1.0]))
    assert float(metrics["map_50"].result()) < 0.9
    for metric in metrics.values():
        metric.reset_state()
        metric.update_state(BOXES, perfect, sample_weight=tf.constant([1.0, 1.0]))
    assert float(metrics["map_50"].result()) == pytest.approx(1.0)


def test_metrics_through_task_metrics_and_their_jit_flag():
    task = make_task()
    assert not task.metrics_support_jit and all(not m.supports_jit for m in task.make_metrics().values())
    perfect = perfect_output(BOXES, 8, 8, 2)
    trackers = TaskMetrics([task])
    labels, masks, outputs = {"obj": tf.constant(BOXES)}, {"obj": tf.constant([0.0, 1.0])}, {"obj": perfect}

    @tf.function
    def step():
        _, per_example = masked_losses([task], labels, masks, outputs)
        trackers.update(labels, masks, outputs, per_example)

    step()
    step()
    results = trackers.task_results()["obj"]
    assert results["map_50"] == pytest.approx(1.0) and np.isfinite(results["loss"])
    assert task.higher_is_better("map")


def test_head_and_metrics_round_trip_through_keras_saving(tmp_path):
    task = make_task(head={"channels": 4})
    x = keras.Input((8, 8, 3))
    model = keras.Model(x, {"obj": task.head(x)})
    data = np.random.default_rng(3).normal(size=(2, 8, 8, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "m.keras")(data)["obj"], model(data)["obj"],
                               rtol=1e-6)
    for metric in task.make_metrics().values():
        copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert copy.get_config() == metric.get_config() and copy.supports_jit is False


@pytest.mark.parametrize("options, words", [
    ({"loss": {"name": "centernet", "sizes": 1}}, ["tasks.2.loss", "'sizes'", "did you mean 'size'",
                                                   "allowed: heatmap, offset, size"]),
    ({"loss": "yolo"}, ["tasks.2.loss", "'yolo'", "allowed: centernet"]),
    ({"head": {"max_detection": 5}}, ["tasks.2.head", "did you mean 'max_detections'"]),
    ({"head": {"output_stride": 0}}, ["tasks.2.head.output_stride", ">= 1", "0"]),
    ({"head": {"output_stride": 5}}, ["tasks.2.head.output_stride", "5 must divide the image size 32x32"]),
])
def test_bad_options_are_one_line_errors(options, words):
    with pytest.raises(ValueError) as err:
        make_task(path="tasks.2", **options)
    for word in words:
        assert word in str(err.value)
    assert "\n" not in str(err.value)


def test_build_tasks_takes_max_boxes_image_size_and_head_options():
    recipe = parse_recipe({
        "name": "scenes",
        "data": {"source": {"kind": "manifest", "path": "m.jsonl"}, "output_dir": "o",
                 "features": [{"name": "image", "kind": "image", "height": 32, "width": 48}]},
        "tasks": [{"name": "objects", "type": "detection", "label": "boxes", "classes": ["car"], "max_boxes": 4,
                   "head": {"max_detections": 50, "output_stride": 8}, "loss": {"name": "centernet", "size": 5}}],
    }, check=False)
    (task,) = build_tasks(recipe.tasks, image_dataset([detection_spec(max_boxes=4)]))
    assert (task.image_size, task.label_shape, task.max_detections, task.output_stride) == ((32, 48), [4, 5], 50, 8)
    assert task.loss_weights == {"heatmap": 1.0, "size": 5.0, "offset": 1.0}
    with pytest.raises(ValueError, match=r"tasks\.0\.max_boxes: 4 disagrees with the dataset's label shape \[8, 5\]"):
        build_tasks(recipe.tasks, image_dataset([detection_spec(max_boxes=8)]))
    missing = task.missing_label(2).numpy()
    assert missing.shape == (2, 4, 5) and np.all(missing[..., 4] == -1)
    np.testing.assert_array_equal(task.mask(tf.constant(BOXES[:, :, :])), [1, 1])


def squares(count, seed):
    """32x32 grey images, each with one bright square of side 6..14 on a dark background."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.2, size=(count, 32, 32, 1)).astype("float32")
    boxes = np.tile(np.array(PAD, "float32"), (count, 4, 1))
    for i in range(count):
        side = rng.integers(6, 15)
        x, y = rng.integers(0, 32 - side, size=2)
        images[i, y:y + side, x:x + side] = rng.uniform(0.8, 1.0)
        boxes[i, 0] = [x / 32, y / 32, (x + side) / 32, (y + side) / 32, 0]
    return images, boxes


def test_a_short_training_run_learns_to_find_squares():
    task = DetectionTask("obj", classes=["square"], spec=detection_spec(classes=["square"]), max_boxes=4,
                         image_size=(32, 32), head={"channels": 16, "max_detections": 10})

    def model_fn():
        x = keras.Input((32, 32, 1), name="image")
        h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="shared_c1")(x)
        h = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="shared_c2")(h)
        h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="shared_c3")(h)
        return keras.Model({"image": x}, {"obj": task.head(h)})

    def dataset(count, seed):
        images, boxes = squares(count, seed)
        masks = {"obj": np.ones(count, "float32")}
        return tf.data.Dataset.from_tensor_slices(({"image": images}, {"obj": boxes}, masks))

    # steps_per_execution 3: the metrics also run inside the compiled loop over batches.
    train = dataset(320, 0).batch(16)
    test = dataset(48, 1).batch(16)
    trainer = Trainer(model_fn, [task], {"name": "adam", "learning_rate": 3e-3}, epochs=5, verbose=0,
                      jit_compile=False, seed=0, steps_per_execution=3)
    before = trainer.evaluate(test)["obj"]
    trainer.fit(train)
    after = trainer.evaluate(test)["obj"]
    assert after["loss"] < before["loss"] / 2
    assert after["map_50"] > 0.6 and after["map_50"] > before["map_50"] + 0.4, (before, after)
