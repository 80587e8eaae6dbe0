"""Bad bytes and odd files: each is a row rejected with its reason, a defined value, or one clear
error before the job starts, and the job goes on."""

import csv
import glob
import io
import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from mtl_tf.data.spec import DatasetSpec
from mtl_tf.recipe.loader import parse_recipe
from pipelines.batches import BatchConverter
from pipelines.csv_to_tfrecords import run
from pipelines.rows import RowParser, RowRejected
from pipelines.transforms import ReadCsvBatches
from tests.pipelines.tiny import HEADER, tiny_recipe

GOOD = "u{i},12.5,0.5,red,2024-03-01T10:00:00Z,1,b,x,3.25"


def _decode(serialized):
    from tensorflow.core.example import example_pb2

    features = example_pb2.Example.FromString(serialized).features.feature
    return {key: list(getattr(f, f.WhichOneof("kind")).value) for key, f in features.items()}


def _examples(spec):
    """Every example of every split, decoded, with its split."""
    import tensorflow as tf

    found = []
    for split in spec.splits:
        files = sorted(glob.glob(spec.files(split)))
        found += [(split, _decode(r.numpy())) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return found


def _rejects(result):
    path = result.path.parent / "rejects" / "rejects-00000-of-00001.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _one_split_recipe(tmp_path, **source):
    """The tiny recipe with every row in train (so no task lacks labels in some split)."""
    raw = tiny_recipe(str(tmp_path / "raw" / "*.csv"), str(tmp_path / "out")).model_dump(mode="json")
    raw["data"]["split"] = {"key": "user", "by_file": [{"files": "*", "train": 1.0}]}
    raw["data"]["source"].update(source)
    return parse_recipe(raw, check=False)


def _write(tmp_path, data: bytes, name="a.csv") -> Path:
    path = tmp_path / "raw" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- bytes that are not UTF-8 --------------------------------------------------------------


@pytest.mark.integration
def test_a_byte_that_is_not_utf8_rejects_its_row_keeps_it_escaped_and_the_job_goes_on(tmp_path):
    from pipelines.plain_python import convert

    lines = [",".join(HEADER)] + [GOOD.format(i=i) for i in range(4)]
    lines[2] = lines[2].replace("red", "caf\xe9")  # latin-1: one byte 0xe9
    _write(tmp_path, "\n".join(lines).encode("latin-1") + b"\n")
    result = run(_one_split_recipe(tmp_path), ["--runner=DirectRunner"])

    assert (result.rows_in, result.rows_written["train"], result.rows_rejected) == (4, 3, 1)
    assert result.rejects_by_reason == {"encoding": 1}
    (reject,) = _rejects(result)
    assert reject["kind"] == "encoding" and "0xe9" in reject["reason"] and "UTF-8" in reject["reason"]
    assert "set it to the file's encoding, e.g. cp1252" in reject["reason"]  # data.source.encoding
    assert reject["line"] == GOOD.format(i=1).replace("red", "caf\\xe9")
    assert result.spec.rejects.examples["encoding"] == reject["reason"]
    # The plain-Python converter sets the same record aside.
    assert convert(_one_split_recipe(tmp_path), [str(tmp_path / "raw" / "a.csv")], tmp_path / "plain") == 3
    plain = [json.loads(line) for line in (tmp_path / "plain" / "rejects" / "rejects-00000-of-00001.jsonl").open()]
    assert plain == [reject]


def test_a_header_that_is_not_utf8_is_one_line_naming_the_file(tmp_path):
    path = _write(tmp_path, b"user,amo\xfcnt\nu1,1\n")
    with pytest.raises(ValueError) as caught:
        run(_one_split_recipe(tmp_path))
    message = str(caught.value)
    assert str(path) in message and "not UTF-8" in message and "0xfc" in message and "\n" not in message
    assert "data.source.encoding is utf-8, the default; set it to the file's encoding" in message


# -- timestamps and other conversions that used to raise -----------------------------------


@pytest.mark.parametrize("text", ["--5", "\u00b2", "1\u00b2", "+-3", "\u0665", "99999999999999999999",
                                  "9" * 5000])
def test_a_timestamp_that_only_looks_like_digits_is_rejected_with_its_reason(text):
    converter = BatchConverter(tiny_recipe(), {"/d/a.csv": HEADER})
    line = GOOD.format(i=0).replace("2024-03-01T10:00:00Z", text)
    batch = converter.convert([("/d/a.csv", line), ("/d/a.csv", GOOD.format(i=1))])
    assert sum(len(examples) for examples in batch.examples.values()) == 1
    (reject,) = batch.rejects
    assert reject["kind"] == "unparsable_timestamp" and "'when'" in reject["reason"]
    assert reject["line"] == line


def test_a_field_over_the_csv_modules_size_limit_is_rejected_not_raised():
    converter = BatchConverter(tiny_recipe(), {"/d/a.csv": HEADER})
    line = GOOD.format(i=0).replace("red", '"' + "r" * 200_000 + '"')
    batch = converter.convert([("/d/a.csv", line)])
    assert [r["kind"] for r in batch.rejects] == ["malformed_csv"]
    assert "field larger than field limit" in batch.rejects[0]["reason"]


# -- quoted fields holding line breaks -------------------------------------------------------

QUOTED = ('h,note,n\n'
          '1,"two\nlines",a\n'
          '2,"say ""hi""\r\nthen, go",b\r\n'
          '3,plain,c\n'
          '4,"\n\n",d\n'
          '5,5" screen,e\n'
          '6,"x","y\nz"\n'
          '7,last,f')


def test_quoted_line_breaks_are_one_record_whatever_the_byte_ranges(tmp_path):
    path = _write(tmp_path, QUOTED.encode())
    expected = list(csv.reader(io.StringIO(QUOTED, newline="")))[1:]
    assert len(expected) == 7 and QUOTED.count("\n") == 12
    with BeamTestPipeline() as p:
        for range_bytes in (1, 2, 3, 5, 8, 13, 21, 1 << 20):
            read = (p | f"Read {range_bytes}" >> ReadCsvBatches([str(path)], batch_size=2, range_bytes=range_bytes)
                    | f"Flat {range_bytes}" >> beam.FlatMap(lambda batch: batch)
                    | f"Fields {range_bytes}" >> beam.MapTuple(lambda _, record: list(csv.reader([record]))[0]))
            assert_that(read, equal_to(expected), label=f"Records {range_bytes}")


def test_a_range_boundary_inside_a_long_quoted_field_reads_the_record_once(tmp_path):
    """A quoted field spanning many lines and several ranges: no range starts a row inside it."""
    note = "\n".join(f"line {i},with,commas" for i in range(30))
    text = f'h,note\n1,"{note}"\n2,after\n3,"short\nbreak"\n'
    path = _write(tmp_path, text.encode())
    expected = list(csv.reader(io.StringIO(text, newline="")))[1:]
    with BeamTestPipeline() as p:
        for range_bytes in (4, 17, 64, 100):
            read = (p | f"Read {range_bytes}" >> ReadCsvBatches([str(path)], range_bytes=range_bytes)
                    | f"Flat {range_bytes}" >> beam.FlatMap(lambda batch: batch)
                    | f"Fields {range_bytes}" >> beam.MapTuple(lambda _, record: list(csv.reader([record]))[0]))
            assert_that(read, equal_to(expected), label=f"Records {range_bytes}")


@pytest.mark.integration
def test_a_quoted_line_break_is_one_row_in_the_dataset_and_an_unclosed_quote_one_reject(tmp_path):
    lines = [",".join(HEADER), GOOD.format(i=0).replace("red", '"dark\nred"'), GOOD.format(i=1),
             GOOD.format(i=2).replace("red", '"never closed'), GOOD.format(i=3)]
    _write(tmp_path, ("\n".join(lines) + "\n").encode())
    result = run(_one_split_recipe(tmp_path), ["--runner=DirectRunner"])
    assert (result.rows_in, result.rows_written["train"], result.rows_rejected) == (3, 2, 1)
    colors = sorted(values["color"][0] for _, values in _examples(result.spec))
    assert colors == [b"dark\nred", b"red"]
    (reject,) = _rejects(result)
    assert reject["kind"] == "unclosed_quote" and reject["line"].startswith("u2,")


# -- a BOM on a headerless file ------------------------------------------------------------


def test_a_headerless_file_with_a_bom_does_not_keep_it_in_the_first_cell(tmp_path):
    from pipelines.plain_python import _batches

    path = _write(tmp_path, "\ufeffu0,12.5\r\nu1,3\r\n".encode("utf-8"))
    with BeamTestPipeline() as p:
        for range_bytes in (1, 1 << 20):
            read = (p | f"Read {range_bytes}" >> ReadCsvBatches([str(path)], range_bytes=range_bytes,
                                                                skip_header=False)
                    | f"Flat {range_bytes}" >> beam.FlatMap(lambda batch: batch))
            assert_that(read, equal_to([(str(path), "u0,12.5"), (str(path), "u1,3")]), label=f"Read {range_bytes}")
    assert [record for batch in _batches(str(path), 10, skip_header=False) for _, record in batch] == \
        ["u0,12.5", "u1,3"]


# -- headers ---------------------------------------------------------------------------------


def test_a_header_naming_a_column_twice_is_refused_with_one_line(tmp_path):
    header = ",".join(HEADER + ["amount"])
    path = _write(tmp_path, f"{header}\n{GOOD.format(i=0)},7\n".encode())
    with pytest.raises(ValueError) as caught:
        run(_one_split_recipe(tmp_path))
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "column 'amount' twice (columns 2 and 10)" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("delimiter, shown", [(";", "';'"), ("\t", '"\\t"'), ("|", "'|'")])
def test_a_wrong_delimiter_is_one_line_suggesting_the_one_the_header_uses(tmp_path, delimiter, shown):
    path = _write(tmp_path, (delimiter.join(HEADER) + "\n" + GOOD.format(i=0).replace(",", delimiter) + "\n").encode())
    with pytest.raises(ValueError) as caught:
        run(_one_split_recipe(tmp_path))
    message = str(caught.value)
    assert "\n" not in message, message
    assert f"the header of {path} has 1 column {repr(delimiter.join(HEADER[:2]))[:-1]}" in message
    assert f"set data.source.delimiter: {shown}" in message


def test_a_headerless_file_starting_with_blank_lines_is_checked_on_its_first_row(tmp_path):
    from pipelines.sources import file_columns

    path = str(_write(tmp_path, b"\n  \nA11 6 A34 1169 1\n", name="german.data"))
    source = _german_recipe(tmp_path, "whitespace").data.source
    assert file_columns([path], source) == {path: ["status", "months", "history", "amount", "good"]}


def test_a_headerless_file_with_another_delimiter_is_told_which(tmp_path):
    from pipelines.sources import file_columns

    _write(tmp_path, b"1;2;3\n")
    recipe = parse_recipe({"name": "t", "data": {"source": {"path": "x", "header": False, "columns": ["a", "b", "c"]},
                                                 "split": {}, "output_dir": "out",
                                                 "features": [{"name": "a", "kind": "numeric"}]},
                           "tasks": [{"name": "y", "type": "regression", "label": "c"}]}, check=False)
    with pytest.raises(ValueError, match=r"has 1 fields \(delimiter ','\); it looks ';'-delimited: "
                                         r"set data.source.delimiter: ';'"):
        file_columns([str(tmp_path / "raw" / "a.csv")], recipe.data.source)


# -- line endings, blank lines, NaN, infinities, empty labels --------------------------------


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """CRLF endings, blank and whitespace-only lines, NaN, infinities, empty labels and no final
    newline, through the whole pipeline."""
    tmp_path = tmp_path_factory.mktemp("messy")
    rows = [",".join(HEADER),
            "u0,12.5,nan,red,2024-03-01T10:00:00Z,1,b,x,3.25",      # NaN score: missing
            "",
            "u1,13,NaN,blue,1709287200,0,a,y,NAN",                  # NaN regression label: no label
            "   ",
            "u2,14,inf,red,1709287200,1,a,x,1",                     # rejected: not finite
            "u3,15,1e400,red,1709287200,1,a,x,1",                   # rejected: overflows
            "u4,16,-Infinity,red,1709287200,1,a,x,1",               # rejected
            "u5,17,1e39,red,1709287200,1,a,x,1",                    # rejected: beyond float32
            "u6,18,2.5,red,1709287200,,,,",                         # every label empty: no labels
            "",
            "u7,19,-1e38,green,1709287200,0,c,y,1e400",             # rejected: regression label overflows
            "u8,20,1.5,red,1709287200,1,c,x|y,2"]                   # the last line, without a newline
    _write(tmp_path, "\r\n".join(rows).encode())
    return run(_one_split_recipe(tmp_path), ["--runner=DirectRunner"])


@pytest.mark.integration
def test_blank_lines_are_skipped_and_counted_apart_from_rows(messy):
    assert messy.blank_lines == 3 and messy.spec.blank_lines == 3
    assert messy.rows_in == 9 == messy.spec.rows_in
    assert "wrong_field_count" not in messy.rejects_by_reason
    assert messy.summary().splitlines()[0] == "rows in 9 = written 4 (train 4) + rejected 5; 3 blank lines skipped"


@pytest.mark.integration
def test_infinities_and_overflows_are_rejected_as_not_finite(messy):
    assert messy.rejects_by_reason == {"not_finite": 5}
    rejected = sorted(reject["line"].split(",")[0] for reject in _rejects(messy))
    assert rejected == ["u2", "u3", "u4", "u5", "u7"]
    assert all("not a finite number in" in reject["reason"] for reject in _rejects(messy))


@pytest.mark.integration
def test_nan_is_a_missing_value_and_empty_label_cells_are_no_label(messy):
    by_user = {}
    for _, values in _examples(messy.spec):
        by_user[values.pop("amount")[0]] = values
    assert sorted(by_user) == [12.5, 13.0, 18.0, 20.0]
    assert "score" not in by_user[12.5] and "score" not in by_user[13.0]
    assert "spend" not in by_user[13.0] and by_user[12.5]["spend"] == [3.25]
    assert not {"is_fraud", "kind", "tags", "spend"} & set(by_user[18.0])
    assert by_user[20.0]["tags"] == [1.0, 1.0] and by_user[20.0]["spend"] == [2.0]  # the unterminated last line
    score = messy.spec.feature("score").stats
    assert (score.count, score.missing) == (2, 2) and score.mean == pytest.approx(2.0)
    spend = messy.spec.task("spend")
    assert spend.labelled["train"] == 2 and messy.spec.task("fraud").labelled["train"] == 3


def test_nan_in_a_required_feature_is_missing_required():
    parser = RowParser(tiny_recipe(), HEADER)
    with pytest.raises(RowRejected) as caught:
        parser.parse_line(GOOD.format(i=0).replace("12.5", "nan"))
    assert caught.value.kind == "missing_required" and "'amount'" in caught.value.message


# -- every example is accounted for --------------------------------------------------------


def test_the_count_check_names_the_three_numbers_when_they_disagree():
    from pipelines.csv_to_tfrecords import check_counts

    check_counts(10, {"train": 6, "test": 2}, 2)
    with pytest.raises(RuntimeError) as caught:
        check_counts(10, {"train": 6, "test": 1}, 2)
    message = str(caught.value)
    assert "rows in (10)" in message and "(7: train 6, test 1)" in message and "rejects file (2)" in message
    assert "lost 1 rows" in message
    with pytest.raises(RuntimeError, match="duplicated 1 rows"):
        check_counts(10, {"train": 9}, 2)


@pytest.mark.integration
def test_a_step_that_drops_examples_fails_the_job_loudly(tmp_path, monkeypatch):
    """The check compares counts made apart from each other: records read by the converter,
    examples the shard writer received, records the rejects file received."""
    from pipelines import transforms

    _write(tmp_path, ("\n".join([",".join(HEADER)] + [GOOD.format(i=i) for i in range(6)]) + "\n").encode())
    recipe = _one_split_recipe(tmp_path)
    process = transforms.ShardExampleFn.process

    def drop_the_last(self, element):
        split, examples = element
        yield from process(self, (split, examples[:-1]))

    monkeypatch.setattr(transforms.ShardExampleFn, "process", drop_the_last)
    with pytest.raises(RuntimeError, match=r"rows in \(6\) != examples written to the shards \(5: train 5\) \+ "
                                           r"records in the rejects file \(0\)"):
        run(recipe, ["--runner=DirectRunner"])
    assert not (tmp_path / "out" / "dataset.json").exists()


# -- shards are never lost between joining and cleaning up -----------------------------------


def _parts(tmp_path, name, pieces):
    from pipelines.transforms import WritePartsFn

    writer = WritePartsFn(str(tmp_path))
    writer.start_bundle()
    for piece in pieces:
        list(writer.process((name, piece)) or [])
    return [windowed.value[1] for windowed in writer.finish_bundle()]


def test_a_failed_rename_of_a_joined_shard_keeps_its_parts(tmp_path):
    from pipelines.transforms import JoinPartsFn

    name = "train-00000-of-00001.tfrecord.gz"
    parts = _parts(tmp_path, name, [[b"a", b"b"]]) + _parts(tmp_path, name, [[b"c"]])
    (tmp_path / name).mkdir()
    (tmp_path / name / "in the way").write_text("a folder where the shard goes")
    with pytest.raises(Exception, match="Rename"):
        list(JoinPartsFn(str(tmp_path)).process((name, parts)))
    assert all(Path(path).is_file() for path, _ in parts)

    (tmp_path / name / "in the way").unlink()
    (tmp_path / name).rmdir()
    assert list(JoinPartsFn(str(tmp_path)).process((name, parts))) == [(name, 3)]  # a retry finds them all
    import tensorflow as tf

    records = sorted(r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / name), compression_type="GZIP"))
    assert records == [b"a", b"b", b"c"]


