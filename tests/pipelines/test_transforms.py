import random
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.splits import assign_split
from pipelines.statistics import CategoricalStatsFn, FeatureStatsFn, LabelCountsFn, NumericStatsFn, SummaryFn
from pipelines.transforms import (ConvertRows, ReadCsvBatches, ShardExamples, SummarizeBatches, WriteFiles,
                                  example_files)
from tests.pipelines.tiny import HEADER, tiny_recipe

FRACTIONS = {"train": 0.6, "validation": 0.2, "test": 0.2}


def _decode(serialized):
    """A serialized tf.Example as {key: list of values}."""
    from tensorflow.core.example import example_pb2

    features = example_pb2.Example.FromString(serialized).features.feature
    return {key: list(getattr(f, f.WhichOneof("kind")).value) for key, f in features.items()}


def _unbatch(element):
    split, examples = element
    return [(split, _decode(e)) for e in examples]


def _combine(fn, values):
    acc = fn.create_accumulator()
    for value in values:
        acc = fn.add_input(acc, value)
    return acc


def test_convert_rows_reads_files_with_different_column_orders_and_tags_rejects():
    recipe = tiny_recipe()
    reordered = list(reversed(HEADER))
    headers = {"/data/a.csv": HEADER, "/data/b.csv": reordered}
    line_a = "u1,12.5,,red,2024-03-01T10:00:00Z,1,b,x,3.25"
    line_b = "3.25,x,b,1,2024-03-01T10:00:00Z,red,,12.5,u1"
    bad = "u2,12,5x"
    split = assign_split("u1", FRACTIONS, 5)
    with BeamTestPipeline() as p:
        batches = p | beam.Create([[("/data/a.csv", line_a), ("/data/b.csv", line_b)], [("/data/a.csv", bad)]])
        converted = batches | ConvertRows(recipe, headers)
        row = {"amount": [12.5], "color": [b"red"], "when": [1709287200], "is_fraud": [1.0], "kind": [1],
               "tags": [1.0, 0.0], "spend": [3.25]}
        assert_that(converted["examples"] | beam.FlatMap(_unbatch), equal_to([(split, row), (split, row)]),
                    label="Rows")
        assert_that(converted["rejects"], equal_to([{
            "file": "/data/a.csv", "reason": "wrong number of fields: 3 (the header has 9)",
            "kind": "wrong_field_count", "line": bad}]), label="Rejects")
        counts = (converted["summaries"] | SummarizeBatches(recipe.data.features, recipe.tasks)
                  | beam.Map(lambda summary: summary["counts"]))
        assert_that(counts, equal_to([{"rows_in": 3, "blank_lines": 0, "rows_written": {split: 2},
                                       "rows_rejected": {"wrong_field_count": 1}}]), label="Counts")


def test_read_csv_batches_reads_each_line_once_as_beams_text_reader_does(tmp_path):
    """Lines as Beam's text reader gives them, except that a blank line is None (not a row)."""
    import gzip

    from apache_beam.io.textio import ReadAllFromText

    texts = {"a.csv": "h1,h2\nx,1\n\ny,2\r\nlast line é,3", "b.csv": "h\r\n" + "".join(f"row{i}\n" for i in range(40)),
             "c.csv": "only,header\n"}
    paths = []
    for name, text in texts.items():
        (tmp_path / name).write_bytes(text.encode("utf-8"))
        paths.append(str(tmp_path / name))
    with gzip.open(tmp_path / "d.csv.gz", "wt", encoding="utf-8", newline="") as handle:
        handle.write("h\nzipped,1\nzipped,2\n")
    paths.append(str(tmp_path / "d.csv.gz"))
    a, b, d = paths[0], paths[1], paths[3]
    expected = ([(a, "x,1"), (a, None), (a, "y,2"), (a, "last line é,3")] + [(b, f"row{i}") for i in range(40)]
                + [(d, "zipped,1"), (d, "zipped,2")])
    with BeamTestPipeline() as p:
        beams_own = (p | "Files" >> beam.Create(paths)
                     | ReadAllFromText(with_filename=True, skip_header_lines=1))
        assert_that(beams_own | beam.MapTuple(lambda path, line: (path, line or None)), equal_to(expected),
                    label="Beam")
        for range_bytes in (1, 7, 1 << 20):
            batches = p | f"Read {range_bytes}" >> ReadCsvBatches(paths, batch_size=3, range_bytes=range_bytes)
            assert_that(batches | f"Sizes {range_bytes}" >> beam.Map(len),
                        lambda sizes: all(1 <= n <= 3 for n in sizes) or pytest.fail(f"batch sizes {sizes}"),
                        label=f"BatchSizes {range_bytes}")
            assert_that(batches | f"Lines {range_bytes}" >> beam.FlatMap(lambda batch: batch), equal_to(expected),
                        label=f"Lines {range_bytes}")
    with pytest.raises(ValueError, match="must be at least 1"):
        ReadCsvBatches(paths, batch_size=0)


