"""Promotion moves an alias (``champion``, ``challenger``) to a model version behind a gate.

The gate compares the candidate with the alias's current holder task by task on each task's
primary metric (from the version tags written by :func:`register_export`) and refuses a
regression beyond the tolerance unless forced with a reason. The reason, the previous
holder and the comparison are kept as tags on the promoted version, so the registry itself
records why an alias moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mtl_tf.tracking._client import is_not_found, make_client
from mtl_tf.tracking.registry import get_registered_model, model_versions, version_primary


class PromotionRefused(ValueError):
    """The candidate regresses on at least one task; ``comparison`` has every task's numbers."""

    def __init__(self, message: str, comparison: dict[str, dict[str, Any]]):
        super().__init__(message)
        self.comparison = comparison


@dataclass(frozen=True)
class PromotionResult:
    """What a promotion did.

    Attributes:
        name, version, alias: the model, the version now holding the alias, the alias.
        previous: the version that held the alias before, or None.
        forced: whether a regression was overridden.
        reason: the reason given, if any.
        comparison: task -> {metric, higher_is_better, candidate, current, delta, regressed}.
    """

    name: str
    version: int
    alias: str
    previous: int | None
    forced: bool = False
    reason: str | None = None
    comparison: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def regressed(self) -> list[str]:
        return [task for task, row in self.comparison.items() if row["regressed"]]


def promote(name: str, version: int | str, alias: str = "champion", force: bool = False,
            reason: str | None = None, tolerance: float = 0.002,
            tracking_uri: str | None = None) -> PromotionResult:
    """Points ``alias`` at ``version`` if it does not regress against the current holder.

    Args:
        name: the registered model name.
        version: the candidate version number.
        alias: the alias to move.
        force: promote despite a regression; needs ``reason``.
        reason: why; recorded as a version tag (required with ``force``).
        tolerance: the largest drop of a primary metric (in its own units) still accepted.
        tracking_uri: as :func:`mtl_tf.tracking.resolve_tracking_uri`.

    Returns:
        A :class:`PromotionResult`.

    Raises:
        ValueError: unknown model or version, ``force`` without a reason, a bad tolerance.
        PromotionRefused: a task's primary metric regresses beyond ``tolerance``.
    """
    reason = (reason or "").strip() or None
    if force and not reason:
        raise ValueError("force=True needs a non-empty reason (--reason TEXT); it is recorded on "
                         "the version so the registry shows why a regression was accepted")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0; got {tolerance!r}")
    client = make_client(tracking_uri)
    candidate = _find_version(client, name, version)
    holder = _holder(client, name, alias)
    comparison = {} if holder is None or holder.version == candidate.version else \
        compare_versions(candidate.tags, holder.tags, tolerance)
    regressed = [task for task, row in comparison.items() if row["regressed"]]
    if regressed and not force:
        raise PromotionRefused(_refusal(name, candidate, alias, holder, comparison, regressed,
                                        tolerance), comparison)
    previous = int(holder.version) if holder is not None else None
    _record(client, name, candidate.version, alias, previous, comparison, bool(regressed), reason)
    client.set_registered_model_alias(name, alias, str(candidate.version))
    return PromotionResult(name=name, version=int(candidate.version), alias=alias, previous=previous,
                           forced=bool(regressed), reason=reason, comparison=comparison)


def compare_versions(candidate_tags: dict[str, str], current_tags: dict[str, str],
                     tolerance: float) -> dict[str, dict[str, Any]]:
    """Task by task on the current holder's primary metrics.

    A task the candidate has no value for counts as a regression; a task the holder has no
    value for cannot be compared and is left out.
    """
    comparison = {}
    for task, current in version_primary(current_tags).items():
        if current["value"] is None:
            continue
        metric = current["metric"]
        value = candidate_tags.get(f"metric.{task}.{metric}")
        value = float(value) if value is not None else None
        higher = current["higher_is_better"]
        delta = None if value is None else value - current["value"]
        worse = delta is None or (-delta if higher else delta) > tolerance
        comparison[task] = {"metric": metric, "higher_is_better": higher, "candidate": value,
                            "current": current["value"], "delta": delta, "regressed": worse}
    return comparison


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


def _record(client: Any, name: str, version: str, alias: str, previous: int | None,
            comparison: dict, forced: bool, reason: str | None) -> None:
    tags = {"previous": "none" if previous is None else str(previous),
            "comparison": json.dumps(comparison, sort_keys=True),
            "forced": "true" if forced else "false",
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if reason:
        tags["reason"] = reason
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), f"promotion.{alias}.{key}", value)


def _refusal(name: str, candidate: Any, alias: str, holder: Any, comparison: dict,
             regressed: list[str], tolerance: float) -> str:
    lines = [f"promotion of '{name}' version {candidate.version} to '{alias}' refused: it regresses "
             f"against version {holder.version} on {len(regressed)} task(s) beyond tolerance {tolerance:g}:"]
    for task in regressed:
        row = comparison[task]
        shown = "missing" if row["candidate"] is None else f"{row['candidate']:.6g}"
        direction = "higher" if row["higher_is_better"] else "lower"
        lines.append(f"  {task}: {row['metric']} {shown} vs {row['current']:.6g} "
                     f"({direction} is better)")
    lines.append("pass force=True with a reason (--force --reason TEXT) to promote anyway")
    return "\n".join(lines)
