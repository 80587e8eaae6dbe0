"""`mtl pipeline schedule` writes a CronJob overlay of k8s/base/data that validates; `mtl
pipeline run` runs the same command line here."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mtl_tf.cli.main import cli
from mtl_tf.cluster.cron import check_cron
from tests.cli.test_cli import RECIPE, one_line_error
from tests.k8s.commands import resolve_mtl
from tests.k8s.manifests import REPO, pod_problems, render, schema_problems
from tests.serving.registered_model import HEADER, raw_rows, recipe_mapping

BASE = REPO / "k8s" / "base" / "data"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def cronjob(objects):
    (job,) = [o for o in objects if o["kind"] == "CronJob"]
    return job


def container(job):
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def test_schedule_writes_an_overlay_of_the_data_base_that_validates(tmp_path):
    result = invoke("pipeline", "schedule", RECIPE, "--cron", "30 1 * * MON-FRI", "--runner", "DataflowRunner",
                    "--train", "--time-zone", "Europe/Paris", "--base", BASE, "--out", tmp_path / "generated",
                    "--project=acme", "--region=europe-west1", "--set", "training.epochs=3")
    assert result.exit_code == 0, result.output
    objects = render(tmp_path / "generated" / "fraud-signals")
    assert schema_problems(objects) == ([], []) and pod_problems(objects) == []
    job = cronjob(objects)
    assert job["metadata"]["name"] == "mtl-pipeline-fraud-signals"
    assert job["metadata"]["labels"]["mtl.pipeline/recipe"] == "fraud_signals"
    assert (job["spec"]["schedule"], job["spec"]["timeZone"]) == ("30 1 * * MON-FRI", "Europe/Paris")
    assert job["spec"]["suspend"] is False and cronjob(render(BASE))["spec"]["suspend"] is True
    args = container(job)["args"]
    assert args == ["pipeline", "run", "/opt/mtl/recipes/fraud_signals.yaml", "--set", "training.epochs=3", "--train",
                    "--runner=DataflowRunner", "--project=acme", "--region=europe-west1"]
    assert resolve_mtl(args) == [["pipeline", "run"]]
    # What the base gives every pipeline pod is still there.
    base = cronjob(render(BASE))
    assert container(job)["securityContext"] == container(base)["securityContext"]
    for key in ("image", "resources", "volumeMounts", "env"):
        assert container(job)[key] == container(base)[key], key
    assert (f"the same job now, here: mtl pipeline run {RECIPE} --set training.epochs=3 --train "
            "--runner=DataflowRunner --project=acme --region=europe-west1") in result.output


def test_schedule_to_stdout_prints_the_rendered_cronjob_with_the_runner_named(tmp_path, monkeypatch):
    shutil.copytree(REPO / "k8s", tmp_path / "k8s")
    monkeypatch.chdir(tmp_path)
    result = invoke("pipeline", "schedule", RECIPE, "--cron", "@daily", "--out", "-")
    assert result.exit_code == 0, result.output
    objects = [o for o in yaml.safe_load_all(result.output) if o]
    assert schema_problems(objects) == ([], [])
    job = cronjob(objects)
    assert job["spec"]["schedule"] == "@daily"
    assert container(job)["args"] == ["pipeline", "run", "/opt/mtl/recipes/fraud_signals.yaml", "--runner=DirectRunner"]


def test_schedule_writes_to_k8s_generated_by_default(tmp_path, monkeypatch):
    shutil.copytree(REPO / "k8s", tmp_path / "k8s", ignore=shutil.ignore_patterns("generated"))
    monkeypatch.chdir(tmp_path)
    result = invoke("pipeline", "schedule", RECIPE, "--cron", "0 2 * * *",
                    "--runner", "apache_beam.runners.dask.dask_runner.DaskRunner")
    assert result.exit_code == 0, result.output
    kustomization = yaml.safe_load((tmp_path / "k8s/generated/fraud-signals/kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../base/data"]
    assert "--runner=apache_beam.runners.dask.dask_runner.DaskRunner" in container(
        cronjob(render(tmp_path / "k8s/generated/fraud-signals")))["args"]


@pytest.mark.parametrize("expression, fragment", [
    ("0 2 * *", "has 4 field(s); a schedule has 5"),
    ("0 2 * * * *", "has 6 field(s)"),
    ("60 * * * *", "minute '60': '60' is not allowed; allowed: 0-59"),
    ("* 24 * * *", "hour '24'"),
    ("* * 0 * *", "day of month '0'"),
    ("* * * 13 *", "month '13': '13' is not allowed; allowed: 1-12 or JAN-DEC"),
    ("* * * * 8", "day of week '8'"),
    ("* * * * MON-FOO", "'FOO' is not allowed"),
    ("5-1 * * * *", "the range runs backwards"),
    ("*/0 * * * *", "the step after '/' must be a whole number >= 1"),
    ("? * * * *", "minute '?'"),
    ("@fortnightly", "unknown macro"),
    ("TZ=UTC 0 2 * * *", "a time zone goes in --time-zone"),
])
def test_a_bad_cron_expression_is_one_line(expression, fragment):
    one_line_error(invoke("pipeline", "schedule", RECIPE, "--cron", expression, "--base", BASE), fragment)


@pytest.mark.parametrize("expression, written", [
    ("*/15 9-17 * * MON-FRI", "*/15 9-17 * * MON-FRI"), ("0 0 1 jan,Jul ?", "0 0 1 jan,Jul ?"),
    ("0 2 * * 7", "0 2 * * 7"), ("@Weekly", "@weekly"), ("5,35 */2 1-10/3 * 0-6", "5,35 */2 1-10/3 * 0-6"),
    ("0  2 * * *", "0 2 * * *"),
])
def test_valid_cron_expressions_are_kept_with_single_spaces(expression, written):
    assert check_cron(expression) == written


def test_an_unknown_runner_or_time_zone_is_one_line():
    one_line_error(invoke("pipeline", "schedule", RECIPE, "--cron", "@daily", "--runner", "DirectRuner",
                          "--base", BASE), "unknown Beam runner 'DirectRuner' (did you mean 'DirectRunner'?)")
    one_line_error(invoke("pipeline", "schedule", RECIPE, "--cron", "@daily", "--runner", "DaskRunner",
                          "--base", BASE), "apache_beam.runners.dask.dask_runner.DaskRunner")
    one_line_error(invoke("pipeline", "schedule", RECIPE, "--cron", "@daily", "--runner=PrismRunner",
                          "--base", BASE), "unknown Beam runner 'PrismRunner'")
    one_line_error(invoke("pipeline", "schedule", RECIPE, "--cron", "@daily", "--time-zone", "Mars/Olympus",
                          "--base", BASE), "unknown time zone 'Mars/Olympus'")
    one_line_error(invoke("pipeline", "run", RECIPE, "--runner", "Flink"), "unknown Beam runner 'Flink'")


def test_schedule_outside_the_repository_says_where_the_base_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("pipeline", "schedule", RECIPE, "--cron", "@daily"), "no kustomize base at 'k8s/base/data'")


@pytest.fixture
def tiny_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/rows.csv").write_text(",".join(HEADER) + "\n" + "".join(",".join(r) + "\n" for r in raw_rows(120)))
    recipe = tmp_path / "tiny.yaml"
    raw = recipe_mapping()
    raw["training"]["epochs"] = 1
    recipe.write_text(yaml.safe_dump(raw))
    return recipe


def test_pipeline_run_preprocesses_with_the_runner_named(tiny_workdir):
    result = invoke("pipeline", "run", tiny_workdir, "--direct_num_workers=1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("runner: DirectRunner\n")
    assert "rows in 122 = written 120" in result.output and "rejected 2" in result.output
    spec = json.loads(Path("artifacts/tiny_serve/dataset/dataset.json").read_text())
    assert spec["rows_in"] == 122 and not Path("mlflow.db").exists()


@pytest.mark.slow
@pytest.mark.integration
def test_the_scheduled_command_line_run_here_trains_and_registers(tiny_workdir, tmp_path):
    """The CronJob's own args, with the recipe path of this machine: preprocess, train, register (~30 s)."""
    assert invoke("pipeline", "schedule", tiny_workdir, "--cron", "@hourly", "--train", "--base", BASE,
                  "--out", tmp_path / "overlays").exit_code == 0
    args = container(cronjob(render(tmp_path / "overlays" / "tiny-serve")))["args"]
    assert args[:3] == ["pipeline", "run", "/opt/mtl/recipes/tiny.yaml"]
    result = invoke(*args[:2], tiny_workdir, *args[3:], "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "-q")
    assert result.exit_code == 0, result.output
    assert "runner: DirectRunner" in result.output and "registered: tiny_serve version 1" in result.output
