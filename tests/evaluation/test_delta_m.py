"""delta_m against single-task baselines, baselines.json and the report section."""

import json
from types import SimpleNamespace

import pytest

from mtl_tf.evaluation import Baselines, delta_m, relative_change
from mtl_tf.evaluation.baselines import compare, dataset_fingerprint
from mtl_tf.evaluation.report import to_markdown
from mtl_tf.tasks import BinaryTask, RegressionTask


def tasks():
    return [BinaryTask("fraud", metrics=["auc", "accuracy"]), RegressionTask("amount", metrics=["rmse", "mae"])]


def test_relative_change_sign_follows_direction():
    assert relative_change(0.88, 0.80, higher_is_better=True) == pytest.approx(0.10)
    assert relative_change(0.90, 1.00, higher_is_better=False) == pytest.approx(0.10)  # rmse went down: better
    assert relative_change(1.10, 1.00, higher_is_better=False) == pytest.approx(-0.10)
    with pytest.raises(ValueError, match="single-task value is 0"):
        relative_change(0.1, 0.0, True)


def test_delta_m_primary_and_all_metrics():
    mt = {"fraud": {"loss": 0.1, "auc": 0.88, "accuracy": 0.90}, "amount": {"loss": 3.0, "rmse": 0.9, "mae": 0.6}}
    st = {"fraud": {"loss": 0.5, "auc": 0.80, "accuracy": 0.90}, "amount": {"loss": 1.0, "rmse": 1.0, "mae": 0.5}}
    result = delta_m(mt, st, tasks())
    # primary: auc +10%, rmse +10% (lower is better) -> +10%
    assert result.primary == pytest.approx(10.0)
    # all: fraud mean(+10, 0) = +5; amount mean(+10, -20) = -5 -> 0; the loss is left out
    assert result.all_metrics == pytest.approx(0.0)
    assert result.per_metric["amount"] == pytest.approx({"rmse": 10.0, "mae": -20.0})
    assert result.per_task["amount"]["higher_is_better"] is False
    assert result.metrics()["delta_m/primary"] == pytest.approx(10.0)
    assert result.metrics()["delta_m/fraud"] == pytest.approx(10.0)


def test_delta_m_lists_missing_baselines_and_zero_baselines():
    result = delta_m({"fraud": {"auc": 0.9, "accuracy": 0.5}, "amount": {"rmse": 1.0}},
                     {"fraud": {"auc": 0.9, "accuracy": 0.0}}, tasks())
    assert result.missing == ["amount"]
    assert result.skipped == ["fraud/accuracy"]
    assert result.primary == 0.0


def _spec(splits):
    return SimpleNamespace(root="/data/x", rows_in=100,
                           splits={k: SimpleNamespace(num_examples=v) for k, v in splits.items()})


def _recipe(tmp_path):
    return SimpleNamespace(run_dir=str(tmp_path), name="r", model=None, training=None)


def test_compare_says_how_to_make_baselines_when_missing(tmp_path):
    section = compare(_recipe(tmp_path), _spec({"train": 80}), tasks(), {})
    assert section["available"] is False
    assert "mtl baseline" in section["how"]
    text = to_markdown({"recipe": "r", "tasks": {}, "dataset": {"rows_in": 1, "rejected": 0, "splits": {}},
                        "delta_m": section})
    assert "Not computed: no single-task baselines" in text and "mtl baseline" in text


def test_compare_with_baselines_file_and_stale_data(tmp_path):
    spec = _spec({"train": 80, "test": 20})
    Baselines(recipe="r", dataset=dataset_fingerprint(spec),
              tasks={"fraud": {"test": {"auc": 0.8, "accuracy": 0.9}, "best_epoch": 2},
                     "amount": {"test": {"rmse": 1.0, "mae": 0.5}, "best_epoch": 1}}).write(tmp_path)
    assert json.loads((tmp_path / "baselines.json").read_text())["created"]
    mt = {"fraud": {"auc": 0.88, "accuracy": 0.9}, "amount": {"rmse": 0.9, "mae": 0.5}}
    section = compare(_recipe(tmp_path), spec, tasks(), mt)
    assert section["available"] and section["primary_pct"] == pytest.approx(10.0)
    assert section["metrics"]["delta_m/all_metrics"] == pytest.approx(5.0)
    text = to_markdown({"recipe": "r", "tasks": {}, "dataset": {"rows_in": 1, "rejected": 0, "splits": {}},
                        "delta_m": section})
    assert "**+10.00%**" in text and "| amount | rmse | 0.9000 | 1.0000 | +10.00% |" in text

    stale = compare(_recipe(tmp_path), _spec({"train": 81, "test": 20}), tasks(), mt)
    assert stale["available"] is False and "rerun `mtl baseline" in stale["reason"]


