"""`mtl cluster tf-config` / `run-worker`: TF_CONFIG from an Indexed Job's pod index."""

import json
import os
import socket

import pytest
from click.testing import CliRunner

from mtl_tf.cli.main import cli
from tests.cli.test_cli import RECIPE, one_line_error

POD_ENV = {"MTL_WORKERS": "3", "JOB_COMPLETION_INDEX": "2", "MTL_JOB_NAME": "mtl-train-multiworker",
           "MTL_WORKER_SERVICE": "mtl-train-workers", "MTL_WORKER_PORT": "23456"}


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def test_tf_config_names_every_worker_by_its_pod_dns_name_and_this_pods_index():
    result = invoke("cluster", "tf-config", env=POD_ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "cluster": {"worker": [f"mtl-train-multiworker-{i}.mtl-train-workers:23456" for i in range(3)]},
        "task": {"type": "worker", "index": 2}}


def test_tensorflow_reads_the_tf_config_as_meant(monkeypatch):
    import tensorflow as tf

    monkeypatch.setenv("TF_CONFIG", invoke("cluster", "tf-config", env=POD_ENV).output.strip())
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    assert resolver.task_type == "worker" and resolver.task_id == 2
    assert resolver.cluster_spec().as_dict()["worker"][0] == "mtl-train-multiworker-0.mtl-train-workers:23456"


def test_the_job_name_defaults_to_the_pods_hostname_without_its_index(monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "nightly-train-1")
    env = {**POD_ENV, "JOB_COMPLETION_INDEX": "1", "MTL_JOB_NAME": ""}
    config = json.loads(invoke("cluster", "tf-config", env={k: v for k, v in env.items() if v}).output)
    assert config["cluster"]["worker"][1] == "nightly-train-1.mtl-train-workers:23456"


def test_an_index_outside_the_workers_is_one_line():
    result = invoke("cluster", "tf-config", env={**POD_ENV, "JOB_COMPLETION_INDEX": "3"})
    one_line_error(result, "the worker index must be in [0, 3) for 3 worker(s); received 3")


def test_run_worker_sets_tf_config_then_runs_the_mtl_command(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = invoke("cluster", "run-worker", "--", "recipes", "validate", RECIPE, env=POD_ENV)
    assert result.exit_code == 0, result.output
    assert "worker 2 of 3: TF_CONFIG=" in result.output and f"{RECIPE}: ok (3 tasks" in result.output
    assert json.loads(os.environ["TF_CONFIG"])["task"] == {"type": "worker", "index": 2}
    monkeypatch.delenv("TF_CONFIG")


def test_run_worker_passes_the_inner_commands_errors_on(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "")
    result = invoke("cluster", "run-worker", "--", "recipes", "validate", RECIPE, "--set", "training.epochz=1",
                    env=POD_ENV)
    one_line_error(result, "training.epochz", "did you mean 'epochs'")


@pytest.mark.parametrize("missing", ["MTL_WORKERS", "MTL_WORKER_SERVICE"])
def test_a_missing_worker_variable_is_named(missing):
    env = {k: v for k, v in POD_ENV.items() if k != missing}
    result = CliRunner().invoke(cli, ["cluster", "tf-config"], env={**env, missing: None})
    assert result.exit_code == 2 and missing in result.output and "Traceback" not in result.output
