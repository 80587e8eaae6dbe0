"""Reliability diagrams: does a predicted 0.8 come true 80% of the time?

One PNG per binary finding (a binary task, or one class of a multi-label task): the observed
positive rate in each equal-width probability bin against the bin's mean prediction, the
diagonal of perfect calibration, the expected calibration error in the title, and below it
how many rows fall in each bin (calibration in a bin of three rows means little).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mtl_tf.evaluation.scores import Reliability


def plot_reliability(reliability: Reliability, path: str | Path, title: str, note: str | None = None) -> Path:
    """Writes the reliability diagram of ``reliability`` to ``path`` (PNG); returns the path.

    Args:
        reliability: the binned predictions (:func:`mtl_tf.evaluation.scores.reliability_bins`).
        path: the PNG file to write (its folder is created).
        title: the finding, e.g. ``findings: nodule``.
        note: a line under the title (e.g. ``12 positives of 200``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = reliability.edges
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    filled = reliability.counts > 0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.6, 5.2), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="perfectly calibrated")
    top.bar(centres[filled], reliability.frequency[filled], width=width[filled] * 0.9, color="#4C72B0", alpha=0.8,
            label="observed positive rate")
    top.plot(reliability.confidence[filled], reliability.frequency[filled], "o", color="#C44E52", markersize=3,
             label="mean prediction in bin")
    ece = reliability.ece
    top.set(ylim=(0, 1), xlim=(0, 1), ylabel="fraction positive",
            title=f"{title}\nECE {ece:.3f}" + (f" ({note})" if note else "") if ece == ece else title)
    top.legend(fontsize=7, loc="upper left")
    top.grid(alpha=0.3)
    bottom.bar(centres, reliability.counts, width=width * 0.9, color="grey")
    bottom.set(xlabel="predicted probability", ylabel="rows")
    bottom.set_yscale("symlog")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_name(task: str, label: str | None = None) -> str:
    """``<task>.png`` or ``<task>__<class>.png``, with characters other than letters, digits,
    ``-``, ``_`` and ``.`` replaced by ``_``."""
    stem = task if label is None or label == task else f"{task}__{label}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem) + ".png"
