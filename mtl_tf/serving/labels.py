"""MLflow aliases -> TF Serving version labels.

A label lets clients ask for ``/v1/models/NAME/labels/stable`` instead of a version number,
so promoting a new champion changes what they get without changing their URL. The mapping
is ``alias=label`` pairs; by default ``champion`` -> ``stable`` and ``challenger`` -> ``canary``.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

DEFAULT_LABELS: Mapping[str, str] = {"champion": "stable", "challenger": "canary"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def parse_label_mapping(items: Iterable[str] | None) -> dict[str, str]:
    """``alias=label`` strings (each may hold several, comma-separated) -> {alias: label}.

    None or nothing given: :data:`DEFAULT_LABELS`.

    Raises:
        ValueError: an item is not ``alias=label``, a name is not a letter followed by
            letters, digits, '_' or '-', or two aliases map to one label.
    """
    pairs = [part.strip() for item in items or () for part in str(item).split(",") if part.strip()]
    if not pairs:
        return dict(DEFAULT_LABELS)
    mapping: dict[str, str] = {}
    for pair in pairs:
        alias, _, label = pair.partition("=")
        alias, label = alias.strip(), label.strip()
        if not (_NAME.match(alias) and _NAME.match(label)):
            raise ValueError(f"label mapping {pair!r} must be ALIAS=LABEL, each a letter followed by letters, "
                             "digits, '_' or '-' (a label must not look like a version number), e.g. "
                             "champion=stable")
        mapping[alias] = label
    labels = list(mapping.values())
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"each label mirrors one alias; received label(s) {', '.join(repeated)} for several "
                         f"aliases in {', '.join(pairs)}")
    return mapping
