"""CAGrad (Liu et al., 2021, "Conflict-Averse Gradient Descent for Multi-task Learning")."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks
from mtl_tf.training.aggregators.solvers import accelerated_projected_gradient, project_to_simplex
from mtl_tf.training.state import state_variable


@AGGREGATORS.register("cagrad")
class CAGrad(GradientAggregator):
    """The average gradient, bent toward the worst-off task within a ball around it.

    With ``g0`` the average of the active task gradients and ``phi = c^2 |g0|^2``, solve
    ``min_{x in simplex} g_x . g0 + sqrt(phi) |g_x|`` (``g_x = sum_t x_t h_t``); the update is
    ``(g0 + sqrt(phi) g_x / |g_x|) / (1 + c^2)`` (the reference implementation's rescaling).
    ``c = 0`` gives the average gradient.

    The inner problem is solved by accelerated projected gradient (the reference uses
    scipy's SLSQP), warm-started from the previous step's solution.

    Args:
        rep_grad: use representation gradients.
        c: the radius of the ball, relative to ``|g0|``.
        iterations: the most projected-gradient iterations of the inner problem per step.
    """

    def __init__(self, rep_grad: bool = False, c: float = 0.4, iterations: int = 30):
        super().__init__(rep_grad)
        if c < 0:
            raise ValueError(f"c must be >= 0; received {c!r}")
        self.c, self.iterations = float(c), int(iterations)
        self.previous = None

    def build(self, tasks, variables=()) -> None:
        super().build(tasks, variables)
        self.previous = state_variable(tf.fill([self.num_tasks], 1.0 / max(self.num_tasks, 1)), "previous_x")

    def coefficients(self, gram: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        active = active_tasks(gram)
        count = tf.maximum(tf.reduce_sum(active), 1.0)
        scale = tf.maximum(tf.linalg.trace(gram), 1e-30)
        g = gram / scale
        average = active / count
        g0_norm = tf.sqrt(tf.maximum(tf.einsum("i,ij,j->", average, g, average), 0.0))
        radius = self.c * g0_norm
        g_avg = tf.linalg.matvec(g, average)

        def gradient(x):
            gx = tf.linalg.matvec(g, x)
            norm = tf.sqrt(tf.maximum(tf.tensordot(x, gx, 1), 1e-20))
            return g_avg + radius * gx / norm

        project = lambda v: project_to_simplex(v, active)  # noqa: E731
        # The objective's smoothness degrades near |g_x| = 0, so a fixed conservative step.
        x = accelerated_projected_gradient(gradient, project(tf.convert_to_tensor(self.previous)), project,
                                           step=0.25, iterations=self.iterations, tolerance=1e-5)
        self.previous.assign(x)
        gx_norm = tf.sqrt(tf.maximum(tf.einsum("i,ij,j->", x, g, x), 1e-20))
        alpha = average + (radius / gx_norm) * x
        return alpha * active / (1.0 + self.c ** 2)
