"""`mtl data preprocess` and `mtl run` name their Beam runner (DirectRunner unless told) and pass
every other Beam option through to the pipeline options, for Dataflow, Flink, Spark and Dask."""

import json

import pytest

from pipelines.engine import named_runner, pipeline_options, runner_name
from tests.cli.test_cli import RECIPE, invoke, one_line_error, small_recipe, workdir  # noqa: F401

DATAFLOW = ["--runner=DataflowRunner", "--project=acme", "--region=europe-west1",
            "--temp_location=gs://acme-beam/tmp", "--staging_location=gs://acme-beam/staging",
            "--setup_file=./setup.py", "--sdk_container_image=europe-docker.pkg.dev/acme/mtl/mtl-tf:0.1.0",
            "--max_num_workers=20"]
FLINK = ["--runner=FlinkRunner", "--flink_master=flink-jobmanager:8081",
         "--flink_job_server_jar=/opt/jars/beam-runners-flink-1.18-job-server-2.77.0.jar",
         "--environment_type=DOCKER", "--environment_config=ghcr.io/your-org/mtl-tf:0.1.0", "--parallelism=8"]
SPARK = ["--runner", "SparkRunner", "--spark_master_url=spark://spark-master:7077",
         "--spark_job_server_jar=/opt/jars/beam-runners-spark-3-job-server-2.77.0.jar",
         "--environment_type=PROCESS", '--environment_config={"command": "/opt/apache/beam/boot"}']
DASK = ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner", "--dask_client_address=tcp://dask-scheduler:8786",
        "--dask_npartitions=16"]


def _shown(*args):
    result = invoke("data", "preprocess", RECIPE, "--show-options", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):])


@pytest.mark.parametrize("args, expected", [
    (DATAFLOW, {"runner": "DataflowRunner", "project": "acme", "region": "europe-west1",
                "temp_location": "gs://acme-beam/tmp", "staging_location": "gs://acme-beam/staging",
                "setup_file": "./setup.py", "sdk_container_image": "europe-docker.pkg.dev/acme/mtl/mtl-tf:0.1.0",
                "max_num_workers": 20}),
    (FLINK, {"runner": "FlinkRunner", "flink_master": "flink-jobmanager:8081",
             "flink_job_server_jar": "/opt/jars/beam-runners-flink-1.18-job-server-2.77.0.jar",
             "environment_type": "DOCKER", "environment_config": "ghcr.io/your-org/mtl-tf:0.1.0", "parallelism": 8}),
    (SPARK, {"runner": "SparkRunner", "spark_master_url": "spark://spark-master:7077",
             "spark_job_server_jar": "/opt/jars/beam-runners-spark-3-job-server-2.77.0.jar",
             "environment_type": "PROCESS", "environment_config": '{"command": "/opt/apache/beam/boot"}'}),
    (DASK, {"runner": "apache_beam.runners.dask.dask_runner.DaskRunner", "address": "tcp://dask-scheduler:8786",
            "npartitions": 16}),
], ids=["dataflow", "flink", "spark", "dask"])
def test_runner_options_reach_the_pipeline_options(args, expected):
    assert _shown(*args) == expected


def test_the_runner_is_named_when_none_is_given():
    assert _shown() == {"runner": "DirectRunner"}
    assert named_runner(["--direct_num_workers=2"]) == ["--direct_num_workers=2", "--runner=DirectRunner"]
    assert runner_name(pipeline_options([])) == "DirectRunner"
    assert named_runner(["--runner", "FlinkRunner"]) == ["--runner", "FlinkRunner"]


def test_an_option_nothing_knows_is_shown_as_given():
    assert _shown("--runner=FlinkRunner", "--flink_mastr=x")["flink_mastr"] == "x"


def test_preprocess_says_which_runner_it_uses(workdir):  # noqa: F811
    assert invoke("data", "synth", "fraud_signals", "--rows", 60, "--out", "data/fraud_signals/raw").exit_code == 0
    result = invoke("data", "preprocess", small_recipe(workdir))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("runner: DirectRunner\n") and "rows in 60 = written" in result.output


@pytest.mark.parametrize("command", [("data", "preprocess"), ("run",), ("baseline",)])
def test_a_misspelt_runner_is_one_line_before_anything_runs(command):
    one_line_error(invoke(*command, RECIPE, "--runner=DataflowRuner"),
                   "unknown Beam runner 'DataflowRuner' (did you mean 'DataflowRunner'?)")


@pytest.mark.parametrize("where", ["--out", "data.output_dir"])
def test_a_url_output_folder_is_one_line_and_writes_nothing(workdir, where):  # noqa: F811
    """The driver writes the output folder with local file calls: a URL used to become a local
    folder named "gs:" with the whole dataset in it, while the command reported success."""
    assert invoke("data", "synth", "fraud_signals", "--rows", 60, "--out", "data/fraud_signals/raw").exit_code == 0
    target = ("--out", "gs://acme-data/fraud") if where == "--out" else ("--set", "data.output_dir=gs://acme-data/fraud")
    one_line_error(invoke("data", "preprocess", small_recipe(workdir), *target),
                   "output folder 'gs://acme-data/fraud' is a URL", "sources (data.source.path) may be URLs")
    assert not (workdir / "gs:").exists()


def test_a_job_server_jar_that_cannot_be_downloaded_is_one_line_naming_the_option(workdir):  # noqa: F811
    """The Spark (and Flink) runner fetches its job-server jar before the job starts; offline,
    or from a wrong URL, that was a RuntimeError traceback."""
    import socket

    assert invoke("data", "synth", "fraud_signals", "--rows", 60, "--out", "data/fraud_signals/raw").exit_code == 0
    with socket.socket() as probe:  # a port nothing listens on: the download fails at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    jar = f"http://127.0.0.1:{port}/jars/beam-runners-spark-3-job-server-2.77.0.jar"
    result = invoke("data", "preprocess", small_recipe(workdir), "--runner", "SparkRunner",
                    "--spark_master_url=spark://127.0.0.1:7077", f"--spark_job_server_jar={jar}")
    one_line_error(result, f"SparkRunner could not download its Beam job-server jar ({jar})",
                   "pass --spark_job_server_jar /path/to/beam-runners-spark-3-job-server-2.77.0.jar")
