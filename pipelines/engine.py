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
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

DEFAULT_RUNNER = "DirectRunner"
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


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
        Whatever the run raised; the pipeline's state is then not DONE.
    """
    import apache_beam as beam

    pipeline = beam.Pipeline(options=options)
    build(pipeline)
    result = pipeline.run()
    try:
        result.wait_until_finish()
    finally:
        _close_client(getattr(result, "client", None))


def _close_client(client: Any) -> None:
    if client is None or not hasattr(client, "close"):
        return
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:  # set only when the client started it: no address was given
        cluster.close()
