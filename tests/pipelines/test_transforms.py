import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.splits import assign_split
from pipelines.statistics import CategoricalStatsFn, FeatureStatsFn, NumericStatsFn
from pipelines.transforms import (AssignSplits, ComputeStatistics, CountLabels, CountRows, ParseRows,
                                  PartitionSplits)
from tests.pipelines.tiny import HEADER, tiny_recipe

FRACTIONS = {"train": 0.6, "validation": 0.2, "test": 0.2}


def _combine(fn, values):
    acc = fn.create_accumulator()
    for value in values:
        acc = fn.add_input(acc, value)
    return acc


def test_parse_rows_reads_files_with_different_column_orders_and_tags_rejects():
    recipe = tiny_recipe()
    reordered = list(reversed(HEADER))
    headers = {"/data/a.csv": HEADER, "/data/b.csv": reordered}
    line_a = "u1,12.5,,red,2024-03-01T10:00:00Z,1,b,x,3.25"
    line_b = "3.25,x,b,1,2024-03-01T10:00:00Z,red,,12.5,u1"
    bad = "u2,12,5x"
    with BeamTestPipeline() as p:
        lines = p | beam.Create([("/data/a.csv", line_a), ("/data/b.csv", line_b), ("/data/a.csv", bad)])
        parsed = lines | ParseRows(recipe, headers)
        row = ("u1", {"amount": 12.5, "color": "red", "when": 1709287200, "is_fraud": 1.0, "kind": 1,
                      "tags": [1.0, 0.0], "spend": 3.25})
        assert_that(parsed["rows"], equal_to([row, row]), label="Rows")
        assert_that(parsed["rejects"], equal_to([{
            "file": "/data/a.csv", "reason": "wrong number of fields: 3 (the header has 9)",
            "kind": "wrong_field_count", "line": bad}]), label="Rejects")


def test_a_key_lands_in_one_split_whatever_the_order():
    recipe = tiny_recipe()
    rows = [(f"user{i % 40}", {"n": i}) for i in range(200)]
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    expected = [(assign_split(key, FRACTIONS, 5), values["n"]) for key, values in rows]
    assert len({split for split, _ in expected}) == 3
    for order in (rows, shuffled):
        with BeamTestPipeline() as p:
            assigned = (p | beam.Create(order) | AssignSplits(recipe.data.split)
                        | beam.MapTuple(lambda split, values: (split, values["n"])))
            assert_that(assigned, equal_to(expected))


def test_split_assignment_is_stable_proportional_and_seeded():
    keys = [f"customer-{i}" for i in range(5000)]
    splits = [assign_split(k, FRACTIONS, 17) for k in keys]
    assert splits == [assign_split(k, FRACTIONS, 17) for k in keys]
    for name, fraction in FRACTIONS.items():
        assert abs(splits.count(name) / len(keys) - fraction) < 0.03
    assert splits != [assign_split(k, FRACTIONS, 18) for k in keys]
    assert {assign_split(k, {"train": 0.5, "validation": 0.0, "test": 0.5}, 1) for k in keys} == {"train", "test"}


def test_partition_sends_each_split_to_its_own_collection():
    rows = [("train", {"a": 1.0}), ("test", {"a": 2.0}), ("train", {"a": 3.0})]
    with BeamTestPipeline() as p:
        parts = p | beam.Create(rows) | PartitionSplits(["train", "validation", "test"])
        assert_that(parts["train"], equal_to([rows[0], rows[2]]), label="Train")
        assert_that(parts["validation"], equal_to([]), label="Validation")
        assert_that(parts["test"], equal_to([rows[1]]), label="Test")


def test_statistics_match_numpy_on_the_train_rows():
    rng = np.random.default_rng(0)
    amounts = 1e9 + rng.normal(0.0, 1.0, 300)  # a large offset breaks a naive sum of squares
    colors = rng.choice(["red", "blue", "green", "grey"], size=300, p=[0.5, 0.3, 0.15, 0.05])
    rows = []
    for i in range(300):
        values = {"amount": float(amounts[i]), "color": str(colors[i]), "when": 1000 + i}
        if i % 10 == 0:
            del values["color"]
        if i % 7 == 0:
            del values["when"]
        rows.append(("train", values))
    with BeamTestPipeline() as p:
        stats = p | beam.Create(rows) | ComputeStatistics(tiny_recipe().data.features)
        assert_that(stats, _close_to(_numpy_stats(amounts, colors)))


def _close_to(expected):
    def check(actual):
        assert len(actual) == 1
        assert _approx(actual[0], expected), f"{actual[0]} != {expected}"

    return check


