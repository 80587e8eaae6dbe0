"""Recipes: YAML files validated into frozen pydantic models."""

from mtl_tf.recipe.loader import RecipeError, flatten, load_recipe, parse_recipe
from mtl_tf.recipe.schema import Recipe

__all__ = ["Recipe", "RecipeError", "flatten", "load_recipe", "parse_recipe"]