def test_a_failed_delete_of_the_parts_keeps_the_joined_shard(tmp_path, monkeypatch):
    from apache_beam.io.filesystems import FileSystems

    from pipelines.csv_to_tfrecords import remove_temp_dirs
    from pipelines.transforms import JoinPartsFn

    name = "train-00000-of-00001.tfrecord.gz"
    parts = _parts(tmp_path, name, [[b"a", b"b"]])

    def refuse(paths):
        raise OSError(f"cannot delete {paths}")

    monkeypatch.setattr(FileSystems, "delete", staticmethod(refuse))
    assert list(JoinPartsFn(str(tmp_path)).process((name, parts))) == [(name, 2)]
    import tensorflow as tf

    records = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / name), compression_type="GZIP")]
    assert records == [b"a", b"b"]
    monkeypatch.undo()
    remove_temp_dirs(tmp_path)
    assert not list(tmp_path.glob("beam-temp-*"))


# -- whitespace-separated files --------------------------------------------------------------

GERMAN_LIKE = ["A11  6 A34 1169 1 ", "A12 48 A32 5951 2 ", "\tA14 12 A34  2096 1  ", "A11 42 A32 7882 1 "]


def _german_recipe(tmp_path, delimiter):
    return parse_recipe({
        "name": "german_like",
        "data": {"source": {"path": str(tmp_path / "raw" / "*.data"), "header": False, "delimiter": delimiter,
                            "columns": ["status", "months", "history", "amount", "good"]},
                 "split": {"by_file": [{"files": "*", "train": 1.0}]},
                 "output_dir": str(tmp_path / "out"), "shards": 1,
                 "features": [{"name": "status", "kind": "categorical"}, {"name": "months", "kind": "numeric"},
                              {"name": "history", "kind": "categorical"}, {"name": "amount", "kind": "numeric"}]},
        "tasks": [{"name": "good", "type": "binary", "label": "good", "positive": ["1"]}],
    }, check=False)


