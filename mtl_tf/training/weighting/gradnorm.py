"""GradNorm (Chen et al., 2018, "GradNorm: Gradient Normalization for Adaptive Loss Balancing
in Deep Multitask Networks")."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from mtl_tf.training.state import state_variable
from mtl_tf.training.weighting import WEIGHTINGS
from mtl_tf.training.weighting.base import Weighting, all_active


@WEIGHTINGS.register("gradnorm")
class GradNorm(Weighting):
    """Weights that equalise the tasks' gradient norms, scaled by their relative training rates.

    With ``n_t`` the norm of task ``t``'s gradient with respect to the weights of the last
    shared layer (the paper's choice, ``W``: see
    :attr:`mtl_tf.training.model_split.ModelSplit.last_shared`; ``last_shared_layer=False``
    takes every shared parameter, ``rep_grad`` the shared representation), ``G_t = w_t n_t``,
    ``G_bar`` their mean, ``r_t = (L_t / L_t(0)) / mean_i(L_i / L_i(0))``
    the relative inverse training rate, the loss
    ``L_grad = sum_t |G_t - G_bar r_t^alpha|`` (targets held constant) has gradient
    ``sign(G_t - G_bar r_t^alpha) n_t`` with respect to ``w_t``. Each step takes one gradient
    step on ``w`` and renormalises it to sum to the number of (active) tasks. A task that
    trains slower than the others (larger ``r_t``) gains weight.

    The weights used at a step are those before its update. ``L_t(0)`` is the first non-zero
    loss seen for the task. Only the measured layer needs per-task gradients: with the
    ``sum`` aggregator the step computes them for that layer alone. A model with no weighted
    shared layer (``sps`` on numeric features) gives no norms to balance: the weights stay 1.

    Args:
        alpha: the strength of the pull toward equal training rates.
        learning_rate: the step size on the weights.
        rep_grad: measure the gradient norms at the shared representation (when the gradient
            aggregator is ``sum``; otherwise the aggregator's choice applies).
        last_shared_layer: measure them on the last shared layer's weights (default, as the
            paper); False: on every shared parameter.
    """

    needs_gradients = True

    def __init__(self, alpha: float = 1.5, learning_rate: float = 0.025, rep_grad: bool = False,
                 last_shared_layer: bool = True):
        super().__init__()
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0; received {learning_rate!r}")
        for name, value in (("rep_grad", rep_grad), ("last_shared_layer", last_shared_layer)):
            if not isinstance(value, bool):
                raise TypeError(f"weighting 'gradnorm': {name} must be true or false; received {value!r}")
        self.alpha, self.learning_rate, self.rep_grad = float(alpha), float(learning_rate), rep_grad
        self.last_shared_layer = last_shared_layer

    def build(self, tasks: Sequence) -> None:
        super().build(tasks)
        self.weights = state_variable(tf.ones([len(tasks)]), "weights")
        self.initial_losses = state_variable(tf.zeros([len(tasks)]), "initial_losses")

    def __call__(self, losses, step, active=None, gram=None) -> tf.Tensor:
        if gram is None:
            raise ValueError("weighting 'gradnorm' needs the Gram matrix of the task gradients; "
                             "received gram=None")
        active = all_active(losses, active) * tf.cast(losses > 0, tf.float32)
        current = tf.convert_to_tensor(self.weights)
        first = (self.initial_losses <= 0) & (active > 0)
        initial = tf.where(first, losses, self.initial_losses)
        self.initial_losses.assign(initial)
        self.weights.assign(self.updated(current, losses, initial, gram, active))
        return current

    def updated(self, weights: tf.Tensor, losses: tf.Tensor, initial: tf.Tensor, gram: tf.Tensor,
                active: tf.Tensor) -> tf.Tensor:
        """One GradNorm step on the weights (inactive tasks keep theirs)."""
        count = tf.reduce_sum(active)
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
        scaled = weights * norms
        mean_scaled = tf.reduce_sum(scaled * active) / tf.maximum(count, 1.0)
        ratio = tf.where(active > 0, losses / tf.where(initial > 0, initial, 1.0), 0.0)
        relative = ratio / tf.maximum(tf.reduce_sum(ratio) / tf.maximum(count, 1.0), 1e-30)
        target = mean_scaled * tf.pow(tf.maximum(relative, 0.0), self.alpha)
        step = self.learning_rate * tf.sign(scaled - target) * norms * active
        moved = tf.maximum(weights - step, 1e-3)
        total = tf.reduce_sum(moved * active)
        renormalised = moved * count / tf.maximum(total, 1e-30)
        return tf.where((active > 0) & (count > 0), renormalised, weights)
