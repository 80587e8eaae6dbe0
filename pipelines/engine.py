"""Running a pipeline on any Beam runner: the options, the run, and what a runner cannot do.

Every pipeline names its runner (``--runner=DirectRunner`` when the arguments name none):
Beam's bare default tries to download Prism first, which fails offline.

The Dask runner (``apache_beam.runners.dask.dask_runner.DaskRunner``, Beam 2.77) translates
Create, ParDo, GroupByKey and Flatten, and has two gaps the pipelines here work around
rather than use a different graph per runner:

- a ParDo's tagged outputs all reach every consumer of the ParDo, so no pipeline step has
  several outputs: a step emits ``(tag, value)`` pairs and :class:`pipelines.transforms.SplitTagged`
  splits them with one single-output ParDo per tag;
- what a DoFn emits in ``finish_bundle`` is dropped (the outputs are collected before it
  runs), so on Dask the file writer reports each part file as it writes it
  (:func:`emits_from_finish_bundle`).

It also opens a ``distributed.Client`` it never closes: :func:`run_pipeline` closes it.

The Flink and Spark runners start a Beam job server from a jar, downloaded from Maven
Central unless ``--flink_job_server_jar`` / ``--spark_job_server_jar`` names a local one; a
download that fails is one line naming the option (:func:`job_server_jar_error`).
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Sequence

DEFAULT_RUNNER = "DirectRunner"
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
# The option that names a local job-server jar, for the runners that start one from a jar.
JOB_SERVER_JAR_OPTIONS = {"FlinkRunner": "--flink_job_server_jar", "SparkRunner": "--spark_job_server_jar"}
_UNFETCHED_JAR = re.compile(r"Unable to fetch remote job server jar at (\S+?): ")


def named_runner(beam_args: Sequence[str]) -> list[str]:
    """``beam_args`` with ``--runner=DirectRunner`` added when they name no runner."""
    args = list(beam_args)
    if not any(arg == "--runner" or arg.startswith("--runner=") for arg in args):
        args.append(f"--runner={DEFAULT_RUNNER}")
    return args


def pipeline_options(beam_args: Sequence[str]) -> Any:
    """The ``PipelineOptions`` of ``beam_args``, the runner always named (see :func:`named_runner`)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(named_runner(beam_args))


def runner_name(options: Any) -> str:
    """The runner of ``options`` as a name (a class path for the Dask runner)."""
    from apache_beam.options.pipeline_options import StandardOptions

    runner = options.view_as(StandardOptions).runner or DEFAULT_RUNNER
    if not isinstance(runner, str):
        runner = f"{type(runner).__module__}.{type(runner).__name__}"
    return runner


def runs_on_dask(options: Any) -> bool:
    return runner_name(options).split(".")[-1] == "DaskRunner"


def emits_from_finish_bundle(options: Any) -> bool:
    """Whether the runner keeps what a DoFn emits in ``finish_bundle`` (all but Dask's)."""
    return not runs_on_dask(options)


def run_pipeline(options: Any, build: Callable[[Any], None]) -> None:
    """Builds a pipeline with ``build(pipeline)``, runs it to the end and releases what the
    runner opened (the Dask runner's client, and the local cluster it started when no
    ``--dask_client_address`` was given).

    Raises:
        ValueError: the runner could not download its job-server jar (see :func:`job_server_jar_error`).
        Whatever else the run raised; the pipeline's state is then not DONE.
    """
    import apache_beam as beam

    pipeline = beam.Pipeline(options=options)
    build(pipeline)
    try:
        result = pipeline.run()
    except RuntimeError as error:
        unfetched = job_server_jar_error(options, error)
        if unfetched is None:
            raise
        raise unfetched from error
    try:
        result.wait_until_finish()
    finally:
        _close_client(getattr(result, "client", None))


def job_server_jar_error(options: Any, error: Exception) -> ValueError | None:
    """One line for a job-server jar the runner could not download (offline, or a wrong URL),
    naming the option that takes a local copy; None for any other error."""
    match = _UNFETCHED_JAR.search(str(error))
    if match is None:
        return None
    runner = runner_name(options).split(".")[-1]
    jar = match.group(1)
    option = JOB_SERVER_JAR_OPTIONS.get(runner, "the runner's job-server jar option")
    return ValueError(f"{runner} could not download its Beam job-server jar ({jar}); put a copy on this machine and "
                      f"pass {option} /path/to/{os.path.basename(jar)}")


def _close_client(client: Any) -> None:
    if client is None or not hasattr(client, "close"):
        return
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:  # set only when the client started it: no address was given
        cluster.close()
