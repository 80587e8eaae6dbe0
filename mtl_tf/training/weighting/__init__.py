"""Registry of weightings: objects that turn task losses into task weights each step."""

from mtl_tf.registry import Registry

WEIGHTINGS = Registry("weighting")

from mtl_tf.training.weighting.base import Weighting  # noqa: E402
from mtl_tf.training.weighting.static import StaticWeighting  # noqa: E402

__all__ = ["WEIGHTINGS", "Weighting", "StaticWeighting"]
