"""SavedModel export for TensorFlow Serving, plus the native ``.keras`` file.

Keras 3 ``model.save`` no longer writes SavedModel, so the export goes through
``keras.export.ExportArchive``. Every signature parses with the same spec as training
(:func:`mtl_tf.data.parsing.feature_parse_spec`), so serving needs no Python and parses
exactly as the training reader does. An image feature arrives as encoded bytes in the
tf.Example (PNG or JPEG, any size and channels); the graph decodes it, brings it to the
stored height x width as the feature's ``resize`` says and hands the model uint8, as in
training (:func:`mtl_tf.data.images.decode_any_images`).

Signatures (outputs: each task's ``task.serving_outputs(output)``, keyed ``<task>`` or
``<task>_<part>``; for the tabular types the task's output under its name):
  ``serving_default``  ``examples``: serialized tf.Example strings -> every task's outputs.
  ``serve_features``   one named tensor per feature -> every task's outputs: (batch,) per
                       scalar feature, (batch, length) per sequence feature, uint8
                       (batch, height, width, channels) per image feature.
  ``predict_<task>``   serialized tf.Example strings -> that task's outputs only, computed by
                       a sub-model that holds only the layers the task depends on.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import tensorflow as tf

from mtl_tf.data.parsing import decode_features, feature_parse_spec, input_signature
from mtl_tf.data.spec import DatasetSpec
from mtl_tf.errors import did_you_mean

SERVING_DEFAULT = "serving_default"
SERVE_FEATURES = "serve_features"
TASK_SIGNATURE_PREFIX = "predict_"
EXAMPLES_INPUT = "examples"
KERAS_FILE = "model.keras"
SIGNATURES_FILE = "signatures.json"


def task_signature(task: str) -> str:
    """The name of the signature that computes only ``task``."""
    return f"{TASK_SIGNATURE_PREFIX}{task}"


@dataclass(frozen=True)
class ExportResult:
    """Where an export was written.

    Attributes:
        saved_model_dir: the SavedModel folder (what TF Serving loads): ``export_dir`` itself,
            so a folder of numbered exports is a TF Serving ``model_base_path``.
        keras_path: the native Keras file, for reloading with ``keras.saving.load_model``.
        signatures: the signature names in the SavedModel, ``serving_default`` first.
        signatures_file: a JSON description of each signature's inputs and outputs.
    """

    saved_model_dir: Path
    keras_path: Path
    signatures: list[str] = field(default_factory=list)
    signatures_file: Path | None = None


def export_model(model: keras.Model, spec: DatasetSpec, tasks: Sequence[Any],
                 export_dir: str | Path, overwrite: bool = False) -> ExportResult:
    """Writes a SavedModel into ``export_dir``, with ``model.keras`` and ``signatures.json`` beside it.

    TF Serving loads ``<model_base_path>/<version>/saved_model.pb``: export into
    ``<base>/<version number>`` and point the server at ``<base>``; the extra files do not
    disturb it.

    Args:
        model: a functional Keras model with dict inputs keyed by feature name and dict
            outputs keyed by task name.
        spec: the dataset spec the model was trained on; its features define the parsing.
        tasks: the TaskType objects to serve, in output order; each signature returns
            ``task.serving_outputs(output)`` per task (anything with just ``.name``: the
            output under its name).
        export_dir: the folder to write into.
        overwrite: replace an existing export in ``export_dir`` instead of refusing.

    Returns:
        An :class:`ExportResult` with the paths written and the signature names.

    Example:
        >>> result = export_model(model, DatasetSpec.read("dataset"), tasks, "export")
        >>> tf.saved_model.load(str(result.saved_model_dir)).signatures["serving_default"]
    """
    inputs = model_inputs(model)
    outputs = model_outputs(model)
    _check_tasks(tasks, outputs)
    _check_inputs(inputs, spec)
    export_dir = Path(export_dir)
    saved_model_dir = _prepare_dir(export_dir, overwrite)

    endpoints = _build_endpoints(model, spec, inputs, outputs, list(tasks))
    archive = keras.export.ExportArchive()
    archive.track(model)
    functions = {name: archive.add_endpoint(name, fn, input_signature=signature)
                 for name, (fn, signature) in endpoints.items()}
    archive.write_out(str(saved_model_dir), verbose=False)

    keras_path = export_dir / KERAS_FILE
    model.save(keras_path)
    signatures_file = _write_signatures(functions, export_dir / SIGNATURES_FILE)
    return ExportResult(saved_model_dir=saved_model_dir, keras_path=keras_path,
                        signatures=list(functions), signatures_file=signatures_file)


def model_inputs(model: keras.Model) -> dict[str, Any]:
    """The model's symbolic inputs keyed by feature name."""
    try:
        inputs = model.input
    except (AttributeError, ValueError) as error:
        raise TypeError(f"export needs a functional keras.Model with named inputs; got "
                        f"{type(model).__name__} without symbolic inputs ({error})") from None
    if not isinstance(inputs, dict):
        raise TypeError(f"export needs model inputs as a dict keyed by feature name; got "
                        f"{type(inputs).__name__}")
    return dict(inputs)


def model_outputs(model: keras.Model) -> dict[str, Any]:
    """The model's symbolic outputs keyed by task name."""
    try:
        outputs = model.output
    except (AttributeError, ValueError) as error:
        raise TypeError(f"export needs a functional keras.Model with named outputs; got "
                        f"{type(model).__name__} without symbolic outputs ({error})") from None
    if isinstance(outputs, dict):
        return dict(outputs)
    return dict(zip(model.output_names, model.outputs))


