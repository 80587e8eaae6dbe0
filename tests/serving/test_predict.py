"""`mtl predict` on a registered model: rows converted as Beam converts them, answered here, over
REST and over gRPC, with the same answers."""

import base64
import csv
import json
import math

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from mtl_tf.cli.main import cli
from mtl_tf.recipe import load_recipe
from mtl_tf.serving.client import grpc_request, rest_request
from mtl_tf.serving.rows import ExampleEncoder
from tests.serving.fake_serving import GrpcServer, RestServer, ServedModels
from tests.serving.registered_model import LABEL_COLUMNS, NAME, TASKS

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # the session fixture trains twice (~1 min)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def csv_rows(registered, n=None):
    with registered.csv.open() as handle:
        rows = list(csv.DictReader(handle))
    return rows[:n] if n else rows


def parsed(serialized):
    example = tf.train.Example()
    example.ParseFromString(serialized)
    return example


def beam_examples(registered):
    """Every example the Beam pipeline wrote, with the label keys removed."""
    records = tf.data.TFRecordDataset(sorted(str(p) for p in registered.dataset.glob("*.tfrecord.gz")),
                                      compression_type="GZIP")
    examples = []
    for record in records:
        example = parsed(record.numpy())
        for key in LABEL_COLUMNS:
            if key in example.features.feature:
                del example.features.feature[key]
        examples.append(example.SerializeToString(deterministic=True))
    return sorted(examples)


def test_rows_become_the_examples_the_beam_pipeline_wrote(registered):
    from mtl_tf.data.spec import DatasetSpec

    encoder = ExampleEncoder(load_recipe(registered.recipe, check=False))
    inputs = list(encoder.read(registered.csv))
    ours = sorted(parsed(row.example).SerializeToString(deterministic=True) for row in inputs if row.ok)
    assert ours == beam_examples(registered)
    rejects = DatasetSpec.read(registered.dataset).rejects
    assert sorted(row.kind for row in inputs if not row.ok) == sorted(
        kind for kind, count in rejects.by_reason.items() for _ in range(count))
    assert rejects.count == 2


def jsonl_input(registered, path):
    """The first 12 CSV rows as JSON objects (some typed, one sequence as a list), then 2 bad rows."""
    rows = []
    for i, row in enumerate(csv_rows(registered, 12)):
        row = {k: v for k, v in row.items() if v != ""}
        if i % 3 == 0 and "amount" in row:
            row["amount"] = float(row["amount"])
        if i % 4 == 1:
            row["recent"] = [float(v) for v in row.get("recent", "").split("|") if v]
        rows.append(json.dumps(row))
    rows.insert(3, json.dumps({"amount": -1.0, "channel": "web", "score": 0.2}))
    rows.insert(7, "{not json")
    path.write_text("\n".join(rows) + "\n")
    return path


def features_by_hand(rows):
    """serve_features inputs built straight from the rows: NaN for missing numbers, '' for a
    missing category, a sequence left-padded with NaN to 3 events."""
    def number(value):
        return float(value) if value not in (None, "") else math.nan

    def events(value):
        values = value if isinstance(value, list) else [float(v) for v in (value or "").split("|") if v]
        values = values[-3:]
        return [math.nan] * (3 - len(values)) + values

    return {"amount": tf.constant([number(r.get("amount")) for r in rows], tf.float32),
            "channel": tf.constant([r.get("channel", "") for r in rows]),
            "score": tf.constant([number(r.get("score")) for r in rows], tf.float32),
            "recent": tf.constant([events(r.get("recent")) for r in rows], tf.float32)}


def registered_signatures(registered, version):
    source = registered.client().get_model_version(NAME, str(version)).source
    return tf.saved_model.load(source)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_predict_answers_each_row_and_sets_bad_rows_aside(registered, tmp_path):
    registered.set_aliases(champion=2)
    rows_path = jsonl_input(registered, tmp_path / "rows.jsonl")
    out = tmp_path / "out.jsonl"
    result = invoke("predict", "--model-uri", f"models:/{NAME}@champion", "--input", rows_path, "--output", out,
                    "--tracking-uri", registered.uri)
    assert result.exit_code == 0, result.output
    assert "rows 14 = answered 12 + rejected 2 (below_min 1, malformed_json 1)" in result.output
    answers = read_jsonl(out)
    assert len(answers) == 14
    assert answers[3] == {"row": 3, "error": "value below min in 'amount': -1 < 0", "kind": "below_min"}
    assert answers[7]["row"] == 7 and answers[7]["kind"] == "malformed_json"
    good = [a for i, a in enumerate(answers) if i not in (3, 7)]
    assert all(sorted(a) == sorted(TASKS) for a in good)

    inputs = [json.loads(line) for i, line in enumerate(rows_path.read_text().splitlines()) if i not in (3, 7)]
    expected = registered_signatures(registered, 2).signatures["serve_features"](**features_by_hand(inputs))
    for task in TASKS:
        np.testing.assert_allclose([a[task] for a in good], expected[task].numpy(), rtol=1e-6)


def test_predict_reads_the_recipes_csv_layout_and_one_tasks_signature(registered, tmp_path):
    registered.set_aliases(champion=1)
    out = tmp_path / "out.jsonl"
    result = invoke("predict", "--model-uri", f"{NAME}/1", "--input", registered.csv, "--task", "churn",
                    "--output", out, "--tracking-uri", registered.uri)
    assert result.exit_code == 0, result.output
    answers = read_jsonl(out)
    rows = csv_rows(registered)
    assert len(answers) == len(rows)
    assert [a["kind"] for a in answers if "error" in a] == ["below_min", "unparsable_number"]
    good = [row for row, a in zip(rows, answers) if "error" not in a]
    expected = registered_signatures(registered, 1).signatures["serve_features"](**features_by_hand(good))
    np.testing.assert_allclose([a["churn"] for a in answers if "error" not in a], expected["churn"].numpy(),
                               rtol=1e-6)
    assert all(list(a) == ["churn"] for a in answers if "error" not in a)


