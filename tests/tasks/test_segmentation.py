"""Segmentation task: head, masked cross-entropy with Dice and class weights, mIoU, pixel accuracy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.recipe import parse_recipe
from mtl_tf.tasks import SegmentationTask, build_tasks
from mtl_tf.training.losses import masked_losses
from mtl_tf.training.task_metrics import TaskMetrics
from tests.tasks.dense_specs import image_dataset, segmentation_spec

IGNORE = 255


def make_task(**options):
    spec = options.pop("spec", None) or segmentation_spec(pixels=options.pop("pixels", None))
    return SegmentationTask("seg", classes=["a", "b", "c"], spec=spec, ignore_index=IGNORE, **options)


def random_probs(seed, shape=(2, 2, 4, 3)):
    logits = np.random.default_rng(seed).normal(size=shape)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype("float32")


LABEL = np.array([[[0, 1, 2, IGNORE], [1, 1, IGNORE, 0]],
                  [[2, 2, 2, 2], [0, IGNORE, 1, 1]]], "int32")


def numpy_ce(label, probs, weights=None):
    """Per row: sum(w * -log p_true) / sum(w) over labelled pixels."""
    weights = np.ones(probs.shape[-1]) if weights is None else np.asarray(weights)
    rows = []
    for lab, p in zip(label, probs):
        num = den = 0.0
        for (i, j), c in np.ndenumerate(lab):
            if c != IGNORE:
                num += weights[c] * -np.log(p[i, j, c])
                den += weights[c]
        rows.append(num / den if den else 0.0)
    return np.array(rows)


def numpy_dice(label, probs):
    rows = []
    for lab, p in zip(label, probs):
        valid = lab != IGNORE
        scores = []
        for c in range(p.shape[-1]):
            truth = (lab == c) & valid
            if truth.sum() == 0:
                continue
            scores.append(2 * (p[..., c] * truth).sum() / ((p[..., c] * valid).sum() + truth.sum()))
        rows.append(1 - np.mean(scores) if scores else 0.0)
    return np.array(rows)


def test_head_gives_float32_probabilities_per_pixel_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        x = keras.Input((2, 4, 5))
        model = keras.Model(x, make_task().head(keras.layers.Conv2D(6, 3, padding="same", name="shared_c")(x)))
        out = model(np.random.default_rng(0).normal(size=(2, 2, 4, 5)).astype("float32"))
        assert model.layers[-1].compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.shape == (2, 2, 4, 3) and out.dtype == tf.float32
    np.testing.assert_allclose(np.sum(out, -1), 1.0, atol=1e-5)
    loss = make_task(loss={"name": "cross_entropy", "dice": 1.0}).per_example_loss(tf.constant(LABEL), out)
    assert np.all(np.isfinite(loss))


def test_cross_entropy_is_the_mean_over_labelled_pixels():
    probs = random_probs(1)
    loss = make_task().per_example_loss(tf.constant(LABEL), tf.constant(probs))
    np.testing.assert_allclose(loss, numpy_ce(LABEL, probs), rtol=1e-5)


def test_ignored_pixels_change_nothing_and_a_row_without_labels_costs_zero():
    probs = random_probs(2)
    changed = probs.copy()
    changed[LABEL == IGNORE] = [1.0, 0.0, 0.0]
    task = make_task(loss={"name": "cross_entropy", "dice": 0.5})
    np.testing.assert_allclose(task.per_example_loss(tf.constant(LABEL), tf.constant(probs)),
                               task.per_example_loss(tf.constant(LABEL), tf.constant(changed)), rtol=1e-6)
    unlabelled = np.full_like(LABEL, IGNORE)
    assert np.all(task.per_example_loss(tf.constant(unlabelled), tf.constant(probs)).numpy() == 0.0)


def test_a_masked_row_contributes_nothing_to_the_task_loss():
    task = make_task()
    probs = random_probs(3)
    garbage = probs.copy()
    garbage[1] = 1e-12
    losses, _ = masked_losses([task], {"seg": tf.constant(LABEL)}, {"seg": tf.constant([1.0, 0.0])},
                              {"seg": tf.constant(garbage)})
    np.testing.assert_allclose(losses.numpy()[0], numpy_ce(LABEL, probs)[0], rtol=1e-5)


def test_class_weights_reweight_pixels_as_numpy_does_and_in_the_known_direction():
    probs = random_probs(4)
    weights = [1.0, 3.0, 0.5]
    loss = make_task(loss={"name": "cross_entropy", "class_weights": weights}).per_example_loss(
        tf.constant(LABEL), tf.constant(probs)).numpy()
    np.testing.assert_allclose(loss, numpy_ce(LABEL, probs, weights), rtol=1e-5)
    # Class 1 predicted badly, class 0 well: weighting class 1 up raises the loss.
    label = np.array([[[0, 0, 1, 1]]], "int32")
    good, bad = [0.9, 0.05, 0.05], [0.8, 0.1, 0.1]
    probs = np.array([[[good, good, bad, bad]]], "float32")
    plain = make_task(spec=segmentation_spec(shape=(1, 4))).per_example_loss(label, probs).numpy()[0]
    heavier = make_task(spec=segmentation_spec(shape=(1, 4)), loss={"name": "cross_entropy",
                                                                   "class_weights": [1, 4, 1]})
    lighter = make_task(spec=segmentation_spec(shape=(1, 4)), loss={"name": "cross_entropy",
                                                                   "class_weights": [4, 1, 1]})
    assert heavier.per_example_loss(label, probs).numpy()[0] > plain > lighter.per_example_loss(label, probs).numpy()[0]


def test_auto_class_weights_are_median_frequency_balanced_and_capped():
    # Frequencies 1000:100:1 -> median 100 -> weights 0.1, 1, 100 capped at 10.
    task = make_task(pixels=[1000, 100, 1], loss={"name": "cross_entropy", "class_weights": "auto"})
    np.testing.assert_allclose(task.class_weights, [0.1, 1.0, 10.0])
    with pytest.raises(ValueError, match="auto needs the train-split pixel counts"):
        make_task(loss={"name": "cross_entropy", "class_weights": "auto"})


def test_dice_matches_numpy_and_is_zero_on_a_perfect_prediction():
    probs = random_probs(5)
    task = make_task(loss={"name": "cross_entropy", "dice": 2.0})
    expected = numpy_ce(LABEL, probs) + 2.0 * numpy_dice(LABEL, probs)
    np.testing.assert_allclose(task.per_example_loss(tf.constant(LABEL), tf.constant(probs)), expected, rtol=1e-5)
    perfect = np.eye(3, dtype="float32")[np.where(LABEL == IGNORE, 0, LABEL)]
    assert np.all(task.per_example_loss(tf.constant(LABEL), tf.constant(perfect)).numpy() < 1e-5)


def test_miou_counts_classes_present_in_the_truth_and_skips_ignored_pixels_and_masked_rows():
    task = make_task()
    # Row 0: truth holds classes 0 and 1; class 2 is only predicted (a false positive); the
    # ignored pixel is predicted 2 and must not count. Row 1 is unlabelled (mask 0).
    label = np.array([[[0, 0, 1, IGNORE], [1, 1, 0, 0]], [[2, 2, 2, 2], [2, 2, 2, 2]]], "int32")
    pred = np.array([[[0, 2, 1, 2], [1, 0, 0, 0]], [[0, 0, 0, 0], [0, 0, 0, 0]]], "int32")
    probs = np.eye(3, dtype="float32")[pred]
    mask = tf.constant([1.0, 0.0])
    valid = (label[0] != IGNORE)
    ious = []
    for c in (0, 1):
        t, p = (label[0] == c) & valid, (pred[0] == c) & valid
        ious.append((t & p).sum() / (t | p).sum())
    metrics = task.make_metrics()
    for metric in metrics.values():
        metric.update_state(*task.metric_inputs(tf.constant(label), tf.constant(probs)), sample_weight=mask)
    np.testing.assert_allclose(float(metrics["miou"].result()), np.mean(ious), rtol=1e-6)
    correct = ((label[0] == pred[0]) & valid).sum() / valid.sum()
    np.testing.assert_allclose(float(metrics["pixel_accuracy"].result()), correct, rtol=1e-6)
    per_class = metrics["miou"].per_class().numpy()
    np.testing.assert_allclose(per_class[:2], ious, rtol=1e-6)
    assert np.isnan(per_class[2])
    # Keras' own MeanIoU averages the predicted-only class in as 0: a different (lower) number.
    plain = keras.metrics.MeanIoU(3, ignore_class=IGNORE)
    plain.update_state(label[:1], pred[:1])
    assert float(plain.result()) < np.mean(ious) - 0.1


def test_metrics_through_task_metrics_with_row_masks():
    task = make_task()
    probs = random_probs(6)
    masks = {"seg": tf.constant([0.0, 1.0])}
    trackers = TaskMetrics([task])
    _, per_example = masked_losses([task], {"seg": tf.constant(LABEL)}, masks, {"seg": tf.constant(probs)})
    trackers.update({"seg": tf.constant(LABEL)}, masks, {"seg": tf.constant(probs)}, per_example)
    results = trackers.task_results()["seg"]
    pred, valid = probs[1].argmax(-1), LABEL[1] != IGNORE
    assert results["pixel_accuracy"] == pytest.approx(((pred == LABEL[1]) & valid).sum() / valid.sum())
    assert results["loss"] == pytest.approx(numpy_ce(LABEL, probs)[1], rel=1e-5)
    assert task.higher_is_better("miou") and task.higher_is_better("pixel_accuracy")


def test_serving_outputs_are_class_ids_and_optionally_probabilities():
    probs = random_probs(7)
    outputs = make_task().serving_outputs(tf.constant(probs))
    assert list(outputs) == ["seg"] and outputs["seg"].dtype == tf.int32
    np.testing.assert_array_equal(outputs["seg"], probs.argmax(-1))
    with_probs = make_task(probabilities=True).serving_outputs(tf.constant(probs))
    assert sorted(with_probs) == ["seg", "seg_probabilities"]


def test_head_and_metrics_round_trip_through_keras_saving(tmp_path):
    task = make_task()
    x = keras.Input((2, 4, 5))
    model = keras.Model(x, {"seg": task.head(x)})
    data = np.random.default_rng(8).normal(size=(2, 2, 4, 5)).astype("float32")
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded(data)["seg"], model(data)["seg"], rtol=1e-6)
    for metric in task.make_metrics().values():
        copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(copy) is type(metric) and copy.get_config() == metric.get_config()


@pytest.mark.parametrize("loss, head, words", [
    ({"name": "cross_entropy", "dcie": 1}, None, ["tasks.0.loss", "'dcie'", "did you mean 'dice'",
                                                  "allowed: class_weights, dice"]),
    ({"name": "hinge"}, None, ["tasks.0.loss", "'hinge'", "allowed: cross_entropy, focal"]),
    ({"name": "cross_entropy", "dice": -1}, None, ["tasks.0.loss.dice", ">= 0", "-1"]),
    ({"name": "cross_entropy", "class_weights": [1, 2]}, None, ["tasks.0.loss.class_weights", "3", "[1, 2]"]),
    (None, {"channels": 8}, ["tasks.0.head", "'channels'", "allowed: (none)"]),
])
def test_bad_loss_and_head_options_are_one_line_errors(loss, head, words):
    with pytest.raises(ValueError) as err:
        make_task(loss=loss, head=head, path="tasks.0")
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)


def recipe(**task):
    return parse_recipe({
        "name": "scenes",
        "data": {"source": {"kind": "manifest", "path": "m.jsonl"}, "output_dir": "o",
                 "features": [{"name": "image", "kind": "image", "height": 2, "width": 4}]},
        "tasks": [{"name": "seg", "type": "segmentation", "label": "mask", "classes": ["a", "b", "c"], **task},
                  {"name": "scene", "type": "multiclass", "label": "weather", "classes": ["x", "y"]}],
    }, check=False)


def test_build_tasks_passes_the_recipe_options_and_the_spec():
    r = recipe(ignore_index=200, loss={"name": "cross_entropy", "dice": 0.25})
    spec = image_dataset([segmentation_spec(ignore_index=200)], height=2, width=4)
    seg, scene = build_tasks(r.tasks, spec)
    assert isinstance(seg, SegmentationTask) and seg.dense and not scene.dense
    assert (seg.ignore_index, seg.dice_weight, seg.label_shape, seg.output_stride) == (200, 0.25, [2, 4], 1)
    assert scene.serving_outputs(tf.constant([[0.2, 0.8]]))["scene"].shape == (1, 2)


def test_build_tasks_without_the_spec_or_with_a_disagreeing_one_says_so():
    with pytest.raises(ValueError, match=r"tasks\.0: the segmentation task 'seg' needs the dataset's dataset.json"):
        build_tasks(recipe().tasks)
    with pytest.raises(ValueError, match=r"tasks\.0\.ignore_index: 255 differs from the dataset's 200"):
        build_tasks(recipe().tasks, image_dataset([segmentation_spec(ignore_index=200)]))
    with pytest.raises(ValueError, match="has no task 'seg'"):
        build_tasks(recipe().tasks, image_dataset([]))


def test_fallback_mask_and_missing_label():
    task = make_task()
    np.testing.assert_array_equal(task.mask(tf.constant(np.stack([LABEL[0], np.full((2, 4), IGNORE)]))), [1, 0])
    missing = task.missing_label(3)
    assert missing.shape == (3, 2, 4) and missing.dtype == tf.int32 and np.all(missing.numpy() == IGNORE)