def test_a_key_lands_in_one_split_whatever_the_order_and_batching():
    recipe = tiny_recipe()
    lines = [("/data/a.csv", f"user{i % 40},{i},,,,,,,") for i in range(200)]
    shuffled = lines[:]
    random.Random(0).shuffle(shuffled)
    expected = [(assign_split(f"user{i % 40}", FRACTIONS, 5), float(i)) for i in range(200)]
    assert len({split for split, _ in expected}) == 3
    for order, batch_size in ((lines, 1000), (shuffled, 7)):
        with BeamTestPipeline() as p:
            batches = p | beam.Create(order) | beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
            converted = batches | ConvertRows(recipe, {"/data/a.csv": HEADER})
            assigned = (converted["examples"] | beam.FlatMap(_unbatch)
                        | beam.MapTuple(lambda split, values: (split, values["amount"][0])))
            assert_that(assigned, equal_to(expected))


def test_split_assignment_is_stable_proportional_and_seeded():
    keys = [f"customer-{i}" for i in range(5000)]
    splits = [assign_split(k, FRACTIONS, 17) for k in keys]
    assert splits == [assign_split(k, FRACTIONS, 17) for k in keys]
    for name, fraction in FRACTIONS.items():
        assert abs(splits.count(name) / len(keys) - fraction) < 0.03
    assert splits != [assign_split(k, FRACTIONS, 18) for k in keys]
    assert {assign_split(k, {"train": 0.5, "validation": 0.0, "test": 0.5}, 1) for k in keys} == {"train", "test"}


def test_the_quote_probe_runs_only_for_files_read_in_several_ranges(tmp_path):
    """A file of one range begins at a record start, so the steps that probe where ranges
    begin (a shuffle, a scan and a grouping: fixed costs of every run) are left out."""
    from apache_beam.options.pipeline_options import PipelineOptions

    path = tmp_path / "a.csv"
    path.write_text('h,v\n"x\ny",1\nz,2\n')

    def steps(range_bytes):
        pipeline = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
        _ = pipeline | "Read" >> ReadCsvBatches([str(path)], range_bytes=range_bytes)
        return {t.unique_name for t in pipeline.to_runner_api().components.transforms.values()}

    assert "Read/Probe" in steps(4)
    assert "Read/Probe" not in steps(1 << 20) and "Read/Read" in steps(1 << 20)


def test_shard_examples_deals_every_example_once_round_robin():
    examples = [("train", [b"t%d" % i for i in range(5)]), ("test", [b"x0"]), ("train", [b"t5", b"t6"])]
    with BeamTestPipeline() as p:
        dealt = p | beam.Create(examples) | ShardExamples(3)
        flat = dealt | beam.FlatMapTuple(lambda name, records: [(name, r) for r in records])
        assert_that(flat | "SplitOf" >> beam.MapTuple(lambda name, r: (name.split("-")[0], r)),
                    equal_to([(split, r) for split, records in examples for r in records]), label="AllOnce")
        sizes = (flat | "Names" >> beam.MapTuple(lambda name, r: name)
                 | beam.combiners.Count.PerElement())
        assert_that(sizes, equal_to([("train-00000-of-00003.tfrecord.gz", 3), ("train-00001-of-00003.tfrecord.gz", 2),
                                     ("train-00002-of-00003.tfrecord.gz", 2), ("test-00000-of-00003.tfrecord.gz", 1)]),
                    label="Balanced")
    with pytest.raises(ValueError, match="shards must be at least 1; received 0"):
        ShardExamples(0)


def test_write_files_writes_every_named_file_even_empty_ones(tmp_path):
    import tensorflow as tf

    names = example_files("train", 2) + ["rejects/rejects-00000-of-00001.jsonl", "summary.json"]
    pieces = [("train-00001-of-00002.tfrecord.gz", [b"a", b"bb"]), ("train-00001-of-00002.tfrecord.gz", [b"c"]),
              ("summary.json", ['{"x": 1}'])]
    with BeamTestPipeline() as p:
        written = p | beam.Create(pieces) | WriteFiles(str(tmp_path), names)
        assert_that(written, equal_to([("train-00000-of-00002.tfrecord.gz", 0), ("train-00001-of-00002.tfrecord.gz", 3),
                                       ("rejects/rejects-00000-of-00001.jsonl", 0), ("summary.json", 1)]))
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / names[1]), compression_type="GZIP")]
    assert sorted(records) == [b"a", b"bb", b"c"]
    assert list(tf.data.TFRecordDataset(str(tmp_path / names[0]), compression_type="GZIP")) == []
    assert (tmp_path / "rejects" / "rejects-00000-of-00001.jsonl").read_text() == ""
    assert (tmp_path / "summary.json").read_text() == '{"x": 1}\n'
    assert not list(tmp_path.rglob("beam-temp-*"))


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
    recipe = tiny_recipe()
    fn = SummaryFn(recipe.data.features, recipe.tasks)
    partials = [fn.batch_summary(len(rows[i:i + 64]), {"train": [values for _, values in rows[i:i + 64]]}, [])
                for i in range(0, len(rows), 64)]
    with BeamTestPipeline() as p:
        stats = (p | beam.Create(partials) | SummarizeBatches(recipe.data.features, recipe.tasks)
                 | beam.Map(lambda summary: summary["statistics"]))
        assert_that(stats, _close_to(_numpy_stats(amounts, colors)))


