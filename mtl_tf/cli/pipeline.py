"""`mtl pipeline`: a recipe's Beam preprocessing (and training) now, or on a schedule."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from mtl_tf.cli.options import read_recipe, recipe_argument, set_option, tracking_uri_option

BEAM_HELP = "Beam pipeline options (--runner, Dataflow, Flink, Spark or Dask options) pass through."


@click.group()
def pipeline() -> None:
    """Run a recipe's Beam preprocessing now, or schedule it as a Kubernetes CronJob."""


@pipeline.command("run", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@recipe_argument
@set_option
@tracking_uri_option
@click.option("--train", is_flag=True, help="Then train, evaluate, export and register (mtl run, reusing the data).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)
def run_now(recipe_path: str, overrides: tuple[str, ...], tracking_uri: str | None, train: bool, quiet: bool,
            beam_args: tuple[str, ...]) -> None:
    """Preprocess RECIPE with Beam (and with --train, train and register), as the CronJob does.

    The runner is always named: DirectRunner unless --runner says otherwise. Extra
    arguments are Beam pipeline options.
    """
    from mtl_tf.cli.data import run_preprocess
    from mtl_tf.cluster.runners import with_runner

    recipe = read_recipe(recipe_path, overrides)
    beam = with_runner(beam_args)
    click.echo(f"runner: {beam[0].split('=', 1)[1]}")
    run_preprocess(recipe, None, tuple(beam))
    if train:
        from mtl_tf.runner import run_recipe

        result = run_recipe(recipe, recipe_path=recipe_path, tracking_uri=tracking_uri, skip_preprocess=True,
                            beam_args=beam, verbose=0 if quiet else 1, echo=click.echo)
        click.echo(result.summary())


@pipeline.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@recipe_argument
@set_option
@click.option("--cron", required=True, metavar="EXPR", help="When: five cron fields, e.g. '0 2 * * *', or @daily.")
@click.option("--runner", default=None, help="Beam runner (default DirectRunner): DirectRunner, DataflowRunner, "
                                             "FlinkRunner, SparkRunner, PortableRunner, or "
                                             "apache_beam.runners.dask.dask_runner.DaskRunner.")
@click.option("--train", is_flag=True, help="Also train, evaluate, export and register after preprocessing.")
@click.option("--time-zone", default=None, help="IANA time zone of the schedule; default the base's (Etc/UTC).")
@click.option("--out", "out", default=None, metavar="DIR|-",
              help="Where overlays go: DIR/<recipe>/ (default k8s/generated/); '-' prints the rendered CronJob.")
@click.option("--base", default=None, type=click.Path(file_okay=False),
              help="The kustomize base of the CronJob; default k8s/base/data.")
@click.option("--image-recipe", default=None, metavar="PATH",
              help="The recipe's path inside the image; default /opt/mtl/recipes/<file name>.")
@click.option("--name", default=None, help="Name the CronJob after this instead of the recipe's name.")
@click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)
def schedule(recipe_path: str, overrides: tuple[str, ...], cron: str, runner: str | None, train: bool,
             time_zone: str | None, out: str | None, base: str | None, image_recipe: str | None, name: str | None,
             beam_args: tuple[str, ...]) -> None:
    """Write a Kubernetes CronJob that runs `mtl pipeline run RECIPE ...` on a schedule.

    The CronJob is an overlay of the kustomize base k8s/base/data with the schedule and the
    command line patched in, written to DIR/<recipe>/: apply it with `kubectl apply -k
    DIR/<recipe>`. Extra arguments are Beam
    pipeline options, passed to the job as they are.
    """
    from mtl_tf.cluster.schedule import (DEFAULT_OUT, container_recipe_path, find_base, make_schedule, render_overlay,
                                         slug, write_overlay)

    recipe = read_recipe(recipe_path, overrides)
    job = make_schedule(name or recipe.name, cron, container_recipe_path(recipe_path, image_recipe), overrides,
                        beam_args, runner, train, time_zone)
    folder = find_base(base)
    if out == "-":
        click.echo(render_overlay(job, folder), nl=False)
        return
    target = Path(out or DEFAULT_OUT) / slug(job.recipe_name)
    written_by = f"mtl pipeline schedule {recipe_path} --cron {shlex.quote(job.cron)}; runs: mtl {shlex.join(job.args)}"
    path = write_overlay(job, target, folder, written_by)
    click.echo(f"CronJob {job.cronjob_name} ({job.cron}) written to {path.parent}/")
    click.echo(f"  runs: {shlex.join(['mtl', *job.args])}")
    click.echo(f"  check: kubectl kustomize {path.parent}")
    click.echo(f"  apply: kubectl apply -k {path.parent}")
    click.echo(f"  the same job now, here: {job.local_command(recipe_path)}")
