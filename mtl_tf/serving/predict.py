"""Answers for raw rows: one JSON object per input row, from a SavedModel or TF Serving.

Rows become tf.Examples with the Beam pipeline's own conversion (:mod:`.rows`; images,
from a manifest or a folder, with the image pipeline's: :mod:`.image_rows`) and go to a
signature that takes serialized examples: ``serving_default`` (every task) or
``predict_<task>`` (one task). A good row's object holds the signature's outputs keyed as
the signature names them (an image row's, shaped by :mod:`.answers`: its image path, dense
maps as files or summaries, detections as boxes in its pixels); a rejected row's object is
``{"row", "error", "kind"}`` (and ``"image"`` for an image row), and the other rows are still
answered.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from mtl_tf.serving.rows import RowInput

SERVING_DEFAULT = "serving_default"
TASK_PREFIX = "predict_"
DEFAULT_BATCH = 256

Answer = Callable[[Sequence[bytes]], Mapping[str, np.ndarray]]
# One good row and its outputs -> its JSON object.
RowAnswer = Callable[[RowInput, Mapping[str, np.ndarray]], dict[str, Any]]


def signature_for(task: str | None) -> str:
    """``predict_<task>`` for a task, else ``serving_default``."""
    return f"{TASK_PREFIX}{task}" if task else SERVING_DEFAULT


def local_answer(saved_model_dir: str | Path, signature: str) -> Answer:
    """Answers through ``signature`` of the SavedModel in ``saved_model_dir``, in this process.

    Raises:
        ValueError: the SavedModel has no such signature.
    """
    return LocalModel(saved_model_dir, signature)


class LocalModel:
    """A SavedModel signature over serialized examples, called in this process.

    The loaded SavedModel is kept with its signature: the signature's variables belong to it.
    """

    def __init__(self, saved_model_dir: str | Path, signature: str):
        import tensorflow as tf

        from mtl_tf.errors import did_you_mean

        self.loaded = tf.saved_model.load(str(saved_model_dir))
        if signature not in self.loaded.signatures:
            known = sorted(self.loaded.signatures)
            raise ValueError(f"the SavedModel has no signature '{signature}'{did_you_mean(signature, known)}; "
                             f"signatures: {', '.join(known)}")
        self.function = self.loaded.signatures[signature]
        self.input_name = signature_input(self.function)

    def __call__(self, examples: Sequence[bytes]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        outputs = self.function(**{self.input_name: tf.constant(list(examples), dtype=tf.string)})
        return {name: value.numpy() for name, value in outputs.items()}


def signature_input(function: Any) -> str:
    """The one input name of a concrete signature function."""
    names = list(function.structured_input_signature[1])
    if len(names) != 1:
        raise ValueError(f"a signature over serialized examples has one input; this one has {', '.join(names)}")
    return names[0]


@dataclass
class PredictSummary:
    """Rows in = answered + rejected (by reason kind)."""

    rows: int = 0
    answered: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # files of a folder input that are not images
    files: int = 0  # dense maps written beside the output

    def line(self) -> str:
        rejected = sum(self.rejected.values())
        reasons = ", ".join(f"{kind} {count}" for kind, count in sorted(self.rejected.items()))
        return (f"rows {self.rows} = answered {self.answered} + rejected {rejected}"
                + (f" ({reasons})" if reasons else "")
                + (f"; {self.skipped} files skipped (not images)" if self.skipped else ""))


def plain_answer(row: RowInput, outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """A tabular row's object: every output as plain JSON, keyed as the signature names it."""
    return {name: json_value(value) for name, value in outputs.items()}


def rejected_answer(row: RowInput) -> dict[str, Any]:
    """``{"row", "error", "kind"}``, with ``"image"`` for an image row whose path is known."""
    answer = {"row": row.row, "error": row.reason, "kind": row.kind}
    image = getattr(row, "image", None)
    return {**answer, "image": image} if image is not None else answer


