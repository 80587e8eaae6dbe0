"""Stage 1: the Beam pipeline (or its earlier output) -> the dataset spec(s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from mtl_tf.recipe import Recipe


def preprocess(recipe: Recipe, beam_args: Sequence[str] = (), skip: bool = False, echo: Callable = print):
    """Runs the Beam pipeline (or reuses its output) and returns the DatasetSpec."""
    from mtl_tf.data.spec import DatasetSpec

    if skip:
        spec = DatasetSpec.read(recipe.data.output_dir)
        echo(f"reusing {Path(spec.root) / 'dataset.json'}")
    else:
        from pipelines import run as run_pipeline

        result = run_pipeline(recipe, list(beam_args))
        echo(result.summary())
        spec = result.spec
    problems = spec.label_problems()
    if problems:
        raise ValueError("; ".join(problems))
    for warning in spec.label_warnings():
        echo(f"warning: {warning}")
    return spec


def preprocess_collection(recipe: Recipe, beam_args: Sequence[str] = (), skip: bool = False,
                          echo: Callable = print) -> Any:
    """A recipe with ``datasets``: runs the Beam pipeline once per dataset (or reuses their
    output) and returns the :class:`~mtl_tf.data.collection.DatasetCollection`."""
    from mtl_tf.data.collection import preprocess_datasets

    collection = preprocess_datasets(recipe, beam_args, skip=skip, echo=echo)
    echo(collection.summary())
    return collection


def dataset_artifacts(spec: Any, collection: Any = None) -> list[tuple[str, Path]]:
    """(artifact folder, dataset.json path) of every dataset a run reads."""
    if collection is None:
        return [("data", Path(spec.root) / "dataset.json")]
    return [(f"data/{name}", Path(collection.spec(name).root) / "dataset.json") for name in collection.names]
