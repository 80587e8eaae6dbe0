"""Registry of task samplers: objects that choose the tasks trained at each step."""

from mtl_tf.registry import Registry

SAMPLERS = Registry("task sampler")

from mtl_tf.training.sampling.base import TaskSampler  # noqa: E402
from mtl_tf.training.sampling.joint import JointSampler  # noqa: E402

__all__ = ["SAMPLERS", "TaskSampler", "JointSampler"]
