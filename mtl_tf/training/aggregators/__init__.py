"""Registry of gradient aggregators: objects that combine per-task gradients into one update.

Built in: ``sum`` (plain weighted sum), ``pcgrad``, ``gradvac``, ``cagrad``, ``mgda``
(``rep_grad: true`` for MGDA-UB), ``imtl_g``, ``nash_mtl``, ``aligned_mtl`` and ``upgrad``.
Every one of them accepts ``rep_grad`` (see :mod:`mtl_tf.training.aggregators.base`).
"""

from mtl_tf.registry import Registry

AGGREGATORS = Registry("gradient aggregator")

from mtl_tf.training.aggregators.base import GradientAggregator  # noqa: E402
from mtl_tf.training.aggregators.sum import SumAggregator  # noqa: E402
from mtl_tf.training.aggregators.pcgrad import PCGrad  # noqa: E402
from mtl_tf.training.aggregators.gradvac import GradVac  # noqa: E402
from mtl_tf.training.aggregators.cagrad import CAGrad  # noqa: E402
from mtl_tf.training.aggregators.mgda import MGDA  # noqa: E402
from mtl_tf.training.aggregators.imtl_g import IMTLG  # noqa: E402
from mtl_tf.training.aggregators.nash_mtl import NashMTL  # noqa: E402
from mtl_tf.training.aggregators.aligned_mtl import AlignedMTL  # noqa: E402
from mtl_tf.training.aggregators.upgrad import UPGrad  # noqa: E402

__all__ = ["AGGREGATORS", "GradientAggregator", "SumAggregator", "PCGrad", "GradVac", "CAGrad", "MGDA",
           "IMTLG", "NashMTL", "AlignedMTL", "UPGrad"]
