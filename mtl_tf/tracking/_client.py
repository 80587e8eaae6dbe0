"""The one place that builds an MLflow client, so MLflow loads only when it is used."""

from __future__ import annotations

from typing import Any

from mtl_tf.tracking.uri import resolve_tracking_uri


def make_client(tracking_uri: str | None = None) -> Any:
    """An ``MlflowClient`` for ``tracking_uri`` (resolved as the CLI does); registry on the same URI."""
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def is_not_found(error: Exception) -> bool:
    """Whether an MLflow error means 'no such entity'."""
    return getattr(error, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"} or \
        "not found" in str(error).lower() or "does not exist" in str(error).lower()
