"""CombineFns for the statistics in ``dataset.json``: features (train split) and labels.

Numeric statistics use Welford's update and Chan's merge of partial results, which stay
accurate for large means and many rows where the textbook sum of squares loses precision.
Each CombineFn also has ``add_batch``, which folds a whole batch of rows in at once: the
batch's own moments (or value counts) are computed in one go and merged, which costs far
less per row than one ``add_input`` call per row and value. Outputs are plain dicts shaped like :class:`mtl_tf.data.spec.NumericStats`,
:class:`~mtl_tf.data.spec.CategoricalStats`, the counts of
:class:`~mtl_tf.data.spec.TaskSpec` and, per split, a regression label's
:class:`~mtl_tf.data.spec.LabelStats`.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping, Sequence

import apache_beam as beam

from mtl_tf.recipe.schema import Feature, Task


class NumericStatsFn(beam.CombineFn):
    """count, missing, mean, variance (population), min and max of numbers (None = missing)."""

    def create_accumulator(self) -> list:
        return [0, 0, 0.0, 0.0, None, None]  # count, missing, mean, M2, min, max

    def add_input(self, acc: list, value: float | None) -> list:
        if value is None:
            acc[1] += 1
            return acc
        acc[0] += 1
        delta = value - acc[2]
        acc[2] += delta / acc[0]
        acc[3] += delta * (value - acc[2])
        acc[4] = value if acc[4] is None else min(acc[4], value)
        acc[5] = value if acc[5] is None else max(acc[5], value)
        return acc

    def add_batch(self, acc: list, values: Sequence[float | None]) -> list:
        """Folds a batch of values (None = missing) into ``acc``; returns the new accumulator."""
        present = [v for v in values if v is not None]
        missing = len(values) - len(present)
        if not present:
            acc[1] += missing
            return acc
        count = len(present)
        mean = math.fsum(present) / count
        m2 = math.fsum([(v - mean) * (v - mean) for v in present])
        return merge_moments(acc, [count, missing, mean, m2, min(present), max(present)])

    def merge_accumulators(self, accumulators) -> list:
        merged = self.create_accumulator()
        for acc in accumulators:
            merged = merge_moments(merged, acc)
        return merged

    def extract_output(self, acc: list) -> dict[str, Any]:
        count = acc[0]
        return {"count": count, "missing": acc[1], "mean": float(acc[2]),
                "variance": float(acc[3] / count) if count else 0.0,
                "min": None if acc[4] is None else float(acc[4]),
                "max": None if acc[5] is None else float(acc[5])}


def merge_moments(a: list, b: list) -> list:
    """Chan's merge of two :class:`NumericStatsFn` accumulators (a new list; neither is changed)."""
    count = a[0] + b[0]
    if count == 0:
        return [0, a[1] + b[1], 0.0, 0.0, None, None]
    delta = b[2] - a[2]
    mean = a[2] + delta * b[0] / count
    m2 = a[3] + b[3] + delta * delta * a[0] * b[0] / count
    lows = [v for v in (a[4], b[4]) if v is not None]
    highs = [v for v in (a[5], b[5]) if v is not None]
    return [count, a[1] + b[1], mean, m2, min(lows), max(highs)]


class SequenceStatsFn(NumericStatsFn):
    """:class:`NumericStatsFn` over the elements of fixed-length sequences.

    A row's value is a list of ``length`` floats (NaN = missing or padding) or None (the
    whole row missing: ``length`` missing elements). ``count`` is the present elements,
    ``missing`` the missing and padded ones, so the missing fraction is over elements.

    Args:
        length: elements per row.
    """

    def __init__(self, length: int):
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be an integer >= 1; received {length!r}")
        super().__init__()
        self.length = length

    def add_input(self, acc: list, value: Sequence[float] | None) -> list:
        # In place, as NumericStatsFn.add_input: FeatureStatsFn relies on it.
        acc[:] = super().add_batch(acc, self._elements([value]))
        return acc

    def add_batch(self, acc: list, values: Sequence[Sequence[float] | None]) -> list:
        """Folds a batch of rows' sequences (None = missing row) into ``acc``; returns it."""
        return super().add_batch(acc, self._elements(values))

    def _elements(self, values) -> list[float | None]:
        padding = [math.nan] * self.length
        return [None if v != v else v for row in values for v in (padding if row is None else row)]


