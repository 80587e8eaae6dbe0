"""`data.source.encoding`: files in cp1252 or EUC-JP become the very examples and statistics that
the same table written in UTF-8 gives, in any byte ranges; bytes the encoding cannot decode
reject their row only."""

import csv
import glob
import io
import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from mtl_tf.recipe.loader import parse_recipe
from pipelines.csv_to_tfrecords import run
from pipelines.sources import file_columns
from pipelines.transforms import ReadCsvBatches

# The same table in the words of each encoding: a non-ASCII header, non-ASCII values, a quoted
# field with a line break, one with quotes and one with the delimiter.
FRENCH = {"columns": ["user", "âge", "dépense", "ville", "note", "fraude"],
          "rows": [["u0", "31", "12.5", "Bézier", "€ payé", "1"],
                   ["u1", "45", "3.0", "Orléans", "deux\nlignes é", "0"],
                   ["u2", "28", "7.25", "Zürich", "café", "1"],
                   ["u3", "52", "100", "Orléans", 'dit "ça"', "0"],
                   ["u4", "39", "0.5", "Besançon", "a, b", "1"],
                   ["u5", "61", "42", "Zürich", "œuvre", "0"]]}
JAPANESE = {"columns": ["user", "年齢", "支出", "都市", "メモ", "不正"],
            "rows": [["u0", "31", "12.5", "東京", "円で支払い", "1"],
                     ["u1", "45", "3.0", "大阪", "二行の\nメモ", "0"],
                     ["u2", "28", "7.25", "京都", "コーヒー", "1"],
                     ["u3", "52", "100", "大阪", '「引用」"です"', "0"],
                     ["u4", "39", "0.5", "札幌", "あ, い", "1"],
                     ["u5", "61", "42", "京都", "ソース表示", "0"]]}
TABLES = {"cp1252": FRENCH, "euc-jp": JAPANESE}


def table_text(table, rows=None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table["columns"])
    writer.writerows(table["rows"] if rows is None else rows)
    return out.getvalue()


def recipe_for(table, source_glob, out, **source):
    user, age, spend, city, note, fraud = table["columns"]
    raw = {"name": "accents",
           "data": {"source": {"path": source_glob, **source}, "output_dir": str(out), "shards": 1,
                    "split": {"key": user, "by_file": [{"files": "*", "train": 1.0}]},
                    "features": [{"name": "age", "column": age, "kind": "numeric"},
                                 {"name": "city", "column": city, "kind": "categorical"},
                                 {"name": "note", "column": note, "kind": "categorical"}]},
           "tasks": [{"name": "fraud", "type": "binary", "label": fraud},
                     {"name": "spend", "type": "regression", "label": spend}]}
    return parse_recipe(raw, check=False)


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def examples(spec):
    """Every example, as ``{key: values}`` with sorted keys, sorted."""
    import tensorflow as tf
    from tensorflow.core.example import example_pb2

    found = []
    for split in spec.splits:
        for record in tf.data.TFRecordDataset(sorted(glob.glob(spec.files(split))), compression_type="GZIP"):
            features = example_pb2.Example.FromString(record.numpy()).features.feature
            found.append(sorted((key, list(getattr(f, f.WhichOneof("kind")).value)) for key, f in features.items()))
    return sorted(found)


def rejects(result):
    path = result.path.parent / "rejects" / "rejects-00000-of-00001.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.integration
@pytest.mark.parametrize("encoding", ["cp1252", "euc-jp"])
def test_a_file_in_another_encoding_gives_the_examples_and_statistics_of_its_utf8_twin(tmp_path, encoding):
    table = TABLES[encoding]
    text = table_text(table)
    write(tmp_path / "enc" / "t.csv", text.encode(encoding))
    write(tmp_path / "utf8" / "t.csv", text.encode("utf-8"))
    declared = run(recipe_for(table, str(tmp_path / "enc" / "*.csv"), tmp_path / "out_enc", encoding=encoding),
                   ["--runner=DirectRunner"])
    utf8 = run(recipe_for(table, str(tmp_path / "utf8" / "*.csv"), tmp_path / "out_utf8"), ["--runner=DirectRunner"])

    assert (declared.rows_in, declared.rows_rejected) == (6, 0)
    assert examples(declared.spec) == examples(utf8.spec)
    notes = sorted(values[0].decode("utf-8") for example in examples(declared.spec)
                   for key, values in example if key == "note")
    assert notes == sorted(row[4] for row in table["rows"])  # decoded text, stored as UTF-8
    assert declared.spec.features == utf8.spec.features and declared.spec.tasks == utf8.spec.tasks
    assert declared.spec.feature("city").stats.vocabulary == utf8.spec.feature("city").stats.vocabulary
    written = json.loads(declared.path.read_text())
    assert written["source_encoding"] == {"cp1252": "cp1252", "euc-jp": "euc_jp"}[encoding]
    assert json.loads(utf8.path.read_text())["source_encoding"] == "utf-8"


