"""What command a container runs, checked by the real click parsers without running it.

A container of the mtl image without ``command`` runs the image's ENTRYPOINT ``mtl`` with
its ``args``; :func:`resolve_mtl` walks click's groups as ``mtl`` does and parses the last
command's options and arguments with ``make_context`` (which validates them but calls
nothing), in the container's environment (so options read from env vars are checked too).
``mtl cluster run-worker -- ARGS`` is followed into ARGS.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator, Mapping, Sequence

import click

# Variables Kubernetes sets itself in the pods that use them.
KUBERNETES_ENV = {"JOB_COMPLETION_INDEX": "0"}


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    before = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's variables; one set from a field or a secret gets a stand-in value."""
    values = dict(KUBERNETES_ENV)
    for item in container.get("env", []):
        values[item["name"]] = str(item.get("value", f"<{item['name'].lower()}>"))
    return values


def resolve(group: click.Group, args: Sequence[str], prog: str) -> tuple[list[str], click.Context]:
    """(the command path, the parsed context of the last command) for ``prog args``.

    Raises:
        click.UsageError: an unknown command, option or a bad argument, as the CLI would.
    """
    parent = click.Context(group, info_name=prog)
    command, rest, path = group, list(args), []
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(parent, rest)
        path.append(name)
        if isinstance(command, click.Group):
            parent = click.Context(command, info_name=name, parent=parent)
    return path, command.make_context(path[-1], rest, parent=parent)


def resolve_mtl(args: Sequence[str], env: Mapping[str, str] | None = None) -> list[list[str]]:
    """Every mtl command path ``mtl args`` runs (two for ``cluster run-worker -- ...``)."""
    from mtl_tf.cli.main import cli

    with environment(env or {}):
        path, context = resolve(cli, args, "mtl")
        paths = [path]
        if path == ["cluster", "run-worker"]:
            paths += resolve_mtl(context.params["command"], env)
        return paths


def resolve_mlflow(args: Sequence[str]) -> list[str]:
    """The mlflow command path ``mlflow args`` runs, its options checked by mlflow's own CLI."""
    from mlflow.cli import cli

    return resolve(cli, args, "mlflow")[0]
