"""Figures about a built model for the run report: compute, parameters, penalties.

``flops_per_example`` counts multiply-adds on the traced inference graph (a TensorFlow
concrete function at batch size 1), op by op, from the ops' static shapes:

  MatMul / BatchMatMul   output size x contracted size
  Einsum                 product of the sizes of every index (two operands)
  Conv2D                 output size x kernel height x kernel width x input channels per group
                         (a dilated convolution, which TensorFlow runs on a space-to-batch
                         rearranged and padded input, by the size of its output once
                         rearranged back: padding is not counted)
  DepthwiseConv2dNative  output size x kernel height x kernel width (dilated: as Conv2D)
  Gather (embeddings)    output size (one read per embedded value)

Element-wise ops (bias adds, activations, normalisation) are not counted: they are small
next to the products and every architecture has them in proportion.

Recurrent layers (GRU, LSTM, SimpleRNN) run their steps in a loop whose body the graph walk
does not see, so they are estimated from their weights instead: per step the input kernel
and the recurrent kernel are each applied once (``steps x (input x gates x units + units x
gates x units)``, gates 3 for GRU, 4 for LSTM, 1 for SimpleRNN). Attention (Einsum and
BatchMatMul) is counted op by op like the rest.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.models.layers.non_learnable_primitives import NonLearnablePrimitives
from mtl_tf.models.layers.soft_sharing_penalty import SoftSharingPenalty
from mtl_tf.models.naming import layer_owner

_GATHERS = {"GatherV2", "ResourceGather", "Gather", "GatherNd", "ResourceGatherNd"}


def flops_per_example(model: keras.Model) -> int:
    """Multiply-adds one example costs at inference (see the module docstring for the rules).

    Args:
        model: a functional Keras model (dict or single inputs, any outputs).

    Returns:
        The number of multiply-adds for one row (one FLOP by the TF profiler's count is half
        a multiply-add: multiply by 2 to compare with it).
    """
    graph = _inference_graph(model)
    counted = sum(_multiply_adds(op) for op in graph.get_operations())
    return int(counted + sum(recurrent_multiply_adds(layer) for layer in model.layers))


def recurrent_multiply_adds(layer: keras.layers.Layer) -> int:
    """Estimated multiply-adds of one row through a recurrent layer (0 for any other layer).

    Args:
        layer: a layer of a functional model (its input shape gives the number of steps).

    Returns:
        ``steps x (kernel size + recurrent kernel size)``: each step multiplies its input by
        the input kernel and the previous state by the recurrent kernel.
    """
    if not isinstance(layer, keras.layers.RNN):
        return 0
    cell = layer.cell
    kernels = [getattr(cell, name, None) for name in ("kernel", "recurrent_kernel")]
    try:
        steps = layer.input.shape[1]
    except (AttributeError, ValueError, IndexError):
        steps = None
    if steps is None or any(k is None for k in kernels):
        return 0
    return int(steps * sum(math.prod(k.shape) for k in kernels))


def parameter_breakdown(model: keras.Model, task_names: Sequence[str] | None = None) -> dict[str, int]:
    """Parameter counts by kind, in scalars.

    Args:
        model: a model built by :func:`mtl_tf.models.build_model` (or any functional model
            whose outputs are keyed by task).
        task_names: the tasks; default the model's output names.

    Returns:
        ``trainable`` and ``non_trainable`` (as :func:`mtl_tf.models.parameter_counts`),
        ``fixed_primitives`` (the non-learnable primitives of ETR-NLP, part of
        ``non_trainable``), ``shared_trainable`` and ``task_trainable`` (trainable scalars
        in shared and in task-specific layers).
    """
    names = list(task_names or (model.output if isinstance(model.output, dict) else []))
    fixed = [v for layer in model.layers if isinstance(layer, NonLearnablePrimitives)
             for v in layer.weights]
    owned = [(layer_owner(layer.name, names), v) for layer in model.layers for v in layer.trainable_weights]
    return {"trainable": _count(model.trainable_weights),
            "non_trainable": _count(model.non_trainable_weights),
            "fixed_primitives": _count(_unique(fixed)),
            "shared_trainable": _count(_unique(v for owner, v in owned if owner is None)),
            "task_trainable": _count(_unique(v for owner, v in owned if owner is not None))}


def penalty_values(model: keras.Model) -> dict[str, float]:
    """The current value of each architecture penalty (soft sharing), keyed by layer name.

    Computed from the weights alone, so it can be logged at any time (for example after each
    epoch, as ``<layer name>`` or ``sps_penalty``). Empty for architectures without one.
    """
    return {layer.name: float(keras.ops.convert_to_numpy(layer.penalty()))
            for layer in model.layers if isinstance(layer, SoftSharingPenalty)}


def _inference_graph(model: keras.Model) -> tf.Graph:
    inputs = model.input
    signature = tf.nest.map_structure(lambda t: tf.TensorSpec((1, *t.shape[1:]), t.dtype), inputs)
    if any(None in spec.shape for spec in tf.nest.flatten(signature)):
        shapes = tf.nest.map_structure(lambda t: t.shape, inputs)
        raise ValueError(f"model '{model.name}': flops_per_example needs inputs whose shapes are "
                         f"known apart from the batch; received {shapes}")
    function = tf.function(lambda features: model(features, training=False))
    return function.get_concrete_function(signature).graph


def _multiply_adds(op: tf.Operation) -> int:
    kind = op.type
    if kind in _GATHERS:
        return _size(op.outputs[0].shape)
    if kind in ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        left = op.inputs[0].shape
        transposed = op.get_attr("transpose_a") if kind == "MatMul" else op.get_attr("adj_x")
        return _size(op.outputs[0].shape) * (left[-2] if transposed else left[-1])
    if kind == "Einsum":
        return _einsum(op)
    if kind == "Conv2D":
        kernel = op.inputs[1].shape  # (h, w, in / groups, out)
        return _size(_conv_output(op).shape) * kernel[0] * kernel[1] * kernel[2]
    if kind == "DepthwiseConv2dNative":
        kernel = op.inputs[1].shape
        return _size(_conv_output(op).shape) * kernel[0] * kernel[1]
    return 0


def _conv_output(op: tf.Operation) -> tf.Tensor:
    """A convolution's output; for a dilated one, the output rearranged back from batches."""
    if op.inputs[0].op.type == "SpaceToBatchND":
        for consumer in op.outputs[0].consumers():
            if consumer.type == "BatchToSpaceND":
                return consumer.outputs[0]
    return op.outputs[0]


def _einsum(op: tf.Operation) -> int:
    equation = op.get_attr("equation").decode()
    operands = equation.split("->")[0].split(",")
    if len(operands) != 2 or "." in equation:
        return 0
    sizes: dict[str, int] = {}
    for letters, tensor in zip(operands, op.inputs):
        for letter, size in zip(letters, tensor.shape):
            sizes[letter] = size
    return math.prod(sizes.values())


def _size(shape: tf.TensorShape) -> int:
    dims = shape.as_list() if shape.rank is not None else []
    return math.prod(d for d in dims if d is not None)


def _unique(variables) -> list[Any]:
    seen: dict[int, Any] = {}
    for variable in variables:
        seen.setdefault(id(variable), variable)
    return list(seen.values())


def _count(variables) -> int:
    return int(sum(np.prod(v.shape, dtype=np.int64) for v in variables))
