"""Registries for every extension kind (architectures, trunks, towers, task types, ...).

A registry maps a name to a class. ``register`` is a decorator; ``get`` accepts a name, a
config dict ``{"name": ..., **options}`` or an instance, and fails with the sorted list of
known names.

Example:
    >>> trunks = Registry("trunk")
    >>> @trunks.register("mlp")
    ... class MLPTrunk: ...
    >>> trunks.get({"name": "mlp", "units": [64]})
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from mtl_tf.errors import did_you_mean, unknown_name_error


class Registry:
    """A named collection of classes of one extension kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator that registers ``cls`` under ``name``."""

        def decorator(cls: type) -> type:
            if name in self._entries and self._entries[name] is not cls:
                raise ValueError(f"{self.kind} '{name}' is already registered to {self._entries[name]!r}")
            self._entries[name] = cls
            return cls

        return decorator

    def add(self, name: str, cls: type) -> None:
        """Registers a class defined elsewhere (a Keras optimizer, say)."""
        self.register(name)(cls)

    def name_of(self, cls: type) -> str:
        for name, entry in self._entries.items():
            if entry is cls:
                return name
        return cls.__name__

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def lookup(self, name: str, where: str = "") -> type:
        """Returns the class registered as ``name``."""
        if name not in self._entries:
            raise unknown_name_error(self.kind, name, self._entries, where)
        return self._entries[name]

    def split(self, identifier: Any, where: str = "") -> tuple[type, dict[str, Any]]:
        """Splits a name or config dict into (class, options) and checks the option names."""
        if isinstance(identifier, str):
            name, options = identifier, {}
        elif isinstance(identifier, Mapping):
            if "name" not in identifier:
                raise ValueError(f"{where or self.kind}: a {self.kind} config needs a 'name'; "
                                 f"received {dict(identifier)!r}; allowed names: {', '.join(self.names())}")
            options = {k: v for k, v in identifier.items() if k != "name"}
            name = identifier["name"]
        else:
            raise TypeError(f"{where or self.kind}: expected a {self.kind} name, config dict or "
                            f"instance; received {identifier!r} of type {type(identifier).__name__}")
        cls = self.lookup(name, where)
        check_options(cls, options, f"{where}.{name}" if where else name)
        return cls, options

    def get(self, identifier: Any, where: str = "", **kwargs: Any) -> Any:
        """Builds an instance from a name, a config dict or returns an instance as is.

        ``kwargs`` are passed to the constructor in addition to the config's options
        (for example the task list an architecture needs).
        """
        if not isinstance(identifier, (str, Mapping)):
            if any(isinstance(identifier, cls) for cls in self._entries.values()):
                return identifier
        cls, options = self.split(identifier, where)
        try:
            return cls(**options, **kwargs)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{where or self.kind} '{self.name_of(cls)}': {err}") from err


def check_options(cls: type, options: Mapping[str, Any], where: str) -> None:
    """Refuses option names that the constructor of ``cls`` does not take."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        allowed = getattr(cls, "options", None)
        if allowed is None:
            return
    else:
        allowed = getattr(cls, "options", None) or [
            n for n, p in params.items()
            if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
    for key in options:
        if key not in allowed:
            raise ValueError(f"{where}: unknown option '{key}'{did_you_mean(key, allowed)}; "
                             f"allowed: {', '.join(sorted(allowed))}")
