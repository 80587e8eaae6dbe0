"""The TaskSampler interface: which tasks train at a given step.

A sampler returns a float mask over tasks; the step multiplies the task weights by it, so an
inactive task adds nothing to the update (with one joint dataset, the sampler decides whose
losses count). State, if any, lives in ``tf.Variable`` attributes (the class is a
``tf.Module``) so checkpoints hold it; random samplers draw from a stateless seed and the step
counter so every replica draws the same tasks.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import tensorflow as tf


class TaskSampler(tf.Module):
    """Base class of task samplers."""

    def __init__(self):
        super().__init__(name=type(self).__name__)
        self.num_tasks = 0
        self.task_names: list[str] = []

    def build(self, tasks: Sequence, sizes: Mapping[str, int] | None = None, epochs: int | None = None) -> None:
        """Creates the state for ``tasks``; call inside ``strategy.scope()``.

        Args:
            tasks: the tasks, in the order of the loss vector.
            sizes: task name -> labelled training rows (``dataset.json`` ``tasks[].labelled.train``);
                needed by size-based samplers.
            epochs: the planned number of epochs (annealed schedules use it).
        """
        self.num_tasks = len(tasks)
        self.task_names = [task.name for task in tasks]

    def active(self, step: tf.Tensor, epoch: tf.Tensor) -> tf.Tensor:
        """Float mask of the tasks trained at this step.

        Args:
            step: the optimizer's step counter (int64 scalar).
            epoch: the 0-based epoch (int64 scalar).

        Returns:
            Shape ``(T,)``, 1.0 for an active task, 0.0 for an inactive one.
        """
        raise NotImplementedError


def task_sizes(sampler: str, task_names: Sequence[str], sizes: Mapping[str, int] | None) -> list[float]:
    """The sizes of ``task_names`` in order, with an error that says how to provide them."""
    if sizes is None:
        raise ValueError(f"task sampler '{sampler}' needs the labelled training rows per task; "
                         "pass task_sizes to the Trainer (the runner reads them from dataset.json, "
                         "tasks[].labelled.train)")
    missing = [name for name in task_names if name not in sizes]
    if missing:
        raise ValueError(f"task sampler '{sampler}': no size for task(s) {', '.join(missing)}; "
                         f"received sizes for: {', '.join(sorted(sizes)) or 'none'}")
    bad = {name: sizes[name] for name in task_names if not sizes[name] or sizes[name] < 0}
    if bad:
        raise ValueError(f"task sampler '{sampler}': task sizes must be > 0; received {bad}")
    return [float(sizes[name]) for name in task_names]
