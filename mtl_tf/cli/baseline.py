"""`mtl baseline`: single-task baselines of a recipe, for delta_m."""

from __future__ import annotations

import click

from mtl_tf.cli.options import read_recipe, recipe_argument, set_option, tracking_uri_option


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@recipe_argument
@set_option
@tracking_uri_option
@click.option("--task", "tasks", multiple=True, metavar="NAME",
              help="Train only this task's baseline (repeatable); default every task.")
@click.option("--skip-preprocess", is_flag=True, help="Reuse the dataset.json and TFRecords already written.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)
def baseline(recipe_path: str, overrides: tuple[str, ...], tracking_uri: str | None, tasks: tuple[str, ...],
             skip_preprocess: bool, quiet: bool, beam_args: tuple[str, ...]) -> None:
    """Train one single-task model per task of RECIPE and store their test metrics.

    Each model is RECIPE with only that task (same data, trunk, tower and training settings;
    weighting static, gradient sum). Results go to baselines.json in the recipe's output_dir
    and to MLflow runs tagged mtl.baseline=true; `mtl run RECIPE` then reports delta_m.
    """
    from mtl_tf.cluster.runners import with_runner
    from mtl_tf.runner import run_baselines

    recipe = read_recipe(recipe_path, overrides)
    result = run_baselines(recipe, tasks=list(tasks) or None, tracking_uri=tracking_uri,
                           skip_preprocess=skip_preprocess, beam_args=with_runner(beam_args),
                           verbose=0 if quiet else 1, echo=click.echo)
    click.echo(result.summary())
