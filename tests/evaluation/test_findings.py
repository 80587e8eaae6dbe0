"""Per-finding evaluation: exact rank scores, calibration error and reliability diagrams,
findings without positives reported as such, Dice per class, scores per patient."""

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from mtl_tf.evaluation.findings import evaluate_findings, findings_lines, group_by_key, segmentation_entry
from mtl_tf.evaluation.predictions import Predictions, TaskPredictions
from mtl_tf.evaluation.report import to_markdown
from mtl_tf.evaluation.scores import (average_precision, expected_calibration_error, reliability_bins, roc_auc,
                                      sensitivity_at_specificity)
from mtl_tf.recipe.schema import ByKey
from mtl_tf.tasks import BinaryTask, MultilabelTask
from tests.tasks.dense_specs import segmentation_spec

FINDINGS = ["nodule", "effusion", "hernia"]


def _auc_by_pairs(y, p):
    pos, neg = p[y == 1], p[y == 0]
    return np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])


def _ap_by_thresholds(y, p):
    total, previous_recall = 0.0, 0.0
    for t in sorted(set(p), reverse=True):
        called = p >= t
        recall = (called & (y == 1)).sum() / (y == 1).sum()
        precision = (called & (y == 1)).sum() / called.sum()
        total += (recall - previous_recall) * precision
        previous_recall = recall
    return total


def _ece_by_loop(y, p, bins=15):
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(yi, pi) for yi, pi in zip(y, p) if (low < pi <= high) or (b == 0 and pi == 0)]
        if inside:
            ys, ps = zip(*inside)
            total += len(inside) / len(y) * abs(np.mean(ys) - np.mean(ps))
    return total


@pytest.fixture
def scored():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0, 1).round(2)  # ties, as rounded probabilities have
    return y, p


def test_rank_scores_match_their_definitions(scored):
    y, p = scored
    assert roc_auc(y, p) == pytest.approx(_auc_by_pairs(y, p), abs=1e-12)
    assert average_precision(y, p) == pytest.approx(_ap_by_thresholds(y, p), abs=1e-12)
    best = max(((p >= t)[y == 1].mean() for t in np.unique(p) if (p < t)[y == 0].mean() >= 0.9), default=0.0)
    assert sensitivity_at_specificity(y, p, 0.9) == pytest.approx(best)


def test_calibration_error_matches_a_loop_over_15_bins(scored):
    y, p = scored
    assert expected_calibration_error(y, p) == pytest.approx(_ece_by_loop(y, p), abs=1e-12)
    bins = reliability_bins(y, p)
    assert len(bins.counts) == 15 and bins.counts.sum() == 300
    perfect = np.repeat([0.2, 0.8], 50)
    labels = np.r_[np.ones(10), np.zeros(40), np.ones(40), np.zeros(10)]
    assert expected_calibration_error(labels, perfect) == pytest.approx(0.0)
    assert expected_calibration_error(np.zeros(4), np.full(4, 0.75)) == pytest.approx(0.75)


def test_scores_that_need_both_classes_are_nan_without_one():
    assert math.isnan(roc_auc(np.zeros(5), np.linspace(0, 1, 5)))
    assert math.isnan(average_precision(np.zeros(5), np.linspace(0, 1, 5)))
    assert math.isnan(sensitivity_at_specificity(np.ones(5), np.linspace(0, 1, 5)))
    with pytest.raises(ValueError, match="same length; received 2 and 3"):
        roc_auc(np.zeros(2), np.zeros(3))


def _predictions(rng, rows=120):
    y = rng.integers(0, 2, (rows, 3)).astype(float)
    y[:, 2] = 0.0  # hernia: no positive in this split
    p = np.clip(0.4 * y + rng.uniform(0, 0.6, (rows, 3)), 0, 1)
    labelled = np.ones(rows, bool)
    labelled[:10] = False  # unlabelled rows do not count
    flag_y = y[:, :1].copy()
    return Predictions(tasks={"findings": TaskPredictions(p, y, labelled),
                              "abnormal": TaskPredictions(p[:, :1], flag_y, np.ones(rows, bool))})


def _tasks():
    return [MultilabelTask("findings", classes=FINDINGS, specificity=0.8), BinaryTask("abnormal")]


def test_a_finding_without_positives_is_reported_as_such_and_left_out_of_the_means(tmp_path):
    rng = np.random.default_rng(0)
    predictions = _predictions(rng)
    findings = evaluate_findings(predictions, _tasks())
    entry = findings.section["tasks"]["findings"]
    hernia, nodule = entry["classes"]["hernia"], entry["classes"]["nodule"]
    assert hernia["positives"] == 0 and hernia["auc"] is None and hernia["average_precision"] is None
    assert hernia["undefined"]["auc"] == "no positives in test" and hernia["ece"] is not None
    rows = predictions.tasks["findings"]
    y, p = rows.labels[10:, 0], rows.probabilities[10:, 0]
    assert nodule["auc"] == pytest.approx(_auc_by_pairs(y, p)) and nodule["negatives"] + nodule["positives"] == 110
    assert nodule["sensitivity_at_specificity"] == pytest.approx(sensitivity_at_specificity(y, p, 0.8))
    assert entry["mean_auc"] == pytest.approx(np.mean([nodule["auc"], entry["classes"]["effusion"]["auc"]]))
    assert entry["left_out_of_means"] == ["hernia"]
    assert "findings/test_hernia_auc" not in findings.metrics and "findings/test_hernia_ece" in findings.metrics
    assert findings.metrics["findings/test_nodule_auc"] == pytest.approx(nodule["auc"])
    assert findings.undefined == ["findings/hernia"]
    json.dumps(findings.section)  # JSON-ready
    markdown = "\n".join(findings_lines(findings.section))
    assert "| hernia | 0 of 110 | undefined (no positives in test) |" in markdown