def test_statistics_leave_out_rows_of_other_splits():
    recipe = tiny_recipe()
    fn = SummaryFn(recipe.data.features, recipe.tasks)
    partial = fn.batch_summary(3, {"train": [{"amount": 1.0}], "test": [{"amount": 50.0}, {"amount": 70.0}]}, [])
    stats = fn.extract_output(fn.merge_accumulators([fn.create_accumulator(), partial]))["statistics"]
    assert (stats["amount"]["count"], stats["amount"]["mean"], stats["amount"]["max"]) == (1, 1.0, 1.0)


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


def test_numeric_batches_match_numpy_with_missing_values():
    rng = np.random.default_rng(2)
    values = [float(v) if i % 9 else None for i, v in enumerate(1e9 + rng.normal(0, 2, 1000))]
    present = np.array([v for v in values if v is not None])
    fn = NumericStatsFn()
    acc = fn.create_accumulator()
    for i in range(0, 1000, 300):
        acc = fn.add_batch(acc, values[i:i + 300])
    stats = fn.extract_output(acc)
    assert (stats["count"], stats["missing"]) == (len(present), 1000 - len(present))
    assert stats["mean"] == pytest.approx(np.mean(present), rel=1e-15)
    assert stats["variance"] == pytest.approx(np.var(present), rel=1e-9)
    assert (stats["min"], stats["max"]) == (present.min(), present.max())
    assert fn.extract_output(fn.add_batch(fn.create_accumulator(), [None, None])) == {
        "count": 0, "missing": 2, "mean": 0.0, "variance": 0.0, "min": None, "max": None}


def test_categorical_vocabulary_is_top_k_with_ties_broken_by_value():
    fn = CategoricalStatsFn(top_k=2)
    stats = fn.extract_output(_combine(fn, ["b", "a", "c", "c", None, "b", "a", "d"]))
    assert stats["vocabulary"] == [{"value": "a", "count": 2}, {"value": "b", "count": 2}]
    assert (stats["count"], stats["missing"], stats["unique"], stats["oov_count"]) == (7, 1, 4, 3)
    batched = fn.add_batch(fn.add_batch(fn.create_accumulator(), ["b", "a", "c"]), ["c", None, "b", "a", "d"])
    assert fn.extract_output(batched) == stats
    with pytest.raises(ValueError, match="top_k"):
        CategoricalStatsFn(top_k=0)


def test_feature_stats_merge_equals_one_pass():
    fn = FeatureStatsFn(tiny_recipe().data.features)
    rows = [{"amount": float(i), "color": "c%d" % (i % 3)} for i in range(50)]
    whole = fn.extract_output(_combine(fn, rows))
    merged = fn.extract_output(fn.merge_accumulators([_combine(fn, rows[:20]), _combine(fn, rows[20:])]))
    assert merged["color"] == whole["color"]
    assert merged["amount"]["variance"] == pytest.approx(whole["amount"]["variance"])
    batched = fn.extract_output(fn.add_batch(fn.add_batch(fn.create_accumulator(), rows[:20]), rows[20:]))
    assert batched["color"] == whole["color"]
    assert batched["amount"] == pytest.approx(whole["amount"])


