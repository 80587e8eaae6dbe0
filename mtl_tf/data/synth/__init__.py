"""Synthetic raw datasets: realistic CSV files for tests, examples and benchmarks.

A synthesizer is a class registered in :data:`SYNTHESIZERS` whose ``table(rows, rng,
malformed)`` returns a header and the rows as lists of strings; :func:`synthesize` writes
them to ``part-00000.csv``, ``part-00001.csv``, ... Only NumPy is needed.

Example:
    >>> synthesize("fraud_signals", rows=20_000, out_dir="data/fraud_signals/raw", seed=0)
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mtl_tf.registry import Registry

SYNTHESIZERS = Registry("synthetic dataset")


def synthesize(name: str, rows: int, out_dir: str | Path, seed: int = 0, files: int = 1,
               malformed: float = 0.0) -> list[Path]:
    """Writes a synthetic dataset as CSV files with a header line.

    Args:
        name: a registered synthesizer, e.g. ``"fraud_signals"``.
        rows: data rows in total (malformed ones included).
        out_dir: folder for ``part-NNNNN.csv``; created when missing.
        seed: the random seed; the same seed writes the same bytes.
        files: how many CSV files to spread the rows over.
        malformed: fraction of rows, in [0, 1), made unusable on purpose (bad numbers,
            truncated lines, bad labels, bad timestamps, missing required values).

    Returns:
        The paths of the written files, in order.
    """
    _check_args(rows, files, malformed)
    synthesizer = SYNTHESIZERS.get(name, "synthesize")
    header, table = synthesizer.table(rows, np.random.default_rng(seed), malformed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, chunk in enumerate(np.array_split(np.arange(len(table)), files)):
        path = out / f"part-{index:05d}.csv"
        _write_csv(path, header, [table[i] for i in chunk])
        paths.append(path)
    return paths


def _check_args(rows: int, files: int, malformed: float) -> None:
    if not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows must be a positive integer; received {rows!r}")
    if not isinstance(files, int) or not 1 <= files <= rows:
        raise ValueError(f"files must be an integer between 1 and rows ({rows}); received {files!r}")
    if not 0.0 <= malformed < 1.0:
        raise ValueError(f"malformed must be a fraction in [0, 1); received {malformed!r}")


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    # newline="" lets the csv module write "\n" endings itself, the same on every platform.
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


from mtl_tf.data.synth.fraud_signals import FraudSignals  # noqa: E402  (registers itself)

__all__ = ["SYNTHESIZERS", "synthesize", "FraudSignals"]
