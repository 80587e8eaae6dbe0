"""The GradientAggregator interface: per-task gradients and task weights in, one update out.

Every built-in aggregator returns a combination ``sum_t beta_t g_t`` of the (unweighted)
task gradients ``g_t``, with coefficients ``beta`` that depend on the gradients only through
their Gram matrix ``G = [g_s . g_t]``, and on the task weights ``w`` (and, for some, the losses
and the step). So they implement :meth:`GradientAggregator.coefficients` on a ``(T, T)``
matrix, and the training step never has to hand them the gradients themselves:

- with parameter gradients, the step computes the Jacobian of the task losses with respect
  to the shared variables in one vectorised pass, sums it across replicas, forms the Gram
  matrix and combines the Jacobian rows with ``beta``;
- with ``rep_grad=True`` it takes each task's gradient with respect to the shared
  representation instead (one backward pass through the task layers), sums the Gram matrix
  across replicas (the replicas hold different rows, so their Gram matrices add up), combines
  the representation gradients with ``beta`` and back-propagates that through the shared
  layers once. This is much cheaper; it is MGDA-UB for ``mgda`` and the published
  representation variant of ``aligned_mtl`` and ``imtl_g``; for the other methods it applies
  the same rule to the representation gradients.

**How task weights enter** is each method's own decision, made so that with equal weights it
is the published method and a smaller weight never gives a task more influence (see each
class and the README's table): ``sum``, ``pcgrad`` and ``gradvac`` work on the weighted
gradients ``w_t g_t`` (which for them scales each task's adjusted gradient by its weight);
``aligned_mtl`` combines the aligned gradients with the weights; ``upgrad`` averages the
projections with the weights as its preference vector; ``imtl_g`` makes the projections
proportional to the weights; ``nash_mtl`` gives the weights as bargaining powers; ``mgda``
makes each task's first-order improvement proportional to its weight; ``cagrad`` uses the
weighted average as its main objective.

Task-specific variables never go through the aggregator: each receives its own task's
weighted gradient.

Tasks whose gradient or weight is zero (no label in the batch, weight 0, or left out by the
task sampler) are inactive: every method solves its problem on the active tasks only and
gives the others coefficient 0.

A custom aggregator may instead override :meth:`aggregate` alone (any function of the
per-variable task gradients and the weights); it then works with parameter gradients only.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

# Squared gradient norms at or below this (relative to the largest) count as zero.
ACTIVE_TOLERANCE = 1e-12


class GradientAggregator(tf.Module):
    """Base class of gradient aggregators.

    Args:
        rep_grad: take per-task gradients with respect to the shared representation instead of
            the shared parameters (see the module docstring).

    Attributes:
        needs_task_gradients: whether the step must compute one gradient per task.
        uses_losses: whether :meth:`coefficients` reads the losses.
        compile_coefficients: whether the step compiles :meth:`coefficients` with XLA (an
            iterative solve on the ``(T, T)`` Gram matrix: a loop of tiny ops, each of which costs
            more to dispatch in a TensorFlow graph than to compute; XLA fuses them).
    """

    needs_task_gradients: bool = True
    uses_losses: bool = False
    compile_coefficients: bool = False

    def __init__(self, rep_grad: bool = False):
        super().__init__(name=type(self).__name__)
        if not isinstance(rep_grad, bool):
            raise TypeError(f"rep_grad must be true or false; received {rep_grad!r}")
        self.rep_grad = rep_grad
        self.num_tasks = 0

    @property
    def gram_based(self) -> bool:
        """True when the aggregator implements :meth:`coefficients`."""
        return type(self).coefficients is not GradientAggregator.coefficients

    def build(self, tasks: Sequence, variables: Sequence[tf.Variable] = ()) -> None:
        """Creates any state; call inside ``strategy.scope()``.

        Args:
            tasks: the tasks, in the order of the gradient list.
            variables: the shared variables the gradients are for.
        """
        self.num_tasks = len(tasks)

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor,
                     step: tf.Tensor) -> tf.Tensor:
        """The combination coefficients ``beta`` (shape ``(T,)``) of the task gradients.

        Args:
            gram: ``(T, T)`` Gram matrix of the unweighted task gradients ``g_t``, summed over
                every replica.
            weights: the task weights ``w``, shape ``(T,)``, ``>= 0``.
            losses: the task losses of the global batch, shape ``(T,)``.
            step: the optimizer's step counter (int64 scalar).

        Returns:
            ``beta``; the update is ``sum_t beta_t g_t``.
        """
        raise NotImplementedError

    def aggregate(self, task_grads: Sequence[Sequence[tf.Tensor]], weights: tf.Tensor,
                  losses: tf.Tensor | None = None, step: tf.Tensor | None = None) -> list[tf.Tensor]:
        """One gradient per variable from the tasks' gradients.

        Args:
            task_grads: ``task_grads[t][v]``: the gradient of task ``t``'s loss with respect to
                variable ``v`` (zeros where the task does not reach the variable).
            weights: task weights, shape ``(T,)``.
            losses: task losses, shape ``(T,)`` (needed by loss-normalised methods).
            step: the step counter (random methods draw from it); default 0.

        Returns:
            ``grads[v]`` for every variable.
        """
        num_tasks = len(task_grads)
        weights = tf.cast(tf.convert_to_tensor(weights), tf.float32)
        if num_tasks != int(weights.shape[0]):
            raise ValueError(f"aggregator '{self.name}': {num_tasks} task gradient lists but "
                             f"{int(weights.shape[0])} weights; they must match")
        stacked = [tf.stack([tf.cast(grads[v], tf.float32) for grads in task_grads])
                   for v in range(len(task_grads[0]))]
        losses = tf.ones([num_tasks]) if losses is None else tf.cast(losses, tf.float32)
        step = tf.constant(0, tf.int64) if step is None else tf.cast(step, tf.int64)
        beta = self.coefficients(gram_of(stacked, num_tasks), weights, losses, step)
        return combine(beta, stacked)


def gram_of(stacked: Sequence[tf.Tensor], num_tasks: int) -> tf.Tensor:
    """``(T, T)`` Gram matrix of per-task tensors stacked as ``(T, *shape)`` (summed over the
    list; zeros for an empty list: nothing shared)."""
    terms = []
    for tensor in stacked:
        flat = tf.reshape(tf.cast(tensor, tf.float32), [num_tasks, -1])
        terms.append(tf.matmul(flat, flat, transpose_b=True))
    return tf.add_n(terms) if terms else tf.zeros([num_tasks, num_tasks])


def weighted_gram(gram: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """The Gram matrix of ``w_t g_t`` from that of ``g_t``."""
    return gram * weights[:, None] * weights[None, :]


def combine(coefficients: tf.Tensor, stacked: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """``sum_t c_t x_t`` for each per-task stack ``(T, *shape)``."""
    return [tf.tensordot(coefficients, tensor, axes=1) for tensor in stacked]


def active_tasks(gram: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """1.0 for tasks with a non-zero gradient (from the Gram diagonal) and a weight > 0, else 0.0."""
    diag = tf.linalg.diag_part(gram)
    nonzero = diag > ACTIVE_TOLERANCE * tf.maximum(tf.reduce_max(diag), 1e-30)
    return tf.cast(tf.logical_and(nonzero, weights > 0), gram.dtype)


def mean_active(values: tf.Tensor, active: tf.Tensor) -> tf.Tensor:
    """The mean of ``values`` over the active tasks (0 when none is)."""
    return tf.reduce_sum(values * active) / tf.maximum(tf.reduce_sum(active), 1.0)


def isolate(gram: tf.Tensor, active: tf.Tensor, fill: tf.Tensor | float = 1.0) -> tf.Tensor:
    """The Gram matrix with inactive tasks decoupled: their rows and columns zero, ``fill`` on
    their diagonal, so linear algebra on it solves the active tasks' problem independently."""
    return gram * active[:, None] * active[None, :] + tf.linalg.diag((1.0 - active) * fill)
