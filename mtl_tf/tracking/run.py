"""One MLflow run as a context manager: params, per-epoch metrics, artifacts, tags."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from mtl_tf.tracking._client import make_client
from mtl_tf.tracking.uri import resolve_tracking_uri

# MLflow's own limits (mlflow.utils.validation); exceeding them fails the whole batch.
MAX_PARAM_VALUE_LENGTH = 6000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_TAG_VALUE_LENGTH = 8000
# The run tag listing metrics that were NaN (undefined) and so not logged.
UNDEFINED_TAG = "mtl.undefined_metrics"


class TrackedRun:
    """An MLflow run that ends FINISHED, or FAILED when an exception escapes the block.

    Args:
        experiment: the experiment name; created when it does not exist.
        run_name: a readable name for the run.
        tracking_uri: resolved with :func:`resolve_tracking_uri` (``--tracking-uri``, then
            ``MLFLOW_TRACKING_URI``, then ``sqlite:///<cwd>/mlflow.db``).
        artifact_location: where a new experiment stores artifacts; default MLflow's.
        tags: run tags set at creation.

    Example:
        >>> with TrackedRun("fraud_signals", run_name="hps") as run:
        ...     run.log_params(flatten(recipe))
        ...     run.log_epoch(0, {"default_risk/auc": 0.81})
    """

    def __init__(self, experiment: str, run_name: str | None = None, tracking_uri: str | None = None,
                 artifact_location: str | Path | None = None, tags: Mapping[str, Any] | None = None):
        if not experiment or not str(experiment).strip():
            raise ValueError(f"experiment must be a non-empty name; got {experiment!r}")
        self.experiment = str(experiment)
        self.run_name = run_name
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.artifact_location = str(artifact_location) if artifact_location else None
        self._tags = dict(tags or {})
        self._client: Any = None
        self._run_id: str | None = None
        self.experiment_id: str | None = None
        self.undefined_metrics: set[str] = set()

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "TrackedRun":
        self._client = make_client(self.tracking_uri)
        self.experiment_id = self._experiment_id()
        run = self._client.create_run(self.experiment_id, run_name=self.run_name,
                                      tags={k: _tag_value(v) for k, v in self._tags.items()})
        self._run_id = run.info.run_id
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        status = "FINISHED" if exc_type is None else "FAILED"
        self._client.set_terminated(self.run_id, status=status)
        return False

    def _experiment_id(self) -> str:
        found = self._client.get_experiment_by_name(self.experiment)
        if found is None:
            return self._client.create_experiment(self.experiment, artifact_location=self.artifact_location)
        if found.lifecycle_stage == "deleted":
            self._client.restore_experiment(found.experiment_id)
        return found.experiment_id

    @property
    def run_id(self) -> str:
        if self._run_id is None:
            raise RuntimeError("the run has not started; use `with TrackedRun(...) as run:`")
        return self._run_id

    @property
    def artifact_uri(self) -> str:
        return self._client.get_run(self.run_id).info.artifact_uri

    # --- logging -----------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Logs a flat dict; values become strings cut to MLflow's 6000 characters."""
        from mlflow.entities import Param

        entries = [Param(str(key), _param_value(value)) for key, value in params.items()]
        for batch in _batches(entries, MAX_PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, params=batch)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Logs numbers at ``step`` (default 0); names may hold '/', as in ``task/metric``.

        A NaN value (an undefined metric, such as an AUC on a split with one class) is not
        logged, since MLflow would show it as a number: its name joins
        :attr:`undefined_metrics` and the run tag ``mtl.undefined_metrics``.
        """
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        numbers = {str(key): _number(key, value) for key, value in metrics.items()}
        entries = [Metric(key, value, now, int(step or 0)) for key, value in numbers.items()
                   if not math.isnan(value)]
        for batch in _batches(entries, MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=batch)
        self._record_undefined([key for key, value in numbers.items() if math.isnan(value)])

    def _record_undefined(self, keys: Sequence[str]) -> None:
        if set(keys) <= self.undefined_metrics:
            return
        self.undefined_metrics.update(keys)
        self.set_tags({UNDEFINED_TAG: ",".join(sorted(self.undefined_metrics))})

    def log_epoch(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Logs one epoch's ``<task>/<metric>`` values with the epoch as the step."""
        self.log_metrics(logs, step=epoch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        entries = [RunTag(str(key), _tag_value(value)) for key, value in tags.items()]
        for batch in _batches(entries, MAX_PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, tags=batch)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copies one file into the run's artifacts (under ``artifact_path`` when given)."""
        self._client.log_artifact(self.run_id, str(_existing(path)), artifact_path)

    def log_artifacts(self, paths: str | Path | Sequence[str | Path], artifact_path: str | None = None) -> None:
        """Copies a folder's contents, or each file of a list, into the run's artifacts."""
        if isinstance(paths, (str, Path)) and Path(paths).is_dir():
            self._client.log_artifacts(self.run_id, str(paths), artifact_path)
            return
        for path in [paths] if isinstance(paths, (str, Path)) else paths:
            self.log_artifact(path, artifact_path)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Saves a matplotlib or plotly figure as ``artifact_file`` (e.g. ``plots/loss.png``)."""
        self._client.log_figure(self.run_id, figure, artifact_file)


def _batches(entries: list, size: int) -> Iterator[list]:
    for start in range(0, len(entries), size):
        yield entries[start:start + size]


def _param_value(value: Any) -> str:
    return str(value)[:MAX_PARAM_VALUE_LENGTH]


def _tag_value(value: Any) -> str:
    return str(value)[:MAX_TAG_VALUE_LENGTH]


def _number(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric '{key}' must be a number; got {type(value).__name__} {value!r}") from None


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cannot log artifact {str(path)!r}: no such file or folder")
    return path
