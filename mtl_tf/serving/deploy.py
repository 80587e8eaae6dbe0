"""``mtl models deploy``: a registered version laid out as TF Serving loads it, and its config.

Layout of ``DIR``::

    models.config                 model_config_list (text protobuf): what the server loads
    deploy.json                   what this module wrote: versions, labels, labels still to move
    <model>/<version>/saved_model.pb, variables/, ...   one folder per registry version

``<model>/`` is the model's ``base_path`` (as the server sees it: ``--base-path`` names the
folder that holds ``DIR``'s model folders there, ``/models`` in the manifests, or a bucket).

Labels mirror the registry's aliases (``champion`` -> ``stable``, ``challenger`` ->
``canary`` by default). TF Serving refuses a label that points at a version it has not
loaded yet, so a label that must move to a version the config did not list before moves
in a second step:

1. ``mtl models deploy NAME@ALIAS --to DIR`` adds the version to the config; labels keep
   pointing at versions already listed (the served one stays listed);
2. once the server reports the new version ``AVAILABLE``, ``mtl models deploy --to DIR
   --finalize`` moves the labels (``--server HOST:PORT`` checks that first).

A label whose version was already listed moves at once. ``--keep N`` removes the oldest
versions that no label (moved or still to move) points at, keeping N versions; it never
removes the version just deployed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mtl_tf.serving.model_config import ServedModelConfig, render_model_config
from mtl_tf.serving.reference import ModelRef

CONFIG_FILE = "models.config"
STATE_FILE = "deploy.json"
STATE_SCHEMA = 1
DEFAULT_BASE_PATH = "/models"
_FOLDER_MODE = 0o755
_SERVED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ServedModel:
    """What the written config serves of one model, and the labels still to move.

    Attributes:
        name: the served name (``/v1/models/NAME``).
        registered: the registered model it comes from.
        base_path: the folder of its versions, as the server sees it.
        versions: the versions the config lists, sorted.
        labels: label -> version, as the config writes them.
        pending: label -> version, to write at ``--finalize``.
    """

    name: str
    registered: str
    base_path: str
    versions: tuple[int, ...] = ()
    labels: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)

    def config(self) -> ServedModelConfig:
        return ServedModelConfig(name=self.name, base_path=self.base_path, versions=self.versions,
                                 labels=dict(self.labels))

    def as_json(self) -> dict[str, Any]:
        return {"registered": self.registered, "base_path": self.base_path, "versions": list(self.versions),
                "labels": dict(sorted(self.labels.items())), "pending": dict(sorted(self.pending.items()))}

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any]) -> "ServedModel":
        return cls(name=name, registered=raw["registered"], base_path=raw["base_path"],
                   versions=tuple(sorted(int(v) for v in raw["versions"])),
                   labels={k: int(v) for k, v in raw.get("labels", {}).items()},
                   pending={k: int(v) for k, v in raw.get("pending", {}).items()})


@dataclass(frozen=True)
class Plan:
    """The next state of one served model and what changes to get there."""

    model: ServedModel
    pruned: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()


def plan_deploy(current: ServedModel, version: int, aliases: Mapping[str, int], mapping: Mapping[str, str],
                keep: int | None = None) -> Plan:
    """Adds ``version`` to ``current`` and moves the labels that can move now.

    Args:
        current: what the written config serves (no versions for a new model).
        version: the version being laid out.
        aliases: the registered model's aliases -> versions.
        mapping: alias -> label.
        keep: versions to keep (labelled ones and ``version`` always stay); None keeps all.

    Returns:
        A :class:`Plan`; labels that must wait for the server to load their version are in
        ``plan.model.pending``.
    """
    listed = set(current.versions)
    versions = listed | {version}
    labels, pending, notes = dict(current.labels), {}, []
    for alias, label in mapping.items():
        target = aliases.get(alias)
        if target is None or target not in versions:
            if label in labels and labels[label] != target:
                where = "has no version" if target is None else f"points at v{target}, which is not laid out here"
                notes.append(f"alias '{alias}' {where}: label '{label}' stays at v{labels[label]}")
            continue
        if target in listed:
            labels[label] = target
        elif labels.get(label) != target:
            pending[label] = target
    model = replace(current, versions=tuple(sorted(versions)), labels=labels, pending=pending)
    return _pruned(model, keep, protect={version}, notes=notes)


def plan_finalize(current: ServedModel, keep: int | None = None) -> Plan:
    """Moves every pending label of ``current``, then prunes as :func:`plan_deploy` does."""
    labels = {**current.labels, **current.pending}
    return _pruned(replace(current, labels=labels, pending={}), keep, protect=set(), notes=[])


def _pruned(model: ServedModel, keep: int | None, protect: set[int], notes: list[str]) -> Plan:
    if keep is None:
        return Plan(model=model, notes=tuple(notes))
    if keep < 1:
        raise ValueError(f"--keep must be at least 1; received {keep}")
    held = set(model.labels.values()) | set(model.pending.values()) | protect
    newest_first = sorted(model.versions, reverse=True)
    pruned = tuple(sorted(v for v in newest_first[keep:] if v not in held))
    kept = tuple(v for v in model.versions if v not in pruned)
    return Plan(model=replace(model, versions=kept), pruned=pruned, notes=tuple(notes))


@dataclass
class DeployResult:
    """What a deploy or finalize wrote."""

    root: Path
    models: list[ServedModel]
    plans: dict[str, Plan]
    laid_out: dict[str, tuple[int, Path, bool]] = field(default_factory=dict)
    source: str | None = None

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def needs_finalize(self) -> bool:
        return any(plan.model.pending for plan in self.plans.values())

    def summary(self) -> str:
        lines = []
        for name, (version, folder, fresh) in self.laid_out.items():
            how = "laid out in" if fresh else "already in"
            lines.append(f"{name} v{version} {how} {folder}" + (f" (from {self.source})" if self.source else ""))
        for name, plan in self.plans.items():
            model = plan.model
            labels = ", ".join(f"{k}=v{v}" for k, v in sorted(model.labels.items())) or "none"
            lines.append(f"{name}: serving versions {', '.join(map(str, model.versions))}; labels {labels}")
            if plan.pruned:
                lines.append(f"  pruned versions {', '.join(map(str, plan.pruned))} (no label points at them)")
            lines += [f"  note: {note}" for note in plan.notes]
        lines.append(f"models.config: {self.config_path}")
        lines += self._next_step()
        return "\n".join(lines)

    def _next_step(self) -> list[str]:
        waiting = {name: plan.model.pending for name, plan in self.plans.items() if plan.model.pending}
        if not waiting:
            return []
        lines = ["labels still to move (TF Serving only labels versions it has loaded):"]
        for name, pending in waiting.items():
            moves = ", ".join(f"{label} -> v{version}" for label, version in sorted(pending.items()))
            checks = " and ".join(f"/v1/models/{name}/versions/{v}" for v in sorted(set(pending.values())))
            lines.append(f"  {name}: {moves}; wait until GET {checks} reports state AVAILABLE")
        lines.append(f"then run: mtl models deploy --to {self.root} --finalize  (add --server HOST:8501 to check first;"
                     " a server started from this config has loaded every version: finalize right away)")
        return lines


def deploy(ref: ModelRef, root: str | Path, tracking_uri: str | None = None,
           mapping: Mapping[str, str] | None = None, keep: int | None = None, base_path: str | None = None,
           served_name: str | None = None, echo: Callable[[str], Any] = lambda line: None) -> DeployResult:
    """Lays the version ``ref`` names out in ``root`` and writes ``models.config`` (step 1).

    Args:
        ref: the registered version (``NAME@ALIAS`` or ``NAME/VERSION``).
        root: the deployment folder.
        tracking_uri: as :func:`mtl_tf.tracking.resolve_tracking_uri`.
        mapping: alias -> label; default :data:`mtl_tf.serving.labels.DEFAULT_LABELS`.
        keep: versions to keep (see :func:`plan_deploy`).
        base_path: the folder holding the model folders as the server sees it (default
            ``/models``, or what the model was deployed with before).
        served_name: the name clients use; default the registered name.
        echo: progress lines.

    Returns:
        A :class:`DeployResult`.
    """
    from mtl_tf.serving.labels import DEFAULT_LABELS
    from mtl_tf.serving.registered import resolve_version

    root = Path(root)
    name = check_served_name(served_name or ref.name, given=served_name is not None)
    models = read_state(root)
    version = resolve_version(ref, tracking_uri)
    current = models.get(name) or ServedModel(name=name, registered=ref.name,
                                              base_path=_base_path(base_path or DEFAULT_BASE_PATH, name))
    if current.registered != ref.name:
        raise ValueError(f"{root} serves '{name}' from registered model '{current.registered}', not '{ref.name}'; "
                         "pass --name to serve it under another name")
    if base_path is not None:
        current = replace(current, base_path=_base_path(base_path, name))
    folder, fresh = lay_out(version, root / name, tracking_uri, echo)
    plan = plan_deploy(current, version.version, version.aliases, mapping or DEFAULT_LABELS, keep)
    models[name] = plan.model
    _remove_versions(root / name, plan.pruned)
    write_state(root, models)
    return DeployResult(root=root, models=list(models.values()), plans={name: plan},
                        laid_out={name: (version.version, folder, fresh)}, source=ref.uri)


def finalize(root: str | Path, keep: int | None = None, names: Sequence[str] = (),
             server: str | None = None, timeout: float = 10.0) -> DeployResult:
    """Moves the labels step 1 left pending (step 2), for every model or those in ``names``.

    Args:
        root: the deployment folder.
        keep: versions to keep (see :func:`plan_deploy`).
        names: served names to finalize; default all.
        server: ``HOST:PORT`` of TF Serving's REST API: refuse unless it reports every
            version a label moves to as ``AVAILABLE``.
        timeout: seconds per status request.

    Raises:
        ValueError: nothing deployed in ``root``, an unknown name, or the server does not
            have a version available yet.
    """
    root = Path(root)
    models = read_state(root)
    if not models:
        raise ValueError(f"{root} holds no deployment ({STATE_FILE} is missing); deploy a model first: "
                         f"mtl models deploy NAME@champion --to {root}")
    unknown = [n for n in names if n not in models]
    if unknown:
        raise ValueError(f"{root} serves no model {', '.join(unknown)}; it serves {', '.join(models)}")
    plans = {}
    for name in names or list(models):
        if server is not None:
            _check_available(server, name, sorted(set(models[name].pending.values())), timeout)
        plans[name] = plan_finalize(models[name], keep)
        models[name] = plans[name].model
        _remove_versions(root / name, plans[name].pruned)
    write_state(root, models)
    return DeployResult(root=root, models=list(models.values()), plans=plans)


def check_served_name(name: str, given: bool = True) -> str:
    """``name`` if TF Serving can serve it in a URL path, else a ValueError."""
    if not _SERVED_NAME.match(name):
        hint = "pass --name with one" if not given else "choose another"
        raise ValueError(f"served model name {name!r} must be letters, digits, '_', '.' or '-', starting with a "
                         f"letter or digit (it is the NAME of /v1/models/NAME); {hint}")
    return name


def _base_path(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def lay_out(version: Any, model_dir: Path, tracking_uri: str | None, echo: Callable) -> tuple[Path, bool]:
    """``model_dir/<version>`` holding the version's SavedModel; (folder, whether it was written now).

    The export is downloaded beside it and renamed into place, so a server watching the
    folder never sees half a version.
    """
    from mtl_tf.serving.registered import download_export

    target = model_dir / str(version.version)
    if (target / "saved_model.pb").is_file():
        return target, False
    model_dir.mkdir(parents=True, exist_ok=True)
    echo(f"downloading {version.name} v{version.version} from {version.source}")
    incoming = Path(tempfile.mkdtemp(prefix=f".incoming-{version.version}-", dir=model_dir))
    os.chmod(incoming, _FOLDER_MODE)  # mkdtemp's 0700 would hide the version from a server running as another user
    try:
        download_export(version, incoming, tracking_uri)
        if target.exists():
            shutil.rmtree(target)
        os.replace(incoming, target)
    finally:
        if incoming.exists():
            shutil.rmtree(incoming, ignore_errors=True)
    return target, True


def _remove_versions(model_dir: Path, versions: Sequence[int]) -> None:
    for version in versions:
        shutil.rmtree(model_dir / str(version), ignore_errors=True)


def read_state(root: Path) -> dict[str, ServedModel]:
    """The served models recorded in ``root/deploy.json`` (empty when there is none).

    Raises:
        ValueError: ``root`` holds a ``models.config`` this module did not write.
    """
    state = root / STATE_FILE
    if not state.is_file():
        if (root / CONFIG_FILE).exists():
            raise ValueError(f"{root / CONFIG_FILE} was not written by `mtl models deploy` (no {STATE_FILE} beside "
                             "it); deploy into an empty folder or one it wrote")
        return {}
    try:
        raw = json.loads(state.read_text())
        return {name: ServedModel.from_json(name, entry) for name, entry in raw["models"].items()}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{state} cannot be read ({type(error).__name__}: {error}); it is written by "
                         "`mtl models deploy`, do not edit it") from None


def write_state(root: Path, models: Mapping[str, ServedModel]) -> None:
    """Writes ``models.config`` and ``deploy.json`` (each replaced whole, never half-written)."""
    root.mkdir(parents=True, exist_ok=True)
    config = render_model_config([model.config() for model in models.values()])
    state = {"schema": STATE_SCHEMA, "models": {name: model.as_json() for name, model in models.items()}}
    _write_atomic(root / CONFIG_FILE, config)
    _write_atomic(root / STATE_FILE, json.dumps(state, indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _check_available(server: str, name: str, versions: Sequence[int], timeout: float) -> None:
    from mtl_tf.serving.client import version_state

    for version in versions:
        state = version_state(server, name, version, timeout)
        if state != "AVAILABLE":
            raise ValueError(f"TF Serving at {server} reports {name} v{version} as {state}, not AVAILABLE; "
                             "labels can only point at loaded versions: wait and run --finalize again")
