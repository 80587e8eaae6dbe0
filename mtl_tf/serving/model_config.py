"""TF Serving's ``--model_config_file``: a ``ModelServerConfig`` text protobuf.

Each served model is one ``config`` entry of ``model_config_list``: its name (the ``NAME`` of
``/v1/models/NAME``), ``base_path`` (the folder holding one numbered folder per version, as
the server sees it: ``/models/NAME`` in the manifests, or a ``gs://`` path), the versions to
load (``model_version_policy { specific { versions: ... } }``: every listed version is loaded,
not only the latest) and ``version_labels`` (label -> version). The server requires a
label to point at a version it has already loaded, which is why
:mod:`mtl_tf.serving.deploy` moves labels in a second step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

PLATFORM = "tensorflow"


@dataclass(frozen=True)
class ServedModelConfig:
    """One entry of ``model_config_list``."""

    name: str
    base_path: str
    versions: tuple[int, ...]
    labels: dict[str, int] = field(default_factory=dict)


def render_model_config(models: Sequence[ServedModelConfig]) -> str:
    """The ``models.config`` text for ``models``, in their order.

    Raises:
        ValueError: no model, a model without versions, or a label pointing at a version
            the model does not list.
    """
    if not models:
        raise ValueError("a model config needs at least one model")
    lines = ["model_config_list {"]
    for model in models:
        lines += _config_entry(model)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _config_entry(model: ServedModelConfig) -> list[str]:
    if not model.versions:
        raise ValueError(f"model '{model.name}' lists no version to serve")
    unlisted = {label: v for label, v in model.labels.items() if v not in model.versions}
    if unlisted:
        raise ValueError(f"model '{model.name}': labels {unlisted} point at versions it does not list "
                         f"({', '.join(map(str, model.versions))})")
    lines = ["  config {", f"    name: {_quoted(model.name)}", f"    base_path: {_quoted(model.base_path)}",
             f"    model_platform: {_quoted(PLATFORM)}", "    model_version_policy {", "      specific {"]
    lines += [f"        versions: {version}" for version in sorted(model.versions)]
    lines += ["      }", "    }"]
    for label, version in sorted(model.labels.items()):
        lines += ["    version_labels {", f"      key: {_quoted(label)}", f"      value: {version}", "    }"]
    lines.append("  }")
    return lines


def _quoted(text: str) -> str:
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
