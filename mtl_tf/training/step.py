"""One training step on one replica: task losses, task weights, gradients and the update.

:class:`TrainStep` holds what a step needs (the model, its shared/task-specific split, the
weighting, the gradient aggregator, the task sampler and the optimizers) and picks how the
gradients are taken (:attr:`TrainStep.mode`):

- ``"sum"``: one backward pass of ``sum_t w_t L_t`` (the ``sum`` aggregator with a weighting
  that reads only losses);
- ``"param"``: every task's gradient of the shared parameters, in one vectorised pass, summed
  across replicas and combined by the aggregator (with the ``sum`` aggregator and a weighting
  that reads gradient norms, such as GradNorm, only the variables the weighting measures get
  per-task gradients; the update is one backward pass of ``sum_t w_t L_t``);
- ``"rep"``: every task's gradient of the shared representation (``rep_grad``), combined and
  back-propagated through the shared layers once.

Per-task gradients of the shared parameters come from one vectorised pass (``pfor``), except
in a model with grouped convolutions: TensorFlow's vectorised gradient of a grouped
convolution's kernel is wrong (TF 2.21: it disagrees with the plain gradient), so such a model
gets one backward pass per task instead.

Task-specific variables always get their own task's weighted gradient. A model without
shared variables (``sps`` on numeric features) has nothing to aggregate: the aggregator
sees an all-zero Gram matrix and every task's variables get their own gradient.

The :class:`Trainer` compiles :meth:`TrainStep.__call__` under ``strategy.run`` and keeps
the metrics.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import keras
import tensorflow as tf

from mtl_tf.training.aggregators.base import combine, gram_of
from mtl_tf.training.arguments import check_outputs
from mtl_tf.training.losses import task_losses
from mtl_tf.training.model_split import ModelSplit
from mtl_tf.training.optimizers import build_optimizer
from mtl_tf.training.precision import current_scale, loss_scaled


class TrainStep:
    """The per-replica training step of a multi-task model.

    Args:
        model: the Keras model (outputs keyed by task name).
        tasks: TaskType objects, in the order of the loss vector.
        split: the model's :class:`ModelSplit`.
        weighting, aggregator, sampler: the built training methods.
        strategy: the tf.distribute strategy the step runs under.
        epoch: the trainer's epochs-done counter (samplers read it).
        optimizer, task_optimizer: optimizer specs (``task_optimizer`` trains the
            task-specific variables when given).

    Attributes:
        mode: ``"sum"``, ``"param"`` or ``"rep"`` (see the module docstring).
        optimizer, task_optimizer: the built Keras optimizers.
    """

    def __init__(self, model: keras.Model, tasks: Sequence, split: ModelSplit, weighting: Any, aggregator: Any,
                 sampler: Any, strategy: tf.distribute.Strategy, epoch: tf.Variable, optimizer: Any,
                 task_optimizer: Any = None, loss_scaling: bool = False):
        self.model, self.tasks, self.split = model, list(tasks), split
        self.loss_scaling = bool(loss_scaling)
        self.weighting, self.aggregator, self.sampler = weighting, aggregator, sampler
        self.strategy, self.epoch = strategy, epoch
        self.mode = self._gradient_mode()
        self._jacobian_variables, self._weighting_indices = self._gradient_variables()
        self._vectorize = not has_grouped_convolution(model)
        self._coefficients = aggregator.coefficients
        if getattr(aggregator, "compile_coefficients", False) and aggregator.gram_based:
            # A solver's loop of scalar and (T,) ops: under XLA it costs microseconds, not a
            # dispatch per op (CAGrad, T = 3, the MLP of bench/method_step_time.py on a CPU:
            # 18.9 -> 15.4 ms per step).
            self._coefficients = tf.function(aggregator.coefficients, jit_compile=True)
        self._build_optimizers(optimizer, task_optimizer)

    def __call__(self, features, labels, masks):
        """One step on this replica's batch; returns
        ``(outputs, losses, per_example, weights, total, regularization)``."""
        step = tf.cast(self.optimizer.iterations, tf.int64)
        if self.mode == "sum":
            return self._sum_step(features, labels, masks, step)
        return self._task_gradient_step(features, labels, masks, step)

    def _gradient_mode(self) -> str:
        """``"sum"`` (one backward pass), ``"param"`` or ``"rep"`` (per-task gradients of the
        shared parameters or of the shared representation)."""
        aggregator, weighting = self.aggregator, self.weighting
        self._split_ok = True
        if not (aggregator.needs_task_gradients or weighting.needs_gradients):
            return "sum"
        rep = aggregator.rep_grad if aggregator.needs_task_gradients else bool(getattr(weighting, "rep_grad", False))
        if rep and not aggregator.gram_based:
            raise ValueError(f"gradient aggregator '{aggregator.name}' defines only aggregate(), which needs "
                             "parameter gradients; rep_grad needs coefficients() (all built-in aggregators have it)")
        if rep:
            self.split.front  # noqa: B018 -- builds the split now, so a model that cannot be split fails here
            return "rep"
        try:
            self.split.front  # noqa: B018
        except ValueError:
            self._split_ok = False
        return "param"

    def _gradient_variables(self) -> tuple[list, list[int] | None]:
        """The shared variables whose per-task gradients the step computes in ``"param"`` mode,
        and the positions among them of those the weighting measures (None: all of them)."""
        shared, weighting = self.split.shared, self.weighting
        measured = shared
        if weighting.needs_gradients and getattr(weighting, "last_shared_layer", False):
            measured = self.split.last_shared
            if self.mode == "param" and not measured:
                warnings.warn(f"weighting '{weighting.name}': the model has no shared layer with weights, so "
                              "there are no gradient norms to balance and the task weights stay as they start",
                              stacklevel=3)
        if not self.aggregator.needs_task_gradients:
            return measured, None
        if measured is shared:
            return shared, None
        positions = {id(v): i for i, v in enumerate(shared)}
        return shared, [positions[id(v)] for v in measured]

    def _build_optimizers(self, optimizer, task_optimizer) -> None:
        self.optimizer = build_optimizer(optimizer)
        self.task_optimizer = None if task_optimizer is None else build_optimizer(task_optimizer)
        if self.task_optimizer is not None and self.task_optimizer is self.optimizer:
            raise ValueError("task_optimizer must be a different optimizer object from optimizer; "
                             "pass a name or config to get a fresh one")
        if self.loss_scaling:
            self.optimizer = loss_scaled(self.optimizer)
            self.task_optimizer = None if self.task_optimizer is None else loss_scaled(self.task_optimizer)
        if self.task_optimizer is None:
            self._groups = [(self.optimizer, self.model.trainable_variables + self.weighting.parameters)]
        else:
            self._groups = [(self.optimizer, self.split.shared + self.weighting.parameters),
                            (self.task_optimizer, self.split.task_specific)]
        for opt, variables in self._groups:
            opt.build(variables)

    def _sum_step(self, features, labels, masks, step):
        """One backward pass of ``sum_t w_t L_t`` (plus the weighting's own objective)."""
        replicas = float(self.strategy.num_replicas_in_sync)
        variables = self.model.trainable_variables + self.weighting.parameters
        with tf.GradientTape() as tape:
            outputs = check_outputs(self.model(features, training=True), self.tasks)
            losses, per_example, counts = task_losses(self.tasks, labels, masks, outputs)
            sampled, active = self._active(step, counts)
            global_losses = self._global_losses(losses) if self.weighting.uses_losses else tf.stop_gradient(losses)
            weights = tf.cast(self.weighting(global_losses, step, active), tf.float32) * sampled
            regularization = self.regularization() + self._method_regularization(active)
            share = tf.reduce_sum(weights * losses) + regularization / replicas
            scaled = share * self._scale()
        self._apply(tape.gradient(scaled, variables), variables)
        return outputs, losses, per_example, weights, share * replicas, regularization

    def _task_gradient_step(self, features, labels, masks, step):
        """Per-task gradients of the shared part, aggregated; task variables get their own task's."""
        replicas = float(self.strategy.num_replicas_in_sync)
        split = self.split
        with tf.GradientTape(persistent=True) as tape:
            if self._split_ok:
                representation, copies, outputs = split.forward(features)
                outputs = check_outputs(outputs, self.tasks)
            else:
                outputs = check_outputs(self.model(features, training=True), self.tasks)
            losses, per_example, counts = task_losses(self.tasks, labels, masks, outputs)
            model_regularization = self.regularization()
            # Divided inside the tape: an op after it would not be recorded (its gradient: none).
            # Scaled by the loss scale (1 without float16): every gradient below is scaled alike.
            loss_scale = self._scale()
            regularization_share = model_regularization / replicas * loss_scale
            unweighted = tf.reduce_sum(losses) * loss_scale
        if self._split_ok:
            flat = [c for task_copies in copies for c in task_copies]
            grads = tape.gradient(unweighted, flat + split.task_specific)
            # In float32 for the Gram matrix and the combination (the representation may be half precision).
            rep_grads = [tf.cast(g, tf.float32) for g in split.representation_gradients(grads[:len(flat)],
                                                                                         representation)]
            task_grads = grads[len(flat):]
        else:
            task_grads = tape.gradient(unweighted, split.task_specific)
        num_tasks = len(self.tasks)
        if self.mode == "rep":
            stacked = rep_grads
            gram = self._sum_across_replicas(gram_of(stacked, num_tasks)) / loss_scale ** 2
            measured = gram
        else:
            jacobian = self._shared_jacobian(tape, representation, rep_grads) if self._split_ok \
                else self._plain_jacobian(tape, losses)
            stacked = self._sum_across_replicas(jacobian)
            gram = gram_of(stacked, num_tasks) / loss_scale ** 2
            measured = gram if self._weighting_indices is None else \
                gram_of([stacked[i] for i in self._weighting_indices], num_tasks) / loss_scale ** 2
        sampled, active = self._active(step, counts)
        global_losses = self._global_losses(losses)
        weights, method_grads, method_regularization = self._method_weights(
            global_losses, losses, step, sampled, active, measured, replicas)
        if self.mode == "param" and not self.aggregator.needs_task_gradients:
            # Only the weighting needed per-task gradients: the update is that of sum_t w_t L_t.
            shared = _zeros_for_none(tape.gradient(losses, split.shared, output_gradients=weights * loss_scale),
                                     split.shared)
        else:
            shared = self._shared_update(tape, stacked, gram, weights, global_losses, step, replicas,
                                         representation if self.mode == "rep" else None)
        method_grads = [g * loss_scale for g in method_grads]
        owners = tf.gather(weights, split.owners) if split.owners else tf.zeros([0])
        task_grads = [_dense_or_zero(g, v) * owners[i] for i, (g, v) in enumerate(zip(task_grads, split.task_specific))]
        grads = shared + method_grads + task_grads
        variables = split.shared + self.weighting.parameters + split.task_specific
        if self.model.losses:
            extra = _zeros_for_none(tape.gradient(regularization_share, variables), variables)
            grads = [g + r for g, r in zip(grads, extra)]
        del tape
        self._apply(grads, variables)
        regularization = model_regularization + method_regularization
        total = tf.reduce_sum(weights * losses) * replicas + regularization
        return outputs, losses, per_example, weights, total, regularization

    def _shared_update(self, tape, stacked, gram, weights, global_losses, step, replicas, representation):
        """The aggregated gradient of the shared variables (what this replica hands the optimizer)."""
        shared = self.split.shared
        if not shared:
            return []
        if not self.aggregator.gram_based:
            # A custom aggregate() sees true gradients; its result is scaled back for the optimizer.
            loss_scale = self._scale()
            per_task = [[tensor[t] / loss_scale for tensor in stacked] for t in range(len(self.tasks))]
            combined = self.aggregator.aggregate(per_task, weights)
            return [g * loss_scale / replicas for g in combined]
        beta = self._coefficients(gram, weights, global_losses, step)
        scale = tf.stop_gradient(tf.cast(beta, tf.float32))
        if representation is None:
            # The Jacobian is already global and the same on every replica; the optimizer sums.
            return [g / replicas for g in combine(scale, stacked)]
        cotangents = _like(combine(scale, stacked), representation)
        return _zeros_for_none(tape.gradient(representation, shared, output_gradients=cotangents), shared)

    def _shared_jacobian(self, tape, representation, rep_grads):
        """``(T, *shape)`` per shared variable: each task's representation gradient pulled back
        through the shared layers, all tasks in one vectorised pass."""
        shared = self._jacobian_variables
        if not shared:
            return []

        def pull_back(cotangents):
            grads = tape.gradient(representation, shared, output_gradients=_like(cotangents, representation))
            return [_dense_or_zero(g, v) for g, v in zip(grads, shared)]

        if self._vectorize:
            return tf.vectorized_map(pull_back, rep_grads)
        per_task = [pull_back([g[t] for g in rep_grads]) for t in range(len(self.tasks))]
        return [tf.stack(rows) for rows in zip(*per_task)]

    def _plain_jacobian(self, tape, losses):
        shared = self._jacobian_variables
        if not shared:
            return []
        jacobian = tape.jacobian(losses, shared, experimental_use_pfor=self._vectorize)
        return [tf.zeros([len(self.tasks), *v.shape], v.dtype) if j is None else j for j, v in zip(jacobian, shared)]

    def _method_weights(self, global_losses, losses, step, sampled, active, gram, replicas):
        """Task weights (from the weighting, times the sampler's mask) and the gradients of the
        weighting's own parameters."""
        params = self.weighting.parameters
        with tf.GradientTape() as tape:
            weights = tf.cast(self.weighting(global_losses, step, active, gram), tf.float32) * sampled
            regularization = self._method_regularization(active)
            objective = tf.reduce_sum(weights * tf.stop_gradient(losses)) + regularization / replicas
        grads = _zeros_for_none(tape.gradient(objective, params), params) if params else []
        return tf.stop_gradient(weights), grads, regularization

    def _active(self, step, counts):
        """(the sampler's mask, that mask restricted to tasks labelled in the global batch)."""
        sampled = tf.cast(self.sampler.active(step, self.epoch), tf.float32)
        return sampled, sampled * tf.cast(counts > 0, tf.float32)

    def _global_losses(self, losses):
        return self._sum_across_replicas(tf.stop_gradient(losses))

    def _sum_across_replicas(self, value):
        if self.strategy.num_replicas_in_sync == 1:
            return value
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)

    def _method_regularization(self, active):
        if not self.weighting.parameters:
            return tf.constant(0.0)
        return tf.reduce_sum(tf.cast(self.weighting.regularization(), tf.float32) * active)

    def regularization(self):
        if not self.model.losses:
            return tf.constant(0.0)
        return tf.cast(tf.add_n(self.model.losses), tf.float32)

    def _scale(self):
        """The loss scale of this step (the shared optimizer's; 1.0 without float16)."""
        return tf.cast(current_scale(self.optimizer), tf.float32) if self.loss_scaling else tf.constant(1.0)

    def _apply(self, grads, variables):
        """Hands the gradients (scaled by :meth:`_scale`) to the optimizers."""
        grads = _zeros_for_none(grads, variables)
        if len(self._groups) == 1:
            self.optimizer.apply_gradients(zip(grads, variables))
            return
        by_id = {id(v): g for g, v in zip(grads, variables)}
        for optimizer, group in self._groups:
            # Each loss-scaled optimizer unscales by its own scale.
            factor = 1.0 if optimizer is self.optimizer or not self.loss_scaling else \
                tf.cast(current_scale(optimizer), tf.float32) / self._scale()
            optimizer.apply_gradients([(by_id[id(v)] * factor, v) for v in group])


def has_grouped_convolution(model: keras.Model) -> bool:
    """Whether any layer of ``model`` (at any depth) is a convolution with ``groups > 1``."""
    layers = model._flatten_layers() if hasattr(model, "_flatten_layers") else model.layers
    convolutions = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
    return any(isinstance(layer, convolutions) and getattr(layer, "groups", 1) > 1 for layer in layers)


def _like(cotangents: Sequence[tf.Tensor], tensors: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """Each cotangent in its tensor's dtype (a half-precision representation takes half-precision ones)."""
    return [tf.cast(c, t.dtype) for c, t in zip(cotangents, tensors)]


def _zeros_for_none(grads: Sequence, variables: Sequence) -> list[tf.Tensor]:
    # tape.gradient(unconnected_gradients=ZERO) fails on Keras variables (string dtypes).
    return [_zero_if_none(g, v) for g, v in zip(grads, variables)]


def _zero_if_none(grad, variable):
    return tf.zeros(variable.shape, variable.dtype) if grad is None else grad


def _dense_or_zero(grad, variable) -> tf.Tensor:
    return tf.zeros(variable.shape, variable.dtype) if grad is None else tf.convert_to_tensor(grad)
