"""Task relationships measured at the end of training epochs, written where a run keeps them.

At the end of every ``every``-th epoch the monitor runs a :class:`TaskProbe` on a few fixed
training batches (the same batches each epoch, so the curves compare like with like) and

- adds ``conflict/<task_i>__<task_j>`` (i before j), ``affinity/<task_i>__<task_j>`` (i onto
  j) and ``analysis/seconds`` to the epoch's logs, so they reach MLflow with the other
  per-epoch metrics;
- rewrites ``conflict.json`` and ``affinity.json`` in its folder (every measured epoch);
- draws ``conflict.png`` and ``affinity.png`` on request (:meth:`plots`).

A model without shared trainable variables (``sps`` on numeric features) has no shared
gradients to compare: the monitor says so once, measures nothing, and its
:meth:`~RelationsMonitor.summary` carries the reason (the run report shows it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from mtl_tf.analysis.probe import TaskProbe, no_shared_reason, shared_indices
from mtl_tf.analysis.records import add_epoch, matrix_metrics, new_record, read_record, write_record

CONFLICT_FILE = "conflict.json"
AFFINITY_FILE = "affinity.json"


class RelationsMonitor:
    """Measures gradient conflict and inter-task affinity at epoch ends.

    Args:
        model: the model being trained (read, never written).
        tasks: TaskType objects.
        batches: the probe batches, ``(features, labels, masks)`` each; the first
            ``conflict_batches`` serve the conflict matrix, the first ``affinity_batches``
            the affinity matrix.
        out_dir: where conflict.json, affinity.json and the plots go.
        conflict_batches: 0 turns the conflict matrix off.
        affinity_batches: 0 turns the affinity matrix off.
        learning_rate: the lookahead step size, or a callable returning it at each
            measurement (the optimizer's current learning rate).
        every: measure after every ``every``-th epoch.
        resume: keep the epochs already in ``out_dir`` (a resumed run continues its files).
        echo: where the one-line note goes when there is nothing to measure.

    Attributes:
        skipped: why nothing is measured (no shared variables), else None.
    """

    def __init__(self, model: Any, tasks: Sequence[Any], batches: Sequence[Any], out_dir: str | Path,
                 conflict_batches: int = 4, affinity_batches: int = 4,
                 learning_rate: float | Callable[[], float] = 1e-3, every: int = 1, resume: bool = False,
                 echo: Callable[[str], Any] = print):
        for name, value in (("conflict_batches", conflict_batches), ("affinity_batches", affinity_batches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0; received {value!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1; received {every!r}")
        self.tasks = list(tasks)
        self.names = [t.name for t in self.tasks]
        self.batches = list(batches)
        if not self.batches:
            raise ValueError("RelationsMonitor needs at least one probe batch; the training data yielded none")
        self.skipped = None if shared_indices(model, self.tasks) else no_shared_reason(model)
        self.probe = None if self.skipped else TaskProbe(model, self.tasks)
        if self.skipped:
            echo(f"task relationships not measured: {self.skipped}")
        self.out_dir = Path(out_dir)
        self.conflict_batches = conflict_batches
        self.affinity_batches = affinity_batches
        self.learning_rate = learning_rate
        self.every = every
        self.seconds: list[float] = []
        shared_size = self.probe.shared_size if self.probe else 0
        self.conflict = self._start("conflict", CONFLICT_FILE, resume, batches=min(conflict_batches, len(self.batches)),
                                    shared_parameters=shared_size)
        self.affinity = self._start("affinity", AFFINITY_FILE, resume, batches=min(affinity_batches, len(self.batches)),
                                    shared_parameters=shared_size)

    def _start(self, kind: str, filename: str, resume: bool, **extra: Any) -> dict:
        path = self.out_dir / filename
        if resume and path.is_file():
            return read_record(path)
        return new_record(kind, self.names, **extra)

    @property
    def enabled(self) -> bool:
        return self.probe is not None and bool(self.conflict_batches or self.affinity_batches)

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        """Measures after ``epoch`` (when due) and returns the values to log for that epoch."""
        if not self.enabled or epoch % self.every:
            return {}
        started = time.perf_counter()
        rate = float(self.learning_rate() if callable(self.learning_rate) else self.learning_rate)
        found = self.probe.relations(self.batches, rate if self.affinity_batches else None,
                                     self.conflict_batches, self.affinity_batches)
        seconds = time.perf_counter() - started
        self.seconds.append(seconds)
        logs: dict[str, float] = {"analysis/seconds": seconds}
        if "conflict" in found:
            norms = {name: float(v) for name, v in zip(self.names, found["gradient_norms"])}
            add_epoch(self.conflict, epoch, found["conflict"], gradient_norms=norms, seconds=seconds)
            write_record(self.conflict, self.out_dir / CONFLICT_FILE)
            logs.update(matrix_metrics("conflict", self.names, found["conflict"], symmetric=True))
        if "affinity" in found:
            add_epoch(self.affinity, epoch, found["affinity"], learning_rate=rate, seconds=seconds)
            write_record(self.affinity, self.out_dir / AFFINITY_FILE)
            logs.update(matrix_metrics("affinity", self.names, found["affinity"], symmetric=False))
        return logs

    def files(self) -> list[Path]:
        """The relation files written so far."""
        return [p for p in (self.out_dir / CONFLICT_FILE, self.out_dir / AFFINITY_FILE) if p.is_file()]

    def plots(self) -> list[Path]:
        """Draws conflict.png and affinity.png from the recorded epochs; returns their paths."""
        from mtl_tf.analysis.plots import plot_record

        drawn = []
        for record in (self.conflict, self.affinity):
            if record["epochs"]:
                drawn.append(plot_record(record, self.out_dir / f"{record['kind']}.png"))
        return drawn

    def summary(self) -> dict[str, Any]:
        """What the run report shows: the last matrices, their epoch, and the cost: the first
        measurement (which compiles the probe) and the mean of the later ones."""
        if self.skipped:
            return {"tasks": self.names, "skipped": self.skipped}
        later = self.seconds[1:] or self.seconds
        out: dict[str, Any] = {"tasks": self.names,
                               "first_seconds": self.seconds[0] if self.seconds else None,
                               "seconds_per_epoch": float(np.mean(later)) if later else None,
                               "probe_batches": {"conflict": self.conflict_batches, "affinity": self.affinity_batches},
                               "shared_parameters": self.probe.shared_size}
        for record in (self.conflict, self.affinity):
            if record["epochs"]:
                last = record["epochs"][-1]
                out[record["kind"]] = {"epoch": last["epoch"], "matrix": last["matrix"]}
        return out


def probe_batches(dataset: Any, count: int) -> list[Any]:
    """The first ``count`` batches of a dataset, held in memory for every measurement."""
    if count < 1:
        return []
    return list(dataset.take(count))
