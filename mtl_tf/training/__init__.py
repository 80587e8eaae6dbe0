"""Training: a strategy-aware multi-task loop with pluggable weightings, gradient
aggregators and task samplers."""

from mtl_tf.training.diverged import TrainingDiverged
from mtl_tf.training.history import History
from mtl_tf.training.optimizers import OPTIMIZERS, build_optimizer
from mtl_tf.training.strategy import make_strategy
from mtl_tf.training.trainer import Trainer

__all__ = ["Trainer", "TrainingDiverged", "History", "make_strategy", "build_optimizer", "OPTIMIZERS"]
