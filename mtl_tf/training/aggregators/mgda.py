"""MGDA (Sener & Koltun, 2018, "Multi-Task Learning as Multi-Objective Optimization"),
with the MGDA-UB representation variant (``rep_grad=True``)."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks, mean_active
from mtl_tf.training.aggregators.solvers import min_norm_simplex
from mtl_tf.training.state import state_variable

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@AGGREGATORS.register("mgda")
class MGDA(GradientAggregator):
    """The min-norm point of the convex hull of the (normalised) task gradients.

    As in the paper's code: each gradient is divided by its normaliser ``n_t``
    (``normalize``: ``"none"`` 1, ``"l2"`` its norm, ``"loss"`` the task loss, ``"loss+"``
    both), the min-norm problem ``lambda = argmin_{lambda in simplex} |sum_t lambda_t g_t / n_t|^2``
    is solved on the normalised gradients, and its solution scales the *raw* task losses:
    the update is ``sum_t lambda_t g_t``. The default ``"loss+"`` is the setting of the
    paper's shipped configuration (``sample.json``); ``"none"`` is the paper's algorithm as
    written, whose update is a common descent direction of every task (zero at a
    Pareto-stationary point).

    Task weights: the min-norm problem is solved on ``g_t / (n_t r_t)`` with ``r_t`` the
    weights divided by their mean ``m``, and ``beta_t = m lambda_t / r_t``. With
    ``normalize="none"`` every active task's first-order improvement is then at least
    proportional to its weight, ``g_t . d >= w_t |u|^2`` (equality on the solution's support,
    ``u`` the min-norm point), so a weight of 0.1 means a ten times smaller share, never a
    larger one; equal weights give the paper's method and scaling every weight by ``k``
    scales the update by ``k``. With orthogonal gradients and ``normalize="none"`` the
    improvements ``g_t . d`` are exactly proportional to the weights.

    The min-norm problem is solved exactly (active set, warm-started from the previous step),
    see :func:`mtl_tf.training.aggregators.solvers.min_norm_simplex`.

    With ``rep_grad=True`` the gradients are taken with respect to the shared representation:
    MGDA-UB, which minimises an upper bound of the same objective at the cost of one backward
    pass.

    Args:
        rep_grad: MGDA-UB.
        normalize: ``"none"``, ``"l2"``, ``"loss"`` or ``"loss+"`` (default, the paper's
            configuration), see above.
    """

    def __init__(self, rep_grad: bool = False, normalize: str = "loss+"):
        super().__init__(rep_grad)
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}; received {normalize!r}")
        self.normalize = normalize
        self.uses_losses = normalize in ("loss", "loss+")
        self.previous = None

    def build(self, tasks, variables=()) -> None:
        super().build(tasks, variables)
        self.previous = state_variable(tf.fill([self.num_tasks], 1.0 / max(self.num_tasks, 1)), "previous_lambda")

    def coefficients(self, gram: tf.Tensor, weights: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        active = active_tasks(gram, weights)
        weights = tf.cast(weights, gram.dtype)
        mean = mean_active(weights, active)
        relative = tf.where(active > 0, weights / tf.maximum(mean, 1e-30), 1.0)
        scale = tf.where(active > 0, 1.0 / (self._normalisers(gram, losses) * relative), 0.0)
        lam = min_norm_simplex(gram * scale[:, None] * scale[None, :], active, tf.convert_to_tensor(self.previous))
        self.previous.assign(tf.where(tf.reduce_any(active > 0), lam, self.previous))
        return mean * lam / relative * active

    def _normalisers(self, gram, losses):
        ones = tf.ones_like(losses)
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 1e-30))
        safe_losses = tf.where(losses > 0, losses, 1.0)
        return {"none": ones, "l2": norms, "loss": safe_losses, "loss+": safe_losses * norms}[self.normalize]
