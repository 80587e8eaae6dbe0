"""The validation score and the early-stopping state (kept in checkpoints)."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import tensorflow as tf


class EarlyStopping(tf.Module):
    """Tracks the best validation score and the epochs since it improved.

    The score is the mean over tasks of each task's primary validation metric, negated where
    lower is better, so higher is always better.

    Args:
        tasks: TaskType objects.
        patience: epochs without improvement before stopping; None never stops.
        min_delta: the smallest rise of the score that counts as an improvement.
    """

    def __init__(self, tasks: Sequence, patience: int | None = None, min_delta: float = 0.0):
        super().__init__(name="early_stopping")
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise ValueError(f"early_stopping.patience must be an integer >= 1; received {patience!r}")
        if min_delta < 0:
            raise ValueError(f"early_stopping.min_delta must be >= 0; received {min_delta!r}")
        self.tasks = list(tasks)
        self.patience, self.min_delta = patience, float(min_delta)
        self.best_score = tf.Variable(-math.inf, dtype=tf.float64, trainable=False, name="best_score")
        self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")
        self.wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="wait")

    def score(self, logs: Mapping[str, float]) -> float | None:
        """The validation score of one epoch's logs, or None when they hold no validation metrics."""
        values = []
        for task in self.tasks:
            key = f"{task.name}/val_{task.primary_metric}"
            if key not in logs:
                return None
            sign = 1.0 if task.higher_is_better(task.primary_metric) else -1.0
            values.append(sign * float(logs[key]))
        return sum(values) / len(values)

    def update(self, score: float, epoch: int) -> bool:
        """Records one epoch's score; returns True when it is the new best."""
        improved = score > float(self.best_score.numpy()) + self.min_delta or int(self.best_epoch.numpy()) == 0
        if improved:
            self.best_score.assign(score)
            self.best_epoch.assign(epoch)
            self.wait.assign(0)
        else:
            self.wait.assign_add(1)
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and int(self.wait.numpy()) >= self.patience

    @property
    def best(self) -> tuple[int | None, float | None]:
        """(best epoch, best score), or (None, None) before any score."""
        epoch = int(self.best_epoch.numpy())
        return (epoch, float(self.best_score.numpy())) if epoch else (None, None)
