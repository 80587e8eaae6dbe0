"""The Beam runners a scheduled or local job may name, and reading ``--runner`` from Beam arguments.

The bare default runner tries to download Prism before falling back, which fails offline,
so every job mtl generates or runs names its runner; DirectRunner when none is given.
"""

from __future__ import annotations

from typing import Sequence

from mtl_tf.errors import did_you_mean

DEFAULT_RUNNER = "DirectRunner"
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
RUNNERS = ("DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner", DASK_RUNNER)


def check_runner(runner: str) -> str:
    """``runner`` if it is one of :data:`RUNNERS`, else a ValueError listing them."""
    if runner in RUNNERS:
        return runner
    if runner.lower() in ("dask", "daskrunner"):
        hint = f" (Beam takes the Dask runner by its full name: {DASK_RUNNER})"
    else:
        hint = did_you_mean(runner, RUNNERS)
    raise ValueError(f"unknown Beam runner {runner!r}{hint}; allowed: {', '.join(RUNNERS)}")


def split_runner(beam_args: Sequence[str]) -> tuple[str | None, list[str]]:
    """(the ``--runner`` value or None, the other Beam arguments), for ``--runner X`` and ``--runner=X``.

    Raises:
        ValueError: ``--runner`` without a value, or given twice.
    """
    runner, rest, args = None, [], list(beam_args)
    i = 0
    while i < len(args):
        arg = args[i]
        value = None
        if arg == "--runner":
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ValueError("--runner needs a value, e.g. --runner=DirectRunner")
            value, i = args[i + 1], i + 1
        elif arg.startswith("--runner="):
            value = arg.split("=", 1)[1]
        if value is not None:
            if runner is not None:
                raise ValueError(f"--runner is given twice ({runner}, {value}); name one runner")
            runner = value
        else:
            rest.append(arg)
        i += 1
    return runner, rest


def with_runner(beam_args: Sequence[str], runner: str | None = None) -> list[str]:
    """Beam arguments that name their runner: ``--runner=R`` first (checked), the rest after.

    ``runner`` (an explicit option) and a ``--runner`` among ``beam_args`` must agree; with
    neither, :data:`DEFAULT_RUNNER`.
    """
    given, rest = split_runner(beam_args)
    if runner is not None and given is not None and runner != given:
        raise ValueError(f"two runners: --runner {runner} and --runner {given}; name one")
    return [f"--runner={check_runner(runner or given or DEFAULT_RUNNER)}", *rest]


def resolved_options(beam_args: Sequence[str]) -> dict:
    """The pipeline options Beam reads from ``beam_args`` (defaults left out), after importing
    the named runner so that its own options (Flink's, Spark's, Dask's) are known; options
    that nothing knows are kept as given, so a misspelt one shows."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.runner import create_runner

    runner, _ = split_runner(beam_args)
    if runner is not None:
        create_runner(runner)  # imports the runner's module, which registers its options
    return PipelineOptions(list(beam_args)).get_all_options(drop_default=True, retain_unknown_options=True)
