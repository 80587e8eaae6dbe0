"""The model builder: recipe + dataset.json -> a Keras functional model ``{task: output}``.

inputs (one per feature) -> preprocessing (dataset.json statistics) -> architecture
(trunk, routing, towers) -> one head per task. The same builder serves every architecture;
an architecture only decides how the representation of each task is computed.

With an image feature the model is an image model: the image is normalised
(``shared_<feature>_normalize``) and goes through the architecture's image path
(:meth:`Architecture.build_images`: a feature pyramid per task, a decoder per dense task,
pooling and a tower per image-level task); the other features, encoded as usual, are
joined to each image-level task's pooled vector.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from mtl_tf.data.spec import DatasetSpec
from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.naming import check_task_names, layer_owner
from mtl_tf.models.preprocessing import build_inputs, normalize_image, preprocess, sequence_steps
from mtl_tf.recipe.schema import Recipe
from mtl_tf.tasks import build_tasks


def build_model(recipe: Recipe, spec: DatasetSpec, tasks: Sequence[Any] | None = None) -> keras.Model:
    """Builds the multi-task model of a recipe on a dataset.

    Args:
        recipe: the validated recipe (its ``data.features``, ``tasks`` and ``model`` sections).
        spec: the dataset the recipe's pipeline wrote; its statistics set the preprocessing.
        tasks: TaskType objects; default ``build_tasks(recipe.tasks)``. Pass a subset to build
            a model for fewer tasks (a single-task baseline).

    Returns:
        A functional ``keras.Model`` named ``recipe.name``: inputs a dict keyed by feature
        name (scalars per row; uint8 (H, W, C) for an image), outputs a dict keyed by task
        name (a dense task's map at its output stride).

    Example:
        >>> model = build_model(load_recipe("recipes/fraud_signals.yaml"), DatasetSpec.read(folder))
        >>> model(features)["transaction_fraud"]  # (batch,) probabilities
    """
    tasks = list(build_tasks(recipe.tasks, spec) if tasks is None else tasks)
    if not tasks:
        raise ValueError("build_model needs at least one task; received none")
    check_task_names([task.name for task in tasks])
    check_dataset(recipe, spec, tasks)
    # The model reads the recipe's features, in recipe order, even if dataset.json holds more.
    features = [spec.feature(f.name) for f in recipe.data.features]
    model_spec = spec.model_copy(update={"features": features})
    inputs = build_inputs(model_spec)
    representations = _representations(_architecture(recipe), inputs, model_spec, tasks, _decoder(recipe))
    outputs = {task.name: task.head(representations[task.name]) for task in tasks}
    model = keras.Model(inputs=inputs, outputs=outputs, name=recipe.name)
    check_ownership(model)
    return model


def check_ownership(model: keras.Model, task_names: Sequence[str] | None = None) -> None:
    """Refuses a model where a layer named for one task also feeds another task's output.

    The training loop gives a task-specific layer only its own task's gradient; a layer
    that other tasks' outputs depend on is trained by them too and must be named
    ``"shared_..."`` so that it is treated as shared.

    Args:
        model: a functional model with a dict of outputs keyed by task name.
        task_names: the tasks; default the model's output names.

    Raises:
        ValueError: naming the layer, its owner and the other tasks that read it.
    """
    outputs = _outputs(model)
    names = list(task_names or outputs)
    readers: dict[str, list[str]] = {}
    for task in names:
        for layer in keras.Model(model.input, outputs[task]).layers:
            readers.setdefault(layer.name, []).append(task)
    for layer, tasks in readers.items():
        owner = layer_owner(layer, names)
        others = [t for t in tasks if t != owner]
        if owner is not None and others:
            raise ValueError(f"model '{model.name}': layer '{layer}' is named for task '{owner}' but "
                             f"task(s) {', '.join(others)} also depend on it; name it "
                             f"'shared_{layer}' so that training treats it as shared")


def check_dataset(recipe: Recipe, spec: DatasetSpec, tasks: Sequence[Any]) -> None:
    """Refuses a recipe whose features or tasks dataset.json does not hold (or holds differently)."""
    features = {f.name: f for f in spec.features}
    for i, feature in enumerate(recipe.data.features):
        if feature.name not in features:
            raise ValueError(f"data.features.{i}: feature '{feature.name}' is not in dataset "
                             f"'{spec.name}' ({_location(spec)}); its features: {', '.join(features)}. "
                             "Rerun the data pipeline after changing features.")
        if features[feature.name].kind != feature.kind:
            raise ValueError(f"data.features.{i}: feature '{feature.name}' is {feature.kind} in the "
                             f"recipe but {features[feature.name].kind} in dataset '{spec.name}'")
    known = {t.name: t for t in spec.tasks}
    for task in tasks:
        if task.name not in known:
            raise ValueError(f"task '{task.name}' is not in dataset '{spec.name}' ({_location(spec)}); "
                             f"its tasks: {', '.join(known)}")
        if known[task.name].type != task.registered_type:
            raise ValueError(f"task '{task.name}' is {task.registered_type} but dataset '{spec.name}' "
                             f"holds it as {known[task.name].type}")


def task_submodel(model: keras.Model, task_name: str) -> keras.Model:
    """The model restricted to one task: same inputs, output ``{task_name: output}``.

    Only the layers on that task's path are in it (its weights are the full model's, shared
    by reference), so calling it computes nothing for the other tasks.
    """
    outputs = _outputs(model)
    if task_name not in outputs:
        raise ValueError(f"model '{model.name}' has no task '{task_name}'; tasks: {', '.join(outputs)}")
    return keras.Model(inputs=model.input, outputs={task_name: outputs[task_name]},
                       name=f"{model.name}_{task_name}")


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """``{"trainable": n, "non_trainable": m}``, in scalars."""
    return {"trainable": _count(model.trainable_weights),
            "non_trainable": _count(model.non_trainable_weights)}


def task_variables(model: keras.Model, task_name: str,
                   task_names: Sequence[str] | None = None) -> list[keras.Variable]:
    """Trainable variables of the layers that belong to one task (named ``"<task>_..."``).

    Args:
        model: a model built by :func:`build_model`.
        task_name: the task.
        task_names: every task of the model; default the model's output names.

    Returns:
        The task's trainable variables (tower, head, gates...), in layer order.
    """
    names = list(task_names or _outputs(model))
    if task_name not in names:
        raise ValueError(f"model '{model.name}' has no task '{task_name}'; tasks: {', '.join(names)}")
    return _variables(layer for layer in model.layers if layer_owner(layer.name, names) == task_name)


def shared_variables(model: keras.Model,
                     task_names: Sequence[str] | None = None) -> list[keras.Variable]:
    """Trainable variables of the layers no task owns (preprocessing, trunk, experts...).

    Args:
        model: a model built by :func:`build_model`.
        task_names: every task of the model; default the model's output names.
    """
    names = list(task_names or _outputs(model))
    return _variables(layer for layer in model.layers if layer_owner(layer.name, names) is None)


def _representations(architecture, inputs: dict[str, Any], spec: DatasetSpec,
                     tasks: Sequence[Any], decoder: Any = None) -> dict[str, Any]:
    """Task name -> representation; sequence features go apart to an architecture that encodes them."""
    if any(f.kind == "image" for f in spec.features):
        return _image_representations(architecture, inputs, spec, tasks, decoder)
    dense = [task.name for task in tasks if getattr(task, "dense", False)]
    if dense:
        raise ValueError(f"task(s) {', '.join(dense)} are dense (per pixel or per object of an image) and "
                         f"need an image feature; the model's features: {', '.join(f.name for f in spec.features)}")
    sequences = [f for f in spec.features if f.kind == "sequence"]
    if not architecture.encodes_sequences(bool(sequences)):
        return architecture.build(preprocess(inputs, spec), tasks)
    static = [f for f in spec.features if f.kind != "sequence"]
    x = preprocess(inputs, spec.model_copy(update={"features": static})) if static else None
    return architecture.build_sequences(x, sequence_steps(inputs, sequences), tasks)


def _image_representations(architecture, inputs: dict[str, Any], spec: DatasetSpec,
                           tasks: Sequence[Any], decoder: Any) -> dict[str, Any]:
    images = [f for f in spec.features if f.kind == "image"]
    if len(images) > 1:
        raise ValueError(f"an image model takes one image feature; received {len(images)}: "
                         f"{', '.join(f.name for f in images)}")
    if architecture.encodes_sequences(False):
        raise ValueError(f"architecture {type(architecture).__name__}: the sequence encoder does not take "
                         "image features; remove 'encoder' (sequence features then enter flattened)")
    others = [f for f in spec.features if f.kind != "image"]
    x = normalize_image(inputs[images[0].name], images[0])
    features = preprocess(inputs, spec.model_copy(update={"features": others})) if others else None
    return architecture.build_images(x, tasks, decoder, features)


def _decoder(recipe: Recipe) -> dict[str, Any] | None:
    """The recipe's ``model.decoder``, or None when it names none (the architecture's default)."""
    return recipe.model.decoder.as_dict() if "decoder" in recipe.model.model_fields_set else None


def _architecture(recipe: Recipe):
    spec = recipe.model.architecture.as_dict()
    for part in ("trunk", "tower"):
        if part in spec:
            raise ValueError(f"model.architecture: '{part}' belongs in model.{part}, not inside "
                             f"model.architecture; received {spec!r}")
    return ARCHITECTURES.get(spec, "model.architecture", trunk=recipe.model.trunk.as_dict(),
                             tower=recipe.model.tower.as_dict())


def _outputs(model: keras.Model) -> dict[str, Any]:
    output = model.output
    if not isinstance(output, dict):
        raise TypeError(f"model '{model.name}' has no dict of task outputs; received outputs of "
                        f"type {type(output).__name__}; build it with build_model")
    return output


def _variables(layers) -> list[keras.Variable]:
    seen: dict[int, keras.Variable] = {}
    for layer in layers:
        for variable in layer.trainable_weights:
            seen.setdefault(id(variable), variable)
    return list(seen.values())


def _count(variables) -> int:
    return int(sum(np.prod(v.shape, dtype=np.int64) for v in variables))


def _location(spec: DatasetSpec) -> str:
    return f"dataset.json in {spec.root}" if spec.root else "dataset.json"
