"""The validation score and the early-stopping state (kept in checkpoints)."""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import tensorflow as tf

from mtl_tf.training.task_metrics import UndefinedMetricWarning


class EarlyStopping(tf.Module):
    """Tracks the best validation score and the epochs since it improved.

    The score is the mean over tasks of each task's primary validation metric, negated where
    lower is better, so higher is always better. A task whose metric is undefined (NaN, e.g.
    an AUC on a validation split with one class) is left out of the mean, with one
    :class:`UndefinedMetricWarning` per task; a NaN score never becomes the best.

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
        self._warned: set[str] = set()

    def score(self, logs: Mapping[str, float], undefined: Mapping[str, Mapping[str, str]] | None = None
              ) -> float | None:
        """The validation score of one epoch's logs.

        Args:
            logs: the epoch's logs.
            undefined: ``{task: {metric: why}}`` for undefined validation values, for the warning.

        Returns:
            The mean over the tasks with a defined primary metric; None when the logs hold no
            validation metrics or every task's is undefined.
        """
        values = []
        for task in self.tasks:
            key = f"{task.name}/val_{task.primary_metric}"
            if key not in logs:
                return None
            value = float(logs[key])
            if math.isnan(value):
                self._warn(task.name, key, (undefined or {}).get(task.name, {}).get(task.primary_metric))
                continue
            sign = 1.0 if task.higher_is_better(task.primary_metric) else -1.0
            values.append(sign * value)
        return sum(values) / len(values) if values else None

    def _warn(self, task: str, key: str, why: str | None) -> None:
        if task in self._warned:
            return
        self._warned.add(task)
        cause = f"{why} in the validation split" if why else "NaN"
        warnings.warn(f"{key} is undefined ({cause}); task '{task}' is left out of the early-stopping "
                      "score, so the other tasks choose the best epoch", UndefinedMetricWarning, stacklevel=3)

    def update(self, score: float, epoch: int) -> bool:
        """Records one epoch's score; returns True when it is the new best (a NaN score never is)."""
        best = float(self.best_score.numpy())
        first = int(self.best_epoch.numpy()) == 0 or math.isnan(best)
        improved = not math.isnan(score) and (first or score > best + self.min_delta)
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