class CategoricalStatsFn(beam.CombineFn):
    """Value counts of strings (None = missing): unique, the ``top_k`` vocabulary, oov_count.

    Args:
        top_k: vocabulary size kept; ties in count are broken by the value, so the
            vocabulary is the same on every run.
        oov_buckets: reported as is (the model hashes the rest into that many buckets).
    """

    def __init__(self, top_k: int, oov_buckets: int = 1):
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1; received {top_k!r}")
        self.top_k = top_k
        self.oov_buckets = oov_buckets

    def create_accumulator(self) -> list:
        return [Counter(), 0]  # value counts, missing

    def add_input(self, acc: list, value: str | None) -> list:
        if value is None:
            acc[1] += 1
        else:
            acc[0][value] += 1
        return acc

    def add_batch(self, acc: list, values: Sequence[str | None]) -> list:
        """Folds a batch of values (None = missing) into ``acc``; returns it."""
        present = [v for v in values if v is not None]
        acc[1] += len(values) - len(present)
        acc[0].update(present)
        return acc

    def merge_accumulators(self, accumulators) -> list:
        # The first accumulator is updated in place (Beam allows it): copying a large
        # vocabulary on every merge would cost as much as counting it.
        accumulators = iter(accumulators)
        merged = next(accumulators, None) or self.create_accumulator()
        for counts, missing in accumulators:
            merged[0].update(counts)
            merged[1] += missing
        return merged

    def extract_output(self, acc: list) -> dict[str, Any]:
        counts, missing = acc
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: self.top_k]
        total = sum(counts.values())
        return {"count": total, "missing": missing, "unique": len(counts),
                "vocabulary": [{"value": value, "count": n} for value, n in ranked],
                "oov_buckets": self.oov_buckets, "oov_count": total - sum(n for _, n in ranked)}


