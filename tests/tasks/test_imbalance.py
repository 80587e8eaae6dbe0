"""Rare findings: positive weights (fixed or from dataset.json's counts), focal losses for the
sigmoid types and segmentation, sensitivity at a fixed specificity, and Dice per class."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.data.spec import DatasetSpec, FeatureSpec, NumericStats, SplitSpec, TaskSpec
from mtl_tf.recipe.loader import parse_recipe
from mtl_tf.tasks import BinaryTask, MulticlassTask, MultilabelTask, build_tasks
from mtl_tf.tasks.imbalance import MAX_POS_WEIGHT
from mtl_tf.tasks.segmentation import SegmentationTask
from mtl_tf.training.task_metrics import ONE_CLASS, TaskMetrics
from tests.tasks.dense_specs import segmentation_spec

FINDINGS = ["nodule", "effusion", "hernia"]


def _findings_spec(positives=(30, 5, 0), labelled=300):
    task = TaskSpec(name="findings", type="multilabel", label_key="findings", dtype="float32", classes=FINDINGS,
                    shape=[3], labelled={"train": labelled}, positives={"train": list(positives)})
    flag = TaskSpec(name="abnormal", type="binary", label_key="abnormal", dtype="float32",
                    labelled={"train": labelled}, positives={"train": 2})
    feature = FeatureSpec(name="age", kind="numeric", dtype="float32", stats=NumericStats(count=labelled))
    return DatasetSpec(name="scans", created="2026-01-01T00:00:00", rows_in=labelled, features=[feature],
                       tasks=[task, flag], splits={"train": SplitSpec(pattern="t-*", num_examples=labelled,
                                                                       num_shards=1)})


def _tasks(findings_loss, abnormal_loss=None, spec=None):
    raw = {"name": "scans", "data": {"source": {"path": "x.csv"}, "features": [{"name": "age", "kind": "numeric"}],
                                     "output_dir": "o"},
           "tasks": [{"name": "findings", "type": "multilabel", "label": "findings", "classes": FINDINGS,
                      "loss": findings_loss},
                     {"name": "abnormal", "type": "binary", "label": "abnormal", "loss": abnormal_loss}]}
    return build_tasks(parse_recipe(raw, check=False).tasks, spec or _findings_spec())


def _bce(y, p, w=1.0):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(w * y * np.log(p) + (1 - y) * np.log(1 - p))


def test_auto_positive_weights_are_negatives_over_positives_from_the_train_counts():
    findings, abnormal = _tasks({"pos_weight": "auto"}, {"name": "cross_entropy", "pos_weight": "auto"})
    assert findings.pos_weight == pytest.approx([270 / 30, 295 / 5, 1.0])  # no positives in train: 1
    assert abnormal.pos_weight == pytest.approx([MAX_POS_WEIGHT])  # 298 / 2 = 149, capped
    findings, _ = _tasks({"pos_weight": [2, 3, 4]})
    assert findings.pos_weight == [2.0, 3.0, 4.0]


def test_a_weighted_row_loss_is_the_weighted_cross_entropy_and_weight_one_is_keras():
    findings, _ = _tasks({"pos_weight": [2.0, 5.0, 1.0]})
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (6, 3)).astype("float32")
    p = rng.uniform(0.01, 0.99, (6, 3)).astype("float32")
    expected = _bce(y, p, np.array([2.0, 5.0, 1.0])).mean(axis=1)
    np.testing.assert_allclose(findings.per_example_loss(tf.constant(y), tf.constant(p)), expected, rtol=1e-5)
    plain, _ = _tasks(None)
    ones, _ = _tasks({"pos_weight": 1})
    np.testing.assert_allclose(ones.per_example_loss(tf.constant(y), tf.constant(p)),
                               plain.per_example_loss(tf.constant(y), tf.constant(p)), rtol=1e-5)


def test_balanced_weights_move_the_best_constant_prediction_to_one_half():
    # The constant p minimising the weighted loss is w P / (w P + N): with w = N / P it is 1/2.
    spec = _findings_spec(positives=(30, 30, 30))
    findings, _ = _tasks({"pos_weight": "auto"}, spec=spec)
    labels = np.zeros((300, 3), "float32")
    labels[:30] = 1.0
    logit = tf.Variable(tf.zeros([3]))
    for _ in range(300):
        with tf.GradientTape() as tape:
            p = tf.sigmoid(tf.broadcast_to(logit, [300, 3]))
            loss = tf.reduce_mean(findings.per_example_loss(tf.constant(labels), p))
        logit.assign_sub(0.5 * tape.gradient(loss, logit))
    np.testing.assert_allclose(tf.sigmoid(logit).numpy(), 0.5, atol=0.01)
    plain, _ = _tasks(None, spec=spec)
    assert plain.pos_weight is None


def test_focal_loss_follows_its_formula_and_gamma_zero_is_cross_entropy():
    findings, abnormal = _tasks({"name": "focal", "gamma": 2, "alpha": 0.25}, {"name": "focal", "gamma": 0})
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (8, 3)).astype("float32")
    p = rng.uniform(0.01, 0.99, (8, 3)).astype("float32")
    p_true = np.where(y == 1, p, 1 - p)
    alpha = np.where(y == 1, 0.25, 0.75)
    expected = (-alpha * (1 - p_true) ** 2 * np.log(p_true)).mean(axis=1)
    np.testing.assert_allclose(findings.per_example_loss(tf.constant(y), tf.constant(p)), expected, rtol=1e-5)
    np.testing.assert_allclose(abnormal.per_example_loss(tf.constant(y[:, 0]), tf.constant(p[:, 0])),
                               _bce(y[:, 0], p[:, 0]), rtol=1e-5)


@pytest.mark.parametrize("loss, words", [
    ({"pos_weight": "sometimes"}, ["tasks.0.loss.pos_weight", "positive number, 'auto' or 'none'", "'sometimes'"]),
    ({"pos_weight": [1, 2]}, ["tasks.0.loss.pos_weight", "one weight per class (3)", "[1, 2]"]),
    ({"name": "focal", "alpha": 1.5}, ["tasks.0.loss.alpha", "(0, 1)", "1.5"]),
    ({"name": "focal", "pos_weight": 2}, ["tasks.0.loss", "'pos_weight'", "allowed: alpha, gamma"]),
    ({"name": "hinge"}, ["tasks.0.loss", "'hinge'", "allowed: cross_entropy, focal"]),
    ({"pos_wieght": 2}, ["tasks.0.loss", "did you mean 'pos_weight'"]),
])
def test_bad_loss_options_are_one_line_errors_naming_the_key(loss, words):
    with pytest.raises(ValueError) as err:
        _tasks(loss)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_auto_weights_need_the_dataset_counts_and_fixed_losses_refuse_options():
    with pytest.raises(ValueError, match="auto needs the train label counts"):
        BinaryTask("abnormal", loss={"pos_weight": "auto"})
    with pytest.raises(ValueError, match="unknown option 'gamma'.*allowed: \\(none\\)"):
        MulticlassTask("view", classes=["pa", "ap"], loss={"name": "cross_entropy", "gamma": 2})


def test_segmentation_focal_loss_down_weights_easy_pixels():
    spec = segmentation_spec(classes=("background", "lesion"), shape=(2, 3))
    focal = SegmentationTask("seg", classes=["background", "lesion"], spec=spec, loss={"name": "focal", "gamma": 2})
    plain = SegmentationTask("seg", classes=["background", "lesion"], spec=spec, loss={"name": "focal", "gamma": 0})
    ce = SegmentationTask("seg", classes=["background", "lesion"], spec=spec)
    label = np.array([[[0, 0, 1], [0, 255, 1]]], "int32")
    lesion = np.array([[[0.05, 0.1, 0.3], [0.02, 0.5, 0.9]]], "float32")
    probs = np.stack([1 - lesion, lesion], axis=-1)
    p_true = np.where(label == 1, lesion, 1 - lesion)[label != 255]
    np.testing.assert_allclose(focal.per_example_loss(tf.constant(label), tf.constant(probs)),
                               [np.mean(-(1 - p_true) ** 2 * np.log(p_true))], rtol=1e-5)
    np.testing.assert_allclose(plain.per_example_loss(tf.constant(label), tf.constant(probs)),
                               ce.per_example_loss(tf.constant(label), tf.constant(probs)), rtol=1e-6)


def _sensitivity_at(y, p, specificity):
    """The best true positive rate among thresholds t (positive: p > t) with a true negative rate >= s."""
    best = 0.0
    for t in np.concatenate([[-1.0], np.unique(p)]):
        predicted = p > t
        tnr = np.mean(~predicted[y == 0])
        if tnr >= specificity:
            best = max(best, np.mean(predicted[y == 1]))
    return best


def test_sensitivity_at_specificity_matches_a_direct_count_per_class():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (400, 3)).astype("float32")
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, (400, 3)), 0, 1).round(2).astype("float32")
    task = MultilabelTask("findings", classes=FINDINGS, metrics=["sensitivity_at_specificity"], specificity=0.8)
    metric = task.make_metrics()["sensitivity_at_specificity"]
    metric.update_state(y, p)
    expected = [_sensitivity_at(y[:, c], p[:, c], 0.8) for c in range(3)]
    np.testing.assert_allclose(metric.per_class().numpy(), expected, atol=1e-6)
    assert float(metric.result()) == pytest.approx(np.mean(expected), abs=1e-6)
    binary = BinaryTask("nodule", metrics=["sensitivity_at_specificity"])
    single = binary.make_metrics()["sensitivity_at_specificity"]
    single.update_state(*binary.metric_inputs(tf.constant(y[:, 0]), tf.constant(p[:, 0])))
    assert float(single.result()) == pytest.approx(_sensitivity_at(y[:, 0], p[:, 0], 0.9), abs=1e-6)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(single))
    assert copy.specificity == 0.9 and copy.get_config() == single.get_config()


def test_a_finding_without_positives_is_left_out_of_the_mean_sensitivity_not_counted_as_zero():
    task = MultilabelTask("findings", classes=FINDINGS, metrics=["auc", "sensitivity_at_specificity"])
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, (200, 3)).astype("float32")
    y[:, 2] = 0.0  # hernia: no positive in this split
    p = np.clip(0.4 * y + rng.uniform(0, 0.6, (200, 3)), 0, 1).astype("float32")
    trackers = TaskMetrics([task])
    trackers.update({"findings": tf.constant(y)}, {"findings": tf.ones(200)}, {"findings": tf.constant(p)},
                    [task.per_example_loss(tf.constant(y), tf.constant(p))])
    results = trackers.task_results()["findings"]
    expected = np.mean([_sensitivity_at(y[:, c], np.round(p[:, c] * 499) / 499, 0.9) for c in range(2)])
    assert results["sensitivity_at_specificity"] == pytest.approx(expected, abs=0.02)
    y[:, :2] = 1.0
    trackers.reset()
    trackers.update({"findings": tf.constant(y)}, {"findings": tf.ones(200)}, {"findings": tf.constant(p)},
                    [task.per_example_loss(tf.constant(y), tf.constant(p))])
    results = trackers.task_results()["findings"]
    assert math.isnan(results["sensitivity_at_specificity"])
    assert trackers.undefined["findings"]["sensitivity_at_specificity"] == ONE_CLASS


def test_dice_per_class_and_foreground_dice_match_pixel_counts():
    spec = segmentation_spec(classes=("background", "lung", "heart"), shape=(3, 4))
    task = SegmentationTask("organs", classes=["background", "lung", "heart"], spec=spec,
                            metrics=["dice", "foreground_dice", "miou"])
    truth = np.array([[[0, 0, 1, 1], [0, 1, 1, 255], [0, 0, 0, 0]],
                      [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]], "int32")
    predicted = np.array([[[0, 1, 1, 1], [0, 0, 1, 2], [0, 0, 2, 0]],
                          [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]], "int32")
    metrics = task.make_metrics()
    probabilities = tf.one_hot(predicted, 3)
    for metric in metrics.values():
        metric.update_state(*task.metric_inputs(tf.constant(truth), probabilities), sample_weight=tf.ones(2))
    valid = truth != 255
    dice = []
    for c in range(3):
        t, p = (truth == c) & valid, (predicted == c) & valid
        dice.append(2 * (t & p).sum() / (t.sum() + p.sum()) if t.sum() else np.nan)
    # heart is only predicted, never true: left out of both means
    np.testing.assert_allclose(metrics["dice"].per_class().numpy(), dice, atol=1e-6)
    assert float(metrics["dice"].result()) == pytest.approx(np.nanmean(dice), abs=1e-6)
    assert float(metrics["foreground_dice"].result()) == pytest.approx(dice[1], abs=1e-6)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metrics["foreground_dice"]))
    assert copy.foreground and copy.get_config() == metrics["foreground_dice"].get_config()