@pytest.fixture
def deployed(registered, tmp_path):
    """Versions 1 (stable) and 2 (canary) deployed and finalized; a ServedModels over them."""
    root = tmp_path / "deploy"
    registered.set_aliases(champion=1, challenger=2)
    for args in ([f"{NAME}@champion"], [f"{NAME}@challenger"]):
        assert invoke("models", "deploy", *args, "--to", root, "--tracking-uri", registered.uri).exit_code == 0
    assert invoke("models", "deploy", "--to", root, "--finalize").exit_code == 0
    return ServedModels(root / "models.config", mounts={"/models": root})


def test_the_rest_and_grpc_requests_decode_to_the_local_answers(registered, deployed):
    encoder = ExampleEncoder(load_recipe(registered.recipe, check=False))
    examples = [row.example for row in encoder.read(registered.csv) if row.ok][:16]
    function = registered_signatures(registered, 1).signatures["serving_default"]
    local = {k: v.numpy() for k, v in function(examples=tf.constant(examples)).items()}

    # REST, decoded as TF Serving decodes it: JSON, b64 -> bytes, the signature's examples input.
    body = json.loads(json.dumps(rest_request(examples, "serving_default")))
    assert body["signature_name"] == "serving_default" and list(body["instances"][0]) == ["examples"]
    decoded = [base64.b64decode(instance["examples"]["b64"]) for instance in body["instances"]]
    assert decoded == examples
    rest = function(examples=tf.constant(decoded))

    # gRPC: the PredictRequest on the wire, its TensorProto read back with tf.make_ndarray.
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest.FromString(
        grpc_request(examples, NAME, "serving_default", label="stable").SerializeToString())
    assert (request.model_spec.name, request.model_spec.version_label) == (NAME, "stable")
    tensor = tf.make_ndarray(request.inputs["examples"])
    assert tensor.shape == (16,) and list(tensor) == examples
    grpc_answer = function(examples=tf.constant(tensor))
    for task in TASKS:
        np.testing.assert_array_equal(rest[task].numpy(), local[task])
        np.testing.assert_array_equal(grpc_answer[task].numpy(), local[task])


def test_predict_over_rest_and_grpc_answers_as_the_local_model(registered, deployed, tmp_path):
    rows_path = jsonl_input(registered, tmp_path / "rows.jsonl")
    local = tmp_path / "local.jsonl"
    assert invoke("predict", "--model-uri", f"{NAME}@challenger", "--input", rows_path, "--output", local,
                  "--tracking-uri", registered.uri).exit_code == 0
    with RestServer(deployed) as rest, GrpcServer(deployed) as grpc_server:
        for protocol, server in (("rest", rest), ("grpc", grpc_server)):
            out = tmp_path / f"{protocol}.jsonl"
            result = invoke("predict", "--model-uri", f"{NAME}@challenger", "--input", rows_path, "--output", out,
                            "--server", server.address, "--protocol", protocol, "--tracking-uri", registered.uri)
            assert result.exit_code == 0, result.output
            assert read_jsonl(out) == read_jsonl(local), protocol
        assert rest.requests[0]["path"] == f"/v1/models/{NAME}/labels/canary:predict"
        assert grpc_server.requests[0].model_spec.version_label == "canary"

        # One task over REST: TF Serving answers a single output unnamed; the client names it.
        one = tmp_path / "one.jsonl"
        result = invoke("predict", "--model-uri", f"{NAME}/2", "--input", rows_path, "--output", one, "--task", "fraud",
                        "--server", rest.address, "--tracking-uri", registered.uri)
        assert result.exit_code == 0, result.output
        assert rest.requests[-1]["path"] == f"/v1/models/{NAME}/versions/2:predict"
        assert [a.get("fraud", a.get("error")) for a in read_jsonl(one)] == \
            [a.get("fraud", a.get("error")) for a in read_jsonl(local)]


def test_server_problems_are_one_line(registered, deployed, tmp_path):
    rows_path = jsonl_input(registered, tmp_path / "rows.jsonl")

    def one_line(result, fragment):
        text = result.output
        errors = [line for line in text.splitlines() if line.startswith("Error:")]
        assert result.exit_code != 0 and "Traceback" not in text and len(errors) == 1, text
        assert fragment in errors[0], text

    with RestServer(deployed) as rest:
        one_line(invoke("predict", "--model-uri", f"{NAME}@champion", "--input", rows_path, "--server", rest.address,
                        "--label", "nightly", "--tracking-uri", registered.uri),
                 "answered 404: Unrecognized servable version label: nightly")
    one_line(invoke("predict", "--model-uri", f"{NAME}@champion", "--input", rows_path, "--server", "127.0.0.1:9",
                    "--tracking-uri", registered.uri), "cannot reach TF Serving at http://127.0.0.1:9")
    one_line(invoke("predict", "--model-uri", f"{NAME}@champion", "--input", tmp_path / "rows.parquet",
                    "--tracking-uri", registered.uri), "no input file")
    one_line(invoke("predict", "--model-uri", f"{NAME}@champion", "--input", tmp_path,
                    "--tracking-uri", registered.uri), "a folder of images is an input of image recipes")
    one_line(invoke("predict", "--model-uri", f"{NAME}@champion", "--input", rows_path, "--label", "stable",
                    "--tracking-uri", registered.uri), "apply with --server")
