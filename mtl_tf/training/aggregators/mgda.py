"""MGDA (Sener & Koltun, 2018, "Multi-Task Learning as Multi-Objective Optimization"),
with the MGDA-UB representation variant (``rep_grad=True``)."""

from __future__ import annotations

import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.base import GradientAggregator, active_tasks
from mtl_tf.training.aggregators.solvers import min_norm_simplex

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@AGGREGATORS.register("mgda")
class MGDA(GradientAggregator):
    """The min-norm point of the convex hull of the task gradients.

    ``alpha = argmin_{alpha in simplex} |sum_t alpha_t h_t|^2``; the update is
    ``sum_t alpha_t h_t``, a common descent direction of every task (zero at a Pareto-
    stationary point). Solved exactly for up to 8 tasks (every support tried at once), by
    accelerated projected gradient beyond.

    With ``rep_grad=True`` the gradients are taken with respect to the shared representation:
    MGDA-UB, which minimises an upper bound of the same objective at the cost of one backward
    pass.

    Args:
        rep_grad: MGDA-UB.
        normalize: scale each gradient before solving: ``"none"``, ``"l2"`` (unit norm),
            ``"loss"`` (divided by the task loss) or ``"loss+"`` (both), as in the paper's code.
        iterations: the most projected-gradient iterations beyond 8 tasks.
    """

    def __init__(self, rep_grad: bool = False, normalize: str = "none", iterations: int = 250):
        super().__init__(rep_grad)
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}; received {normalize!r}")
        self.normalize, self.iterations = normalize, int(iterations)
        self.uses_losses = normalize in ("loss", "loss+")

    def coefficients(self, gram: tf.Tensor, losses: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        active = active_tasks(gram)
        scale = self._scales(gram, losses) * active
        alpha = min_norm_simplex(gram * scale[:, None] * scale[None, :], active, self.iterations)
        return alpha * scale

    def _scales(self, gram, losses):
        ones = tf.ones_like(losses)
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 1e-30))
        safe_losses = tf.where(losses > 0, losses, 1.0)
        return {"none": ones, "l2": 1.0 / norms, "loss": 1.0 / safe_losses,
                "loss+": 1.0 / (safe_losses * norms)}[self.normalize]
