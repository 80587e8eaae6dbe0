"""Scores of predicted probabilities against 0/1 labels, exact, in NumPy.

What a clinical reader asks of one finding: how well the scores rank positives above
negatives (``roc_auc``, ``average_precision``), what sensitivity the model reaches while
keeping the false-alarm rate at a level (``sensitivity_at_specificity``), and whether its
probabilities mean what they say (``expected_calibration_error`` over ``reliability_bins``).

Each function takes 1-D arrays ``labels`` (0/1) and ``scores`` (probabilities) of the same
length. A score that needs both classes returns NaN when one is missing (see
:func:`why_undefined`), never a number that would look like a result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEFAULT_BINS = 15


def why_undefined(labels: np.ndarray, split: str = "test") -> str | None:
    """Why rank scores are undefined on these labels (no rows, no positives, no negatives), or None."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return f"no labelled rows in {split}"
    positives = int((labels > 0.5).sum())
    if positives == 0:
        return f"no positives in {split}"
    if positives == labels.size:
        return f"no negatives in {split}"
    return None


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative, ties counting one half (the Mann-Whitney statistic, from mid-ranks)."""
    labels, scores = _pair(labels, scores)
    positives = labels > 0.5
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _mid_ranks(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """The area under the precision-recall curve as a step sum over the distinct scores,
    highest first: ``sum_k (R_k - R_(k-1)) P_k`` (scikit-learn's ``average_precision_score``)."""
    labels, scores = _pair(labels, scores)
    if why_undefined(labels) is not None:
        return math.nan
    order = np.argsort(-scores, kind="mergesort")
    scores, hits = scores[order], (labels[order] > 0.5).astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # the last row of each distinct score
    true_positives = np.cumsum(hits)[last]
    precision = true_positives / (last + 1)
    recall = true_positives / hits.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def sensitivity_at_specificity(labels: np.ndarray, scores: np.ndarray, specificity: float = 0.9) -> float:
    """The highest sensitivity among the thresholds (a row is positive when its score is at
    least the threshold, or none is) whose specificity is at least ``specificity``."""
    labels, scores = _pair(labels, scores)
    if why_undefined(labels) is not None:
        return math.nan
    positives = labels > 0.5
    best = 0.0
    for threshold in np.unique(scores):
        called = scores >= threshold
        if np.mean(~called[~positives]) >= specificity:
            best = max(best, float(np.mean(called[positives])))
    return best


@dataclass
class Reliability:
    """Equal-width probability bins: rows, mean predicted probability and observed positive
    rate per bin (NaN for an empty bin), and the bin edges."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    frequency: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: ``sum_b (n_b / N) |frequency_b - confidence_b|``."""
        total = self.counts.sum()
        if total == 0:
            return math.nan
        filled = self.counts > 0
        gaps = np.abs(self.frequency[filled] - self.confidence[filled])
        return float(np.sum(self.counts[filled] / total * gaps))

    def as_dict(self) -> dict:
        return {"edges": self.edges.tolist(), "counts": self.counts.astype(int).tolist(),
                "confidence": [None if math.isnan(v) else float(v) for v in self.confidence],
                "frequency": [None if math.isnan(v) else float(v) for v in self.frequency]}


def reliability_bins(labels: np.ndarray, scores: np.ndarray, bins: int = DEFAULT_BINS) -> Reliability:
    """Rows per bin of ``bins`` equal-width bins over [0, 1]; bin ``b`` holds scores in
    ``(b / bins, (b + 1) / bins]``, the first also 0 (Guo et al., 2017)."""
    labels, scores = _pair(labels, scores)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.ceil(np.clip(scores, 0.0, 1.0) * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=scores, minlength=bins) / counts
        frequency = np.bincount(index, weights=(labels > 0.5).astype(np.float64), minlength=bins) / counts
    return Reliability(edges, counts, confidence, frequency)


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """ECE over ``bins`` equal-width bins (NaN without rows); see :func:`reliability_bins`."""
    return reliability_bins(labels, scores, bins).ece


def _pair(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, scores = np.asarray(labels, np.float64).ravel(), np.asarray(scores, np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores must have the same length; received {labels.size} and {scores.size}")
    return labels, scores


def _mid_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, np.float64)
    ranks[order] = np.arange(1, values.size + 1)
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]
