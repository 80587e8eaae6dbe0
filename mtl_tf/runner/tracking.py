"""The MLflow run of a job: a real one on the chief, a silent stand-in on other workers."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable

from mtl_tf.recipe import Recipe

# The folder of a run's tracking journals, under its output_dir.
TRACKING_DIR = "tracking"


def tracking_context(recipe: Recipe, tracking_uri: str | None, chief: bool, run_dir: Path | None = None,
                     resume: bool = False, echo: Callable | None = None) -> tuple[str | None, Any]:
    """(tracking URI, run context): a real MLflow run on the chief, a silent one elsewhere.

    With ``run_dir`` the run keeps its journal in ``<run_dir>/tracking`` and outlives a
    tracking server that stops answering (see :mod:`mtl_tf.tracking.run`); with ``resume`` it
    continues the MLflow run a killed process left unfinished there.
    """
    if not chief:
        return None, contextlib.nullcontext(_Untracked())
    from mtl_tf.tracking.run import TrackedRun
    from mtl_tf.tracking.uri import resolve_tracking_uri

    from mtl_tf.tracking.run import retry_interval

    uri = resolve_tracking_uri(tracking_uri, recipe.tracking.tracking_uri)
    journal = None if run_dir is None else Path(run_dir) / TRACKING_DIR
    return uri, TrackedRun(recipe.tracking.experiment or recipe.name, run_name=recipe.name, tracking_uri=uri,
                           journal_dir=journal, resume=resume, echo=echo, retry_interval=retry_interval())


class _Untracked:
    """Stands where a TrackedRun would on non-chief workers: they log nothing."""

    run_id = None

    def __getattr__(self, name: str) -> Callable:
        return lambda *args, **kwargs: None
