"""Model references: which registered version a command means.

Accepted forms: ``NAME@ALIAS`` (``fraud_signals@champion``), ``NAME/VERSION``
(``fraud_signals/3``), and the same behind MLflow's ``models:/`` scheme
(``models:/fraud_signals@champion``, ``models:/fraud_signals/3``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "models:/"
FORMS = "NAME@ALIAS or NAME/VERSION (optionally behind models:/), e.g. fraud_signals@champion, models:/fraud_signals/3"
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model and either an alias or a version number.

    Attributes:
        name: the registered model name.
        alias: the alias (``champion``), or None when a version is given.
        version: the version number, or None when an alias is given.
    """

    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"

    @property
    def uri(self) -> str:
        """The ``models:/`` URI MLflow understands."""
        return f"{SCHEME}{self}"


def parse_model_ref(text: str) -> ModelRef:
    """Parses a model reference (see the module docstring).

    Raises:
        ValueError: the text has neither an alias nor a version, or an empty name.
    """
    raw = str(text).strip()
    body = raw[len(SCHEME):] if raw.startswith(SCHEME) else raw
    if "@" in body:
        name, alias = body.rsplit("@", 1)
        if name.strip() and _ALIAS.match(alias):
            return ModelRef(name=name.strip(), alias=alias)
    elif "/" in body:
        name, version = body.rsplit("/", 1)
        if name.strip() and version.isdigit() and int(version) > 0:
            return ModelRef(name=name.strip(), version=int(version))
    raise ValueError(f"model reference {raw!r} is not one of {FORMS}")
