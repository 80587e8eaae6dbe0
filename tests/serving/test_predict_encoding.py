"""Rows of a recipe whose source is cp1252 are decoded for serving as the pipeline decoded them:
the same examples as their UTF-8 copy, the strings inside them UTF-8, and `mtl predict` on a
model trained from a cp1252 file answers its cp1252 rows."""

import copy
import csv
import io

import numpy as np
import pytest
import tensorflow as tf
import yaml
from click.testing import CliRunner

from mtl_tf.cli.main import cli
from mtl_tf.data.spec import DatasetSpec
from mtl_tf.recipe import load_recipe, parse_recipe
from mtl_tf.serving.rows import ExampleEncoder
from tests.serving.registered_model import HEADER, NAME, TASKS, Registered, _cwd, raw_rows, recipe_mapping
from tests.serving.test_predict import features_by_hand, read_jsonl, registered_signatures

CHANNELS = {"web": "café", "app": "épicerie", "pos": "€-caisse"}


def accented_rows() -> list[list[str]]:
    """The serving rows with non-ASCII channels, one of them in a quoted field with a line break."""
    rows = [[CHANNELS.get(cell, cell) if i == 2 else cell for i, cell in enumerate(row)] for row in raw_rows()]
    rows[1][2] = "deux\nlignes é"
    return rows


def table_text(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue()


def serialized(encoder, path):
    inputs = list(encoder.read(path))
    return [(row.kind, tf.train.Example.FromString(row.example) if row.ok else row.reason) for row in inputs]


def test_a_cp1252_csv_becomes_the_examples_of_its_utf8_copy_and_a_bad_byte_one_rejected_row(tmp_path):
    rows = accented_rows()[:12]
    text = table_text(rows)
    (tmp_path / "rows.csv").write_bytes(text.encode("cp1252"))
    (tmp_path / "utf8.csv").write_bytes(text.encode("utf-8"))
    raw = recipe_mapping()
    declared = copy.deepcopy(raw)
    declared["data"]["source"]["encoding"] = "cp1252"
    ours = serialized(ExampleEncoder(parse_recipe(declared, check=False)), tmp_path / "rows.csv")
    assert ours == serialized(ExampleEncoder(parse_recipe(raw, check=False)), tmp_path / "utf8.csv")
    assert all(kind is None for kind, _ in ours)
    channels = [example.features.feature["channel"].bytes_list.value for _, example in ours]
    assert [b"".join(value).decode("utf-8") for value in channels] == [row[2] for row in rows]

    bad = text.encode("cp1252").replace("café".encode("cp1252"), b"caf\x81", 1)
    (tmp_path / "bad.csv").write_bytes(bad)
    kinds = [row.kind for row in ExampleEncoder(parse_recipe(declared, check=False)).read(tmp_path / "bad.csv")]
    first = next(i for i, row in enumerate(rows) if row[2] == "café")
    assert kinds[first] == "encoding" and kinds.count("encoding") == 1 and len(kinds) == len(rows)


@pytest.fixture(scope="module")
def cp1252_model(tmp_path_factory):
    """`mtl run` of the serving recipe on a cp1252 file (one epoch), registered as version 1."""
    root = tmp_path_factory.mktemp("cp1252")
    (root / "raw").mkdir()
    csv_path = root / "raw" / "rows.csv"
    csv_path.write_bytes(table_text(accented_rows()).encode("cp1252"))
    raw = recipe_mapping()
    raw["data"]["source"]["encoding"] = "cp1252"
    raw["training"]["epochs"] = 1
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw, allow_unicode=True))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with _cwd(root):
        result = CliRunner().invoke(cli, ["run", str(recipe), "--tracking-uri", uri, "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return Registered(root=root, uri=uri, recipe=recipe, csv=csv_path, dataset=root / "artifacts" / NAME / "dataset")


@pytest.mark.slow  # trains and registers a model (~30 s)
@pytest.mark.integration
def test_mtl_predict_answers_the_rows_of_a_cp1252_file_as_the_model_saw_them(cp1252_model, tmp_path):
    out = tmp_path / "answers.jsonl"
    result = CliRunner().invoke(cli, ["predict", "--model-uri", f"{NAME}/1", "--input", str(cp1252_model.csv),
                                      "--output", str(out), "--tracking-uri", cp1252_model.uri],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    answers = read_jsonl(out)
    rows = [dict(zip(HEADER, row)) for row in accented_rows()]
    assert len(answers) == len(rows)
    assert [a["kind"] for a in answers if "error" in a] == ["below_min", "unparsable_number"]
    good = [row for row, answer in zip(rows, answers) if "error" not in answer]
    expected = registered_signatures(cp1252_model, 1).signatures["serve_features"](**features_by_hand(good))
    for task in TASKS:
        np.testing.assert_allclose([a[task] for a in answers if "error" not in a], expected[task].numpy(), rtol=1e-6)
    assert load_recipe(cp1252_model.recipe, check=False).data.source.encoding == "cp1252"
    vocabulary = {entry.value for entry in DatasetSpec.read(cp1252_model.dataset).feature("channel").stats.vocabulary}
    assert {"café", "épicerie", "€-caisse"} <= vocabulary  # the model was trained on the decoded text
