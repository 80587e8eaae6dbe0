import csv
import glob
import json
from collections import Counter
from datetime import datetime, timezone

import numpy as np
import pytest

from mtl_tf.data.parsing import feature_parse_spec
from mtl_tf.data.spec import DatasetSpec
from mtl_tf.data.synth import synthesize
from mtl_tf.tasks import build_tasks
from pipelines.csv_to_tfrecords import run
from tests.pipelines.tiny import fraud_recipe, write_csv

ROWS = 600


def _read_split(spec, split):
    """Parsed features and labels of a split, as numpy arrays keyed by name."""
    import tensorflow as tf

    tasks = build_tasks(fraud_recipe("x", "y").tasks)
    parse = {**feature_parse_spec(spec), **{spec.task(t.name).label_key: t.parse_feature() for t in tasks}}
    files = sorted(glob.glob(spec.files(split)))
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(10_000))
    if not records:
        return {}, 0
    parsed = tf.io.parse_example(records[0], parse)
    return {k: v.numpy() for k, v in parsed.items()}, int(records[0].shape[0])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """600 synthetic rows, 5 % malformed, in two files whose columns are in different orders."""
    root = tmp_path_factory.mktemp("fraud")
    paths = synthesize("fraud_signals", ROWS, root / "raw", seed=11, files=2, malformed=0.05)
    with paths[1].open(newline="") as handle:
        rows = list(csv.reader(handle))
    order = list(reversed(range(len(rows[0]))))
    write_csv(paths[1], [rows[0][i] for i in order],
              [[row[i] for i in order] if len(row) == len(order) else row for row in rows[1:]])
    stale = root / "dataset" / "train-00007-of-00009.tfrecord.gz"
    stale.parent.mkdir()
    stale.write_bytes(b"left by an earlier run")
    recipe = fraud_recipe(str(root / "raw" / "*.csv"), str(root / "unused"))
    result = run(recipe, ["--runner=DirectRunner"], out_dir=str(root / "dataset"))
    return result, paths


@pytest.mark.integration
def test_every_row_is_written_or_rejected_and_dataset_json_says_so(dataset):
    result, _ = dataset
    spec = DatasetSpec.read(result.path)
    assert spec.rows_in == result.rows_in == ROWS
    assert sum(result.rows_written.values()) + result.rows_rejected == ROWS
    assert {s: spec.splits[s].num_examples for s in spec.splits} == result.rows_written
    assert spec.rejects.count == result.rows_rejected == 30
    assert spec.rejects.by_reason == result.rejects_by_reason
    assert set(result.rejects_by_reason) == {"unparsable_number", "wrong_field_count", "label_not_allowed",
                                             "unparsable_timestamp", "missing_required"}
    assert spec.split_key == "customer_id"
    assert spec.feature("device_fingerprint").embedding_dim == 16
    assert not glob.glob(str(result.path.parent / "beam-temp-*"))
    assert not (result.path.parent / "train-00007-of-00009.tfrecord.gz").exists()
    assert len(glob.glob(spec.files("train"))) == 2


@pytest.mark.integration
def test_rejects_file_holds_the_bad_lines_with_reasons(dataset):
    result, paths = dataset
    spec = result.spec
    rejects = [json.loads(line) for path in glob.glob(str(result.path.parent / spec.rejects.location))
               for line in open(path)]
    assert len(rejects) == spec.rejects.count
    source_lines = {str(p): set(p.read_text().splitlines()) for p in paths}
    for reject in rejects:
        assert reject["line"] in source_lines[reject["file"]]
        assert reject["reason"]
    label_rejects = [r for r in rejects if r["kind"] == "label_not_allowed"]
    assert label_rejects and all("'2'" in r["reason"] and "allowed: 0, 1" in r["reason"] for r in label_rejects)


@pytest.mark.integration
def test_tfrecords_parse_with_the_dataset_spec(dataset):
    result, _ = dataset
    spec = result.spec
    train, count = _read_split(spec, "train")
    assert count == spec.splits["train"].num_examples
    income = spec.feature("income").stats
    assert np.isnan(train["income"]).sum() == income.missing > 0
    assert np.nanmean(train["income"]) == pytest.approx(income.mean, rel=1e-5)
    assert train["amount"].min() == pytest.approx(spec.feature("amount").stats.min)
    channels = Counter(v.decode() for v in train["channel"])
    assert {e.value: e.count for e in spec.feature("channel").stats.vocabulary} == channels
    assert train["timestamp"].min() >= int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp())


@pytest.mark.integration
def test_label_counts_in_dataset_json_match_the_tfrecords(dataset):
    result, _ = dataset
    spec = result.spec
    for split in spec.splits:
        parsed, _ = _read_split(spec, split)
        for task in spec.tasks:
            labels = parsed[task.label_key]
            assert task.labelled[split] == int((~np.isnan(labels)).sum())
            assert task.positives[split] == int((labels == 1.0).sum())


@pytest.mark.integration
def test_no_customer_is_in_two_splits(dataset):
    result, paths = dataset
    spec = result.spec
    customer_of = {}
    for path in paths:
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    stamp = int(datetime.fromisoformat(row["timestamp"]).timestamp())
                    customer_of.setdefault((stamp, round(float(row["amount"]), 2)), set()).add(row["customer_id"])
                except (TypeError, ValueError):
                    continue
    splits_of = {}
    for split in spec.splits:
        parsed, _ = _read_split(spec, split)
        for stamp, amount in zip(parsed["timestamp"], parsed["amount"]):
            (customer,) = customer_of[(int(stamp), round(float(amount), 2))]
            splits_of.setdefault(customer, set()).add(split)
    assert len(splits_of) > 50
    assert all(len(s) == 1 for s in splits_of.values())
    assert {next(iter(s)) for s in splits_of.values()} == {"train", "validation", "test"}