def test_every_finding_gets_a_reliability_diagram_that_decodes(tmp_path):
    findings = evaluate_findings(_predictions(np.random.default_rng(1)), _tasks())
    paths = findings.plots(tmp_path / "calibration")
    assert sorted(p.name for p in paths) == ["abnormal.png", "findings__effusion.png", "findings__hernia.png",
                                             "findings__nodule.png"]
    for path in paths:
        image = Image.open(io.BytesIO(path.read_bytes()))
        image.load()
        assert image.format == "PNG" and image.size[0] > 200 and image.size[1] > 200


def test_scores_per_patient_aggregate_their_rows():
    rows = TaskPredictions(probabilities=np.array([[0.2], [0.6], [0.9], [0.1], [0.3]]),
                           labels=np.array([[0.0], [1.0], [1.0], [0.0], [0.0]]),
                           labelled=np.array([True, True, True, True, False]))
    keys = np.array(["a", "a", "b", "c", "c"])
    mean = group_by_key(rows, keys, "mean")
    np.testing.assert_allclose(mean.probabilities[:, 0], [0.4, 0.9, 0.1])  # c's unlabelled row left out
    np.testing.assert_allclose(mean.labels[:, 0], [1.0, 1.0, 0.0])  # a is positive: one of its rows is
    np.testing.assert_allclose(group_by_key(rows, keys, "max").probabilities[:, 0], [0.6, 0.9, 0.1])
    predictions = Predictions(tasks={"abnormal": rows}, keys=list(keys))
    findings = evaluate_findings(predictions, [BinaryTask("abnormal")], by_key=ByKey(tasks=["abnormal"]),
                                 key_name="patient")
    by_key = findings.section["by_key"]
    assert by_key["key"] == "patient" and by_key["tasks"]["abnormal"]["keys"] == 3
    assert by_key["tasks"]["abnormal"]["classes"]["abnormal"]["auc"] == pytest.approx(1.0)
    assert findings.metrics["abnormal/test_by_key_abnormal_auc"] == pytest.approx(1.0)
    unkeyed = evaluate_findings(Predictions(tasks={"abnormal": rows}), [BinaryTask("abnormal")],
                                by_key=ByKey(tasks=["abnormal"]))
    assert "no split key" in unkeyed.section["by_key"]["unavailable"]


def test_segmentation_dice_and_iou_per_class_from_the_confusion_matrix():
    from mtl_tf.tasks.segmentation import SegmentationTask

    task = SegmentationTask("organs", classes=["background", "lung", "heart"],
                            spec=segmentation_spec(classes=("background", "lung", "heart")))
    confusion = np.array([[50, 5, 0], [10, 30, 0], [0, 0, 0]])  # heart never true
    entry = segmentation_entry(task, confusion)
    assert entry["classes"]["lung"]["dice"] == pytest.approx(2 * 30 / (40 + 35))
    assert entry["classes"]["background"]["iou"] == pytest.approx(50 / (55 + 60 - 50))
    assert entry["classes"]["heart"]["dice"] is None and entry["absent"] == ["heart"]
    assert entry["foreground_dice"] == pytest.approx(entry["classes"]["lung"]["dice"])


def test_the_report_shows_the_findings_section():
    findings = evaluate_findings(_predictions(np.random.default_rng(2)), _tasks())
    report = {"recipe": "r", "tasks": {}, "dataset": {"rows_in": 1, "rejected": 0, "splits": {}},
              "findings": findings.section}
    markdown = to_markdown(report)
    assert "## Findings" in markdown and "| **mean** |" in markdown and "sensitivity at specificity 0.8" in markdown


def test_a_single_task_baseline_keeps_per_key_scoring_of_its_own_task_only():
    from mtl_tf.recipe.loader import parse_recipe
    from mtl_tf.runner import single_task_recipe

    raw = {"name": "scans", "data": {"source": {"path": "x.csv"}, "features": [{"name": "age", "kind": "numeric"}],
                                     "split": {"key": "patient"}, "output_dir": "o"},
           "tasks": [{"name": "grade", "type": "binary", "label": "grade"},
                     {"name": "death", "type": "binary", "label": "death"},
                     {"name": "age_group", "type": "multiclass", "label": "g", "classes": ["a", "b"]}],
           "evaluation": {"by_key": {"tasks": ["grade", "death"], "aggregate": "max"}}}
    recipe = parse_recipe(raw, check=False)
    grade = single_task_recipe(recipe, "grade").evaluation.by_key
    assert grade.tasks == ["grade"] and grade.aggregate == "max"
    assert single_task_recipe(recipe, "age_group").evaluation.by_key is None