def _approx(actual, expected):
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(_approx(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(_approx, actual, expected))
    if isinstance(expected, float):
        return actual == pytest.approx(expected, rel=1e-7)
    return actual == expected


def _numpy_stats(amounts, colors):
    present = [str(c) for i, c in enumerate(colors) if i % 10]
    values, counts = np.unique(present, return_counts=True)
    order = sorted(zip(values, counts), key=lambda vc: (-vc[1], vc[0]))
    when = np.array([1000 + i for i in range(300) if i % 7], dtype=float)
    return {
        "amount": {"count": 300, "missing": 0, "mean": float(np.mean(amounts)),
                   "variance": float(np.var(amounts)), "min": float(amounts.min()), "max": float(amounts.max())},
        "score": {"count": 0, "missing": 300, "mean": 0.0, "variance": 0.0, "min": None, "max": None},
        "color": {"count": len(present), "missing": 30, "unique": 4,
                  "vocabulary": [{"value": str(v), "count": int(c)} for v, c in order[:2]],
                  "oov_buckets": 1, "oov_count": int(sum(c for _, c in order[2:]))},
        "when": {"count": len(when), "missing": 300 - len(when), "mean": float(when.mean()),
                 "variance": float(when.var()), "min": float(when.min()), "max": float(when.max())},
    }


def test_numeric_merge_of_partial_results_matches_numpy():
    rng = np.random.default_rng(1)
    values = list(1e6 + rng.normal(0, 3, 1000))
    fn = NumericStatsFn()
    parts = [_combine(fn, values[i:i + 137]) for i in range(0, 1000, 137)]
    merged = fn.extract_output(fn.merge_accumulators(parts))
    assert merged["count"] == 1000
    assert merged["mean"] == pytest.approx(np.mean(values), rel=1e-15, abs=1e-9)
    assert merged["variance"] == pytest.approx(np.var(values), rel=1e-9)
    assert (merged["min"], merged["max"]) == (min(values), max(values))


def test_categorical_vocabulary_is_top_k_with_ties_broken_by_value():
    fn = CategoricalStatsFn(top_k=2)
    stats = fn.extract_output(_combine(fn, ["b", "a", "c", "c", None, "b", "a", "d"]))
    assert stats["vocabulary"] == [{"value": "a", "count": 2}, {"value": "b", "count": 2}]
    assert (stats["count"], stats["missing"], stats["unique"], stats["oov_count"]) == (7, 1, 4, 3)
    with pytest.raises(ValueError, match="top_k"):
        CategoricalStatsFn(top_k=0)


def test_feature_stats_merge_equals_one_pass():
    fn = FeatureStatsFn(tiny_recipe().data.features)
    rows = [{"amount": float(i), "color": "c%d" % (i % 3)} for i in range(50)]
    whole = fn.extract_output(_combine(fn, rows))
    merged = fn.extract_output(fn.merge_accumulators([_combine(fn, rows[:20]), _combine(fn, rows[20:])]))
    assert merged["color"] == whole["color"]
    assert merged["amount"]["variance"] == pytest.approx(whole["amount"]["variance"])


def test_label_counts_per_split_and_task_type():
    rows = [("train", {"is_fraud": 1.0, "kind": 0, "tags": [1.0, 1.0], "spend": 2.0}),
            ("train", {"is_fraud": 0.0, "kind": 2, "tags": [0.0, 1.0]}),
            ("train", {}),
            ("test", {"is_fraud": 1.0})]
    with BeamTestPipeline() as p:
        counts = p | beam.Create(rows) | CountLabels(tiny_recipe().tasks)
        assert_that(counts, equal_to([{
            "train": {"fraud": {"labelled": 2, "positives": 1}, "kind": {"labelled": 2, "positives": [1, 0, 1]},
                      "tags": {"labelled": 2, "positives": [1, 2]}, "spend": {"labelled": 1, "positives": None}},
            "test": {"fraud": {"labelled": 1, "positives": 1}, "kind": {"labelled": 0, "positives": [0, 0, 0]},
                     "tags": {"labelled": 0, "positives": [0, 0]}, "spend": {"labelled": 0, "positives": None}},
        }]))


def test_row_counts_are_computed_as_data():
    with BeamTestPipeline() as p:
        lines = p | "Lines" >> beam.Create(["l"] * 6)
        rows = p | "Rows" >> beam.Create([("train", {}), ("train", {}), ("test", {})])
        rejects = p | "Rejects" >> beam.Create([{"kind": "below_min"}, {"kind": "below_min"},
                                                {"kind": "unknown_class"}])
        counts = {"lines": lines, "rows": rows, "rejects": rejects} | CountRows()
        assert_that(counts, equal_to([{"rows_in": 6, "rows_written": {"train": 2, "test": 1},
                                       "rows_rejected": {"below_min": 2, "unknown_class": 1}}]))