@pytest.mark.integration
def test_plain_python_writes_the_same_examples(dataset, tmp_path):
    import tensorflow as tf

    from pipelines.plain_python import convert

    result, paths = dataset
    recipe = fraud_recipe("unused", "unused")
    assert convert(recipe, [str(p) for p in paths], tmp_path) == sum(result.rows_written.values())

    def examples(pattern):
        files = sorted(glob.glob(pattern))
        return Counter(str(tf.train.Example.FromString(r.numpy())) for r in
                       tf.data.TFRecordDataset(files, compression_type="GZIP"))

    for split in result.spec.splits:
        assert examples(str(tmp_path / f"{split}-*.tfrecord.gz")) == examples(result.spec.files(split))
    rejected = sum(1 for _ in open(tmp_path / "rejects" / "rejects-00000-of-00001.jsonl"))
    assert rejected == result.rows_rejected


def test_a_glob_that_matches_nothing_fails_before_beam_starts(tmp_path):
    recipe = fraud_recipe(str(tmp_path / "nothing" / "*.csv"), str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"data.source.path: no files match '.*nothing/\*\.csv'"):
        run(recipe)


def test_a_missing_feature_column_is_named_with_the_file_and_the_columns_present(tmp_path):
    path = synthesize("fraud_signals", 20, tmp_path / "raw", seed=1)[0]
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    rows[0][rows[0].index("amount")] = "amount_usd"
    write_csv(path, rows[0], rows[1:])
    recipe = fraud_recipe(str(tmp_path / "raw" / "*.csv"), str(tmp_path / "out"))
    with pytest.raises(ValueError) as caught:
        run(recipe)
    message = str(caught.value)
    assert "feature 'amount': column 'amount' is missing from" in message
    assert "part-00000.csv" in message and "amount_usd" in message and "columns present: customer_id" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_a_task_without_labels_in_a_split_is_an_error_after_writing_dataset_json(tmp_path):
    path = synthesize("fraud_signals", 120, tmp_path / "raw", seed=2)[0]
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    column = rows[0].index("account_takeover")
    write_csv(path, rows[0], [row[:column] + [""] + row[column + 1:] for row in rows[1:]])
    recipe = fraud_recipe(str(tmp_path / "raw" / "*.csv"), str(tmp_path / "out"), shards=1)
    with pytest.raises(ValueError, match=r"task 'account_takeover' has no labelled rows in split 'train' "
                                         r"\(0 of \d+ rows\)"):
        run(recipe)
    spec = DatasetSpec.read(tmp_path / "out")
    assert spec.task("account_takeover").labelled == {"train": 0, "validation": 0, "test": 0}
    assert spec.task("transaction_fraud").labelled["train"] > 0


@pytest.mark.integration
def test_worker_processes_write_the_same_examples_as_one_process(dataset, tmp_path):
    """DirectRunner with 2 worker processes: shards joined from the workers' parts hold the
    examples one process writes (as sets: the order within a shard is not fixed)."""
    import tensorflow as tf

    one, paths = dataset
    recipe = fraud_recipe(str(paths[0].parent / "*.csv"), str(tmp_path / "unused"))
    many = run(recipe, ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
               out_dir=str(tmp_path / "dataset"))
    assert many.rows_written == one.rows_written and many.rows_rejected == one.rows_rejected
    for split in one.rows_written:
        files = [sorted(glob.glob(result.spec.files(split))) for result in (one, many)]
        records = [sorted(r.numpy() for r in tf.data.TFRecordDataset(f, compression_type="GZIP")) for f in files]
        assert len(records[0]) == one.rows_written[split] and records[0] == records[1]
    assert not glob.glob(str(tmp_path / "dataset" / "beam-temp-*"))


def _fused_stages(recipe, files, out_dir):
    """The stages the DirectRunner runs the CSV pipeline in: each a list of step names."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

    from pipelines.csv_to_tfrecords import build_pipeline

    pipeline = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"]))
    build_pipeline(pipeline, recipe, files, out_dir)
    _, stages = FnApiRunner().create_stages(pipeline.to_runner_api())
    return [[transform.unique_name for transform in stage.transforms] for stage in stages]


def test_examples_are_written_by_the_step_that_converts_them_in_few_stages(dataset, tmp_path):
    """The examples go from the conversion to their part files within one fused stage (a
    worker writes what it converts; nothing but file paths crosses to another stage), and
    the whole run is a handful of stages: each stage costs every worker a round trip,
    whatever the data size, which is most of a short run's time."""
    _, paths = dataset
    recipe = fraud_recipe(str(paths[0].parent / "*.csv"), str(tmp_path / "unused"))
    stages = _fused_stages(recipe, [str(p) for p in paths], str(tmp_path / "dataset"))
    converting = [stage for stage in stages if "Convert/Convert" in stage]
    assert len(converting) == 1
    writers = [name for name in converting[0] if name.startswith("WriteFiles/WriteParts")]
    assert "WriteFiles/WriteParts_0" in writers  # the examples' writer (rejects' too)
    assert not [name for stage in stages if stage is not converting[0] for name in stage
                if name.startswith("Shard") or name == "WriteFiles/WriteParts_0"]
    assert len(stages) <= 8
