"""MLflow as a team runs it: `mlflow server` over HTTP, backed by PostgreSQL, artifacts proxied
(tests/conftest.py starts both on loopback). Train -> register -> promote -> deploy; two
processes racing to promote; a tracking server killed and started again during real runs."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mtl_tf.cli.main import cli
from tests.serving.registered_model import HEADER, NAME, raw_rows, recipe_mapping

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
PRIMARY = {"fraud": ("auc", True), "churn": ("auc", True)}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _sql(postgres, query):
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=postgres.port, user="mtl", password="mtl-test-password",
                                  dbname="mlflow")
    with connection, connection.cursor() as cursor:
        cursor.execute(query)
        rows = cursor.fetchall()
    connection.close()
    return rows


def _write_recipe(root, **training):
    raw = recipe_mapping()
    raw["training"].update(training)
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def served(tracking_server, tmp_path_factory):
    """`mtl run` of the tiny recipe against the server: preprocess, train, export, register (version 1)."""
    root = tmp_path_factory.mktemp("served")
    (root / "raw").mkdir()
    (root / "raw/rows.csv").write_text(",".join(HEADER) + "\n" + "".join(",".join(r) + "\n" for r in raw_rows(120)))
    recipe = _write_recipe(root, epochs=1)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = invoke("run", recipe, "--tracking-uri", tracking_server.uri, "-q")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert f"registered: {NAME} version 1" in result.output
    run_id = result.output.split("mlflow run: ")[1].split()[0]
    return {"root": root, "recipe": recipe, "run_id": run_id, "output": result.output,
            "export": sorted((root / f"artifacts/{NAME}/export").iterdir())[-1]}


def test_train_register_promote_and_deploy_over_http_on_postgresql(served, tracking_server, postgres, tmp_path):
    uri = tracking_server.uri
    run = _client(uri).get_run(served["run_id"])
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert {a.path for a in _client(uri).list_artifacts(served["run_id"])} >= {"export", "report", "recipe", "data"}
    promoted = invoke("models", "promote", NAME, 1, "--alias", "champion", "--tracking-uri", uri)
    assert promoted.exit_code == 0, promoted.output
    deployed = invoke("models", "deploy", f"{NAME}@champion", "--to", tmp_path / "deploy", "--tracking-uri", uri)
    assert deployed.exit_code == 0, deployed.output
    version_dir = tmp_path / "deploy" / NAME / "1"
    assert (version_dir / "saved_model.pb").is_file() and (version_dir / "variables").is_dir()
    import tensorflow as tf

    assert "serving_default" in tf.saved_model.load(str(version_dir)).signatures
    # What the server wrote, read from PostgreSQL itself.
    assert _sql(postgres, f"SELECT status FROM runs WHERE run_uuid = '{served['run_id']}'") == [("FINISHED",)]
    assert _sql(postgres, f"SELECT alias, version FROM registered_model_aliases WHERE name = '{NAME}'") == \
        [("champion", 1)]
    assert _sql(postgres, f"SELECT count(*) FROM model_versions WHERE name = '{NAME}'") == [(1,)]


@pytest.mark.timeout(600)
def test_two_processes_racing_for_one_alias_leave_one_winner_per_round_and_a_consistent_trail(
        served, tracking_server, tmp_path):
    from mtl_tf.tracking import promote, register_export
    from mtl_tf.tracking.promotion import audit_trail

    uri, model, rounds = tracking_server.uri, "race", 8
    metrics = {"fraud/auc": 0.8, "churn/auc": 0.7}
    versions = [register_export(served["run_id"], served["export"], model, metrics, PRIMARY, tracking_uri=uri)
                for _ in range(1 + 2 * rounds)]
    promote(model, versions[0], tracking_uri=uri)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("MLFLOW_TRACKING_URI", None)
    workers = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("race_worker.py")), uri, model, me,
                                 str(tmp_path), ",".join(str(v) for v in versions[1 + i::2])],
                                env=env, stderr=subprocess.PIPE, text=True) for i, me in enumerate("ab")]
    for worker in workers:
        _, err = worker.communicate(timeout=500)
        assert worker.returncode == 0, err[-3000:]

    client = _client(uri)
    winners = []
    for round_ in range(rounds):
        results = [json.loads((tmp_path / f"result-{round_}-{me}.json").read_text()) for me in "ab"]
        won = [r for r in results if r["won"]]
        lost = [r for r in results if not r["won"]]
        assert len(won) == 1 and len(lost) == 1, (round_, results)
        assert "nothing was changed" in lost[0]["why"]
        assert won[0]["previous"] == won[0]["held"] == (winners[-1] if winners else versions[0])
        winners.append(won[0]["version"])
    assert int(client.get_model_version_by_alias(model, "champion").version) == winners[-1]
    trail = audit_trail(client, model, "champion")
    assert [entry["version"] for entry in trail] == [versions[0], *winners]
    assert [entry["previous"] for entry in trail] == [None, versions[0], *winners[:-1]]
    for entry in trail:
        tags = client.get_model_version(model, str(entry["version"])).tags
        assert tags["promotion.champion.previous"] == ("none" if entry["previous"] is None else str(entry["previous"]))
    losers = {r for r in versions[1:] if r not in winners}
    for version in losers:
        assert not any(k.startswith("promotion.champion.") for k in client.get_model_version(model, str(version)).tags)
    assert client.search_registered_models("name LIKE 'mtl-lock.%'") == []


def _loss_steps(client, run_id, key="loss"):
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def _tiny_trainer(epochs):
    import keras
    import numpy as np
    import tensorflow as tf

    from mtl_tf.tasks import BinaryTask
    from mtl_tf.training import Trainer

    tasks = [BinaryTask("a")]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(({"x": x}, {"a": (x[:, 0] > 0).astype("float32")},
                                               {"a": np.ones(64, "float32")})).batch(16)

    def model():
        inputs = {"x": keras.Input(shape=(2,), name="x")}
        return keras.Model(inputs, {"a": tasks[0].head(keras.layers.Dense(4, name="trunk")(inputs["x"]))})

    return Trainer(model, tasks, "adam", epochs=epochs, verbose=0), data


def test_a_server_killed_during_training_and_started_again_gets_every_entry_once(tracking_server, tmp_path):
    from mtl_tf.tracking import TrackedRun

    trainer, data = _tiny_trainer(epochs=4)
    lines = []

    def on_epoch_end(epoch, logs):
        run.log_epoch(epoch, logs)
        if epoch == 1:
            tracking_server.kill()
        if epoch == 3:
            (tmp_path / "curve.txt").write_text("kept while the server was down")
            run.log_artifact(tmp_path / "curve.txt", "report")
            tracking_server.start()

    try:
        with TrackedRun("outage", tracking_uri=tracking_server.uri, journal_dir=tmp_path / "tracking",
                        retry_interval=0.5, echo=lines.append) as run:
            run.log_params({"epochs": 4})
            trainer.fit(data, on_epoch_end=on_epoch_end)
    finally:
        if not tracking_server.healthy():
            tracking_server.start()
    down = [line for line in lines if "does not answer" in line]
    assert len(down) == 1 and down[0].startswith(f"warning: MLflow at {tracking_server.uri} does not answer (")
    assert any(line.startswith(f"MLflow at {tracking_server.uri} answers again: sent the ") for line in lines)
    assert len(lines) == 2 and run.pending == 0
    client = _client(tracking_server.uri)
    stored = client.get_run(run.run_id)
    assert stored.info.status == "FINISHED" and stored.data.params == {"epochs": "4"}
    assert _loss_steps(client, run.run_id) == [1, 2, 3, 4]
    assert [a.path for a in client.list_artifacts(run.run_id, "report")] == ["report/curve.txt"]


@pytest.mark.timeout(600)
def test_a_run_whose_server_dies_finishes_and_mtl_tracking_sync_sends_it_once(served, tracking_server, tmp_path):
    """`mtl run` in its own process; the server is killed once the run's first entries are in and
    stays down until the run has ended (training, export, the registration waiting)."""
    out = tmp_path / "outage"
    recipe = _write_recipe(tmp_path, epochs=3)
    env = dict(os.environ, PYTHONPATH=str(REPO), MTL_TRACKING_RETRY_INTERVAL="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [str(Path(sys.executable).with_name("mtl")), "run", str(recipe), "--skip-preprocess", "-q",
               "--tracking-uri", tracking_server.uri, "--set", f"output_dir={out}",
               "--set", f"data.output_dir={served['root'] / 'artifacts' / NAME / 'dataset'}"]
    log = tmp_path / "run.log"
    try:
        with open(log, "w") as handle:
            process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=handle, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 300
            while not list(out.glob("tracking/*/sent.jsonl")):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
            tracking_server.kill()
            assert process.wait(timeout=400) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
        tracking_server.start()
    output = log.read_text()
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if "does not answer" in line]) == 1, output
    assert len([line for line in output.splitlines() if line.startswith("warning:")]) == 2, output
    assert "tracking entries of run" in output and "are not sent yet" in output
    assert f"registration of {NAME}: waits in {out / 'tracking'}" in output
    assert f"mtl tracking sync {out}" in output

    synced = invoke("tracking", "sync", out)
    assert synced.exit_code == 0, synced.output
    run_id = re.search(r"^run (\w+) \(", synced.output, re.MULTILINE).group(1)
    assert "sent " in synced.output and "registered version 2" in synced.output
    client = _client(tracking_server.uri)
    stored = client.get_run(run_id)
    assert stored.info.status == "FINISHED"
    assert _loss_steps(client, run_id) == [1, 2, 3]
    assert {a.path for a in client.list_artifacts(run_id)} >= {"export", "report", "recipe", "data"}
    versions = [v for v in client.search_model_versions(f"name = '{NAME}'") if v.run_id == run_id]
    assert [int(v.version) for v in versions] == [2]
    params = len(stored.data.params)

    again = invoke("tracking", "sync", out)
    assert again.exit_code == 0 and "nothing to send" in again.output, again.output
    assert _loss_steps(client, run_id) == [1, 2, 3] and len(client.get_run(run_id).data.params) == params
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 2
