"""Headerless, spaced, gzipped CSV with missing-value markers, label value lists and per-file splits."""

import glob
import gzip
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from mtl_tf.recipe.loader import parse_recipe
from pipelines.batches import BatchConverter
from pipelines.rows import RowParser, RowRejected
from pipelines.sources import file_columns
from pipelines.splits import active_splits, check_split_files, file_fractions
from pipelines.transforms import ReadCsvBatches

COLUMNS = ["age", "job", "status", "weight", "income"]
STATUSES = ["Never married", "Divorced", "Widowed"]


def census_like(source="raw/*.gz", out="out", split=None, **source_options):
    """A headerless recipe shaped like census income: ', '-separated, '?' for missing."""
    raw = {
        "name": "census_like",
        "data": {
            "source": {"path": source, "header": False, "columns": COLUMNS, "na_values": ["?"], **source_options},
            "output_dir": out,
            "shards": 2,
            "split": split or {"seed": 3, "by_file": [{"files": "*.data.gz", "train": 1.0},
                                                      {"files": "*.test.gz", "validation": 0.5, "test": 0.5}]},
            "features": [{"name": "age", "kind": "numeric"}, {"name": "job", "kind": "categorical"}],
        },
        "tasks": [
            {"name": "rich", "type": "binary", "label": "income", "positive": ["50000+."]},
            {"name": "single", "type": "binary", "label": "status", "positive": ["Never married"],
             "na_values": ["unknown"]},
        ],
    }
    return parse_recipe(raw, check=False)


def census_line(i: int) -> str:
    """Row ``i``: fields after ', ', a '?' job every 5th row, an unknown status every 7th."""
    job = "?" if i % 5 == 0 else ["Private", "Self-employed"][i % 2]
    status = "unknown" if i % 7 == 0 else STATUSES[i % 3]
    income = "50000+." if i % 4 == 0 else "- 50000."
    return f"{20 + i % 50}, {job}, {status}, {1000 + i}.5, {income}"


