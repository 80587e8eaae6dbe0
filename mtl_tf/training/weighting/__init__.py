"""Registry of weightings: objects that turn task losses into task weights each step.

Built in: ``static``, ``uncertainty``, ``dwa``, ``rlw``, ``gradnorm`` and ``famo``.
"""

from mtl_tf.registry import Registry

WEIGHTINGS = Registry("weighting")

from mtl_tf.training.weighting.base import Weighting  # noqa: E402
from mtl_tf.training.weighting.static import StaticWeighting  # noqa: E402
from mtl_tf.training.weighting.uncertainty import UncertaintyWeighting  # noqa: E402
from mtl_tf.training.weighting.dwa import DynamicWeightAverage  # noqa: E402
from mtl_tf.training.weighting.rlw import RandomLossWeighting  # noqa: E402
from mtl_tf.training.weighting.gradnorm import GradNorm  # noqa: E402
from mtl_tf.training.weighting.famo import FAMO  # noqa: E402

__all__ = ["WEIGHTINGS", "Weighting", "StaticWeighting", "UncertaintyWeighting", "DynamicWeightAverage",
           "RandomLossWeighting", "GradNorm", "FAMO"]
