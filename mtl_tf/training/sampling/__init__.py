"""Registry of task samplers: objects that choose the tasks trained at each step.

Built in: ``joint``, ``round_robin``, ``proportional`` and ``annealed``.
"""

from mtl_tf.registry import Registry

SAMPLERS = Registry("task sampler")

from mtl_tf.training.sampling.base import TaskSampler  # noqa: E402
from mtl_tf.training.sampling.joint import JointSampler  # noqa: E402
from mtl_tf.training.sampling.round_robin import RoundRobinSampler  # noqa: E402
from mtl_tf.training.sampling.proportional import ProportionalSampler  # noqa: E402
from mtl_tf.training.sampling.annealed import AnnealedSampler  # noqa: E402

__all__ = ["SAMPLERS", "TaskSampler", "JointSampler", "RoundRobinSampler", "ProportionalSampler",
           "AnnealedSampler"]
