"""The Weighting interface: task losses (and, where needed, gradients) in, task weights out.

A weighting is an object with explicit state (``tf.Variable`` attributes, tracked because
the class is a ``tf.Module``), so a training checkpoint holds it. The training step calls it
once per step inside the compiled function, with the losses of the global batch (summed
across replicas), so every replica computes the same weights and the same new state.

Some weightings learn parameters by gradient descent with the model (``uncertainty``'s
log-variances): they list them in :attr:`Weighting.parameters`, return weights that depend on
them and a per-task :meth:`Weighting.regularization`; the step adds
``sum_t active_t (w_t L_t + r_t)`` to the objective of those parameters and lets the (shared)
optimizer update them.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


class Weighting(tf.Module):
    """Base class of loss weightings.

    Attributes:
        uses_losses: whether ``__call__`` reads the loss values; when False the step skips
            gathering the global losses across replicas.
        needs_gradients: whether ``__call__`` needs the Gram matrix of the per-task gradients
            of the shared parameters (or representation), which makes the step compute them.
        rep_grad: with ``needs_gradients``, take them with respect to the shared
            representation (when the gradient aggregator does not decide it).
        last_shared_layer: with ``needs_gradients`` and parameter gradients, the Gram matrix
            covers the last shared layer's weights only
            (:attr:`mtl_tf.training.model_split.ModelSplit.last_shared`).
    """

    uses_losses: bool = True
    needs_gradients: bool = False
    rep_grad: bool = False
    last_shared_layer: bool = False

    def __init__(self):
        super().__init__(name=type(self).__name__)
        self.task_names: list[str] = []

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def build(self, tasks: Sequence) -> None:
        """Creates the state for ``tasks`` (TaskType objects); call inside ``strategy.scope()``.

        Args:
            tasks: the tasks, in the order of the loss vector.
        """
        self.task_names = [task.name for task in tasks]

    def __call__(self, losses: tf.Tensor, step: tf.Tensor, active: tf.Tensor | None = None,
                 gram: tf.Tensor | None = None) -> tf.Tensor:
        """Task weights for this step (and the state update that goes with it).

        Args:
            losses: task losses of the global batch, shape ``(T,)``, without gradient.
            step: the optimizer's step counter (int64 scalar).
            active: 1.0 for the tasks that train this step (labelled in the batch and chosen by
                the task sampler), else 0.0; default all.
            gram: with ``needs_gradients``, the ``(T, T)`` Gram matrix of the unweighted
                per-task gradients (of the shared parameters, the last shared layer's with
                ``last_shared_layer``, or the shared representation), summed across replicas.

        Returns:
            Weights, shape ``(T,)``, float32.
        """
        raise NotImplementedError

    @property
    def parameters(self) -> list:
        """Trainable variables the shared optimizer updates with the model (default none)."""
        return []

    def regularization(self) -> tf.Tensor:
        """Per-task terms added to the parameters' objective, shape ``(T,)`` (default zeros)."""
        return tf.zeros([self.num_tasks])

    def on_epoch_end(self) -> None:
        """Called after every training epoch, outside the compiled step (default nothing)."""


def all_active(losses: tf.Tensor, active: tf.Tensor | None) -> tf.Tensor:
    """``active`` as float32, or ones like ``losses``."""
    return tf.ones_like(losses, tf.float32) if active is None else tf.cast(active, tf.float32)
