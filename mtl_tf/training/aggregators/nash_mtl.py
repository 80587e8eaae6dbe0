"""Nash-MTL (Navon et al., 2022, "Multi-Task Learning as a Bargaining Game")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, isolate
from mtl_tf.training.state import state_variable


@AGGREGATORS.register("nash_mtl")
class NashMTL(GradientAggregator):
    """The Nash bargaining solution: ``alpha > 0`` with ``(G alpha)_t = 1 / alpha_t``.

    ``G`` is the Gram matrix, divided by its Frobenius norm as in the reference
    implementation, so the update ``sum_t alpha_t h_t`` has a scale that does not depend on
    the gradients' scale. The reference solves a sequence of convex programs with cvxpy;
    here the same fixed point is found by damped Newton steps on the convex function
    ``1/2 a^T G a - sum_t log a_t`` (whose stationary point it is), warm-started from the
    previous step's solution and stopped once ``|(G a)_t a_t - 1| <= 1e-6``.

    Args:
        rep_grad: use representation gradients.
        iterations: the most Newton steps per training step.
        max_norm: when > 0, the combined update's norm is clipped to this value (the
            reference implementation clips at 1).
    """

    def __init__(self, rep_grad: bool = False, iterations: int = 20, max_norm: float = 0.0):
        super().__init__(rep_grad)
        if max_norm < 0:
            raise ValueError(f"max_norm must be >= 0; received {max_norm!r}")
        self.iterations, self.max_norm = int(iterations), float(max_norm)
        self.previous = None

    def build(self, tasks, variables=()) -> None:
        super().build(tasks, variables)
        self.previous = state_variable(tf.ones([self.num_tasks]), "previous_alpha")

    def coefficients(self, gram: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        num_tasks = int(gram.shape[0])
        active = active_tasks(gram)
        norm = tf.maximum(tf.norm(gram), 1e-30)
        g = isolate(gram / norm, active) + 1e-6 * tf.eye(num_tasks, dtype=gram.dtype)
        start = tf.where(active > 0, tf.maximum(tf.convert_to_tensor(self.previous), 1e-3), 1.0)

        def newton(i, a, residual_norm):
            residual = tf.linalg.matvec(g, a) - 1.0 / a
            hessian = g + tf.linalg.diag(1.0 / (a * a))
            direction = -tf.linalg.solve(hessian, residual[:, None])[:, 0]
            # Largest step keeping alpha positive (at most 1, at most 99% of the way to 0).
            shrink = tf.where(direction < 0, -0.99 * a / tf.minimum(direction, -1e-30), 1.0)
            return i + 1, a + tf.minimum(1.0, tf.reduce_min(shrink)) * direction, tf.reduce_max(tf.abs(residual * a))

        def keep_going(i, a, residual_norm):
            return tf.logical_and(i < self.iterations, residual_norm > 1e-6)

        _, alpha, _ = tf.while_loop(keep_going, newton, (tf.constant(0), start, tf.constant(float("inf"))))
        alpha = alpha * active
        self.previous.assign(tf.where(active > 0, alpha, self.previous))
        if self.max_norm > 0:
            length = tf.sqrt(tf.maximum(tf.einsum("i,ij,j->", alpha, gram, alpha), 1e-30))
            alpha = alpha * tf.minimum(1.0, self.max_norm / length)
        return alpha
