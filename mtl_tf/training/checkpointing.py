"""Training checkpoints: the latest few epochs plus the best one, written by the chief only.

Every worker of a cluster calls :meth:`Checkpoints.save` (TensorFlow's rule for distributed
saving); workers other than the chief write to a private folder they delete at once, so the
shared folder holds the chief's files only.
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf

from mtl_tf.training.strategy import is_chief, worker_id


class Checkpoints:
    """A ``tf.train.Checkpoint`` of the training state with a rolling and a "best" manager.

    Args:
        directory: the checkpoint folder (the best checkpoint goes to ``<directory>/best``).
        strategy: the training strategy; decides which worker writes.
        max_to_keep: how many epoch checkpoints to keep.
        objects: the trackables to save (model, optimizer, counters, method states).
    """

    def __init__(self, directory: str, strategy: tf.distribute.Strategy, max_to_keep: int = 3, **objects):
        self.directory = os.fspath(directory)
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.chief = is_chief(strategy)
        self._scratch = os.path.join(self.directory, f".scratch-{worker_id(strategy)}")
        if self.chief:
            self.latest_manager = tf.train.CheckpointManager(
                self.checkpoint, self.directory, max_to_keep=max_to_keep, checkpoint_name="ckpt")
            self.best_manager = tf.train.CheckpointManager(
                self.checkpoint, self.best_directory, max_to_keep=1, checkpoint_name="best")

    @property
    def best_directory(self) -> str:
        return os.path.join(self.directory, "best")

    @property
    def latest(self) -> str | None:
        """The newest epoch checkpoint's path prefix, or None."""
        return tf.train.latest_checkpoint(self.directory)

    @property
    def latest_best(self) -> str | None:
        """The best checkpoint's path prefix, or None."""
        return tf.train.latest_checkpoint(self.best_directory)

    def save(self, epoch: int) -> str | None:
        """Writes the epoch checkpoint; returns its path on the chief."""
        if self.chief:
            return self.latest_manager.save(checkpoint_number=epoch)
        self._scratch_write()
        return None

    def save_best(self, epoch: int) -> str | None:
        """Writes the best checkpoint (replacing the previous best)."""
        if self.chief:
            return self.best_manager.save(checkpoint_number=epoch)
        self._scratch_write()
        return None

    def _scratch_write(self) -> None:
        self.checkpoint.write(os.path.join(self._scratch, "ckpt"))
        shutil.rmtree(self._scratch, ignore_errors=True)

    def restore_latest(self) -> str | None:
        """Restores every saved object from the newest checkpoint; returns its path or None."""
        path = self.latest
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def read_model_only(self, path: str) -> None:
        """Loads only the model weights from ``path`` (a full training checkpoint)."""
        tf.train.Checkpoint(model=self.checkpoint.model).read(path).expect_partial()
