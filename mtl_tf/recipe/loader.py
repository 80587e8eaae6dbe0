"""Loading recipes: YAML -> overrides -> pydantic validation -> registry checks.

Every error is one line naming the dotted path, the value received and what is allowed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import BaseModel, ValidationError

from mtl_tf.errors import did_you_mean
from mtl_tf.recipe.schema import SOURCE_KINDS, Recipe


class RecipeError(ValueError):
    """A recipe that cannot be used; the message is one line per problem."""


# Recipe path -> (module, registry attribute). Imported lazily: they pull in TensorFlow.
COMPONENT_REGISTRIES = {
    "model.architecture": ("mtl_tf.models.architectures", "ARCHITECTURES"),
    "model.trunk": ("mtl_tf.models.trunks", "TRUNKS"),
    "model.tower": ("mtl_tf.models.towers", "TOWERS"),
    # Checked only for image recipes, the only ones that use a decoder.
    "model.decoder": ("mtl_tf.models.decoders", "DECODERS"),
    "training.optimizer": ("mtl_tf.training.optimizers", "OPTIMIZERS"),
    "training.task_optimizer": ("mtl_tf.training.optimizers", "OPTIMIZERS"),
    "training.weighting": ("mtl_tf.training.weighting", "WEIGHTINGS"),
    "training.gradient": ("mtl_tf.training.aggregators", "AGGREGATORS"),
    "training.sampling": ("mtl_tf.training.sampling", "SAMPLERS"),
}


def load_recipe(path: str | Path, overrides: Iterable[str] = (), check: bool = True) -> Recipe:
    """Reads a YAML recipe, applies ``a.b=value`` overrides and validates it.

    Args:
        path: the YAML file.
        overrides: ``--set`` strings such as ``training.epochs=3`` or ``tasks.0.weight=2``.
        check: also check component names and options against the registries.
    """
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {str(path)!r}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from err
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections; received {type(raw).__name__}")
    for item in overrides:
        apply_override(raw, item)
    return parse_recipe(raw, check=check)


def parse_recipe(raw: Mapping[str, Any], check: bool = True) -> Recipe:
    """Validates a recipe mapping; raises :class:`RecipeError` with one line per problem."""
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise RecipeError("\n".join(_format_error(e, raw) for e in err.errors())) from None
    if check:
        check_components(recipe)
    return recipe


def apply_override(raw: dict, item: str) -> None:
    """Applies one ``dotted.path=value`` override in place; the value is parsed as YAML."""
    if "=" not in item:
        raise RecipeError(f"--set expects KEY=VALUE, e.g. training.epochs=3; received {item!r}")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as err:
        raise RecipeError(_yaml_override_error(key.strip(), text, err)) from None
    parts = key.strip().split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: i + 1]), create=True)
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last, key)] = value
    else:
        node[last] = value


def _yaml_override_error(key: str, text: str, err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    message = f"--set {key}: the value {text} is not valid YAML ({problem})"
    inner = text.strip()
    if "escape" in problem and len(inner) > 1 and inner[0] == inner[-1] == '"':
        return (f"{message}; in double quotes a backslash starts an escape: write the value bare, "
                f"--set '{key}={inner[1:-1]}', or in single quotes")
    return f"{message}; put the value in single quotes inside the shell's quotes, e.g. --set \"{key}='{inner}'\""


def _child(node: Any, part: str, where: str, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, where)]
    if not isinstance(node, dict):
        raise RecipeError(f"--set {where}: cannot descend into a {type(node).__name__}")
    if part not in node or node[part] is None:
        node[part] = {}
    return node[part]


def _index(node: list, part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(f"--set {where}: '{part}' is not an index of a list of {len(node)} items")
    return int(part)


def _format_error(error: dict, raw: Mapping[str, Any]) -> str:
    loc = [str(p) for p in error["loc"]]
    path = ".".join(_without_tags(loc)) or "<recipe>"
    kind = error["type"]
    received = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return (f"{path}: unknown key '{loc[-1]}'{did_you_mean(loc[-1], allowed)}; "
                f"allowed: {', '.join(allowed)}")
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        tag, allowed = str(ctx.get("tag")), _literals(str(ctx.get("expected_tags", "")))
        return (f"{path}.{ctx.get('discriminator', 'kind').strip(chr(39))}: received {tag!r}"
                f"{did_you_mean(tag, allowed)}; allowed: {', '.join(allowed)}")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{path}: received {received!r}; allowed: {expected}{did_you_mean(str(received), _literals(expected))}"
    message = error["msg"].removeprefix("Value error, ")
    if "received" in message:
        return f"{path}: {message}"
    return f"{path}: {message}; received {received!r}"


def _literals(expected: str) -> list[str]:
    return [part.strip(" '") for part in expected.replace(" or ", ",").split(",") if part.strip()]


def _without_tags(loc: list[str]) -> list[str]:
    """``loc`` without the tag pydantic puts after a discriminated union (``source.manifest.path``
    is the recipe's ``source.path``)."""
    return [part for i, part in enumerate(loc) if not (i and loc[i - 1] == "source" and part in SOURCE_KINDS)]


def _allowed_keys(loc: list[str]) -> list[str]:
    """The field names of the model at ``loc`` (indices of lists skipped; a union's tag picks
    its member)."""
    model: type[BaseModel] | None = Recipe
    tag = None
    for i, part in enumerate(loc):
        if part.isdigit() or model is None or (i and loc[i - 1] == "source" and part in SOURCE_KINDS):
            continue
        field = model.model_fields.get(part)
        tag = loc[i + 1] if part == "source" and i + 1 < len(loc) else None
        model = _model_of(field.annotation, tag) if field else None
    return sorted(model.model_fields) if model else []


def _model_of(annotation: Any, tag: str | None = None) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        kind = annotation.model_fields.get("kind")
        if tag is None or kind is None or tag in getattr(kind.annotation, "__args__", ()):
            return annotation
        return None
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg, tag)
        if found:
            return found
    return None


def check_components(recipe: Recipe) -> None:
    """Checks every component name and option name against its registry."""
    problems = []
    for where, (module, attr) in COMPONENT_REGISTRIES.items():
        section, key = where.split(".")
        spec = getattr(getattr(recipe, section), key)
        if spec is None:  # an optional component left out
            continue
        if where == "model.decoder" and recipe.data.image_feature is None:
            continue
        registry = getattr(importlib.import_module(module), attr)
        try:
            registry.split(spec.as_dict(), where)
        except (TypeError, ValueError) as err:
            problems.append(str(err))
    if problems:
        raise RecipeError("\n".join(problems))


def flatten(recipe: Recipe | Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flattens a recipe into ``{"training.epochs": 5, "tasks.0.name": ...}`` (MLflow params)."""
    data = recipe.model_dump(mode="json") if isinstance(recipe, BaseModel) else recipe
    flat: dict[str, Any] = {}
    items = data.items() if isinstance(data, Mapping) else enumerate(data)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (Mapping, list)) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def resolved_yaml(recipe: Recipe) -> str:
    """The recipe with every default filled in, as YAML."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