@pytest.mark.parametrize("delimiter", [r"\s+", "whitespace"])
def test_runs_of_whitespace_delimit_fields_with_leading_and_trailing_ones_ignored(tmp_path, delimiter):
    _write(tmp_path, ("\n".join(GERMAN_LIKE) + "\n").encode(), name="german.data")
    recipe = _german_recipe(tmp_path, delimiter)
    assert recipe.data.source.delimiter == r"\s+"
    batch = BatchConverter(recipe, {"/d/german.data": recipe.data.source.columns}).convert(
        [("/d/german.data", line) for line in GERMAN_LIKE])
    assert batch.rejects == []
    amounts = sorted(_decode(e)["amount"][0] for e in batch.examples["train"])
    assert amounts == [1169.0, 2096.0, 5951.0, 7882.0]


def test_a_quoted_field_with_spaces_is_one_field_under_the_whitespace_delimiter():
    from pipelines.rows import split_line

    assert split_line('  A11 "New  York" 5 ""  ', r"\s+") == ["A11", "New  York", "5", ""]
    assert split_line('a "say ""hi""" b', r"\s+") == ["a", 'say "hi"', "b"]


def test_a_single_space_delimiter_makes_a_trailing_space_an_extra_field(tmp_path):
    recipe = _german_recipe(tmp_path, " ")
    batch = BatchConverter(recipe, {"/d/german.data": recipe.data.source.columns}).convert(
        [("/d/german.data", "A12 48 A32 5951 2"), ("/d/german.data", "A12 48 A32 5951 2 ")])
    assert len(batch.examples["train"]) == 1
    assert [r["reason"] for r in batch.rejects] == ["wrong number of fields: 6 (the header has 5)"]


