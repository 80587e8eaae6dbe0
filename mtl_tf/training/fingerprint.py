"""What wrote a checkpoint folder: the model configuration and every saved variable's shape.

Resuming from checkpoints of another model (another architecture, trunk, tower, tasks or
features) fails deep inside TensorFlow, after dozens of warnings, with a variable-shape
error. A run writes this fingerprint next to its checkpoints when it starts, so a resumed
run can refuse in one line that names what differs.

Variables are compared by shape and dtype, in order, object by object (model, optimizer,
method states): a checkpoint restores by position in the object graph, not by name, so
names (which Keras may number differently in another process) only serve the message.
Task heads whose weights mean something else under the same shapes (a regression head that
predicts standard units instead of the label's: ``TaskType.head_layout``) are recorded
under ``heads`` and must match too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

FINGERPRINT_FILE = "configuration.json"
DEFAULT_ADVICE = "use another checkpoint_dir or fit without resume"
# Longest rendering of one configuration value in an error message.
MAX_VALUE_CHARS = 160


class IncompatibleCheckpoint(ValueError):
    """Checkpoints that this run cannot resume from: written by another model configuration.

    Attributes:
        directory: the checkpoint folder.
        difference: what differs, as a phrase (``"written by ...; this run builds ..."``).
    """

    def __init__(self, directory: str, difference: str, advice: str = DEFAULT_ADVICE):
        self.directory, self.difference, self.advice = os.fspath(directory), difference, advice
        super().__init__(f"checkpoints in {self.directory} were {difference}; {advice}")

    def advise(self, advice: str) -> "IncompatibleCheckpoint":
        """The same error with another piece of advice (e.g. in the CLI's terms)."""
        return IncompatibleCheckpoint(self.directory, self.difference, advice)


def fingerprint(objects: Mapping[str, Any], configuration: Mapping[str, Any] | None = None,
                heads: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The fingerprint of a training state.

    Args:
        objects: the checkpointed objects by name (model, optimizer, tf.Modules, variables).
        configuration: a JSON-able description of what built them (e.g. architecture,
            trunk, tower, tasks, features), shown when a resume is refused.
        heads: task -> its head's layout (``TaskType.head_layout``), for the tasks that have
            one; a resume with another layout is refused.

    Returns:
        ``{"configuration": {...}, "variables": {object name: [[name, shape, dtype], ...]},
        "heads": {task: layout}}``.
    """
    return {"configuration": json.loads(json.dumps(dict(configuration or {}), default=str)),
            "variables": {name: _variables(obj) for name, obj in objects.items()},
            "heads": dict(sorted((heads or {}).items()))}


def write_fingerprint(directory: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Writes the fingerprint to ``<directory>/configuration.json`` (atomically)."""
    path = Path(directory) / FINGERPRINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(record, indent=1))
    os.replace(scratch, path)


def check_fingerprint(directory: str | os.PathLike, current: Mapping[str, Any]) -> None:
    """Raises IncompatibleCheckpoint when ``directory``'s fingerprint has other variables.

    A folder without a fingerprint passes (the restore itself then reports a mismatch).
    """
    path = Path(directory) / FINGERPRINT_FILE
    if not path.is_file():
        return
    written = json.loads(path.read_text())
    difference = describe_difference(written, current)
    if difference is not None:
        raise IncompatibleCheckpoint(os.fspath(directory), difference)


def describe_difference(written: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """What differs between two fingerprints whose variables differ, else None."""
    old_vars, new_vars = written.get("variables", {}), current.get("variables", {})
    changed = [name for name in sorted(set(old_vars) | set(new_vars))
               if _shapes(old_vars.get(name)) != _shapes(new_vars.get(name))]
    if not changed:
        return _head_difference(written.get("heads") or {}, current.get("heads") or {})
    old_config, new_config = written.get("configuration", {}), current.get("configuration", {})
    keys = [key for key in _keys(old_config, new_config) if old_config.get(key) != new_config.get(key)]
    if keys:
        return f"written by {_render(old_config, keys)}; this run builds {_render(new_config, keys)}"
    name = changed[0]
    return f"written by another model: {_variable_difference(name, old_vars.get(name), new_vars.get(name))}"


def _head_difference(old: Mapping[str, str], new: Mapping[str, str]) -> str | None:
    """Tasks whose heads read the same variables in other units (a fingerprint written before
    heads were recorded holds none: every head plain)."""
    tasks = [task for task in sorted(set(old) | set(new)) if old.get(task) != new.get(task)]
    if not tasks:
        return None
    return (f"written by a model with {_heads(old, tasks)} heads; this run builds {_heads(new, tasks)} heads "
            "(a regression head predicts standard units unless tasks[].standardize is false)")


def _heads(layouts: Mapping[str, str], tasks: list[str]) -> str:
    return ", ".join(f"{task}: {layouts.get(task) or 'plain'}" for task in tasks)


def _variables(obj: Any) -> list[list[Any]]:
    variables = [obj] if hasattr(obj, "assign") and hasattr(obj, "shape") else list(getattr(obj, "variables", []))
    return [[_name(v), [int(d) for d in v.shape], getattr(v.dtype, "name", str(v.dtype))] for v in variables]


def _name(variable: Any) -> str:
    name = getattr(variable, "path", None) or variable.name
    return name[:-2] if name.endswith(":0") else name


def _shapes(entries: Any) -> list[tuple] | None:
    return None if entries is None else [(tuple(shape), dtype) for _, shape, dtype in entries]


def _keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return list(old) + [key for key in new if key not in old]


def _render(config: Mapping[str, Any], keys: list[str]) -> str:
    parts = []
    for key in keys:
        text = "(none)" if key not in config else json.dumps(config[key], separators=(", ", ": "))
        if len(text) > MAX_VALUE_CHARS:
            text = text[:MAX_VALUE_CHARS - 3] + "..."
        parts.append(f"{key} {text}")
    return ", ".join(parts)


def _variable_difference(name: str, old: Any, new: Any) -> str:
    if old is None or new is None:
        where = "there" if new is None else "here"
        return f"the {name} state exists only {where}"
    if len(old) != len(new):
        return f"the {name} holds {len(old)} variables there and {len(new)} here"
    pairs = [(o, n) for o, n in zip(old, new) if (tuple(o[1]), o[2]) != (tuple(n[1]), n[2])]
    (old_name, old_shape, old_dtype), (new_name, new_shape, new_dtype) = pairs[0]
    more = f" ({len(pairs)} of {len(new)} {name} variables differ)" if len(pairs) > 1 else ""
    return (f"{new_name} is {tuple(old_shape)} {old_dtype} there and {tuple(new_shape)} {new_dtype} here"
            f"{more}")
