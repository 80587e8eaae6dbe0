"""The datasets the image benchmarks read: a recipe's own, preprocessed by Beam when needed.

``driving_perception`` reads synthetic scenes (``mtl data synth driving_perception``,
written here when the recipe's manifest is missing); ``camvid`` and ``pennfudan`` read their
npz files in ``../shared/data`` (``--set data.source.path=...`` elsewhere). The dataset goes
to the recipe's ``data.output_dir`` unless ``workdir`` is given, and is reused when it is
already there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
IMAGE_RECIPES = ("driving_perception", "camvid", "pennfudan")


def recipe_dataset(name: str, overrides: Sequence[str] = (), workdir: str | Path | None = None,
                   synth_rows: int = 2000) -> tuple[Any, Any]:
    """(recipe, DatasetSpec) of an image recipe, preprocessing its data when needed.

    Args:
        name: a recipe under ``recipes/`` or a YAML path.
        overrides: ``--set`` style recipe overrides.
        workdir: where the raw synthetic data and the dataset go (default: the recipe's paths).
        synth_rows: scenes to synthesise when the driving recipe's manifest is missing.
    """
    from mtl_tf.data.spec import DatasetSpec
    from mtl_tf.recipe import load_recipe
    from mtl_tf.runner.preprocess import preprocess

    os.chdir(ROOT)  # recipes name their files relative to the repository root
    path = Path(name) if name.endswith((".yaml", ".yml")) else ROOT / "recipes" / f"{name}.yaml"
    overrides = list(overrides)
    if workdir is not None:
        overrides.append(f"data.output_dir={Path(workdir) / 'dataset'}")
    recipe = load_recipe(path, overrides)
    source = recipe.data.source
    if recipe.data.source.kind == "manifest" and not any(Path(p).exists() for p in source.patterns):
        from mtl_tf.data.synth import synthesize_images

        raw = Path(workdir or Path(source.patterns[0]).parent.parent) / "raw"
        manifest = synthesize_images(recipe.name, synth_rows, raw, seed=0)
        recipe = load_recipe(path, [*overrides, f"data.source.path={manifest}"])
    if (Path(recipe.data.output_dir) / "dataset.json").is_file():
        return recipe, DatasetSpec.read(recipe.data.output_dir)
    return recipe, preprocess(recipe, echo=lambda line: None)