def predict_rows(rows: Iterable[RowInput], answer: Answer, batch_size: int = DEFAULT_BATCH,
                 summary: PredictSummary | None = None,
                 shape: RowAnswer = plain_answer) -> Iterator[dict[str, Any]]:
    """One JSON-ready object per row, in input order; good rows answered ``batch_size`` at a time.

    Args:
        rows: the input rows.
        answer: serialized examples -> the signature's outputs, one value per example.
        batch_size: rows per call of ``answer``.
        summary: counts rows, answered and rejected ones.
        shape: a good row and its outputs -> its object (:func:`plain_answer`, or an
            :class:`~mtl_tf.serving.answers.ImageAnswers` for image rows).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; received {batch_size}")
    summary = summary if summary is not None else PredictSummary()
    chunk: list[RowInput] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch_size:
            yield from _answer_chunk(chunk, answer, summary, shape)
            chunk = []
    if chunk:
        yield from _answer_chunk(chunk, answer, summary, shape)


def _answer_chunk(chunk: list[RowInput], answer: Answer, summary: PredictSummary,
                  shape: RowAnswer) -> Iterator[dict[str, Any]]:
    good = [row for row in chunk if row.ok]
    outputs = answer([row.example for row in good]) if good else {}
    position = {row.row: i for i, row in enumerate(good)}
    for row in chunk:
        summary.rows += 1
        if row.ok:
            summary.answered += 1
            i = position[row.row]
            yield shape(row, {name: values[i] for name, values in outputs.items()})
        else:
            summary.rejected[row.kind] = summary.rejected.get(row.kind, 0) + 1
            yield rejected_answer(row)


def json_value(value: Any) -> Any:
    """A NumPy value as plain JSON: lists, floats (NaN and infinities as null), ints, strings."""
    if isinstance(value, np.ndarray):
        return [json_value(v) for v in value.tolist()] if value.ndim else json_value(value.item())
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, (np.generic,)):
        return json_value(value.item())
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_jsonl(objects: Iterable[Mapping[str, Any]], handle: Any) -> None:
    """Writes one compact JSON object per line."""
    for obj in objects:
        handle.write(json.dumps(obj, allow_nan=False) + "\n")


@dataclass(frozen=True)
class Target:
    """Where requests go: this process (``server`` None) or a TF Serving endpoint."""

    server: str | None = None
    protocol: str = "rest"
    served_name: str | None = None
    label: str | None = None
    version: int | None = None
    timeout: float = 30.0

    def describe(self, name: str) -> str:
        if self.server is None:
            return "the SavedModel, in this process"
        from mtl_tf.serving.client import model_path

        return f"{self.protocol} {self.server}{model_path(self.served_name or name, self.label, self.version)}"


def remote_target(ref: Any, version: Any, server: str, protocol: str, served_name: str | None,
                  label: str | None, mapping: Mapping[str, str], timeout: float) -> Target:
    """The endpoint for ``ref``: an alias asks for its label (champion -> stable), a version for itself.

    An alias without a label asks for the version it points at now.
    """
    from mtl_tf.serving.client import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}; received {protocol!r}")
    if label is None and ref.alias is not None:
        label = mapping.get(ref.alias)
    number = None if label is not None else version.version
    return Target(server=server, protocol=protocol, served_name=served_name or ref.name, label=label,
                  version=number, timeout=timeout)


def remote_answer(target: Target, signature: str, input_name: str, output_names: Sequence[str]) -> Answer:
    """Answers through TF Serving at ``target``."""
    from mtl_tf.serving import client

    if target.protocol == "grpc":
        client._serving_api("predict_pb2")  # a missing extra is one error before any row is read

        def answer(examples: Sequence[bytes]) -> Mapping[str, np.ndarray]:
            return client.grpc_predict(target.server, target.served_name, examples, signature, target.label,
                                       target.version, input_name, target.timeout)
    else:
        def answer(examples: Sequence[bytes]) -> Mapping[str, np.ndarray]:
            return client.rest_predict(target.server, target.served_name, examples, signature, output_names,
                                       target.label, target.version, input_name, target.timeout)
    return answer


def run_predict(ref: Any, input_path: str | Path, output: Any, task: str | None = None, input_kind: str | None = None,
                target: Target = Target(), tracking_uri: str | None = None, batch_size: int = DEFAULT_BATCH,
                mapping: Mapping[str, str] | None = None, label: str | None = None,
                dense_dir: str | Path | None = None, min_score: float | None = None) -> PredictSummary:
    """Answers every row of ``input_path`` with the registered version ``ref`` names.

    Args:
        ref: a :class:`~mtl_tf.serving.reference.ModelRef`.
        input_path: a CSV or JSON-lines file of raw rows; for an image recipe, a manifest
            (CSV or JSON lines) or a folder of images (:mod:`.image_rows`).
        output: a text handle the JSON lines go to.
        task: answer through ``predict_<task>`` instead of ``serving_default``.
        input_kind: ``csv`` or ``jsonl``; default from the file's suffix.
        target: :class:`Target`; its server (if any) gets the requests, else the export is
            downloaded and answered here. Its label and version are filled in from ``ref``.
        tracking_uri: as :func:`mtl_tf.tracking.resolve_tracking_uri`.
        batch_size: rows per request.
        mapping: alias -> label, for a server.
        label: ask the server for this label instead of the alias's.
        dense_dir: image recipes: where masks and depth maps are written as PNG files
            (:func:`~mtl_tf.serving.answers.dense_folder` of the output file); None: they are
            summarised in the JSON.
        min_score: image recipes: detections with a lower score are left out; default
            :data:`~mtl_tf.serving.answers.DEFAULT_MIN_SCORE`.

    Returns:
        A :class:`PredictSummary`.
    """
    import tempfile

    from mtl_tf.serving.image_rows import row_encoder
    from mtl_tf.serving.labels import DEFAULT_LABELS
    from mtl_tf.serving.registered import download_export, resolve_version, serving_files
    from mtl_tf.serving.rows import input_format

    input_path = Path(input_path)
    if not input_path.exists():
        raise FileNotFoundError(f"no input file or folder {str(input_path)!r}")
    kind = None if input_path.is_dir() else input_kind or input_format(input_path)
    version = resolve_version(ref, tracking_uri)
    signature = signature_for(task)
    with tempfile.TemporaryDirectory(prefix="mtl-predict-") as folder:
        files = serving_files(version, Path(folder) / "files", tracking_uri)
        _check_task(task, files)
        encoder = row_encoder(files.recipe)
        shape = _row_answer(files.recipe, input_path, dense_dir, min_score)
        rows = encoder.read(input_path, kind)
        described = files.signature(signature)
        if target.server is None:
            answer = local_answer(download_export(version, Path(folder) / "export", tracking_uri), signature)
        else:
            remote = remote_target(ref, version, target.server, target.protocol, target.served_name, label,
                                   mapping or DEFAULT_LABELS, target.timeout)
            answer = remote_answer(remote, signature, _only(described["inputs"]), list(described["outputs"]))
        summary = PredictSummary()
        write_jsonl(predict_rows(rows, answer, batch_size, summary, shape), output)
        summary.skipped = getattr(encoder, "skipped", 0)
        summary.files = getattr(shape, "files", 0)
    return summary


def _row_answer(recipe: Any, input_path: Path, dense_dir: str | Path | None, min_score: float | None) -> RowAnswer:
    """How good rows are answered: :func:`plain_answer` for tabular rows, ImageAnswers for images."""
    from mtl_tf.serving.answers import DEFAULT_MIN_SCORE, ImageAnswers

    if recipe.data.image_feature is None:
        if input_path.is_dir():
            raise ValueError(f"{str(input_path)!r} is a folder: a folder of images is an input of image recipes; "
                             "this recipe takes a CSV or JSON-lines file of rows")
        return plain_answer
    return ImageAnswers(recipe, dense_dir, DEFAULT_MIN_SCORE if min_score is None else min_score)


def _check_task(task: str | None, files: Any) -> None:
    if task is None:
        return
    from mtl_tf.errors import did_you_mean

    tasks = [name[len(TASK_PREFIX):] for name in files.signatures.get("signatures", {}) if name.startswith(TASK_PREFIX)]
    if task not in tasks:
        raise ValueError(f"--task {task!r} is not a task of the model{did_you_mean(task, tasks)}; tasks: "
                         f"{', '.join(tasks)}")


def _only(inputs: Mapping[str, Any]) -> str:
    names = list(inputs)
    if len(names) != 1:
        raise ValueError(f"a signature over serialized examples has one input; this one has {', '.join(names)}")
    return names[0]