class FeatureStatsFn(beam.CombineFn):
    """Statistics of every recipe feature over rows of values (one pass, one accumulator).

    Args:
        features: the recipe features; numeric and timestamp get :class:`NumericStatsFn`,
            categorical :class:`CategoricalStatsFn`, sequence :class:`SequenceStatsFn`.
    """

    def __init__(self, features: Sequence[Feature]):
        self.fns = {f.name: _stats_fn(f) for f in features}

    def create_accumulator(self) -> dict[str, list]:
        return {name: fn.create_accumulator() for name, fn in self.fns.items()}

    def add_input(self, acc: dict[str, list], values: Mapping[str, Any]) -> dict[str, list]:
        for name, fn in self.fns.items():
            fn.add_input(acc[name], values.get(name))
        return acc

    def add_batch(self, acc: dict[str, list], rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
        """Folds a batch of rows of values into ``acc``; returns it."""
        for name, fn in self.fns.items():
            acc[name] = fn.add_batch(acc[name], [values.get(name) for values in rows])
        return acc

    def merge_accumulators(self, accumulators) -> dict[str, list]:
        accumulators = list(accumulators)
        return {name: fn.merge_accumulators([acc[name] for acc in accumulators])
                for name, fn in self.fns.items()}

    def extract_output(self, acc: dict[str, list]) -> dict[str, dict]:
        return {name: fn.extract_output(acc[name]) for name, fn in self.fns.items()}


def _stats_fn(feature: Feature) -> beam.CombineFn:
    if feature.kind == "categorical":
        return CategoricalStatsFn(feature.top_k, feature.oov_buckets)
    if feature.kind == "sequence":
        return SequenceStatsFn(feature.length)
    return NumericStatsFn()


class LabelCountsFn(beam.CombineFn):
    """Per task: rows with a label and positives (binary) or per-class counts; regression:
    the label's moments.

    Regression tasks report ``positives`` as None and ``stats`` as :func:`label_stats` of
    their labels (count, mean, std, min, max), from :class:`NumericStatsFn`'s moments.

    Args:
        tasks: the recipe tasks.
    """

    def __init__(self, tasks: Sequence[Task]):
        self.tasks = [(t.name, t.label, t.type, len(t.classes or [])) for t in tasks]
        self.moments = NumericStatsFn()

    def create_accumulator(self) -> dict[str, list]:
        return {name: [0, self._empty(kind, size)] for name, _, kind, size in self.tasks}

    def _empty(self, kind: str, size: int) -> Any:
        if kind == "regression":
            return self.moments.create_accumulator()
        return [0] * size if kind in ("multiclass", "multilabel") else 0

    def add_input(self, acc: dict[str, list], values: Mapping[str, Any]) -> dict[str, list]:
        for name, key, kind, _ in self.tasks:
            value = values.get(key)
            if value is None:
                continue
            counts = acc[name]
            counts[0] += 1
            if kind == "binary":
                counts[1] += value == 1.0
            elif kind == "multiclass":
                counts[1][value] += 1
            elif kind == "multilabel":
                counts[1] = [n + (v == 1.0) for n, v in zip(counts[1], value)]
            elif kind == "regression":
                self.moments.add_input(counts[1], value)
        return acc

    def add_batch(self, acc: dict[str, list], rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
        """Folds a batch of rows of values into ``acc``; returns it."""
        for name, key, kind, _ in self.tasks:
            labels = [value for value in (values.get(key) for values in rows) if value is not None]
            if not labels:
                continue
            counts = acc[name]
            counts[0] += len(labels)
            if kind == "binary":
                counts[1] += labels.count(1.0)
            elif kind == "multiclass":
                for index, n in Counter(labels).items():
                    counts[1][index] += n
            elif kind == "multilabel":
                counts[1] = [n + column.count(1.0) for n, column in zip(counts[1], zip(*labels))]
            elif kind == "regression":
                counts[1] = self.moments.add_batch(counts[1], labels)
        return acc

    def merge_accumulators(self, accumulators) -> dict[str, list]:
        kinds = {name: kind for name, _, kind, _ in self.tasks}
        merged = self.create_accumulator()
        for acc in accumulators:
            for name, (labelled, positives) in acc.items():
                merged[name][0] += labelled
                if kinds[name] == "regression":
                    merged[name][1] = merge_moments(merged[name][1], positives)
                elif isinstance(positives, list):
                    merged[name][1] = [a + b for a, b in zip(merged[name][1], positives)]
                else:
                    merged[name][1] += positives
        return merged

    def extract_output(self, acc: dict[str, list]) -> dict[str, dict]:
        kinds = {name: kind for name, _, kind, _ in self.tasks}
        output = {}
        for name, (labelled, positives) in acc.items():
            if kinds[name] == "regression":
                output[name] = {"labelled": labelled, "positives": None,
                                "stats": label_stats(self.moments.extract_output(positives))}
            else:
                output[name] = {"labelled": labelled, "positives": positives}
        return output


def label_stats(moments: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`mtl_tf.data.spec.LabelStats` fields (count, mean, population std, min, max) from
    :meth:`NumericStatsFn.extract_output`; mean and std are None without a labelled row."""
    count = moments["count"]
    if not count:
        return {"count": 0, "mean": None, "std": None, "min": None, "max": None}
    return {"count": count, "mean": moments["mean"], "std": math.sqrt(max(moments["variance"], 0.0)),
            "min": moments["min"], "max": moments["max"]}


class SummaryFn(beam.CombineFn):
    """Merges per-batch partial summaries into the ``summary.json`` contents.

    A partial summary (see :meth:`batch_summary`) holds one batch's row counts, its feature
    statistics accumulator (train rows only) and its label counts per split; merging them is
    cheap, so a pipeline sends one partial per batch instead of one element per row.
    The output is ``{"counts": {"rows_in", "blank_lines", "rows_written": {split: n},
    "rows_rejected": {kind: n}}, "reject_examples": {kind: reason}, "statistics": {feature:
    stats}, "labels": {split: {task: counts}}}``, where only splits that received rows and
    reject kinds that occurred appear; ``reject_examples`` holds one reason per kind (the
    first in sort order, so every run picks the same one).

    Args:
        features: the recipe features (statistics are computed on the train split).
        tasks: the recipe tasks.
    """

    def __init__(self, features: Sequence[Feature], tasks: Sequence[Task]):
        self.features = FeatureStatsFn(features)
        self.labels = LabelCountsFn(tasks)

    def create_accumulator(self) -> dict[str, Any]:
        return {"rows_in": 0, "blank": 0, "written": {}, "rejected": {}, "examples": {},
                "statistics": self.features.create_accumulator(), "labels": {}}

    def batch_summary(self, rows_in: int, rows_by_split: Mapping[str, Sequence[Mapping[str, Any]]],
                      reject_kinds: Sequence[str], blank_lines: int = 0,
                      reasons: Sequence[str] | None = None) -> dict[str, Any]:
        """The partial summary of one batch.

        Args:
            rows_in: records read in the batch (blank lines not counted).
            rows_by_split: split -> the parsed values of the rows assigned to it.
            reject_kinds: the reason kind of every rejected record of the batch.
            blank_lines: blank lines skipped in the batch.
            reasons: the reason of every rejected record, in the order of ``reject_kinds``.

        Returns:
            An accumulator of this CombineFn.
        """
        acc = self.create_accumulator()
        acc["rows_in"] = rows_in
        acc["blank"] = blank_lines
        acc["rejected"] = dict(Counter(reject_kinds))
        examples = acc["examples"]
        for kind, reason in zip(reject_kinds, reasons or ()):
            if kind not in examples or reason < examples[kind]:
                examples[kind] = reason
        for split, rows in rows_by_split.items():
            if not rows:
                continue
            acc["written"][split] = len(rows)
            acc["labels"][split] = self.labels.add_batch(self.labels.create_accumulator(), rows)
            if split == "train":
                acc["statistics"] = self.features.add_batch(acc["statistics"], rows)
        return acc

    def add_input(self, acc: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
        return self.merge_accumulators([acc, partial])

    def merge_accumulators(self, accumulators) -> dict[str, Any]:
        accumulators = list(accumulators) or [self.create_accumulator()]
        merged = accumulators[0]  # updated in place, as Beam allows for the first one
        merged["rows_in"] = sum(acc["rows_in"] for acc in accumulators)
        merged["blank"] = sum(acc["blank"] for acc in accumulators)
        examples: dict[str, str] = {}
        for acc in accumulators:
            for kind, reason in acc["examples"].items():
                if kind not in examples or reason < examples[kind]:
                    examples[kind] = reason
        merged["examples"] = examples
        for field in ("written", "rejected"):
            totals: Counter = Counter()
            for acc in accumulators:
                totals.update(acc[field])
            merged[field] = dict(totals)
        merged["statistics"] = self.features.merge_accumulators([acc["statistics"] for acc in accumulators])
        merged["labels"] = {split: self.labels.merge_accumulators([acc["labels"][split] for acc in accumulators
                                                                   if split in acc["labels"]])
                            for split in sorted({split for acc in accumulators for split in acc["labels"]})}
        return merged

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return {"counts": {"rows_in": acc["rows_in"], "blank_lines": acc["blank"], "rows_written": dict(acc["written"]),
                           "rows_rejected": dict(acc["rejected"])},
                "reject_examples": dict(sorted(acc["examples"].items())),
                "statistics": self.features.extract_output(acc["statistics"]),
                "labels": {split: self.labels.extract_output(counts) for split, counts in acc["labels"].items()}}
