"""What a training run returns: the per-epoch logs and how it ended."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class History:
    """The record of a ``Trainer.fit`` run.

    Attributes:
        epochs: one flat log dict per epoch, in order (``"epoch"`` is 1-based), including
            epochs run before a resume when the checkpoint folder kept them.
        best_epoch: the 1-based epoch with the best validation score, or None without one.
        best_score: that score (mean over tasks of the primary validation metric, negated
            for metrics where lower is better), or None.
        stopped_reason: ``"completed"`` or ``"early_stopping"``.
    """

    epochs: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_reason: str = "completed"

    def metric(self, key: str) -> list[float]:
        """The values of one log key across epochs (NaN where an epoch lacks it)."""
        return [float(logs.get(key, float("nan"))) for logs in self.epochs]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: str | Path) -> None:
        """Writes the history as JSON; a crash while writing leaves the previous file whole."""
        path = Path(path)
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps(self.to_dict(), indent=1))
        os.replace(scratch, path)

    @classmethod
    def read(cls, path: str | Path) -> "History":
        """Reads a history written by :meth:`write`."""
        return cls(**json.loads(Path(path).read_text()))