def _check_tasks(tasks: Sequence[Any], outputs: dict[str, Any]) -> list[str]:
    names = [task.name for task in tasks]
    if not names:
        raise ValueError(f"export needs at least one task; the model outputs: {', '.join(outputs)}")
    for name in names:
        if name not in outputs:
            raise ValueError(f"task '{name}' is not a model output{did_you_mean(name, outputs)}; "
                             f"model outputs: {', '.join(outputs)}")
    return names


def _check_inputs(inputs: dict[str, Any], spec: DatasetSpec) -> None:
    features = {f.name: f for f in spec.features}
    for name, tensor in inputs.items():
        if name not in features:
            raise ValueError(f"model input '{name}' is not a feature of dataset '{spec.name}'"
                             f"{did_you_mean(name, features)}; features: {', '.join(features)}")
        is_string = features[name].dtype == "string"
        if is_string != (tensor.dtype == "string"):
            raise ValueError(f"model input '{name}' has dtype {tensor.dtype} but dataset.json "
                             f"declares {features[name].dtype}; string inputs need string features")
        feature = features[name]
        if feature.kind == "image" and (tensor.dtype != "uint8" or list(tensor.shape[1:]) != feature.shape):
            raise ValueError(f"model input '{name}' is an image feature: it must take uint8 "
                             f"{tuple([None, *feature.shape])}; received {tensor.dtype} {tuple(tensor.shape)}")


def serving_outputs(task: Any, output: Any) -> dict[str, Any]:
    """A task's serving outputs: ``task.serving_outputs(output)``, or ``{task.name: output}``
    for an object without that method."""
    method = getattr(task, "serving_outputs", None)
    return dict(method(output)) if method is not None else {task.name: output}


def all_serving_outputs(tasks: Sequence[Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """Every task's serving outputs in one dict; two tasks must not give the same key."""
    served: dict[str, Any] = {}
    for task in tasks:
        for key, value in serving_outputs(task, outputs[task.name]).items():
            if key in served:
                raise ValueError(f"task '{task.name}' gives serving output '{key}', which another task "
                                 f"already gives; rename one of the tasks")
            served[key] = value
    return served


def _prepare_dir(path: Path, overwrite: bool) -> Path:
    if (path / "saved_model.pb").exists():
        if not overwrite:
            raise FileExistsError(f"{str(path)!r} already holds an export; pass overwrite=True "
                                  "to replace it, or choose another export_dir")
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _build_endpoints(model: keras.Model, spec: DatasetSpec, inputs: dict[str, Any],
                     outputs: dict[str, Any], tasks: list[Any]) -> dict[str, tuple]:
    """Signature name -> (function, input signature)."""
    every_task = keras.Model(model.input, {task.name: outputs[task.name] for task in tasks})
    parse_spec = {name: rule for name, rule in feature_parse_spec(spec).items() if name in inputs}
    named = {name: sig for name, sig in input_signature(spec).items() if name in inputs}
    examples = [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)]

    endpoints = {
        SERVING_DEFAULT: (_on_examples(every_task, inputs, parse_spec, spec, tasks), examples),
        SERVE_FEATURES: (_on_features(every_task, inputs, tasks), [named]),
    }
    for task in tasks:
        one_task = keras.Model(model.input, {task.name: outputs[task.name]})
        endpoints[task_signature(task.name)] = (_on_examples(one_task, inputs, parse_spec, spec, [task]), examples)
    return endpoints


def _on_examples(model: keras.Model, inputs: dict[str, Any], parse_spec: dict[str, tf.io.FixedLenFeature],
                 spec: DatasetSpec, tasks: list[Any]) -> Callable:
    call = _on_features(model, inputs, tasks)

    def serve(examples):
        parsed = tf.io.parse_example(examples, parse_spec)
        return call(decode_features(parsed, spec, any_size=True))

    return serve


def _on_features(model: keras.Model, inputs: dict[str, Any], tasks: list[Any]) -> Callable:
    def serve(features):
        return all_serving_outputs(tasks, model(conform_features(features, inputs), training=False))

    return serve


def conform_features(features: dict[str, tf.Tensor], inputs: dict[str, Any]) -> dict[str, tf.Tensor]:
    """Parsed (batch,) features cast and shaped as the model inputs expect.

    Args:
        features: parsed features keyed by name, one value per row.
        inputs: the model's symbolic inputs (:func:`model_inputs`).

    Returns:
        Only the features the model takes, in its dtype and as (batch,) or (batch, 1);
        sequences stay (batch, length).
    """
    conformed = {}
    for name, expected in inputs.items():
        value = features[name]
        if value.dtype != tf.as_dtype(expected.dtype):
            value = tf.cast(value, expected.dtype)
        # A model may take a scalar feature as (batch, 1); a sequence arrives (batch, length) already.
        if len(expected.shape) == 2 and expected.shape[-1] == 1 and value.shape.rank == 1:
            value = tf.expand_dims(value, -1)
        conformed[name] = value
    return conformed


def _write_signatures(functions: dict[str, Any], path: Path) -> Path:
    described = {name: _describe(fn.get_concrete_function()) for name, fn in functions.items()}
    path.write_text(json.dumps({"default": SERVING_DEFAULT, "signatures": described}, indent=2) + "\n")
    return path


def _describe(concrete: Any) -> dict[str, Any]:
    specs = tf.nest.flatten(concrete.structured_input_signature)
    return {"inputs": {spec.name: _tensor(spec) for spec in specs},
            "outputs": {name: _tensor(t) for name, t in concrete.structured_outputs.items()}}


def _tensor(tensor: Any) -> dict[str, Any]:
    return {"dtype": tf.as_dtype(tensor.dtype).name, "shape": tensor.shape.as_list()}