def test_label_counts_per_split_and_task_type():
    recipe = tiny_recipe()
    rows = [("train", {"is_fraud": 1.0, "kind": 0, "tags": [1.0, 1.0], "spend": 2.0}),
            ("train", {"is_fraud": 0.0, "kind": 2, "tags": [0.0, 1.0]}),
            ("train", {"spend": 6.0}),
            ("test", {"is_fraud": 1.0})]
    fn = SummaryFn(recipe.data.features, recipe.tasks)
    partials = [fn.batch_summary(1, {split: [values]}, []) for split, values in rows]
    with BeamTestPipeline() as p:
        counts = (p | beam.Create(partials) | SummarizeBatches(recipe.data.features, recipe.tasks)
                  | beam.Map(lambda summary: summary["labels"]))
        assert_that(counts, equal_to([{
            "train": {"fraud": {"labelled": 2, "positives": 1}, "kind": {"labelled": 2, "positives": [1, 0, 1]},
                      "tags": {"labelled": 2, "positives": [1, 2]},
                      "spend": {"labelled": 2, "positives": None,
                                "stats": {"count": 2, "mean": 4.0, "std": 2.0, "min": 2.0, "max": 6.0}}},
            "test": {"fraud": {"labelled": 1, "positives": 1}, "kind": {"labelled": 0, "positives": [0, 0, 0]},
                     "tags": {"labelled": 0, "positives": [0, 0]},
                     "spend": {"labelled": 0, "positives": None,
                               "stats": {"count": 0, "mean": None, "std": None, "min": None, "max": None}}},
        }]))


def test_label_counts_of_a_batch_equal_those_row_by_row():
    tasks = tiny_recipe().tasks
    fn = LabelCountsFn(tasks)
    rng = random.Random(3)
    rows = [{"is_fraud": rng.choice([0.0, 1.0]), "kind": rng.randrange(3), "tags": [rng.choice([0.0, 1.0]) for _ in "xy"],
             "spend": rng.random()} for _ in range(100)]
    for i in range(0, 100, 9):
        del rows[i]["kind"]
    one_by_one = fn.create_accumulator()
    for values in rows:
        one_by_one = fn.add_input(one_by_one, values)
    batched = fn.extract_output(fn.add_batch(fn.add_batch(fn.create_accumulator(), rows[:40]), rows[40:]))
    expected = fn.extract_output(one_by_one)
    # The regression moments agree to rounding (a batch's are computed at once, then merged).
    assert batched.pop("spend")["stats"] == pytest.approx(expected.pop("spend")["stats"], rel=1e-12)
    assert batched == expected


def test_row_counts_are_computed_as_data():
    recipe = tiny_recipe()
    fn = SummaryFn(recipe.data.features, recipe.tasks)
    partials = [fn.batch_summary(4, {"train": [{}, {}], "validation": [], "test": []}, ["below_min", "below_min"]),
                fn.batch_summary(2, {"train": [], "validation": [], "test": [{}]}, ["unknown_class"])]
    with BeamTestPipeline() as p:
        counts = (p | beam.Create(partials) | SummarizeBatches(recipe.data.features, recipe.tasks)
                  | beam.Map(lambda summary: summary["counts"]))
        assert_that(counts, equal_to([{"rows_in": 6, "blank_lines": 0, "rows_written": {"train": 2, "test": 1},
                                       "rows_rejected": {"below_min": 2, "unknown_class": 1}}]))


def test_an_empty_input_still_gives_a_summary():
    recipe = tiny_recipe()
    with BeamTestPipeline() as p:
        summary = p | beam.Create([]) | SummarizeBatches(recipe.data.features, recipe.tasks)
        assert_that(summary | beam.Map(lambda s: (s["counts"], s["labels"], s["statistics"]["amount"]["count"])),
                    equal_to([({"rows_in": 0, "blank_lines": 0, "rows_written": {}, "rows_rejected": {}}, {}, 0)]))


def _bundle(writer, pieces):
    """Runs ``pieces`` through a WritePartsFn as one bundle; returns what the bundle yields."""
    writer.start_bundle()
    for piece in pieces:
        assert list(writer.process(piece) or []) == []
    return [windowed.value for windowed in writer.finish_bundle()]


def test_parts_from_several_bundles_join_into_one_readable_file(tmp_path):
    import tensorflow as tf

    from pipelines.transforms import JoinPartsFn, WritePartsFn

    name = "train-00000-of-00001.tfrecord.gz"
    writer = WritePartsFn(str(tmp_path))
    first = _bundle(writer, [(name, [b"a", b"b"]), ("rejects/r.jsonl", ['{"x": 1}']), (name, [b"c"])])
    second = _bundle(writer, [(name, [b"d"]), (name, [])])
    assert [(n, count) for n, (_, count) in first] == [(name, 3), ("rejects/r.jsonl", 1)]
    parts = [part for n, part in first + second if n == name]
    assert len(parts) == 2 and all(Path(path).name.startswith("beam-temp-") for path, _ in parts)

    joiner = JoinPartsFn(str(tmp_path))
    assert list(joiner.process((name, [None, *parts]))) == [(name, 4)]
    assert list(joiner.process(("rejects/r.jsonl", [first[1][1]]))) == [("rejects/r.jsonl", 1)]
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / name), compression_type="GZIP")]
    assert sorted(records) == [b"a", b"b", b"c", b"d"]
    assert (tmp_path / "rejects" / "r.jsonl").read_text() == '{"x": 1}\n'
    assert not list(tmp_path.rglob("beam-temp-*"))
