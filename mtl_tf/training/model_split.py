"""Which variables of a multi-task model are shared, which belong to one task, and where the
shared representation ends.

The split follows the layer naming convention of :mod:`mtl_tf.models.naming`: a layer named
``"<task>"`` or ``"<task>_..."`` belongs to that task; every other layer is shared.

The shared representation is every tensor a shared layer hands to a task layer (for hard
parameter sharing: the trunk output; for an expert mixture: the experts' outputs and whatever
the task gates read). :class:`ModelSplit` cuts the functional graph there into a ``front``
model (inputs -> representation) and one ``back`` model per task (representation -> that
task's output). Calling each task's back model on its own copy of the representation gives
every task's representation gradient in a single backward pass.

The *last shared layer* (:attr:`ModelSplit.last_shared`, where GradNorm measures gradient
norms) is the last weighted layer before that boundary: for each shared layer that produces
a representation tensor, its last sub-layer with trainable weights (a trunk's last Dense or
convolution; normalisation layers are skipped), or, for a producer without weights (a
concatenation, the ``sps`` penalty's identity), the nearest weighted shared layers upstream.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras
import tensorflow as tf

from mtl_tf.models.builder import check_ownership
from mtl_tf.models.naming import layer_owner


class ModelSplit:
    """Shared and task-specific variables of a model, and its split at the shared representation.

    Args:
        model: a functional Keras model with a dict of outputs keyed by task name.
        task_names: the tasks, in the order of the loss vector.

    Raises:
        ValueError: a layer named for one task also feeds another task's output (it would get
            only its owner's gradient); :func:`mtl_tf.models.builder.check_ownership` names it.

    Attributes:
        shared: trainable variables no task owns, in model order.
        task_specific: trainable variables owned by one task, in model order.
        owners: for each task-specific variable, the index of its task.
    """

    def __init__(self, model: keras.Model, task_names: Sequence[str]):
        self.model = model
        self.task_names = list(task_names)
        if _is_functional(model):
            # (A missing task output is reported, with the outputs there are, by the step.)
            check_ownership(model, [name for name in self.task_names if name in model.output])
        owned: dict[int, int] = {}
        for layer in model.layers:
            owner = layer_owner(layer.name, self.task_names)
            if owner is None:
                continue
            for variable in layer.trainable_weights:
                owned.setdefault(id(variable), self.task_names.index(owner))
        shared_ids = {id(v) for layer in model.layers if layer_owner(layer.name, self.task_names) is None
                      for v in layer.trainable_weights}
        self.shared, self.task_specific, self.owners = [], [], []
        for variable in model.trainable_variables:
            if id(variable) in owned and id(variable) not in shared_ids:
                self.task_specific.append(variable)
                self.owners.append(owned[id(variable)])
            else:
                self.shared.append(variable)
        self._front: keras.Model | None = None
        self._backs: list[tuple[keras.Model, list[int], list[str]]] = []
        self._last_shared: list | None = None

    @property
    def last_shared(self) -> list:
        """The trainable variables of the last shared layer(s) (see the module docstring), in
        model order; empty when nothing shared has weights (``sps`` on numeric features)."""
        if self._last_shared is None:
            boundary, _ = self._boundary()
            found: dict[int, Any] = {}
            for tensor in boundary:
                producer, node_index, _ = tensor._keras_history
                for variable in self._weighted_upstream(producer, node_index, set()):
                    found.setdefault(id(variable), variable)
            self._last_shared = [v for v in self.shared if id(v) in found]
        return self._last_shared

    def _weighted_upstream(self, layer, node_index: int, seen: set) -> list:
        """The last weighted sub-layer's variables of ``layer``, or of the nearest weighted
        shared layers it reads."""
        if id(layer) in seen or isinstance(layer, keras.layers.InputLayer) \
                or layer_owner(layer.name, self.task_names) is not None:
            return []
        seen.add(id(layer))
        if layer.trainable_weights:
            return list(_last_weighted(layer).trainable_weights)
        variables = []
        for tensor in layer._inbound_nodes[node_index].input_tensors:
            producer, index, _ = tensor._keras_history
            variables.extend(self._weighted_upstream(producer, index, seen))
        return variables

    # --- the representation split ----------------------------------------------------------
    @property
    def front(self) -> keras.Model:
        """inputs -> the shared representation (a list of tensors); built on first use."""
        self._build_split()
        return self._front

    def _build_split(self) -> None:
        if self._front is not None:
            return
        boundary, raw = self._boundary()
        if not boundary:
            raise ValueError(f"model '{self.model.name}' has no shared representation: no shared layer "
                             "feeds a task layer (layers named '<task>_...'); rep_grad needs one")
        front = keras.Model(self.model.inputs, boundary, name=f"{self.model.name}_shared")
        inside = [layer.name for layer in front.layers if layer_owner(layer.name, self.task_names)]
        if inside:
            raise ValueError(f"model '{self.model.name}' cannot be split at its shared representation: "
                             f"shared layers read the task layer(s) {', '.join(sorted(inside))}; rep_grad "
                             "needs every shared layer before the task layers")
        covered = {id(v) for v in front.trainable_variables}
        missing = [v.path for v in self.shared if id(v) not in covered]
        if missing:
            raise ValueError(f"model '{self.model.name}': shared variable(s) {', '.join(missing)} lie after "
                             "the task layers; rep_grad needs every shared layer before them")
        outputs = self.model.output
        backs = []
        for name in self.task_names:
            used, used_raw = _ancestors(outputs[name], boundary, raw)
            inputs = [boundary[i] for i in used] + [raw[n] for n in used_raw]
            backs.append((keras.Model(inputs, outputs[name], name=f"{self.model.name}_{name}_head"),
                          used, used_raw))
        self._front, self._backs = front, backs

    def _boundary(self) -> tuple[list[Any], dict[str, Any]]:
        """Shared tensors read by task layers (sorted by producer), and raw inputs read by them."""
        found: dict[int, tuple[str, Any]] = {}
        raw: dict[str, Any] = {}
        for node in (n for nodes in self.model._nodes_by_depth.values() for n in nodes):
            if layer_owner(node.operation.name, self.task_names) is None:
                continue
            for tensor in node.input_tensors:
                producer, _, index = tensor._keras_history
                if layer_owner(producer.name, self.task_names) is not None:
                    continue
                if isinstance(producer, keras.layers.InputLayer):
                    raw[producer.name] = tensor
                else:
                    found[id(tensor)] = (f"{producer.name}:{index}", tensor)
        ordered = sorted(found.values(), key=lambda item: item[0])
        return [tensor for _, tensor in ordered], raw

    def forward(self, features: Mapping[str, tf.Tensor], training: bool = True
                ) -> tuple[list[tf.Tensor], list[list[tf.Tensor]], dict[str, tf.Tensor]]:
        """Runs the model through the split.

        Returns:
            ``(representation, copies, outputs)``: the front's output tensors; for each task, the
            copies of the representation tensors its back model read (differentiate the task
            losses with respect to them for per-task representation gradients); the outputs.
        """
        representation = self.front(features, training=training)
        if not isinstance(representation, (list, tuple)):
            representation = [representation]
        representation = list(representation)
        copies, outputs = [], {}
        for name, (back, used, used_raw) in zip(self.task_names, self._backs):
            mine = [tf.identity(representation[i]) for i in used]
            outputs[name] = back([*mine, *(features[n] for n in used_raw)], training=training)
            copies.append(mine)
        return representation, copies, outputs

    def representation_gradients(self, grads: Sequence[tf.Tensor | None],
                                 representation: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """Stacks per-task gradients with respect to the copies into ``(T, *shape)`` per tensor.

        Args:
            grads: the gradients with respect to the flattened ``copies`` of :meth:`forward`.
            representation: the front's output tensors.
        """
        stacked: list[list[tf.Tensor]] = [[] for _ in representation]
        position = 0
        for _, used, _ in self._backs:
            mine = dict(zip(used, grads[position:position + len(used)]))
            position += len(used)
            for k, tensor in enumerate(representation):
                grad = mine.get(k)
                stacked[k].append(tf.zeros_like(tensor) if grad is None else tf.convert_to_tensor(grad))
        return [tf.stack(rows) for rows in stacked]


def _is_functional(model: keras.Model) -> bool:
    """A model built from inputs and outputs (its layer graph can be walked)."""
    return bool(getattr(model, "_nodes_by_depth", None)) and isinstance(getattr(model, "output", None), dict)


NORMALIZATION_LAYERS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                        keras.layers.GroupNormalization)


def _last_weighted(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The last innermost sub-layer of ``layer`` holding trainable weights (normalisation
    layers aside), or ``layer`` itself when it has no such sub-layer."""
    leaves = [sub for sub in layer._flatten_layers(include_self=False)
              if sub._trainable_variables and not isinstance(sub, NORMALIZATION_LAYERS)]
    return leaves[-1] if leaves else layer


def _ancestors(output: Any, boundary: Sequence[Any], raw: Mapping[str, Any]) -> tuple[list[int], list[str]]:
    """Indices of the boundary tensors and names of the raw inputs that ``output`` depends on."""
    boundary_ids = {id(t): i for i, t in enumerate(boundary)}
    used, used_raw, seen = set(), set(), set()
    stack = [output]
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        if id(tensor) in boundary_ids:
            used.add(boundary_ids[id(tensor)])
            continue
        producer, node_index, _ = tensor._keras_history
        if isinstance(producer, keras.layers.InputLayer):
            if producer.name in raw:
                used_raw.add(producer.name)
            continue
        stack.extend(producer._inbound_nodes[node_index].input_tensors)
    return sorted(used), sorted(used_raw)