def test_baselines_merge_keeps_other_tasks(tmp_path):
    old = Baselines(recipe="r", dataset={"splits": {"train": 1}}, tasks={"a": {"test": {"auc": 0.7}}})
    new = Baselines(recipe="r", dataset={"splits": {"train": 1}}, tasks={"b": {"test": {"auc": 0.6}}})
    merged = old.merge(new)
    assert sorted(merged.tasks) == ["a", "b"]
    (tmp_path / "bad.json").write_text("{\"x\": 1}")
    with pytest.raises(ValueError, match="not a baselines file"):
        Baselines.read(tmp_path / "bad.json")


def _spec_with_counts(splits):
    """A dataset.json-like spec whose tasks know their test label counts (fraud: 8% positive)."""
    counts = {"fraud": SimpleNamespace(labelled={"test": 100}, positives={"test": 8}),
              "amount": SimpleNamespace(labelled={"test": 100}, positives={})}
    spec = _spec(splits)
    spec.task = lambda name: counts[name]
    return spec


def _collapsed_baseline(tmp_path, spec, takeover_auc=0.48):
    """fraud learned for 8 epochs; takeover collapsed: chance-level AUC, best at epoch 1, stopped at 4."""
    Baselines(recipe="r", dataset=dataset_fingerprint(spec), tasks={
        "fraud": {"test": {"auc": 0.80}, "primary_metric": "auc", "best_epoch": 6, "epochs_run": 8,
                  "stopped_reason": "completed"},
        "takeover": {"test": {"auc": takeover_auc}, "primary_metric": "auc", "best_epoch": 1, "epochs_run": 4,
                     "stopped_reason": "early_stopping"}}).write(tmp_path)


def binary_pair():
    return [BinaryTask("fraud", metrics=["auc"]), BinaryTask("takeover", metrics=["auc"])]


def test_a_collapsed_baseline_is_flagged_beside_delta_m_with_the_change_per_task(tmp_path):
    from mtl_tf.runner import RunResult

    spec = _spec({"train": 80, "test": 20})
    _collapsed_baseline(tmp_path, spec)
    section = compare(_recipe(tmp_path), spec, binary_pair(), {"fraud": {"auc": 0.82}, "takeover": {"auc": 0.80}})
    # fraud (0.82 - 0.80) / 0.80 = +2.5%; takeover (0.80 - 0.48) / 0.48 = +66.67%; the mean +34.58%
    assert section["primary_pct"] == pytest.approx((2.5 + 66.6667) / 2, abs=1e-3)
    assert section["per_task_pct"] == pytest.approx({"fraud": 2.5, "takeover": 66.6667}, abs=1e-3)
    assert section["baseline_warnings"] == {"takeover": [
        "its auc 0.4800 is at chance level (<= 0.55; 0.5 is a coin flip)",
        "its best validation epoch was epoch 1 of 4 (early_stopping)"]}

    line = RunResult(run_dir=tmp_path, dataset_path=tmp_path, report_path=tmp_path / "report.md",
                     test_metrics={"fraud": {"auc": 0.82}, "takeover": {"auc": 0.80}}, delta_m=section).summary()
    assert ("delta_m vs single-task baselines: +34.58% (primary metrics), +34.58% (all metrics); "
            "per task: fraud auc +2.50%, takeover auc +66.67%") in line
    assert "warning: the takeover baseline is weak (its auc 0.4800 is at chance level" in line

    text = to_markdown({"recipe": "r", "tasks": {}, "dataset": {"rows_in": 1, "rejected": 0, "splits": {}},
                        "delta_m": section})
    assert "**Weak baselines**" in text
    assert "- takeover: its auc 0.4800 is at chance level (<= 0.55; 0.5 is a coin flip); its best validation " \
           "epoch was epoch 1 of 4 (early_stopping)" in text
    assert "| takeover | auc | 0.8000 | 0.4800 | +66.67% |" in text


