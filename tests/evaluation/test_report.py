"""report.json / report.md with metrics the test split cannot define, and dataset.json's label warnings."""

import json
from types import SimpleNamespace

import pytest

from mtl_tf.data.spec import DatasetSpec
from mtl_tf.evaluation.report import build_report, write_report
from mtl_tf.tasks import BinaryTask, MultilabelTask

NAN = float("nan")


def make_spec(fraud_test_positives=30, tags_test_positives=(5, 10)):
    """dataset.json of a binary task (40 labelled test rows) and a multilabel one (20 labelled test rows)."""
    return DatasetSpec.model_validate({
        "name": "d", "created": "2024-01-01T00:00:00Z", "rows_in": 200,
        "features": [{"name": "x", "kind": "numeric", "dtype": "float32", "stats": {"count": 100}}],
        "tasks": [{"name": "fraud", "type": "binary", "label_key": "is_fraud", "dtype": "float32",
                   "labelled": {"train": 100, "test": 40}, "positives": {"train": 20, "test": fraud_test_positives}},
                  {"name": "tags", "type": "multilabel", "label_key": "tags", "dtype": "float32",
                   "classes": ["a", "b"], "labelled": {"train": 100, "test": 20},
                   "positives": {"train": [30, 40], "test": list(tags_test_positives)}}],
        "splits": {"train": {"pattern": "train-*", "num_examples": 100, "num_shards": 1},
                   "test": {"pattern": "test-*", "num_examples": 50, "num_shards": 1}}})


def tasks():
    return [BinaryTask("fraud", metrics=["auc", "accuracy"]), MultilabelTask("tags", classes=["a", "b"])]


def recipe():
    return SimpleNamespace(name="r")


def test_an_undefined_test_metric_is_null_with_its_reason_and_says_so_in_markdown(tmp_path):
    spec = make_spec(fraud_test_positives=40)  # every labelled test row of fraud is positive
    metrics = {"fraud": {"loss": 0.2, "auc": NAN, "accuracy": 0.95}, "tags": {"loss": 0.4, "auc": 0.7, "pr_auc": 0.6}}
    json_path, md_path = write_report(build_report(recipe(), spec, tasks(), metrics), tmp_path)

    def refuse(constant):
        raise AssertionError(f"report.json holds {constant}, which is not JSON")

    report = json.loads(json_path.read_text(), parse_constant=refuse)
    fraud = report["tasks"]["fraud"]
    assert fraud["test"] == {"loss": 0.2, "auc": None, "accuracy": 0.95}
    assert fraud["undefined"] == {"auc": "only one class in test"}
    assert "undefined" not in report["tasks"]["tags"]
    row = next(line for line in md_path.read_text().splitlines() if line.startswith("| fraud |"))
    assert "**undefined (only one class in test)**" in row and "0.9500" in row
    assert "nan" not in md_path.read_text().lower()


def test_a_task_without_labelled_test_rows_is_reported_as_such():
    spec = make_spec()
    spec.tasks[0].labelled["test"] = 0
    report = build_report(recipe(), spec, tasks(), {"fraud": {"loss": NAN, "auc": NAN}, "tags": {"auc": 0.7}})
    assert report["tasks"]["fraud"]["undefined"] == {"loss": "no labelled rows in test",
                                                     "auc": "no labelled rows in test"}


@pytest.mark.parametrize("fraud, tags, expected", [
    (30, (5, 10), []),
    (0, (5, 10), ["task 'fraud' has only one class in split 'test' (all negative; 40 labelled rows): "
                  "its AUC and PR-AUC are undefined there"]),
    (30, (20, 10), ["task 'tags' has only one class in split 'test' (classes with one value: a (all positive); "
                    "20 labelled rows): those classes are left out of its mean AUC and PR-AUC there"]),
    (30, (20, 0), ["task 'tags' has only one class in split 'test' (classes with one value: a (all positive), "
                   "b (all negative); 20 labelled rows): its AUC and PR-AUC are undefined there"]),
])
def test_dataset_json_warns_about_a_split_with_one_class(fraud, tags, expected):
    spec = make_spec(fraud, tags)
    assert spec.label_warnings() == expected
    assert spec.label_problems() == []  # it still trains


def test_a_one_class_split_is_named_when_a_run_reads_the_dataset(tmp_path):
    from mtl_tf.recipe.loader import parse_recipe
    from mtl_tf.runner import preprocess
    from tests.helpers.tiny_dataset import make_tiny_dataset, tiny_recipe

    spec = make_tiny_dataset(tmp_path, rows=64)
    fraud = spec.task("fraud")
    fraud.positives["test"] = fraud.labelled["test"]
    spec.write(spec.root)
    lines = []
    preprocess(parse_recipe(tiny_recipe(spec), check=False), skip=True, echo=lines.append)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings == [f"warning: task 'fraud' has only one class in split 'test' (all positive; "
                        f"{fraud.labelled['test']} labelled rows): its AUC and PR-AUC are undefined there"]
