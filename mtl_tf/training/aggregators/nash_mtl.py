"""Nash-MTL (Navon et al., 2022, "Multi-Task Learning as a Bargaining Game")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, isolate
from mtl_tf.training.state import state_variable

# Added to the diagonal, relative to it.
RIDGE = 1e-6
# Newton's method stops once every |(G a)_t a_t / w_t - 1| is below this.
RESIDUAL_TOLERANCE = 1e-5


@AGGREGATORS.register("nash_mtl")
class NashMTL(GradientAggregator):
    """The Nash bargaining solution: ``beta > 0`` with ``(G beta)_t beta_t = w_t``.

    The update ``d = sum_t beta_t g_t`` maximises ``sum_t w_t log(g_t . d)`` over a ball:
    with equal weights the paper's symmetric bargaining solution ``G beta = 1 / beta``.
    ``G`` is the Gram matrix divided by its Frobenius norm, as in the reference
    implementation, so the update's scale does not depend on the gradients' scale.

    Task weights: they are the tasks' bargaining powers (the asymmetric Nash solution); every
    active task still improves (``g_t . d = w_t / beta_t > 0``), and a smaller weight gives
    a smaller share: with orthogonal gradients of equal norm, ``beta_t`` is proportional to
    ``sqrt(w_t)``.

    The reference solves a sequence of convex programs with cvxpy; here the fixed point is
    the minimiser of the convex ``1/2 b^T G b - sum_t w_t log b_t``, found by damped Newton
    steps (step ``1 / (1 + decrement)`` until the decrement is small, which keeps ``b``
    positive and converges from any start), from the better of the previous step's solution
    and the diagonal solution ``sqrt(w_t / G_tt)``, until every
    ``|(G b)_t b_t / w_t - 1| <= 1e-5``.

    Args:
        rep_grad: use representation gradients.
        iterations: the most Newton steps per training step (it normally stops after a few).
        max_norm: when > 0, the combined update's norm is clipped to this value (the
            reference implementation clips at 1).
    """

    def __init__(self, rep_grad: bool = False, iterations: int = 100, max_norm: float = 0.0):
        super().__init__(rep_grad)
        if max_norm < 0:
            raise ValueError(f"max_norm must be >= 0; received {max_norm!r}")
        self.iterations, self.max_norm = int(iterations), float(max_norm)
        self.previous = None

    def build(self, tasks, variables=()) -> None:
        super().build(tasks, variables)
        self.previous = state_variable(tf.ones([self.num_tasks]), "previous_alpha")

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        active = active_tasks(gram, weights)
        norm = tf.maximum(tf.norm(gram * active[:, None] * active[None, :]), 1e-30)
        g = isolate(gram / norm, active)
        # A ridge relative to each task's own squared norm keeps it positive definite when
        # gradients are linearly dependent, whatever their scales.
        g += RIDGE * tf.linalg.diag(tf.linalg.diag_part(g))
        # Inactive tasks solve a decoupled problem with weight 1 and are masked out after.
        power = tf.where(active > 0, tf.cast(weights, gram.dtype), 1.0)
        alpha = bargaining_solution(g, power, tf.convert_to_tensor(self.previous), self.iterations) * active
        self.previous.assign(tf.where(active > 0, alpha, self.previous))
        if self.max_norm > 0:
            length = tf.sqrt(tf.maximum(tf.einsum("i,ij,j->", alpha, gram, alpha), 1e-30))
            alpha = alpha * tf.minimum(1.0, self.max_norm / length)
        return alpha


def bargaining_solution(g: tf.Tensor, power: tf.Tensor, previous: tf.Tensor, iterations: int) -> tf.Tensor:
    """``b > 0`` with ``(G b)_t b_t = power_t``: damped Newton on ``1/2 b^T G b - power . log b``.

    Args:
        g: ``(T, T)`` positive definite.
        power: ``(T,)`` positive.
        previous: a starting point (used where positive and better than the diagonal one).
        iterations: the most Newton steps.
    """
    # Divided by the smallest power, every log term has coefficient >= 1: the function is
    # self-concordant, so the damped step below stays positive and converges.
    smallest = tf.reduce_min(power)

    def objective(b):
        return 0.5 * tf.tensordot(b, tf.linalg.matvec(g, b), 1) - tf.reduce_sum(power * tf.math.log(b))

    diagonal = tf.sqrt(power / tf.linalg.diag_part(g))
    warm = tf.where(previous > 0, previous, diagonal)
    start = tf.where(objective(warm) < objective(diagonal), warm, diagonal)

    def residual(b):
        return tf.reduce_max(tf.abs(tf.linalg.matvec(g, b) * b / power - 1.0))

    def newton(i, b, _):
        gradient = tf.linalg.matvec(g, b) - power / b
        hessian = g + tf.linalg.diag(power / (b * b))
        direction = -tf.linalg.solve(hessian, gradient[:, None])[:, 0]
        decrement = tf.sqrt(tf.maximum(-tf.tensordot(gradient, direction, 1), 0.0) / smallest)
        step = tf.where(decrement > 0.25, 1.0 / (1.0 + decrement), 1.0)
        b = tf.maximum(b + step * direction, 1e-3 * b)
        return i + 1, b, residual(b)

    def keep_going(i, b, r):
        return tf.logical_and(i < iterations, r > RESIDUAL_TOLERANCE)

    _, b, _ = tf.while_loop(keep_going, newton, (tf.constant(0), start, residual(start)))
    return b