def test_records_read_in_many_byte_ranges_decode_as_the_utf8_text_reads(tmp_path):
    paths, expected = {}, {}
    for encoding, table in TABLES.items():
        text = table_text(table)
        paths[encoding] = str(write(tmp_path / f"{encoding}.csv", text.encode(encoding)))
        expected[encoding] = list(csv.reader(io.StringIO(text, newline="")))[1:]
    with BeamTestPipeline() as p:
        for encoding, path in paths.items():
            for range_bytes in (1, 3, 7, 1 << 20):
                label = f"{encoding} {range_bytes}"
                read = (p | f"Read {label}" >> ReadCsvBatches([path], batch_size=2, range_bytes=range_bytes,
                                                              encoding=encoding)
                        | f"Flat {label}" >> beam.FlatMap(lambda batch: batch)
                        | f"Fields {label}" >> beam.MapTuple(lambda _, record: list(csv.reader([record]))[0]))
                assert_that(read, equal_to(expected[encoding]), label=f"Records {label}")


def test_a_delimiter_outside_ascii_is_found_as_the_encoding_writes_it(tmp_path):
    """'§' is one byte (0xa7) in cp1252 and two in UTF-8: a quoted field holding it and a line
    break is one field."""
    text = 'a§b\n1§"x § y\nz"\n2§plain\n'
    path = str(write(tmp_path / "s.csv", text.encode("cp1252")))
    expected = [["1", "x § y\nz"], ["2", "plain"]]
    with BeamTestPipeline() as p:
        for range_bytes in (1, 4, 1 << 20):
            read = (p | f"Read {range_bytes}" >> ReadCsvBatches([path], range_bytes=range_bytes, delimiter="§",
                                                                encoding="cp1252")
                    | f"Flat {range_bytes}" >> beam.FlatMap(lambda batch: batch)
                    | f"Fields {range_bytes}" >> beam.MapTuple(
                        lambda _, record: list(csv.reader([record], delimiter="§"))[0]))
            assert_that(read, equal_to(expected), label=f"Records {range_bytes}")


@pytest.mark.integration
def test_a_byte_the_encoding_cannot_decode_rejects_only_its_row(tmp_path):
    from pipelines.plain_python import convert

    text = table_text(FRENCH).replace("café", "caf\x00").encode("cp1252").replace(b"caf\x00", b"caf\x81")
    path = write(tmp_path / "raw" / "t.csv", text)  # 0x81 is not a cp1252 character
    recipe = recipe_for(FRENCH, str(tmp_path / "raw" / "*.csv"), tmp_path / "out", encoding="cp1252")
    result = run(recipe, ["--runner=DirectRunner"])

    assert (result.rows_in, result.rows_written["train"], result.rows_rejected) == (6, 5, 1)
    (reject,) = rejects(result)
    assert reject["kind"] == "encoding"
    assert "0x81" in reject["reason"] and "cp1252" in reject["reason"]
    assert reject["line"] == "u2,28,7.25,Zürich,caf\\x81,1"
    assert len(examples(result.spec)) == 5
    assert convert(recipe, [str(path)], tmp_path / "plain") == 5
    plain = (tmp_path / "plain" / "rejects" / "rejects-00000-of-00001.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in plain] == [reject]


def test_a_header_the_encoding_cannot_decode_is_one_line_naming_file_byte_and_encoding(tmp_path):
    path = write(tmp_path / "raw" / "t.csv", b"user,\xe2ge\x81\nu0,1\n")
    recipe = recipe_for(FRENCH, str(tmp_path / "raw" / "*.csv"), tmp_path / "out", encoding="cp1252")
    with pytest.raises(ValueError) as caught:
        file_columns([str(path)], recipe.data.source)
    message = str(caught.value)
    assert str(path) in message and "not cp1252" in message and "0x81" in message and "\n" not in message


@pytest.mark.parametrize("header", [True, False])
def test_a_utf8_byte_order_mark_under_another_encoding_says_the_file_is_utf8(tmp_path, header):
    path = write(tmp_path / "raw" / "t.csv", "\ufeff".encode("utf-8") + table_text(FRENCH).encode("utf-8"))
    recipe = recipe_for(FRENCH, str(tmp_path / "raw" / "*.csv"), tmp_path / "out", encoding="latin-1")
    source = recipe.data.source if header else recipe.data.source.model_copy(
        update={"header": False, "columns": FRENCH["columns"]})
    with pytest.raises(ValueError) as caught:
        file_columns([str(path)], source)
    message = str(caught.value)
    assert str(path) in message and "byte order mark" in message and "iso8859-1" in message and "\n" not in message
