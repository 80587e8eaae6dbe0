"""Registered models: an export logged as run artifacts, a version pointing at it, its tags.

MLflow's keras flavor trails Keras 3.15, so the export (SavedModel, .keras, signatures.json)
is logged as plain run artifacts under ``export/`` and each version is tagged with where the
SavedModel is. Test metrics and each task's primary metric are version tags, which is what
promotion compares.

Version tags:
  ``export_location``           local SavedModel folder
  ``export_artifact_uri``       the SavedModel inside the run's artifacts
  ``metric.<task>.<metric>``    test metric values
  ``primary.<task>``            the task's primary metric name
  ``primary.<task>.higher_is_better``  "true" or "false"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mtl_tf.errors import did_you_mean
from mtl_tf.tracking._client import is_not_found, make_client

EXPORT_ARTIFACT_PATH = "export"
METRIC_PREFIX = "metric."
PRIMARY_PREFIX = "primary."
DIRECTION_SUFFIX = ".higher_is_better"


def register_export(run_id: str, export_dir: str | Path, name: str, metrics: Mapping[str, float],
                    primary: Mapping[str, tuple[str, bool]], tags: Mapping[str, Any] | None = None,
                    tracking_uri: str | None = None, once: bool = False) -> int:
    """Logs an export under the run's ``export/`` artifacts and registers a new model version.

    Args:
        run_id: the MLflow run that trained the model.
        export_dir: the folder written by :func:`mtl_tf.export.export_model`.
        name: the registered model name; created when it does not exist.
        metrics: test metrics keyed ``<task>/<metric>``.
        primary: task -> (primary metric, higher_is_better); each must have a value in ``metrics``.
        tags: extra version tags.
        tracking_uri: as :func:`mtl_tf.tracking.resolve_tracking_uri`.
        once: when a version of ``name`` already points at this run's export, return it
            rather than make another (a registration sent again from a journal).

    Returns:
        The new version number (with ``once``, maybe an existing one).
    """
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise FileNotFoundError(f"no export folder at {str(export_dir)!r}; run the export first")
    version_tags = {**metric_tags(metrics), **primary_tags(primary, metrics)}
    client = make_client(tracking_uri)
    client.log_artifacts(run_id, str(export_dir), EXPORT_ARTIFACT_PATH)
    source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{EXPORT_ARTIFACT_PATH}"
    version_tags.update(_location_tags(export_dir, source))
    version_tags.update({str(k): str(v) for k, v in (tags or {}).items()})
    _ensure_registered_model(client, name)
    if once:
        existing = [v for v in _versions(client, name) if v.run_id == run_id and v.source == source]
        if existing:
            return min(int(v.version) for v in existing)
    version = client.create_model_version(name, source=source, run_id=run_id, tags=version_tags)
    return int(version.version)


def metric_tags(metrics: Mapping[str, float]) -> dict[str, str]:
    """``<task>/<metric>`` -> ``metric.<task>.<metric>`` tags, values in full precision."""
    tags = {}
    for key, value in metrics.items():
        parts = str(key).split("/")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"metric key {key!r} must look like '<task>/<metric>', e.g. 'fraud/auc'")
        tags[f"{METRIC_PREFIX}{parts[0]}.{parts[1]}"] = repr(float(value))
    return tags


def primary_tags(primary: Mapping[str, tuple[str, bool]], metrics: Mapping[str, float]) -> dict[str, str]:
    """The primary metric and its direction per task; its value must be among ``metrics``."""
    tags = {}
    for task, (metric, higher_is_better) in primary.items():
        if f"{task}/{metric}" not in metrics:
            known = [k for k in metrics if str(k).startswith(f"{task}/")]
            raise ValueError(f"primary metric '{metric}' of task '{task}' has no value in metrics; "
                             f"metrics for '{task}': {', '.join(known) or 'none'}")
        tags[f"{PRIMARY_PREFIX}{task}"] = metric
        tags[f"{PRIMARY_PREFIX}{task}{DIRECTION_SUFFIX}"] = "true" if higher_is_better else "false"
    return tags


def version_primary(tags: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Task -> {metric, higher_is_better, value} read back from a version's tags."""
    primary = {}
    for key, metric in tags.items():
        if not key.startswith(PRIMARY_PREFIX) or key.endswith(DIRECTION_SUFFIX):
            continue
        task = key[len(PRIMARY_PREFIX):]
        value = tags.get(f"{METRIC_PREFIX}{task}.{metric}")
        primary[task] = {"metric": metric,
                         "higher_is_better": tags.get(f"{key}{DIRECTION_SUFFIX}", "true") == "true",
                         "value": float(value) if value is not None else None}
    return primary


