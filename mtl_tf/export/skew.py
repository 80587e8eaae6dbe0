"""Training/serving skew check: the reloaded export must answer as the in-memory model does.

The SavedModel is reloaded with ``tf.saved_model.load`` (as TF Serving would), its
``serving_default`` signature is called on serialized examples, and each task's output is
compared with the in-memory model on the same examples parsed with the same spec. Each
``predict_<task>`` signature is also compared with ``serving_default``. Registration stops
on a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.data.parsing import feature_parse_spec
from mtl_tf.data.spec import DatasetSpec
from mtl_tf.export.exporter import (EXAMPLES_INPUT, SERVING_DEFAULT, conform_features,
                                    model_inputs, task_signature)


class SkewError(ValueError):
    """The export answers differently from the in-memory model; ``report`` has the numbers."""

    def __init__(self, message: str, report: "SkewReport"):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class SkewReport:
    """Per-task maximum absolute differences found by :func:`check_skew`.

    Attributes:
        tolerance: the largest difference allowed.
        num_examples: how many examples were compared.
        export_vs_model: task -> max |serving_default - in-memory model|.
        task_vs_default: task -> max |predict_<task> - serving_default|.
    """

    tolerance: float
    num_examples: int
    export_vs_model: dict[str, float] = field(default_factory=dict)
    task_vs_default: dict[str, float] = field(default_factory=dict)

    @property
    def max_abs_difference(self) -> dict[str, float]:
        """Task -> the larger of its two differences."""
        return {task: max(diff, self.task_vs_default.get(task, 0.0))
                for task, diff in self.export_vs_model.items()}

    @property
    def failed_tasks(self) -> list[str]:
        return [task for task, diff in self.max_abs_difference.items() if not diff <= self.tolerance]

    @property
    def ok(self) -> bool:
        return not self.failed_tasks


def check_skew(model: keras.Model, saved_model_dir: str | Path, examples: Sequence[bytes],
               spec: DatasetSpec, tolerance: float, raise_on_skew: bool = True) -> SkewReport:
    """Compares the reloaded SavedModel with the in-memory model on serialized examples.

    Args:
        model: the in-memory Keras model that was exported.
        saved_model_dir: the SavedModel folder written by :func:`export_model`.
        examples: serialized tf.Example strings (labels may be present; they are ignored).
        spec: the dataset spec the export parses with.
        tolerance: the largest absolute difference allowed per output value.
        raise_on_skew: raise :class:`SkewError` on a mismatch (default) instead of returning
            a report whose ``ok`` is False.

    Returns:
        A :class:`SkewReport`.

    Raises:
        SkewError: a task differs by more than ``tolerance``; the message names each task.
    """
    batch = _examples_tensor(examples)
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0; got {tolerance!r}")
    signatures = _load_signatures(saved_model_dir)
    served = _to_numpy(signatures[SERVING_DEFAULT](**{EXAMPLES_INPUT: batch}))
    expected = _in_memory(model, spec, batch)
    report = SkewReport(tolerance=float(tolerance), num_examples=len(examples),
                        export_vs_model=_compare(served, expected),
                        task_vs_default=_compare_tasks(signatures, served, batch, saved_model_dir))
    if raise_on_skew and not report.ok:
        raise SkewError(_message(report, saved_model_dir), report)
    return report


def _examples_tensor(examples: Sequence[bytes]) -> tf.Tensor:
    if isinstance(examples, (bytes, str)) or not len(examples):
        raise ValueError(f"check_skew needs a non-empty list of serialized tf.Example bytes; "
                         f"got {type(examples).__name__} of length {len(examples)}")
    wrong = [type(e).__name__ for e in examples if not isinstance(e, bytes)]
    if wrong:
        raise TypeError(f"check_skew needs serialized tf.Example bytes; got {wrong[0]} "
                        f"({len(wrong)} of {len(examples)} items); serialize with SerializeToString()")
    return tf.constant(list(examples), dtype=tf.string)


def _load_signatures(saved_model_dir: str | Path):
    path = Path(saved_model_dir)
    if not (path / "saved_model.pb").is_file():
        raise FileNotFoundError(f"no SavedModel at {str(path)!r} (saved_model.pb is missing)")
    signatures = tf.saved_model.load(str(path)).signatures
    if SERVING_DEFAULT not in signatures:
        raise ValueError(f"the SavedModel at {str(path)!r} has no '{SERVING_DEFAULT}' signature; "
                         f"signatures: {', '.join(signatures)}")
    return signatures


def _in_memory(model: keras.Model, spec: DatasetSpec, batch: tf.Tensor) -> dict[str, np.ndarray]:
    parsed = tf.io.parse_example(batch, feature_parse_spec(spec))
    return _to_numpy(model(conform_features(parsed, model_inputs(model)), training=False))


def _compare(served: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> dict[str, float]:
    return {task: _max_abs_difference(value, expected.get(task)) for task, value in served.items()}


def _compare_tasks(signatures, served: dict[str, np.ndarray], batch: tf.Tensor,
                   saved_model_dir: str | Path) -> dict[str, float]:
    differences = {}
    for task, value in served.items():
        name = task_signature(task)
        if name not in signatures:
            raise ValueError(f"the SavedModel at {str(saved_model_dir)!r} has no '{name}' signature "
                             f"for task '{task}'; signatures: {', '.join(signatures)}")
        alone = _to_numpy(signatures[name](**{EXAMPLES_INPUT: batch}))
        differences[task] = _max_abs_difference(alone.get(task), value)
    return differences


def _to_numpy(outputs: dict[str, tf.Tensor]) -> dict[str, np.ndarray]:
    return {name: np.asarray(value) for name, value in outputs.items()}


def _max_abs_difference(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Max |a - b|; NaN in both places agrees, NaN in one place or a shape mismatch is inf."""
    if a is None or b is None or a.shape != b.shape:
        return float("inf")
    a, b = a.astype(np.float64), b.astype(np.float64)
    difference = np.abs(a - b)
    difference[np.isnan(a) & np.isnan(b)] = 0.0
    difference[np.isnan(difference)] = np.inf
    return float(difference.max()) if difference.size else 0.0


def _message(report: SkewReport, saved_model_dir: str | Path) -> str:
    lines = [f"the export at {str(saved_model_dir)!r} differs from the in-memory model on "
             f"{len(report.failed_tasks)} task(s) over {report.num_examples} examples "
             f"(tolerance {report.tolerance:g}):"]
    for task in report.failed_tasks:
        lines.append(f"  {task}: max |serving_default - model| = {report.export_vs_model[task]:.6g}, "
                     f"max |{task_signature(task)} - serving_default| = "
                     f"{report.task_vs_default.get(task, 0.0):.6g}")
    return "\n".join(lines)
