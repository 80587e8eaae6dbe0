"""Registry of gradient aggregators: objects that combine per-task gradients into one update."""

from mtl_tf.registry import Registry

AGGREGATORS = Registry("gradient aggregator")

from mtl_tf.training.aggregators.base import GradientAggregator  # noqa: E402
from mtl_tf.training.aggregators.sum import SumAggregator  # noqa: E402

__all__ = ["AGGREGATORS", "GradientAggregator", "SumAggregator"]
