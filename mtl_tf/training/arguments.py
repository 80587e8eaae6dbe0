"""Checks of the Trainer's arguments and of what the model returns, with errors that name
the argument, the value received and what is allowed."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf


def steps_per_execution_option(value: Any) -> int | str:
    if value == "auto" and isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"steps_per_execution must be an integer >= 1 or 'auto'; received {value!r}")
    return int(value)


def check_tasks(tasks: Sequence) -> list:
    tasks = list(tasks)
    if not tasks:
        raise ValueError("Trainer needs at least one task; received an empty task list")
    names = [t.name for t in tasks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"task names must be unique; repeated: {', '.join(dupes)}")
    return tasks


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; received {value!r}")
    return int(value)


def early_stopping_options(spec: Any) -> tuple[int | None, float]:
    if spec is None:
        return None, 0.0
    if hasattr(spec, "model_dump"):
        spec = spec.model_dump()
    if not isinstance(spec, Mapping):
        raise TypeError(f"early_stopping must be a dict {{patience, min_delta}} or None; received {spec!r}")
    unknown = sorted(set(spec) - {"patience", "min_delta"})
    if unknown:
        raise ValueError(f"early_stopping: unknown option(s) {', '.join(unknown)}; allowed: min_delta, patience")
    return spec.get("patience", 3), float(spec.get("min_delta", 0.0))


def check_model(model: Any) -> keras.Model:
    if not isinstance(model, keras.Model):
        raise TypeError(f"model_fn must return a keras.Model; received {type(model).__name__}")
    return model


def check_outputs(outputs: Any, tasks: Sequence) -> Mapping[str, tf.Tensor]:
    if not isinstance(outputs, Mapping):
        raise ValueError("the model must return a dict of outputs keyed by task name; "
                         f"received {type(outputs).__name__}")
    missing = [t.name for t in tasks if t.name not in outputs]
    if missing:
        raise ValueError(f"the model has no output for task(s) {', '.join(missing)}; "
                         f"its outputs: {', '.join(sorted(outputs))}")
    return outputs


def resolve_jit(jit_compile: bool | str, strategy: tf.distribute.Strategy, model: keras.Model) -> bool:
    if jit_compile not in (True, False, "auto"):
        raise ValueError(f"jit_compile must be True, False or 'auto'; received {jit_compile!r}")
    if jit_compile != "auto":
        return bool(jit_compile)
    if not accelerators() or strategy.num_replicas_in_sync > 1:
        return False
    layers = model._flatten_layers() if hasattr(model, "_flatten_layers") else model.layers
    return all(getattr(layer, "supports_jit", True) for layer in layers)


MIXED_PRECISION = ("mixed_float16", "mixed_bfloat16")


def mixed_precision_option(value: Any) -> str | None:
    if value is not None and value not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)} or None; received {value!r}")
    return value


def accelerators() -> list:
    """The GPUs and TPUs TensorFlow sees."""
    return [d for d in tf.config.list_physical_devices() if d.device_type != "CPU"]
