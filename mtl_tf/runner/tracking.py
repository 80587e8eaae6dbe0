"""The MLflow run of a job: a real one on the chief, a silent stand-in on other workers."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

from mtl_tf.recipe import Recipe


def tracking_context(recipe: Recipe, tracking_uri: str | None, chief: bool) -> tuple[str | None, Any]:
    """(tracking URI, run context): a real MLflow run on the chief, a silent one elsewhere."""
    if not chief:
        return None, contextlib.nullcontext(_Untracked())
    from mtl_tf.tracking.run import TrackedRun
    from mtl_tf.tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri, recipe.tracking.tracking_uri)
    return uri, TrackedRun(recipe.tracking.experiment or recipe.name, run_name=recipe.name, tracking_uri=uri)


class _Untracked:
    """Stands where a TrackedRun would on non-chief workers: they log nothing."""

    run_id = None

    def __getattr__(self, name: str) -> Callable:
        return lambda *args, **kwargs: None
