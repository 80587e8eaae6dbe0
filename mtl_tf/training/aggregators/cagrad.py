"""CAGrad (Liu et al., 2021, "Conflict-Averse Gradient Descent for Multi-task Learning")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks
from mtl_tf.training.aggregators.solvers import cagrad_inner
from mtl_tf.training.state import state_variable


@AGGREGATORS.register("cagrad")
class CAGrad(GradientAggregator):
    """The average gradient, bent toward the worst-off task within a ball around it.

    The update ``d`` maximises ``min_t g_t . d`` (the worst task's improvement) subject to
    ``|d - g0| <= c |g0|``. Its dual: with ``r = c |g0|``, solve
    ``min_{x in simplex} g_x . g0 + r |g_x|`` (``g_x = sum_t x_t g_t``); the update is
    ``(g0 + r g_x / |g_x|) / (1 + c^2)`` (the reference implementation's rescaling).
    ``c = 0`` gives ``g0``.

    Task weights: they define the main objective, ``g0 = (1/T) sum_t w_t g_t`` (the average
    gradient with equal weights), as the paper's ``L0``; the conflict-averse correction
    protects every active task's unweighted gradient, so it does not depend on the weights
    (it cannot turn a small weight into a large share, but it does give a down-weighted task
    that loses out some improvement back).

    The inner problem is solved exactly (the reference uses scipy's SLSQP): a sequence of
    quadratic programs on the simplex solved by an active-set method, with a closed-form
    root on the solution's support (see
    :func:`mtl_tf.training.aggregators.solvers.cagrad_inner`), warm-started from the
    previous step's solution.

    Args:
        rep_grad: use representation gradients.
        c: the radius of the ball, relative to ``|g0|``.
    """

    compile_coefficients = True

    def __init__(self, rep_grad: bool = False, c: float = 0.4):
        super().__init__(rep_grad)
        if c < 0:
            raise ValueError(f"c must be >= 0; received {c!r}")
        self.c = float(c)
        self.previous = None

    def build(self, tasks, variables=()) -> None:
        super().build(tasks, variables)
        self.previous = state_variable(tf.fill([self.num_tasks], 1.0 / max(self.num_tasks, 1)), "previous_x")

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        active = active_tasks(gram, weights)
        count = tf.maximum(tf.reduce_sum(active), 1.0)
        scale = tf.maximum(tf.reduce_max(tf.linalg.diag_part(gram) * active), 1e-30)
        g = gram / scale
        average = tf.cast(weights, gram.dtype) * active / count
        radius = self.c * tf.sqrt(tf.maximum(tf.einsum("i,ij,j->", average, g, average), 0.0))
        if self.c == 0:
            return average
        solvable = tf.logical_and(radius > 1e-12, tf.reduce_any(active > 0))
        safe_radius = tf.where(solvable, radius, 1.0)
        x, norm = cagrad_inner(g, tf.linalg.matvec(g, average), safe_radius, active,
                               tf.convert_to_tensor(self.previous))
        self.previous.assign(tf.where(solvable, x, self.previous))
        beta = (average + (radius / tf.maximum(norm, 1e-12)) * x) * active / (1.0 + self.c ** 2)
        return tf.where(solvable, beta, average / (1.0 + self.c ** 2))
