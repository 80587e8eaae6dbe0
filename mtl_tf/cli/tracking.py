"""`mtl tracking`: what a run kept locally while its tracking server did not answer."""

from __future__ import annotations

import click

from mtl_tf.cli.options import tracking_uri_option


@click.group()
def tracking() -> None:
    """Send what runs kept in their local tracking journals."""


@tracking.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@tracking_uri_option
def sync(path: str, tracking_uri: str | None) -> None:
    """Send to MLflow what the runs under PATH kept while the server did not answer.

    PATH is a run's output_dir (holding tracking/), its tracking/ folder or one run's journal.
    Each run goes to the server it was tracked on, unless --tracking-uri (or
    MLFLOW_TRACKING_URI) names another. Entries already sent are not sent again; running it
    twice sends nothing the second time.
    """
    from mtl_tf.tracking.run import sync as sync_journals

    for run in sync_journals(path, tracking_uri):
        refused = f", {len(run['refused'])} refused" if run["refused"] else ""
        versions = f"; registered version {', '.join(map(str, run['registered']))}" if run["registered"] else ""
        state = f"sent {run['sent']} entries{refused}" if run["sent"] or run["refused"] else "nothing to send"
        click.echo(f"run {run['run_id']} ({run['tracking_uri']}): {state}{versions}")
        for refusal in run["refused"]:
            click.echo(f"  refused: {refusal}")