def write_gz(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
    return str(path)


def test_spaced_cells_na_values_and_positive_lists_give_typed_values():
    parser = RowParser(census_like(), COLUMNS)
    key, values = parser.parse_line("38, Private, Never married, 1032.38, - 50000.")
    assert values == {"age": 38.0, "job": "Private", "status": 1.0, "income": 0.0}
    assert key == "38\x1fPrivate\x1fNever married\x1f1032.38\x1f- 50000."
    _, values = parser.parse_line(" ?, ?, Divorced, 1.0, 50000+.")
    assert values == {"status": 0.0, "income": 1.0}


def test_task_na_values_drop_only_that_tasks_label():
    parser = RowParser(census_like(), COLUMNS)
    _, values = parser.parse_line("40, unknown, unknown, 1.0, unknown")
    # 'unknown' is missing for the status task only; elsewhere it is an ordinary value.
    assert values == {"age": 40.0, "job": "unknown", "income": 0.0}


def test_a_required_feature_given_as_a_missing_marker_is_rejected():
    raw = census_like().model_dump(mode="json")
    raw["data"]["features"][0]["required"] = True
    parser = RowParser(parse_recipe(raw, check=False), COLUMNS)
    with pytest.raises(RowRejected, match="missing required value in 'age'"):
        parser.parse_line("?, Private, Widowed, 1.0, - 50000.")


def test_without_a_key_identical_rows_share_a_split_in_any_order_or_batching():
    recipe = census_like(split={"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 9})
    lines = [("/raw/a.gz", census_line(i % 50)) for i in range(300)]  # 50 distinct ages, 6 copies each
    shuffled = lines[:]
    random.Random(1).shuffle(shuffled)

    def assignment(order, size):
        converter = BatchConverter(recipe, {"/raw/a.gz": COLUMNS})
        splits = {}
        for start in range(0, len(order), size):
            for split, examples in converter.convert(order[start:start + size]).examples.items():
                for example in examples:
                    splits.setdefault(example, set()).add(split)
        return splits

    first, second = assignment(lines, 1000), assignment(shuffled, 7)
    assert len(first) == 50
    assert first == second and all(len(splits) == 1 for splits in first.values())
    assert {split for splits in first.values() for split in splits} == {"train", "validation", "test"}


def test_by_file_rules_pick_each_files_fractions_and_name_what_is_unmatched():
    split = census_like().data.split
    assert file_fractions(split, "/d/census-income.data.gz") == {"train": 1.0, "validation": 0.0, "test": 0.0}
    assert file_fractions(split, "/d/census-income.test.gz") == {"train": 0.0, "validation": 0.5, "test": 0.5}
    assert active_splits(split) == {"train": 1.0, "validation": 0.5, "test": 0.5}
    with pytest.raises(ValueError, match=r"no rule matches the input file '/d/extra.csv'; rules: '\*.data.gz'"):
        check_split_files(split, ["/d/a.data.gz", "/d/a.test.gz", "/d/extra.csv"])
    with pytest.raises(ValueError, match=r"by_file.1.files: '\*.test.gz' matches none of the input files; "
                                         r"received files: a.data.gz"):
        check_split_files(split, ["/d/a.data.gz"])


def test_headerless_files_take_the_recipe_columns_and_a_wrong_field_count_is_named(tmp_path):
    good = write_gz(tmp_path / "a.data.gz", [census_line(1)])
    bad = write_gz(tmp_path / "b.data.gz", ["1, 2, 3"])
    source = census_like().data.source
    assert file_columns([good], source) == {good: COLUMNS}
    with pytest.raises(ValueError, match=r"data.source.columns names 5 columns, but the first line of .*b.data.gz "
                                         r"has 3 fields"):
        file_columns([good, bad], source)


def test_read_csv_batches_keeps_the_first_line_of_headerless_files(tmp_path):
    plain = tmp_path / "a.csv"
    plain.write_text("x,1\ny,2\n")
    zipped = write_gz(tmp_path / "b.csv.gz", ["z,3", "w,4"])
    expected = [(str(plain), "x,1"), (str(plain), "y,2"), (zipped, "z,3"), (zipped, "w,4")]
    with BeamTestPipeline() as p:
        for range_bytes in (1, 1 << 20):
            lines = (p | f"Read {range_bytes}" >> ReadCsvBatches([str(plain), zipped], batch_size=3,
                                                                 range_bytes=range_bytes, skip_header=False)
                     | f"Flat {range_bytes}" >> beam.FlatMap(lambda batch: batch))
            assert_that(lines, equal_to(expected), label=f"Lines {range_bytes}")


@pytest.mark.integration
def test_census_like_gz_files_split_by_file_end_to_end(tmp_path):
    import tensorflow as tf

    from pipelines.csv_to_tfrecords import run
    from pipelines.plain_python import convert

    train_file = write_gz(tmp_path / "raw" / "census-income.data.gz", [census_line(i) for i in range(300)])
    test_file = write_gz(tmp_path / "raw" / "census-income.test.gz", [census_line(i) for i in range(1000, 1800)])
    recipe = census_like(source=str(tmp_path / "raw" / "*.gz"), out=str(tmp_path / "out"))
    result = run(recipe, ["--runner=DirectRunner"])

    assert result.rows_in == 1100 and result.rows_rejected == 0
    assert result.rows_written["train"] == 300
    validation, test = result.rows_written["validation"], result.rows_written["test"]
    assert validation + test == 800 and abs(validation - test) < 100  # 1:1 within 3.5 sigma
    spec = result.spec
    assert spec.split_key is None
    assert spec.task("rich").positives["train"] == 75
    assert spec.task("single").labelled["train"] == 300 - len(range(0, 300, 7))
    assert spec.task("single").positives["train"] == sum(1 for i in range(300) if i % 7 and i % 3 == 0)
    job = spec.feature("job")
    assert job.stats.missing == 60 and {v.value for v in job.stats.vocabulary} == {"Private", "Self-employed"}

    def examples(pattern):
        files = sorted(glob.glob(pattern))
        return sorted(bytes(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))

    # The same rows land in the same splits again, through another engine.
    convert(recipe, [train_file, test_file], tmp_path / "again")
    for split in ("train", "validation", "test"):
        assert examples(str(tmp_path / "again" / f"{split}-*.tfrecord.gz")) == examples(spec.files(split))
    # Another seed halves the test file differently.
    raw = recipe.model_dump(mode="json")
    raw["data"]["split"]["seed"] = 4
    convert(parse_recipe(raw, check=False), [train_file, test_file], tmp_path / "reseeded")
    assert examples(str(tmp_path / "reseeded" / "test-*.tfrecord.gz")) != examples(spec.files("test"))
