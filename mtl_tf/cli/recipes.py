"""`mtl recipes`: validate and show recipes."""

import click

from mtl_tf.cli.options import read_recipe, recipe_argument, set_option


@click.group()
def recipes() -> None:
    """Check and inspect recipes."""


@recipes.command()
@recipe_argument
@set_option
def validate(recipe_path: str, overrides: tuple[str, ...]) -> None:
    """Validate RECIPE (schema, component names and options)."""
    recipe = read_recipe(recipe_path, overrides)
    click.echo(f"{recipe_path}: ok ({len(recipe.tasks)} tasks: {', '.join(recipe.task_names)}; "
               f"{len(recipe.data.features)} features; architecture {recipe.model.architecture.name})")


@recipes.command()
@recipe_argument
@set_option
def show(recipe_path: str, overrides: tuple[str, ...]) -> None:
    """Print RECIPE resolved: overrides applied, every default filled in."""
    from mtl_tf.recipe.loader import resolved_yaml

    click.echo(resolved_yaml(read_recipe(recipe_path, overrides)), nl=False)
