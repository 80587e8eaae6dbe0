"""dataset.json: fields added later read from older files; what is wrong with a dataset, said once."""

import json

from mtl_tf.data.spec import DatasetSpec

OLD = {  # a dataset.json written before blank_lines and rejects.examples existed
    "schema_version": 1, "name": "old", "created": "2026-01-01T00:00:00+00:00", "rows_in": 10,
    "features": [{"name": "amount", "kind": "numeric", "dtype": "float32",
                  "stats": {"count": 8, "missing": 0, "mean": 1.0, "variance": 0.0, "min": 1.0, "max": 1.0}}],
    "tasks": [{"name": "fraud", "type": "binary", "label_key": "is_fraud", "dtype": "float32",
               "labelled": {"train": 6, "test": 2}, "positives": {"train": 1, "test": 1}}],
    "splits": {"train": {"pattern": "train-*.tfrecord.gz", "num_examples": 6, "num_shards": 1},
               "test": {"pattern": "test-*.tfrecord.gz", "num_examples": 2, "num_shards": 1}},
    "rejects": {"count": 2, "location": "rejects/rejects-*.jsonl", "by_reason": {"unparsable_number": 2}},
}


def _spec(tmp_path, **changes):
    data = json.loads(json.dumps(OLD))
    for key, value in changes.items():
        data[key] = value
    (tmp_path / "dataset.json").write_text(json.dumps(data))
    return DatasetSpec.read(tmp_path)


def test_a_dataset_json_without_the_newer_fields_still_reads(tmp_path):
    spec = _spec(tmp_path)
    assert spec.blank_lines == 0 and spec.rejects.examples == {}
    assert spec.label_problems() == []


def test_when_every_row_was_rejected_one_line_says_so_instead_of_a_line_per_task_and_split(tmp_path):
    spec = _spec(tmp_path, rows_in=12,
                 tasks=[dict(OLD["tasks"][0], labelled={"train": 0, "test": 0}, positives={"train": 0, "test": 0})],
                 splits={s: dict(v, num_examples=0) for s, v in OLD["splits"].items()},
                 rejects={"count": 12, "location": "rejects/rejects-*.jsonl",
                          "by_reason": {"label_not_allowed": 9, "unparsable_number": 2, "below_min": 1},
                          "examples": {"label_not_allowed": "label value not allowed in 'y': 'no.'"}})
    assert spec.label_problems() == [
        "all 12 rows were rejected: label_not_allowed 9 (e.g. label value not allowed in 'y': 'no.'); "
        "unparsable_number 2; below_min 1; they are in rejects/rejects-*.jsonl"]


def test_when_nearly_every_row_was_rejected_that_comes_before_the_task_lines(tmp_path):
    spec = _spec(tmp_path, rows_in=20,
                 tasks=[dict(OLD["tasks"][0], labelled={"train": 1, "test": 0})],
                 splits={"train": dict(OLD["splits"]["train"], num_examples=1),
                         "test": dict(OLD["splits"]["test"], num_examples=0)},
                 rejects={"count": 19, "by_reason": {"unparsable_number": 19}})
    problems = spec.label_problems()
    assert problems[0] == "19 of 20 rows were rejected: unparsable_number 19"
    assert problems[1:] == ["task 'fraud' has no labelled rows in split 'test' (0 of 0 rows)"]


def test_a_source_without_data_rows_is_said_once(tmp_path):
    spec = _spec(tmp_path, rows_in=0, blank_lines=3, source=["raw/*.csv"],
                 tasks=[dict(OLD["tasks"][0], labelled={"train": 0, "test": 0})],
                 splits={s: dict(v, num_examples=0) for s, v in OLD["splits"].items()},
                 rejects={"count": 0})
    assert spec.label_problems() == ["no data rows were read (3 blank lines) from raw/*.csv"]


def test_dense_label_counts_are_never_read_as_one_class():
    from mtl_tf.data.spec import TaskSpec

    # A segmentation task's positives count the images holding each class: every image holding
    # the sky is the norm, not a one-class split.
    task = TaskSpec(name="semantic", type="segmentation", label_key="mask", dtype="int32", classes=["sky", "road"],
                    shape=[4, 4], labelled={"train": 5}, positives={"train": [5, 5]})
    assert task.one_class("train") is None
    multilabel = task.model_copy(update={"type": "multilabel", "dtype": "float32", "shape": [2]})
    assert "sky (all positive)" in multilabel.one_class("train")
