"""Shared error helpers: what was wrong, what was received, what is allowed."""

from __future__ import annotations

import difflib
from typing import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """Returns the candidate closest to ``word``, or None when nothing is close."""
    matches = difflib.get_close_matches(str(word), sorted(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix, or '' when no candidate is close."""
    match = closest(word, candidates)
    return f" (did you mean '{match}'?)" if match else ""


def unknown_name_error(kind: str, name: str, known: Iterable[str], where: str = "") -> ValueError:
    """A ValueError for an unknown registry name, listing the known names."""
    known = sorted(known)
    prefix = f"{where}: " if where else ""
    return ValueError(
        f"{prefix}unknown {kind} '{name}'{did_you_mean(name, known)}; "
        f"allowed: {', '.join(known)}"
    )
