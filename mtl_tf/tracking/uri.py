"""Where runs and registered models live."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MLFLOW_TRACKING_URI"
DEFAULT_DB = "mlflow.db"


def resolve_tracking_uri(cli_value: str | None, recipe_value: str | None = None) -> str:
    """The tracking URI, first found of: ``--tracking-uri``, ``MLFLOW_TRACKING_URI``, the
    recipe's ``tracking.tracking_uri``, else ``sqlite:///<cwd>/mlflow.db``.

    Args:
        cli_value: the ``--tracking-uri`` option, or None.
        recipe_value: the recipe's ``tracking.tracking_uri``, or None.

    Returns:
        A URI MLflow understands (``sqlite:///...``, ``http://...``, ``file:...``).
    """
    for value in (cli_value, os.environ.get(ENV_VAR), recipe_value):
        if value and value.strip():
            return value.strip()
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB).as_posix()}"
