"""Options shared by several commands, defined once."""

from __future__ import annotations

import click

from mtl_tf.recipe import Recipe, load_recipe

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a recipe value, e.g. --set training.epochs=3 (repeatable).")

tracking_uri_option = click.option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", default=None, show_envvar=True,
    help="MLflow tracking URI; default sqlite:///mlflow.db in the working directory.")

recipe_argument = click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))


def read_recipe(path: str, overrides: tuple[str, ...]) -> Recipe:
    return load_recipe(path, overrides)
