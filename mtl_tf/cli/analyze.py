"""`mtl analyze`: task relationships recorded by a run (inter-task affinity, task grouping)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from mtl_tf.cli.options import tracking_uri_option

AFFINITY_ARTIFACT = "analysis/affinity.json"


@click.group()
def analyze() -> None:
    """Inspect task relationships measured during training."""


@analyze.command()
@click.argument("run_id")
@tracking_uri_option
@click.option("--groups", "k", type=click.IntRange(min=1), default=2, show_default=True,
              help="Recommend a partition of the tasks into this many groups.")
@click.option("--epoch", type=click.IntRange(min=1), default=None,
              help="Use one epoch's matrix; default the mean over every measured epoch.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Heatmap PNG; default affinity_<run id>.png in the working directory.")
def affinity(run_id: str, tracking_uri: str | None, k: int, epoch: int | None, out_path: str | None) -> None:
    """Print the inter-task affinity of RUN_ID, save a heatmap and recommend task groups.

    Row i, column j is how much a step on task i's gradient lowered task j's loss (Fifty et
    al. 2021): positive helps, negative hurts. The grouping maximises the affinity each task
    receives from the other tasks of its group.
    """
    from mtl_tf.analysis.grouping import recommend_groups
    from mtl_tf.analysis.plots import plot_matrix
    from mtl_tf.analysis.records import select_matrix

    record = _read_artifact(run_id, tracking_uri, AFFINITY_ARTIFACT)
    tasks = record["tasks"]
    matrix, which = select_matrix(record, epoch)
    if k > len(tasks):
        raise click.UsageError(f"--groups {k} is more than the run's {len(tasks)} tasks ({', '.join(tasks)})")
    rate = record["epochs"][-1].get("learning_rate")
    click.echo(f"inter-task affinity of run {run_id} ({which}; lookahead step {rate}); row steps, column is read:")
    click.echo(_table(matrix, tasks))
    out = Path(out_path or f"affinity_{run_id[:12]}.png")
    plot_matrix(matrix, tasks, out, title=f"inter-task affinity, {which}")
    click.echo(f"heatmap: {out}")
    click.echo(f"recommended grouping into {k} group(s):")
    click.echo(recommend_groups(matrix, tasks, k).describe())


def _read_artifact(run_id: str, tracking_uri: str | None, artifact: str) -> dict:
    """A run's relation file, read through a temporary copy; one-line errors for a bad run or artifact."""
    from mlflow.exceptions import MlflowException

    from mtl_tf.analysis.records import read_record
    from mtl_tf.tracking._client import is_not_found, make_client
    from mtl_tf.tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    client = make_client(uri)
    try:
        client.get_run(run_id)
    except MlflowException as err:
        if is_not_found(err):
            raise click.ClickException(f"no MLflow run '{run_id}' at {uri}; check the run id, or pass the "
                                       "--tracking-uri the run was logged to") from None
        raise click.ClickException(f"cannot read run '{run_id}' at {uri}: {str(err).splitlines()[0]}") from None
    with tempfile.TemporaryDirectory(prefix="mtl-analyze-") as folder:
        try:
            path = client.download_artifacts(run_id, artifact, folder)
        except (MlflowException, OSError) as err:  # which one depends on the artifact store
            raise click.ClickException(f"run '{run_id}' has no {artifact}: it was trained without affinity "
                                       "measurements (analysis.affinity_batches: 0, or a single task) or "
                                       f"before they existed ({type(err).__name__})") from None
        return read_record(path)


def _table(matrix, tasks) -> str:
    width = max(10, *(len(t) for t in tasks)) + 1
    lines = [" " * width + "".join(f"{t:>{width}}" for t in tasks)]
    for name, row in zip(tasks, matrix):
        cells = "".join(f"{'n/a':>{width}}" if v != v else f"{v:>{width}.4g}" for v in row)
        lines.append(f"{name:<{width}}" + cells)
    return "\n".join(lines)
