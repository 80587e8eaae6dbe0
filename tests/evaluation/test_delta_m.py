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
