"""Synthetic raw datasets: realistic CSV files and image sets for tests, examples and benchmarks.

A synthesizer is a class registered in :data:`SYNTHESIZERS`. A table synthesizer's
``table(rows, rng, malformed)`` returns a header and the rows as lists of strings;
:func:`synthesize` writes them to ``part-00000.csv``, ``part-00001.csv``, ... Only NumPy is
needed. A synthesizer may name its ``label_columns`` (``labels=`` keeps only some of them)
and its ``id_column`` (``id_prefix=`` marks its ids, so a second dataset holds other customers).

An image synthesizer (``writes = "images"``) writes image, mask and depth files and a
``manifest.jsonl`` itself (``write(rows, out_dir, rng, height, width, corrupt)``);
:func:`synthesize_images` runs it. NumPy and PIL are needed.

Example:
    >>> synthesize("fraud_signals", rows=20_000, out_dir="data/fraud_signals/raw", seed=0)
    >>> synthesize("fraud_signals", rows=4_000, out_dir="data/fraud_signals/ato_raw", seed=7,
    ...            labels=["account_takeover"], id_prefix="ato-")
    >>> synthesize_images("driving_perception", rows=1_000, out_dir="data/driving_perception/raw")
    >>> synthesize_images("medical_imaging", rows=1_000, out_dir="data/medical_imaging/raw")
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from mtl_tf.errors import did_you_mean
from mtl_tf.registry import Registry

SYNTHESIZERS = Registry("synthetic dataset")


def synthesize(name: str, rows: int, out_dir: str | Path, seed: int = 0, files: int = 1,
               malformed: float = 0.0, labels: Sequence[str] | None = None, id_prefix: str = "") -> list[Path]:
    """Writes a synthetic dataset as CSV files with a header line.

    Args:
        name: a registered synthesizer, e.g. ``"fraud_signals"``.
        rows: data rows in total (malformed ones included).
        out_dir: folder for ``part-NNNNN.csv``; created when missing.
        seed: the random seed; the same seed writes the same bytes.
        files: how many CSV files to spread the rows over.
        malformed: fraction of rows, in [0, 1), made unusable on purpose (bad numbers,
            truncated lines, bad labels, bad timestamps, missing required values). A row
            broken only in a label column that ``labels`` leaves out comes out whole.
        labels: the label columns to keep (e.g. ``["account_takeover"]``); default all.
        id_prefix: text put before every value of the id column (e.g. ``"ato-"``), so the
            ids of two datasets never collide.

    Returns:
        The paths of the written files, in order.
    """
    _check_args(rows, files, malformed)
    synthesizer = SYNTHESIZERS.get(name, "synthesize")
    if writes_images(name):
        raise ValueError(f"'{name}' writes images, not CSV tables; use synthesize_images (table synthesizers: "
                         f"{', '.join(_names('table'))})")
    header, table = synthesizer.table(rows, np.random.default_rng(seed), malformed)
    if id_prefix:
        table = _prefix_ids(header, table, getattr(synthesizer, "id_column", None), id_prefix, name)
    if labels is not None:
        header, table = _keep_labels(header, table, list(getattr(synthesizer, "label_columns", ())), labels, name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, chunk in enumerate(np.array_split(np.arange(len(table)), files)):
        path = out / f"part-{index:05d}.csv"
        _write_csv(path, header, [table[i] for i in chunk])
        paths.append(path)
    return paths


def writes_images(name: str) -> bool:
    """Whether synthesizer ``name`` writes images (and a manifest) rather than CSV tables."""
    return getattr(SYNTHESIZERS.lookup(name, "synthesize"), "writes", "table") == "images"


def _names(writes: str) -> list[str]:
    return [n for n in SYNTHESIZERS.names() if getattr(SYNTHESIZERS.lookup(n), "writes", "table") == writes]


def synthesize_images(name: str, rows: int, out_dir: str | Path, seed: int = 0, height: int | None = None,
                      width: int | None = None, corrupt: float = 0.0, bit_depth: int | None = None) -> Path:
    """Writes a synthetic image dataset: image, mask and depth files and ``manifest.jsonl``.

    Args:
        name: a registered image synthesizer, e.g. ``"driving_perception"``.
        rows: items (scenes) in total, corrupted ones included.
        out_dir: the output folder; created when missing.
        seed: the random seed; the same seed writes the same bytes.
        height: image rows; default the synthesizer's.
        width: image columns; default the synthesizer's.
        corrupt: fraction of items, in [0, 1), made unusable on purpose (corrupt or missing
            files, out-of-range mask classes, boxes outside the image).
        bit_depth: 8 or 16 (16-bit detector values), for synthesizers that offer it
            (``medical_imaging``); default the synthesizer's (8).

    Returns:
        The path of ``manifest.jsonl``.
    """
    if not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows must be a positive integer; received {rows!r}")
    if not 0.0 <= corrupt < 1.0:
        raise ValueError(f"corrupt must be a fraction in [0, 1); received {corrupt!r}")
    for key, value in (("height", height), ("width", width)):
        if value is not None and (not isinstance(value, int) or value < 16):
            raise ValueError(f"{key} must be an integer of at least 16 pixels; received {value!r}")
    if not writes_images(name):
        raise ValueError(f"'{name}' writes CSV tables, not images; use synthesize (image synthesizers: "
                         f"{', '.join(_names('images'))})")
    synthesizer = SYNTHESIZERS.get(name, "synthesize")
    sizes = {key: value for key, value in (("height", height), ("width", width)) if value is not None}
    if bit_depth is not None:
        if "bit_depth" not in getattr(synthesizer, "options", ()):
            raise ValueError(f"'{name}' writes 8-bit images only; bit_depth applies to "
                             f"{', '.join(n for n in _names('images') if 'bit_depth' in getattr(SYNTHESIZERS.lookup(n), 'options', ()))}; "
                             f"received bit_depth {bit_depth!r}")
        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16; received {bit_depth!r}")
        sizes["bit_depth"] = bit_depth
    return synthesizer.write(rows, out_dir, np.random.default_rng(seed), corrupt=corrupt, **sizes)


def _check_args(rows: int, files: int, malformed: float) -> None:
    if not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows must be a positive integer; received {rows!r}")
    if not isinstance(files, int) or not 1 <= files <= rows:
        raise ValueError(f"files must be an integer between 1 and rows ({rows}); received {files!r}")
    if not 0.0 <= malformed < 1.0:
        raise ValueError(f"malformed must be a fraction in [0, 1); received {malformed!r}")


def _keep_labels(header: list[str], table: list[list[str]], known: list[str], labels: Sequence[str],
                 name: str) -> tuple[list[str], list[list[str]]]:
    """The table without the label columns not in ``labels``."""
    unknown = [label for label in labels if label not in known]
    if unknown or not labels:
        first = unknown[0] if unknown else ""
        raise ValueError(f"labels must name label columns of '{name}'; received {list(labels)}"
                         f"{did_you_mean(first, known)}; allowed: {', '.join(known)}")
    drop = {header.index(column) for column in known if column not in labels}
    # A truncated (malformed) row may end before a dropped column; it stays truncated.
    return ([c for i, c in enumerate(header) if i not in drop],
            [[cell for i, cell in enumerate(row) if i not in drop] for row in table])


def _prefix_ids(header: list[str], table: list[list[str]], column: str | None, prefix: str,
                name: str) -> list[list[str]]:
    if column is None:
        raise ValueError(f"id_prefix needs a synthesizer with an id column; '{name}' has none; "
                         f"received id_prefix {prefix!r}")
    index = header.index(column)
    return [[prefix + cell if i == index else cell for i, cell in enumerate(row)] for row in table]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    # newline="" lets the csv module write "\n" endings itself, the same on every platform.
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


from mtl_tf.data.synth.driving_perception import DrivingPerception  # noqa: E402  (registers itself)
from mtl_tf.data.synth.fraud_signals import FraudSignals  # noqa: E402  (registers itself)
from mtl_tf.data.synth.medical_imaging import MedicalImaging  # noqa: E402  (registers itself)

__all__ = ["SYNTHESIZERS", "synthesize", "synthesize_images", "writes_images", "DrivingPerception", "FraudSignals",
           "MedicalImaging"]
