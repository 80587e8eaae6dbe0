"""`mtl run`: the main job, from raw data to a registered model."""

from __future__ import annotations

import click

from mtl_tf.cli.options import read_recipe, recipe_argument, set_option, tracking_uri_option


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@recipe_argument
@set_option
@tracking_uri_option
@click.option("--resume", is_flag=True, help="Continue training from the last checkpoint.")
@click.option("--skip-preprocess", is_flag=True, help="Reuse the dataset.json and TFRecords already written.")
@click.option("--no-register", is_flag=True, help="Export and check, but do not register in MLflow.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)
def run(recipe_path: str, overrides: tuple[str, ...], tracking_uri: str | None, resume: bool,
        skip_preprocess: bool, no_register: bool, quiet: bool, beam_args: tuple[str, ...]) -> None:
    """Run RECIPE end to end: preprocess (Beam), train, evaluate, export, check, register.

    Extra arguments are Beam pipeline options (e.g. --direct_num_workers=2); the runner is
    always named, DirectRunner unless --runner says otherwise.
    """
    from mtl_tf.cluster.runners import with_runner
    from mtl_tf.runner import run_recipe

    recipe = read_recipe(recipe_path, overrides)
    beam = with_runner(beam_args)
    if not skip_preprocess:
        click.echo(f"runner: {beam[0].split('=', 1)[1]}")
    result = run_recipe(recipe, recipe_path=recipe_path, tracking_uri=tracking_uri, resume=resume,
                        skip_preprocess=skip_preprocess, register=not no_register,
                        beam_args=beam, verbose=0 if quiet else 1, echo=click.echo)
    click.echo(result.summary())