def test_healthy_baselines_carry_no_warning(tmp_path):
    spec = _spec({"train": 80, "test": 20})
    Baselines(recipe="r", dataset=dataset_fingerprint(spec), tasks={
        task: {"test": {"auc": 0.75}, "primary_metric": "auc", "best_epoch": 3, "epochs_run": 6}
        for task in ("fraud", "takeover")}).write(tmp_path)
    section = compare(_recipe(tmp_path), spec, binary_pair(), {"fraud": {"auc": 0.8}, "takeover": {"auc": 0.7}})
    assert section["baseline_warnings"] == {}
    assert "Weak baselines" not in to_markdown({"recipe": "r", "tasks": {}, "delta_m": section,
                                                "dataset": {"rows_in": 1, "rejected": 0, "splits": {}}})


def test_an_accuracy_baseline_at_the_majority_rate_and_a_short_run_are_flagged(tmp_path):
    spec = _spec_with_counts({"train": 80, "test": 20})
    Baselines(recipe="r", dataset=dataset_fingerprint(spec), tasks={
        "fraud": {"test": {"accuracy": 0.92, "auc": 0.9}, "primary_metric": "accuracy", "best_epoch": 2,
                  "epochs_run": 2, "stopped_reason": "completed"},
        "amount": {"test": {"rmse": 1.0, "mae": 0.5}, "primary_metric": "rmse", "best_epoch": 5, "epochs_run": 9}}
              ).write(tmp_path)
    fraud_accuracy = [BinaryTask("fraud", metrics=["accuracy", "auc"]), RegressionTask("amount", metrics=["rmse"])]
    section = compare(_recipe(tmp_path), spec, fraud_accuracy,
                      {"fraud": {"accuracy": 0.95, "auc": 0.9}, "amount": {"rmse": 0.9}})
    # 92 of 100 labelled test rows are negative: always saying "no" scores 0.92.
    assert section["baseline_warnings"] == {"fraud": [
        "its accuracy 0.9200 is at chance level (<= 0.9200, the majority class's share of the test rows)",
        "it trained for only 2 epoch(s)"]}


@pytest.mark.parametrize("baseline_rmse, flagged", [(23.0, True), (12.0, False)])
def test_a_regression_baseline_no_better_than_the_train_mean_is_flagged(tmp_path, baseline_rmse, flagged):
    from mtl_tf.data.spec import LabelStats, RegressionStats, TaskSpec

    # Predicting the train mean (100) on test rows of mean 110 and std 20: rmse sqrt(20^2 + 10^2) = 22.36.
    stats = RegressionStats({"train": LabelStats(count=80, mean=100.0, std=25.0),
                             "test": LabelStats(count=20, mean=110.0, std=20.0)})
    amount = TaskSpec(name="amount", type="regression", label_key="amount", dtype="float32", stats=stats)
    spec = _spec({"train": 80, "test": 20})
    spec.task = lambda name: amount
    Baselines(recipe="r", dataset=dataset_fingerprint(spec), tasks={
        "amount": {"test": {"rmse": baseline_rmse}, "primary_metric": "rmse", "best_epoch": 5, "epochs_run": 9}}
              ).write(tmp_path)
    section = compare(_recipe(tmp_path), spec, [RegressionTask("amount", metrics=["rmse"])],
                      {"amount": {"rmse": 10.0}})
    expected = {"amount": [f"its rmse {baseline_rmse:.4f} is at chance level (>= 22.36, the rmse of predicting "
                           "the train mean on the test rows)"]} if flagged else {}
    assert section["baseline_warnings"] == expected