@pytest.mark.integration
def test_a_whitespace_separated_file_end_to_end(tmp_path):
    _write(tmp_path, ("\n".join(GERMAN_LIKE)).encode(), name="german.data")
    result = run(_german_recipe(tmp_path, r"\s+"), ["--runner=DirectRunner"])
    assert (result.rows_in, result.rows_written, result.rows_rejected) == (4, {"train": 4}, 0)
    assert {v.value for v in result.spec.feature("status").stats.vocabulary} == {"A11", "A12", "A14"}
    assert result.spec.task("good").positives["train"] == 3


# -- when every row is rejected --------------------------------------------------------------


@pytest.mark.integration
def test_when_every_row_is_rejected_the_error_says_so_with_the_main_reasons(tmp_path):
    header = "user,amount,income"
    _write(tmp_path, ("\n".join([header] + [f"u{i},{i},{'>50K' if i % 3 else '<=50K'}" for i in range(9)]) + "\n")
           .encode())
    recipe = parse_recipe({
        "name": "census_like",
        "data": {"source": {"path": str(tmp_path / "raw" / "*.csv")}, "output_dir": str(tmp_path / "out"),
                 "split": {"key": "user"}, "features": [{"name": "amount", "kind": "numeric"}]},
        "tasks": [{"name": "rich", "type": "binary", "label": "income"}],
    }, check=False)
    with pytest.raises(ValueError) as caught:
        run(recipe, ["--runner=DirectRunner"])
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("all 9 rows were rejected: label_not_allowed 9 (e.g. label value not allowed in "
                               "'income': '<=50K'")
    assert "'positive' list" in lines[0]
    assert "rows in 9 = written 0 (train 0, validation 0, test 0) + rejected 9" in lines
    assert not any("has no labelled rows" in line for line in lines)
    assert DatasetSpec.read(tmp_path / "out").rejects.count == 9
