"""One MLflow run as a context manager: params, per-epoch metrics, artifacts, tags.

With a journal folder (``journal_dir``; ``mtl run`` gives ``<run_dir>/tracking``), every call
is written to the run's local journal first (:mod:`mtl_tf.tracking.journal`) and then sent.
When the tracking server stops answering, the run goes on: one warning line says so, the
entries wait in the journal, each later call tries again at most every ``retry_interval``
seconds, and when the server answers again what waited is sent, in order. What is still
waiting when the run ends is sent by ``mtl tracking sync RUN_DIR`` (:func:`sync`). Sending
is idempotent, so nothing is lost and nothing is logged twice.

Without a journal folder, calls go straight to MLflow and its errors propagate.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from mtl_tf.tracking._client import make_client
from mtl_tf.tracking.journal import Journal
from mtl_tf.tracking.uri import resolve_tracking_uri

# MLflow's own limits (mlflow.utils.validation); exceeding them fails the whole batch.
MAX_PARAM_VALUE_LENGTH = 6000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_TAG_VALUE_LENGTH = 8000
# The run tag listing metrics that were NaN (undefined) and so not logged.
UNDEFINED_TAG = "mtl.undefined_metrics"
# While a journal is sent: no retries inside one call (a server that does not answer is tried
# again later, from the journal) and a short timeout. MLflow's defaults (7 retries with
# exponential backoff, 120 s timeout) would hold training for minutes on every call.
QUICK_REQUESTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
RETRY_INTERVAL_S = 30.0
RETRY_ENV = "MTL_TRACKING_RETRY_INTERVAL"
# What an error from a server that is down, restarting or unreachable says.
_UNREACHABLE = re.compile(r"connection refused|max retries exceeded|failed to establish|name or service not known|"
                          r"timed out|timeout|connection reset|connection aborted|remote end closed|"
                          r"temporarily unavailable|bad gateway|service unavailable|gateway time-out|"
                          r"response code 50[234]|status code 50[234]", re.IGNORECASE)


def retry_interval() -> float:
    """Seconds between tries while the server does not answer: ``MTL_TRACKING_RETRY_INTERVAL``, else 30."""
    raw = os.environ.get(RETRY_ENV, "").strip()
    if not raw:
        return RETRY_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{RETRY_ENV} must be a number of seconds > 0; received {raw!r}")
    return value


class TrackingUnreachable(ValueError):
    """The tracking server does not answer (one line: where, and why)."""


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` means the tracking server is down or unreachable (not a refusal)."""
    import requests

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError,
                              TimeoutError)):
            return True
        status = getattr(error, "get_http_status_code", lambda: None)()
        if isinstance(status, int) and status in (502, 503, 504):
            return True
        if _UNREACHABLE.search(str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


def reason(error: BaseException) -> str:
    """A few words on why the server did not answer."""
    text = " ".join(str(e) for e in _chain(error))
    for pattern, words in (("refused", "connection refused"), ("timed out|timeout", "timed out"),
                           ("Name or service not known", "unknown host"),
                           ("aborted|RemoteDisconnected|reset by peer|remote end closed", "connection closed"),
                           ("response code 50[234]|status code 50[234]|unavailable|bad gateway", "server error"),
                           ("Max retries exceeded|Failed to establish", "no connection")):
        if re.search(pattern, text, re.IGNORECASE):
            return words
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return first[:80]


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


@contextlib.contextmanager
def quick_requests() -> Iterator[None]:
    """MLflow's HTTP calls without retries and with a short timeout, inside the block."""
    saved = {key: os.environ.get(key) for key in QUICK_REQUESTS}
    os.environ.update(QUICK_REQUESTS)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Down(Exception):
    """Sending stopped: the server does not answer."""

    def __init__(self, error: BaseException):
        super().__init__(reason(error))
        self.error = error


def send_pending(journal: Journal, client: Any, tracking_uri: str) -> tuple[int, list[str]]:
    """Sends a journal's pending entries in order; returns (entries sent, refusals).

    An entry MLflow refuses (not a connection problem) is recorded as sent with the refusal
    as its note, so it does not block the ones after it.

    Raises:
        _Down: the server stopped answering; the entries from there on wait.
    """
    sent, refused = 0, []
    with journal.sending():
        run_id = journal.run_id
        for entry in journal.pending():
            try:
                with quick_requests():
                    result = send_entry(client, run_id, entry, tracking_uri)
            except Exception as err:  # noqa: BLE001 - sorted into "down" and "refused" here
                if is_unreachable(err):
                    raise _Down(err) from err
                note = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                journal.mark_sent(entry["seq"], note=f"refused: {note}")
                refused.append(f"{entry['op']} (entry {entry['seq']}): {note}")
                continue
            journal.mark_sent(entry["seq"], result)
            sent += 1
    return sent, refused


def send_entry(client: Any, run_id: str, entry: Mapping[str, Any], tracking_uri: str | None = None) -> Any:
    """Sends one journal entry to MLflow; returns what it produced (a registration's version)."""
    from mlflow.entities import Metric, Param, RunTag

    op = entry["op"]
    if op == "params":
        params = [Param(key, value) for key, value in entry["params"].items()]
        for batch in _batches(params, MAX_PARAMS_PER_BATCH):
            client.log_batch(run_id, params=batch)
    elif op == "metrics":
        metrics = [Metric(key, value, timestamp, step) for key, value, timestamp, step in entry["metrics"]]
        for batch in _batches(metrics, MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=batch)
    elif op == "tags":
        tags = [RunTag(key, value) for key, value in entry["tags"].items()]
        for batch in _batches(tags, MAX_PARAMS_PER_BATCH):
            client.log_batch(run_id, tags=batch)
    elif op == "artifact":
        client.log_artifact(run_id, entry["path"], entry.get("artifact_path"))
    elif op == "artifacts":
        client.log_artifacts(run_id, entry["path"], entry.get("artifact_path"))
    elif op == "register":
        from mtl_tf.tracking.registry import register_export

        primary = {task: tuple(value) for task, value in entry["primary"].items()}
        return register_export(run_id, entry["export_dir"], entry["name"], entry["metrics"], primary,
                               tags=entry.get("tags"), tracking_uri=tracking_uri, once=True)
    elif op == "terminate":
        client.set_terminated(run_id, status=entry["status"], end_time=entry.get("end_time"))
    else:
        raise ValueError(f"unknown journal entry op {op!r} (entry {entry.get('seq')})")
    return None


def sync(path: str | os.PathLike, tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """Sends what the journals under ``path`` still hold (``mtl tracking sync``).

    Args:
        path: a run folder (``<output_dir>``, holding ``tracking/``), a journal root or one
            run's journal folder.
        tracking_uri: send there instead of the URI each journal recorded.

    Returns:
        One dict per journal: ``run_id``, ``tracking_uri``, ``sent``, ``pending`` (left),
        ``refused`` (what MLflow refused, with why) and ``registered`` (versions).

    Raises:
        FileNotFoundError: no journal under ``path``.
        TrackingUnreachable: a server does not answer (what could be sent before was sent).
    """
    journals = Journal.all_under(path)
    if not journals:
        raise FileNotFoundError(f"no tracking journal under {os.fspath(path)!r} (a run folder holds tracking/<run "
                                "id>/journal.jsonl once `mtl run` has tracked a run there)")
    report = []
    for journal in journals:
        uri = tracking_uri or journal.info["tracking_uri"]
        before = len(journal.pending())
        sent, refused = 0, []
        if before:
            try:
                sent, refused = send_pending(journal, make_client(uri), uri)
            except _Down as down:
                left = len(journal.pending())
                raise TrackingUnreachable(
                    f"MLflow at {uri} does not answer ({down}); run {journal.run_id}: {left} entries still wait in "
                    f"{journal.folder}; run this again once it answers") from None
        registered = [v for v in journal.results().values() if isinstance(v, int)]
        report.append({"run_id": journal.run_id, "tracking_uri": uri, "sent": sent, "pending": len(journal.pending()),
                       "refused": refused, "registered": registered, "folder": str(journal.folder)})
    return report


class TrackedRun:
    """An MLflow run that ends FINISHED, or FAILED when an exception escapes the block.

    Args:
        experiment: the experiment name; created when it does not exist.
        run_name: a readable name for the run.
        tracking_uri: resolved with :func:`resolve_tracking_uri` (``--tracking-uri``, then
            ``MLFLOW_TRACKING_URI``, then ``sqlite:///<cwd>/mlflow.db``).
        artifact_location: where a new experiment stores artifacts; default MLflow's.
        tags: run tags set at creation.
        journal_dir: keep a local journal there and survive the server going away (see the
            module docstring); None sends straight to MLflow.
        resume: with ``journal_dir``, continue the newest run of the journal when it never
            ended (its process was killed) rather than start a new one.
        retry_interval: seconds between tries while the server does not answer.
        echo: where the warning lines go (default stderr).

    Example:
        >>> with TrackedRun("fraud_signals", run_name="hps", journal_dir="artifacts/fraud/tracking") as run:
        ...     run.log_params(flatten(recipe))
        ...     run.log_epoch(0, {"default_risk/auc": 0.81})
    """

    def __init__(self, experiment: str, run_name: str | None = None, tracking_uri: str | None = None,
                 artifact_location: str | Path | None = None, tags: Mapping[str, Any] | None = None,
                 journal_dir: str | Path | None = None, resume: bool = False,
                 retry_interval: float = RETRY_INTERVAL_S, echo: Callable[[str], Any] | None = None):
        if not experiment or not str(experiment).strip():
            raise ValueError(f"experiment must be a non-empty name; got {experiment!r}")
        self.experiment = str(experiment)
        self.run_name = run_name
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.artifact_location = str(artifact_location) if artifact_location else None
        self.journal_dir = None if journal_dir is None else Path(journal_dir)
        self.resume, self.retry_interval = resume, float(retry_interval)
        self.echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
        self._tags = dict(tags or {})
        self._client: Any = None
        self._run_id: str | None = None
        self.experiment_id: str | None = None
        self.undefined_metrics: set[str] = set()
        self.journal: Journal | None = None
        self.resumed = False
        self._down_since: float | None = None
        self._retry_at = 0.0

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "TrackedRun":
        self._client = make_client(self.tracking_uri)
        if self.journal_dir is not None and self.resume and self._reattach():
            return self
        try:
            with quick_requests() if self.journal_dir is not None else contextlib.nullcontext():
                self.experiment_id = self._experiment_id()
                run = self._client.create_run(self.experiment_id, run_name=self.run_name,
                                              tags={k: _tag_value(v) for k, v in self._tags.items()})
        except Exception as err:  # noqa: BLE001
            if self.journal_dir is not None and is_unreachable(err):
                raise TrackingUnreachable(f"MLflow at {self.tracking_uri} does not answer ({reason(err)}); a run "
                                          "starts only once it does: start it, or pass another --tracking-uri") from None
            raise
        self._run_id = run.info.run_id
        if self.journal_dir is not None:
            self.journal = Journal.create(self.journal_dir, self._run_id, {
                "tracking_uri": self.tracking_uri, "experiment": self.experiment,
                "experiment_id": self.experiment_id, "run_name": self.run_name,
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        return self

    def _reattach(self) -> bool:
        """Continues the journal's newest run if it never ended and went to the same place."""
        journal = Journal.latest(self.journal_dir)
        if journal is None:
            return False
        info = journal.info
        if info.get("ended") or info.get("tracking_uri") != self.tracking_uri or info.get("experiment") != self.experiment:
            return False
        self.journal, self._run_id, self.experiment_id = journal, info["run_id"], info.get("experiment_id")
        self.resumed = True
        self._flush()  # what the killed process had not sent yet
        return True

    def __exit__(self, exc_type, exc, traceback) -> bool:
        status = "FINISHED" if exc_type is None else "FAILED"
        if self.journal is None:
            self._client.set_terminated(self.run_id, status=status)
            return False
        self._write("terminate", status=status, end_time=int(time.time() * 1000), final=True)
        self.journal.write_info({**self.journal.info, "ended": status})
        left = len(self.journal.pending())
        if left:
            self.echo(f"warning: {left} tracking entries of run {self.run_id} are not sent yet (no answer from "
                      f"{self.tracking_uri}); they wait in {self.journal.folder}: run `mtl tracking sync "
                      f"{self.journal_dir.parent}` once it answers")
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

    @property
    def pending(self) -> int:
        """Journal entries not sent yet (0 without a journal)."""
        return 0 if self.journal is None else len(self.journal.pending())

    # --- sending -----------------------------------------------------------------------
    def _write(self, op: str, final: bool = False, **fields: Any) -> Any:
        """Journals one call and sends what waits (without a journal: sends it at once)."""
        if self.journal is None:
            return send_entry(self._client, self.run_id, {"op": op, **fields}, self.tracking_uri)
        entry = self.journal.append(op, **fields)
        self._flush(final)
        return self.journal.results().get(entry["seq"])

    def _flush(self, final: bool = False) -> None:
        if self._down_since is not None and not final and time.monotonic() < self._retry_at:
            return
        try:
            sent, refused = send_pending(self.journal, self._client, self.tracking_uri)
        except _Down as down:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self.echo(f"warning: MLflow at {self.tracking_uri} does not answer ({down}); the run goes on and "
                          f"its params, metrics and artifacts wait in {self.journal.folder}, sent when it answers "
                          f"again (tried every {self.retry_interval:g}s) or by `mtl tracking sync "
                          f"{self.journal_dir.parent}`")
            self._retry_at = time.monotonic() + self.retry_interval
            return
        for refusal in refused:
            self.echo(f"warning: MLflow refused {refusal}; the run goes on")
        if self._down_since is not None:
            self._down_since = None
            self.echo(f"MLflow at {self.tracking_uri} answers again: sent the {sent} entries that waited")

    def logged_steps(self, key: str) -> set[int]:
        """The steps at which this run's journal holds metric ``key`` (empty without a journal)."""
        if self.journal is None:
            return set()
        return {int(step) for entry in self.journal.entries() if entry["op"] == "metrics"
                for name, _, _, step in entry["metrics"] if name == key}

    # --- logging -----------------------------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Logs a flat dict; values become strings cut to MLflow's 6000 characters."""
        self._write("params", params={str(key): _param_value(value) for key, value in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Logs numbers at ``step`` (default 0); names may hold '/', as in ``task/metric``.

        A NaN value (an undefined metric, such as an AUC on a split with one class) is not
        logged, since MLflow would show it as a number: its name joins
        :attr:`undefined_metrics` and the run tag ``mtl.undefined_metrics``.
        """
        now = int(time.time() * 1000)
        numbers = {str(key): _number(key, value) for key, value in metrics.items()}
        entries = [[key, value, now, int(step or 0)] for key, value in numbers.items() if not math.isnan(value)]
        if entries:
            self._write("metrics", metrics=entries)
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
        self._write("tags", tags={str(key): _tag_value(value) for key, value in tags.items()})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copies one file into the run's artifacts (under ``artifact_path`` when given)."""
        self._write("artifact", path=str(_existing(path).resolve()), artifact_path=artifact_path)

    def log_artifacts(self, paths: str | Path | Sequence[str | Path], artifact_path: str | None = None) -> None:
        """Copies a folder's contents, or each file of a list, into the run's artifacts."""
        if isinstance(paths, (str, Path)) and Path(paths).is_dir():
            self._write("artifacts", path=str(Path(paths).resolve()), artifact_path=artifact_path)
            return
        for path in [paths] if isinstance(paths, (str, Path)) else paths:
            self.log_artifact(path, artifact_path)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Saves a matplotlib or plotly figure as ``artifact_file`` (e.g. ``plots/loss.png``)."""
        if self.journal is None:
            self._client.log_figure(self.run_id, figure, artifact_file)
            return
        path = self.journal.folder / "figures" / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path) if hasattr(figure, "savefig") else figure.write_image(str(path))
        self.log_artifact(path, str(Path(artifact_file).parent) if Path(artifact_file).parent != Path(".") else None)

    def register_export(self, export_dir: str | Path, name: str, metrics: Mapping[str, float],
                        primary: Mapping[str, tuple[str, bool]], tags: Mapping[str, Any] | None = None) -> int | None:
        """Registers the run's export as a new version of ``name`` (see
        :func:`mtl_tf.tracking.registry.register_export`); with a journal, the registration
        waits there while the server does not answer.

        Returns:
            The version number, or None when the registration waits in the journal.
        """
        from mtl_tf.tracking.registry import metric_tags, primary_tags

        metric_tags(metrics), primary_tags(primary, metrics)  # refuse bad input now, not at sync time
        if not Path(export_dir).is_dir():
            raise FileNotFoundError(f"no export folder at {str(export_dir)!r}; run the export first")
        return self._write("register", export_dir=str(Path(export_dir).resolve()), name=name,
                           metrics={str(k): float(v) for k, v in metrics.items()},
                           primary={task: [metric, bool(higher)] for task, (metric, higher) in primary.items()},
                           tags={str(k): str(v) for k, v in (tags or {}).items()})


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
