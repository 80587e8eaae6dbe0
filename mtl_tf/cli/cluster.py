"""`mtl cluster`: helpers for pods of a multi-worker training Job."""

from __future__ import annotations

import os
import socket

import click

worker_options = [
    click.option("--workers", type=int, envvar="MTL_WORKERS", required=True, show_envvar=True,
                 help="Workers in the job (the Indexed Job's completions)."),
    click.option("--index", type=int, envvar="JOB_COMPLETION_INDEX", required=True, show_envvar=True,
                 help="This pod's worker index; Kubernetes sets JOB_COMPLETION_INDEX in Indexed Jobs."),
    click.option("--job-name", envvar="MTL_JOB_NAME", default=None, show_envvar=True,
                 help="The Job's name; default the pod's hostname without its '-<index>'."),
    click.option("--service", envvar="MTL_WORKER_SERVICE", required=True, show_envvar=True,
                 help="The headless Service the pods' subdomain names."),
    click.option("--port", type=int, envvar="MTL_WORKER_PORT", default=12345, show_default=True, show_envvar=True,
                 help="The port every worker listens on."),
]


def with_worker_options(function):
    for option in reversed(worker_options):
        function = option(function)
    return function


@click.group()
def cluster() -> None:
    """Helpers for pods of a training Job on Kubernetes."""


def _config(workers: int, index: int, job_name: str | None, service: str, port: int) -> str:
    from mtl_tf.cluster.tf_config import dumps, job_name_from_hostname, tf_config

    name = job_name or job_name_from_hostname(socket.gethostname(), index)
    return dumps(tf_config(workers, index, name, service, port))


@cluster.command("tf-config")
@with_worker_options
def tf_config_command(workers: int, index: int, job_name: str | None, service: str, port: int) -> None:
    """Print this pod's TF_CONFIG for MultiWorkerMirroredStrategy (worker 0 is the chief)."""
    click.echo(_config(workers, index, job_name, service, port))


@cluster.command("run-worker", context_settings={"ignore_unknown_options": True})
@with_worker_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def run_worker(workers: int, index: int, job_name: str | None, service: str, port: int,
               command: tuple[str, ...]) -> None:
    """Set TF_CONFIG from the pod index, then run the mtl COMMAND in this process.

    \b
    mtl cluster run-worker -- run recipes/fraud_signals.yaml --set training.distribution.strategy=multi_worker
    """
    from mtl_tf.cli.main import cli as root

    os.environ["TF_CONFIG"] = _config(workers, index, job_name, service, port)
    click.echo(f"worker {index} of {workers}: TF_CONFIG={os.environ['TF_CONFIG']}")
    root.main(args=list(command), prog_name="mtl", standalone_mode=False)
