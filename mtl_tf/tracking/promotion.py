"""Promotion moves an alias (``champion``, ``challenger``) to a model version behind a gate.

The gate compares the candidate with the alias's current holder task by task on each task's
primary metric (from the version tags written by :func:`register_export`). It refuses, unless
forced with a reason:

- a regression beyond the tolerance;
- a candidate whose primary metric is missing or undefined (NaN, e.g. an AUC on a split with
  one class), whether or not the alias has a holder;
- a comparison where nothing could be compared (the holder has no value for any task).

A task the holder has no value for is reported as not compared. The reason, the previous
holder and the comparison are kept as tags on the promoted version, written after the alias
has moved, so the registry never records a promotion that did not happen; the registered
model keeps an audit trail too, one tag per promotion of an alias
(``promotion.<alias>.log.<n>``: version, previous, forced, reason, when, by whom).

**Promotions that race.** MLflow aliases have no compare-and-set: the last writer wins. So
the move is guarded by a lock held in the registry itself, which every backend (file, SQLite,
PostgreSQL, a tracking server over HTTP) makes atomic: creating a registered model whose name
is taken fails. :class:`AliasLock` creates ``mtl-lock.<model>.<alias>`` (tagged with a
token, the holder and a lease) and deletes it when done. Under it, the promotion reads the
alias again and moves it only if it still points where it did when the gate compared; so of
two promotions of one alias started together exactly one moves it, and the other is refused
with :class:`PromotionConflict` saying why (the lock was held, or the alias moved). A lock
whose holder died is taken over once its lease (:data:`LEASE_S`) has passed. Lock models are
left out of ``mtl models list``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from mtl_tf.tracking._client import is_not_found, make_client
from mtl_tf.tracking.registry import METRIC_PREFIX, get_registered_model, model_versions, version_primary

# How a library caller overrides the gate; the CLI says ``--force --reason TEXT`` instead.
FORCE_HINT = "pass force=True with a reason to promote anyway"

# The registered model that locks one alias while a promotion moves it, and how long it holds.
LOCK_PREFIX = "mtl-lock."
LEASE_S = 60.0
LOG_KEY = "log"

# Row statuses: compared (ok, regressed), refused without comparison (missing, undefined),
# or left out because the holder has no value (not_compared).
COMPARED = ("ok", "regressed")
REFUSED = ("regressed", "missing", "undefined")


class PromotionRefused(ValueError):
    """The gate refused the candidate.

    Attributes:
        details: why, task by task, without the line on how to override it.
        comparison: task -> row (see :func:`compare_versions`).
    """

    def __init__(self, details: str, comparison: dict[str, dict[str, Any]], hint: str = FORCE_HINT):
        super().__init__(f"{details}\n{hint}")
        self.details = details
        self.comparison = comparison


class PromotionConflict(ValueError):
    """The alias moved to another version while this promotion compared against its holder."""


class PromotionNotRecorded(RuntimeError):
    """The alias moved, but the tags recording the promotion could not all be written."""


@dataclass(frozen=True)
class PromotionResult:
    """What a promotion did.

    Attributes:
        name, version, alias: the model, the version now holding the alias, the alias.
        previous: the version that held the alias before, or None.
        forced: whether the gate's refusal was overridden.
        reason: the reason given, if any.
        comparison: task -> row (see :func:`compare_versions`).
        overridden: what the gate would have refused, when forced.
    """

    name: str
    version: int
    alias: str
    previous: int | None
    forced: bool = False
    reason: str | None = None
    comparison: dict[str, dict[str, Any]] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> list[str]:
        """Tasks the gate refused: a regression, or a missing or undefined candidate value."""
        return [task for task, row in self.comparison.items() if row["regressed"]]

    @property
    def not_compared(self) -> list[str]:
        """Tasks the holder had no value for."""
        return [task for task, row in self.comparison.items() if row["status"] == "not_compared"]


def promote(name: str, version: int | str, alias: str = "champion", force: bool = False,
            reason: str | None = None, tolerance: float = 0.002,
            tracking_uri: str | None = None, expect_current: int | str | None = None) -> PromotionResult:
    """Points ``alias`` at ``version`` if the gate lets it through.

    Args:
        name: the registered model name.
        version: the candidate version number.
        alias: the alias to move.
        force: promote despite a refusal; needs ``reason``.
        reason: why; recorded as a version tag (required with ``force``).
        tolerance: the largest drop of a primary metric (in its own units) still accepted.
        tracking_uri: as :func:`mtl_tf.tracking.resolve_tracking_uri`.
        expect_current: the version the alias must point at now (``"none"``: no version),
            else the promotion is refused with PromotionConflict; default: whatever it is.

    Returns:
        A :class:`PromotionResult`.

    Raises:
        ValueError: unknown model or version, ``force`` without a reason, a bad tolerance.
        PromotionRefused: a task regresses beyond ``tolerance``, the candidate's primary
            metric is missing or undefined, or nothing could be compared with the holder.
        PromotionConflict: the alias moved while the candidate was being compared, another
            promotion of it holds its lock, or it does not point at ``expect_current``.
        PromotionNotRecorded: the alias moved but its record could not be written.
    """
    reason = (reason or "").strip() or None
    if force and not reason:
        raise ValueError("force=True needs a non-empty reason; it is recorded on the version so the "
                         "registry shows why the gate was overridden")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0; got {tolerance!r}")
    expected = _expected(expect_current)
    client = make_client(tracking_uri)
    candidate = _find_version(client, name, version)
    return gate_and_move(client, name, candidate, alias, force, reason, tolerance, expected)


def _expected(value: int | str | None) -> int | None | str:
    """``expect_current`` as a version number, None for "no version", or "any"."""
    if value is None:
        return "any"
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expect_current must be a version number or 'none'; received {value!r}") from None


def gate_and_move(client: Any, name: str, candidate: Any, alias: str, force: bool, reason: str | None,
                  tolerance: float, expected: int | None | str = "any") -> PromotionResult:
    """The whole promotion of one alias: read its holder, compare, move the alias, record.

    Two promotions of the same alias must not interleave between reading the holder and
    moving the alias. MLflow aliases have no compare-and-set, so the move happens under the
    alias's :class:`AliasLock`, after :func:`_check_holder` has read the holder again and
    found it unchanged.
    """
    holder = _holder(client, name, alias)
    if expected != "any" and (None if holder is None else int(holder.version)) != expected:
        raise PromotionConflict(
            f"alias '{alias}' of '{name}' points at {_shown(None if holder is None else int(holder.version))}, not "
            f"{_shown(expected)} as expected; nothing was changed")
    comparison, problems = judge(candidate, holder, tolerance)
    if problems and not force:
        raise PromotionRefused(_refusal(name, candidate, alias, holder, problems), comparison)
    with AliasLock(client, name, alias):
        _check_holder(client, name, alias, holder)
        client.set_registered_model_alias(name, alias, str(candidate.version))
        previous = int(holder.version) if holder is not None else None
        result = PromotionResult(name=name, version=int(candidate.version), alias=alias, previous=previous,
                                 forced=bool(problems), reason=reason, comparison=comparison,
                                 overridden=problems)
        _record(client, result)
    return result


def lock_name(name: str, alias: str) -> str:
    """The registered model that locks ``alias`` of ``name``."""
    return f"{LOCK_PREFIX}{name}.{alias}"


def is_lock(name: str) -> bool:
    return name.startswith(LOCK_PREFIX)


class AliasLock:
    """Holds the lock of one alias (see the module docstring) for a ``with`` block.

    Args:
        client: an MlflowClient.
        name: the registered model.
        alias: the alias.
        lease_s: how long the lock holds if its holder dies without releasing it.

    Raises (on entering):
        PromotionConflict: another promotion of the alias holds the lock.
    """

    def __init__(self, client: Any, name: str, alias: str, lease_s: float = LEASE_S):
        self.client, self.name, self.alias, self.lease_s = client, name, alias, float(lease_s)
        self.model = lock_name(name, alias)
        self.token = uuid.uuid4().hex
        self.holder = f"{socket.gethostname()}:{os.getpid()}"

    def __enter__(self) -> "AliasLock":
        if self._create():
            return self
        tags = self._tags()
        if tags is not None and float(tags.get("mtl.lock.expires", "0")) < time.time():
            self._delete_if(tags.get("mtl.lock.token"))  # its holder died: the lease is over
            if self._create():
                return self
            tags = self._tags()
        since = "" if tags is None else f" since {tags.get('mtl.lock.since', '?')}"
        by = "another process" if tags is None else tags.get("mtl.lock.holder", "another process")
        raise PromotionConflict(f"another promotion of alias '{self.alias}' of '{self.name}' is under way (held by "
                                f"{by}{since}); nothing was changed, run the promotion again once it ends")

    def __exit__(self, *exc: Any) -> bool:
        self._delete_if(self.token)
        return False

    def _create(self) -> bool:
        from mlflow.exceptions import MlflowException

        now = time.time()
        tags = {"mtl.lock.token": self.token, "mtl.lock.holder": self.holder,
                "mtl.lock.since": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
                "mtl.lock.expires": repr(now + self.lease_s)}
        try:
            self.client.create_registered_model(
                self.model, tags=tags, description=f"lock of alias '{self.alias}' of '{self.name}' while a "
                                                   "promotion moves it (mtl); deleted when it ends")
        except MlflowException as error:
            if getattr(error, "error_code", "") == "RESOURCE_ALREADY_EXISTS" or "already exists" in str(error):
                return False
            raise
        return True

    def _tags(self) -> dict[str, str] | None:
        from mlflow.exceptions import MlflowException

        try:
            return dict(self.client.get_registered_model(self.model).tags or {})
        except MlflowException as error:
            if is_not_found(error):
                return None
            raise

    def _delete_if(self, token: str | None) -> None:
        """Deletes the lock when it still holds ``token`` (so a late release never frees another's lock)."""
        from mlflow.exceptions import MlflowException

        tags = self._tags()
        if tags is None or tags.get("mtl.lock.token") != token:
            return
        try:
            self.client.delete_registered_model(self.model)
        except MlflowException as error:
            if not is_not_found(error):
                raise


def judge(candidate: Any, holder: Any | None, tolerance: float) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(comparison, problems): the rows of the comparison and why the gate refuses (empty: it passes).

    Without a holder (or when the candidate already holds the alias) only the candidate's own
    primary metrics are checked.
    """
    tags = dict(candidate.tags or {})
    problems = []
    if not version_primary(tags):
        problems.append(f"version {candidate.version} has no primary metric tags (register it with "
                        "register_export, which records each task's primary metric)")
    rival = None if holder is None or int(holder.version) == int(candidate.version) else holder
    if rival is None:
        comparison = {task: row for task, row in compare_versions(tags, {}, tolerance).items()
                      if row["status"] in REFUSED}
    else:
        comparison = compare_versions(tags, dict(rival.tags or {}), tolerance)
    problems += [_problem(task, row, candidate, tolerance)
                 for task, row in comparison.items() if row["status"] in REFUSED]
    if rival is not None and all(row["status"] == "not_compared" for row in comparison.values()):
        left_out = ", ".join(f"{t} ({r['note']})" for t, r in comparison.items()) or \
            "neither version has a primary metric"
        problems.append(f"nothing could be compared with version {rival.version}: {left_out}")
    return comparison, problems


def compare_versions(candidate_tags: Mapping[str, str], current_tags: Mapping[str, str],
                     tolerance: float) -> dict[str, dict[str, Any]]:
    """Task by task on the primary metrics of either version (the holder's metric first).

    Each row: ``{metric, higher_is_better, candidate, current, delta, status, regressed, note}``
    where ``status`` is ``ok`` or ``regressed`` (compared), ``missing`` or ``undefined`` (the
    candidate has no finite value: refused) or ``not_compared`` (the holder has none), and
    ``regressed`` is True for every status the gate refuses.
    """
    candidate, current = version_primary(candidate_tags), version_primary(current_tags)
    comparison = {}
    for task in [*current, *(t for t in candidate if t not in current)]:
        reference = current.get(task) or candidate[task]
        metric, higher = reference["metric"], reference["higher_is_better"]
        comparison[task] = _row(metric, higher, _tag_value(candidate_tags, task, metric),
                                _tag_value(current_tags, task, metric), tolerance)
    return comparison


def _row(metric: str, higher: bool, value: float | None, current: float | None,
         tolerance: float) -> dict[str, Any]:
    row = {"metric": metric, "higher_is_better": higher, "candidate": value, "current": current,
           "delta": None, "status": "ok", "regressed": False, "note": None}
    if value is None:
        row.update(status="missing", note=f"the candidate has no {metric}")
    elif not math.isfinite(value):
        row.update(status="undefined", note=f"the candidate's {metric} is undefined ({value})")
    elif current is None or not math.isfinite(current):
        row.update(status="not_compared", note=f"the holder has no {metric}" if current is None
                   else f"the holder's {metric} is undefined ({current})")
        return row
    else:
        row["delta"] = value - current
        worse = -row["delta"] if higher else row["delta"]
        row["status"] = "regressed" if worse > tolerance else "ok"
    row["regressed"] = row["status"] in REFUSED
    return row


def _tag_value(tags: Mapping[str, str], task: str, metric: str) -> float | None:
    raw = tags.get(f"{METRIC_PREFIX}{task}.{metric}")
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return float("nan")


def _problem(task: str, row: Mapping[str, Any], candidate: Any, tolerance: float) -> str:
    direction = "higher" if row["higher_is_better"] else "lower"
    if row["status"] == "regressed":
        return (f"{task}: {row['metric']} {row['candidate']:.6g} vs {row['current']:.6g} "
                f"({direction} is better), beyond tolerance {tolerance:g}")
    shown = "missing" if row["status"] == "missing" else f"undefined ({row['candidate']})"
    return f"{task}: {row['metric']} {shown} on version {candidate.version}"


def _refusal(name: str, candidate: Any, alias: str, holder: Any | None, problems: list[str]) -> str:
    held = "no version" if holder is None else f"version {holder.version}"
    lines = [f"promotion of '{name}' version {candidate.version} to '{alias}' (held by {held}) refused:"]
    return "\n".join(lines + [f"  {problem}" for problem in problems])


def _find_version(client: Any, name: str, version: int | str) -> Any:
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise ValueError(f"version must be a whole number; got {version!r}") from None
    get_registered_model(client, name)
    versions = model_versions(client, name)
    for candidate in versions:
        if int(candidate.version) == number:
            return candidate
    existing = ", ".join(str(v.version) for v in versions) or "none"
    raise ValueError(f"model '{name}' has no version {number}; existing versions: {existing}")


def _holder(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if is_not_found(error):
            return None
        raise


def _check_holder(client: Any, name: str, alias: str, holder: Any | None) -> None:
    """Refuses when the alias no longer points where it did when the comparison started."""
    now = _holder(client, name, alias)
    before = None if holder is None else int(holder.version)
    after = None if now is None else int(now.version)
    if before != after:
        raise PromotionConflict(
            f"alias '{alias}' of '{name}' moved from {_shown(before)} to {_shown(after)} while this "
            "promotion was comparing against it; nothing was changed, run the promotion again")


def _shown(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"


def _record(client: Any, result: PromotionResult) -> None:
    """Tags on the promoted version saying what moved and why (after the alias has moved)."""
    tags = {"previous": "none" if result.previous is None else str(result.previous),
            "comparison": json.dumps(_json_safe(result.comparison), sort_keys=True),
            "forced": "true" if result.forced else "false",
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if result.overridden:
        tags["overridden"] = json.dumps(result.overridden)
    if result.reason:
        tags["reason"] = result.reason
    written = []
    try:
        for key, value in tags.items():
            client.set_model_version_tag(result.name, str(result.version), f"promotion.{result.alias}.{key}", value)
            written.append(key)
        _log_promotion(client, result, tags["at"])
        written.append("audit log")
    except Exception as error:
        raise PromotionNotRecorded(
            f"alias '{result.alias}' of '{result.name}' now points at version {result.version} (before: "
            f"{_shown(result.previous)}), but recording the promotion failed after "
            f"{', '.join(written) or 'no tag'}: {error}") from error


def _log_promotion(client: Any, result: PromotionResult, at: str) -> None:
    """Appends the promotion to the model's audit trail: tag ``promotion.<alias>.log.<n>``
    (written under the alias's lock, so numbers never collide)."""
    entries = audit_trail(client, result.name, result.alias)
    number = (entries[-1]["n"] + 1) if entries else 1
    entry = {"version": result.version, "previous": result.previous, "forced": result.forced,
             "reason": result.reason, "at": at, "by": f"{socket.gethostname()}:{os.getpid()}"}
    client.set_registered_model_tag(result.name, f"promotion.{result.alias}.{LOG_KEY}.{number:06d}",
                                    json.dumps(entry, sort_keys=True))


def audit_trail(client: Any, name: str, alias: str) -> list[dict[str, Any]]:
    """The promotions of ``alias`` of ``name``, oldest first: ``{n, version, previous, forced, reason, at, by}``."""
    prefix = f"promotion.{alias}.{LOG_KEY}."
    tags = dict(client.get_registered_model(name).tags or {})
    entries = [{"n": int(key[len(prefix):]), **json.loads(value)} for key, value in tags.items()
               if key.startswith(prefix) and key[len(prefix):].isdigit()]
    return sorted(entries, key=lambda entry: entry["n"])


def _json_safe(value: Any) -> Any:
    """NaN and infinity as strings, so the recorded JSON stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
