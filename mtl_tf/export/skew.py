"""Training/serving skew check: the reloaded export must answer as the in-memory model does.

The SavedModel is reloaded with ``tf.saved_model.load`` (as TF Serving would), its
``serving_default`` signature is called on serialized examples, and each serving output
(``task.serving_outputs(output)``: ``<task>`` or ``<task>_<part>``) is compared with the
in-memory model's on the same examples, parsed with the same spec and decoded as the
training reader decodes them (so the export's own decoding and resizing of images is
checked too). Each ``predict_<task>`` signature is also compared with ``serving_default``.

Values (probabilities, depth, boxes, scores) must agree within the tolerance; a value
served in a task's own units is compared in that unit (``task.serving_units()``: a
regression output in its label's train std, so a label in the millions is held to the
same relative precision as one near 1, and float32 rounding of a large value is not a
mismatch). Integer
outputs (class ids) must agree exactly, except where the in-memory model's probabilities of
the two ids differ by no more than the tolerance (a tie, which rounding may break either
way); that exception applies to ids of the task's output along its last axis (per-pixel
classes), other integer outputs (detection classes) must be equal. Registration stops on a
mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.data.parsing import decode_features, feature_parse_spec
from mtl_tf.data.spec import DatasetSpec
from mtl_tf.export.exporter import (EXAMPLES_INPUT, SERVING_DEFAULT, conform_features,
                                    model_inputs, serving_outputs, task_signature)


class SkewError(ValueError):
    """The export answers differently from the in-memory model; ``report`` has the numbers."""

    def __init__(self, message: str, report: "SkewReport"):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class SkewReport:
    """Per-output maximum absolute differences found by :func:`check_skew`, keyed by serving
    output (the task's name for the tabular types, ``<task>_<part>`` for some dense ones).

    Attributes:
        tolerance: the largest difference allowed.
        num_examples: how many examples were compared.
        export_vs_model: output -> max |serving_default - in-memory model| in the output's
            unit (a regression output's: its label's train std); for integer
            outputs 0.0 when they agree (ties aside), else inf.
        task_vs_default: output -> max |predict_<task> - serving_default|, likewise.
        id_mismatches: integer output -> positions where the ids differ without a tie
            (either comparison); absent when there are none.
    """

    tolerance: float
    num_examples: int
    export_vs_model: dict[str, float] = field(default_factory=dict)
    task_vs_default: dict[str, float] = field(default_factory=dict)
    id_mismatches: dict[str, int] = field(default_factory=dict)

    @property
    def max_abs_difference(self) -> dict[str, float]:
        """Output -> the larger of its two differences."""
        return {task: max(diff, self.task_vs_default.get(task, 0.0))
                for task, diff in self.export_vs_model.items()}

    @property
    def failed_tasks(self) -> list[str]:
        return [task for task, diff in self.max_abs_difference.items() if not diff <= self.tolerance]

    @property
    def ok(self) -> bool:
        return not self.failed_tasks


def check_skew(model: keras.Model, saved_model_dir: str | Path, examples: Sequence[bytes],
               spec: DatasetSpec, tolerance: float, raise_on_skew: bool = True,
               tasks: Sequence[Any] | None = None) -> SkewReport:
    """Compares the reloaded SavedModel with the in-memory model on serialized examples.

    Args:
        model: the in-memory Keras model that was exported.
        saved_model_dir: the SavedModel folder written by :func:`export_model`.
        examples: serialized tf.Example strings (labels may be present; they are ignored).
        spec: the dataset spec the export parses with.
        tolerance: the largest absolute difference allowed per output value, in the output's
            unit (``task.serving_units()``; 1 unless the task says otherwise).
        raise_on_skew: raise :class:`SkewError` on a mismatch (default) instead of returning
            a report whose ``ok`` is False.
        tasks: the TaskType objects that were exported (their ``serving_outputs`` give the
            in-memory side); None: every model output under its name, as the tabular types.

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
    raw, expected, owner = _in_memory(model, spec, batch, tasks)
    compare = _Comparison(raw, owner, float(tolerance), _units(tasks))
    export_vs_model = {key: compare(key, value, expected.get(key)) for key, value in served.items()}
    task_vs_default = _compare_tasks(signatures, served, batch, saved_model_dir, owner, compare)
    report = SkewReport(tolerance=float(tolerance), num_examples=len(examples),
                        export_vs_model=export_vs_model, task_vs_default=task_vs_default,
                        id_mismatches={k: v for k, v in compare.mismatches.items() if v})
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


def _in_memory(model: keras.Model, spec: DatasetSpec, batch: tf.Tensor, tasks: Sequence[Any] | None):
    """(task -> raw output, serving output -> value, serving output -> its task) of the
    in-memory model, on the examples parsed and decoded as the training reader does."""
    inputs = model_inputs(model)
    parsed = tf.io.parse_example(batch, {k: v for k, v in feature_parse_spec(spec).items() if k in inputs})
    outputs = model(conform_features(decode_features(parsed, spec), inputs), training=False)
    if tasks is None:
        tasks = [_Named(name) for name in outputs]
    expected, owner = {}, {}
    for task in tasks:
        for key, value in serving_outputs(task, outputs[task.name]).items():
            expected[key], owner[key] = np.asarray(value), task.name
    return _to_numpy({task.name: outputs[task.name] for task in tasks}), expected, owner


class _Named:
    def __init__(self, name: str):
        self.name = name


def _units(tasks: Sequence[Any] | None) -> dict[str, float]:
    """Serving output -> the unit its differences are measured in (``task.serving_units()``)."""
    return {key: unit for task in tasks or () for key, unit in task.serving_units().items()}


class _Comparison:
    """Compares one serving output with its reference: values by max |a - b|, ids by
    equality up to ties of the in-memory probabilities; counts id mismatches per output."""

    def __init__(self, raw: dict[str, np.ndarray], owner: dict[str, str], tolerance: float,
                 units: dict[str, float] | None = None):
        self.raw, self.owner, self.tolerance = raw, owner, tolerance
        self.units = units or {}
        self.mismatches: dict[str, int] = {}

    def __call__(self, key: str, value: np.ndarray | None, reference: np.ndarray | None) -> float:
        if value is not None and reference is not None and _is_integer(value) and _is_integer(reference):
            if value.shape != reference.shape:
                return float("inf")
            probabilities = self.raw.get(self.owner.get(key, key))
            count = id_mismatches(value, reference, probabilities, self.tolerance)
            self.mismatches[key] = self.mismatches.get(key, 0) + count
            return 0.0 if count == 0 else float("inf")
        return _max_abs_difference(value, reference) / self.units.get(key, 1.0)


def id_mismatches(ids: np.ndarray, reference: np.ndarray, probabilities: np.ndarray | None,
                  tolerance: float) -> int:
    """Positions where two arrays of class ids differ, not counting ties: where
    ``probabilities`` (ids' shape plus a class axis) gives the two ids probabilities within
    ``tolerance`` of each other. Without such probabilities every difference counts."""
    differ = ids != reference
    if not differ.any():
        return 0
    if probabilities is None or probabilities.shape[:-1] != ids.shape:
        return int(differ.sum())
    classes = probabilities.shape[-1]
    a = np.take_along_axis(probabilities, np.clip(ids, 0, classes - 1)[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(probabilities, np.clip(reference, 0, classes - 1)[..., None], axis=-1)[..., 0]
    return int((differ & ~(np.abs(a.astype(np.float64) - b) <= tolerance)).sum())


def _is_integer(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.integer)


def _compare_tasks(signatures, served: dict[str, np.ndarray], batch: tf.Tensor, saved_model_dir: str | Path,
                   owner: dict[str, str], compare: _Comparison) -> dict[str, float]:
    differences, answers = {}, {}
    for key, value in served.items():
        task = owner.get(key, key)
        name = task_signature(task)
        if name not in signatures:
            raise ValueError(f"the SavedModel at {str(saved_model_dir)!r} has no '{name}' signature "
                             f"for task '{task}'; signatures: {', '.join(signatures)}")
        if name not in answers:
            answers[name] = _to_numpy(signatures[name](**{EXAMPLES_INPUT: batch}))
        differences[key] = compare(key, answers[name].get(key), value)
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
             f"{len(report.failed_tasks)} output(s) over {report.num_examples} examples "
             f"(tolerance {report.tolerance:g}):"]
    for key in report.failed_tasks:
        if key in report.id_mismatches:
            lines.append(f"  {key}: {report.id_mismatches[key]} class id(s) differ without a tie")
            continue
        lines.append(f"  {key}: max |serving_default - model| = {report.export_vs_model[key]:.6g}, "
                     f"max |predict_<task> - serving_default| = {report.task_vs_default.get(key, 0.0):.6g}")
    return "\n".join(lines)