def version_metrics(tags: Mapping[str, str], primary: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Task -> {metric: value} read back from ``metric.`` tags (task names come from ``primary``
    first, since a task name may itself hold a dot)."""
    metrics: dict[str, dict[str, float]] = {}
    tasks = sorted(primary, key=len, reverse=True)
    for key, value in tags.items():
        if not key.startswith(METRIC_PREFIX):
            continue
        rest = key[len(METRIC_PREFIX):]
        task = next((t for t in tasks if rest.startswith(f"{t}.")), rest.rsplit(".", 1)[0])
        metrics.setdefault(task, {})[rest[len(task) + 1:]] = float(value)
    return metrics


def list_models(tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """Every registered model: name, description, aliases, latest version, tags."""
    client = make_client(tracking_uri)
    models = []
    for model in _all_registered_models(client):
        versions = [int(v.version) for v in _versions(client, model.name)]
        models.append({"name": model.name, "description": model.description or "",
                       "aliases": {a: int(v) for a, v in (model.aliases or {}).items()},
                       "latest_version": max(versions) if versions else None,
                       "num_versions": len(versions), "tags": dict(model.tags or {})})
    return sorted(models, key=lambda m: m["name"])


def describe_model(name: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """A registered model with its versions (tags, metrics, primary metrics) and aliases.

    Raises:
        ValueError: no model is registered under ``name``; the message lists the names.
    """
    client = make_client(tracking_uri)
    model = get_registered_model(client, name)
    aliases = {a: int(v) for a, v in (model.aliases or {}).items()}
    versions = sorted(_versions(client, name), key=lambda v: int(v.version))
    return {"name": model.name, "description": model.description or "",
            "tags": dict(model.tags or {}), "aliases": aliases,
            "versions": [_describe_version(v, aliases) for v in versions]}


def get_registered_model(client: Any, name: str) -> Any:
    """The registered model, or a ValueError naming the models that do exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        if not is_not_found(error):
            raise
    known = sorted(m.name for m in _all_registered_models(client))
    listing = f"registered models: {', '.join(known)}" if known else "no model is registered yet"
    raise ValueError(f"no registered model '{name}'{did_you_mean(name, known)}; {listing}") from None


def model_versions(client: Any, name: str) -> list[Any]:
    """The versions of a registered model, oldest first."""
    return sorted(_versions(client, name), key=lambda v: int(v.version))


def _describe_version(version: Any, aliases: Mapping[str, int]) -> dict[str, Any]:
    tags = dict(version.tags or {})
    primary = version_primary(tags)
    return {"version": int(version.version), "run_id": version.run_id, "source": version.source,
            "status": version.status, "created": version.creation_timestamp,
            "aliases": sorted(a for a, v in aliases.items() if v == int(version.version)),
            "primary": primary, "metrics": version_metrics(tags, primary), "tags": tags}


def _location_tags(export_dir: Path, source: str) -> dict[str, str]:
    return {"export_location": str(export_dir.resolve()), "export_artifact_uri": source}


def _ensure_registered_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as error:
        if not is_not_found(error):
            raise
        client.create_registered_model(name)


def _all_registered_models(client: Any) -> list[Any]:
    """Every registered model but the promotion locks (see :class:`mtl_tf.tracking.promotion.AliasLock`)."""
    from mtl_tf.tracking.promotion import is_lock

    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        models.extend(model for model in page if not is_lock(model.name))
        token = page.token
        if not token:
            return models


def _versions(client: Any, name: str) -> list[Any]:
    escaped = name.replace("'", "\\'")
    return list(client.search_model_versions(f"name = '{escaped}'"))
