"""Training checkpoints: the latest few epochs, the best one and the history, written by the chief.

A finished epoch is written in one order, so that a crash between any two writes resumes as
if the epoch had never ended (with deterministic data, the resumed run ends with the weights,
history and best epoch of an uninterrupted one):

1. ``history.json`` with the epoch (a resumed run keeps only the epochs it has checkpoints for);
2. the best checkpoint, when the epoch improved (``best/`` keeps the previous best too, so a
   resumed run that goes back one epoch still finds the best it restores);
3. the epoch checkpoint: the commit. It holds the epoch counter and the early-stopping state,
   so it says which epoch is done and which epoch was best.

A run that starts over (no resume) removes the earlier run's files from the folder and writes
a fingerprint of its model (:mod:`mtl_tf.training.fingerprint`); a resumed run checks it, so
checkpoints of another model configuration are refused in one line.

Inside an epoch, :meth:`Checkpoints.save_step` writes a step checkpoint to ``steps/`` (the
Trainer's ``checkpoint_every_steps``): the same state plus the steps done in the epoch under
way. It never commits anything: a resume takes it only when it belongs to the epoch after the
last committed one (:meth:`Checkpoints.restore_latest`), and the Trainer then reads the data
up to where it was, so a run killed mid-epoch loses at most the steps since that mark.

Every worker of a cluster calls :meth:`Checkpoints.save` and :meth:`Checkpoints.save_step`
(TensorFlow's rule for distributed saving); workers other than the chief write to a private
folder they delete at once, so the shared folder holds the chief's files only.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import tensorflow as tf

from mtl_tf.training.fingerprint import (FINGERPRINT_FILE, IncompatibleCheckpoint, check_fingerprint, fingerprint,
                                         write_fingerprint)
from mtl_tf.training.history import History
from mtl_tf.training.strategy import is_chief, worker_id

HISTORY_FILE = "history.json"
STEPS_DIR = "steps"
# The key of the epochs-done counter (the object saved as ``epoch``) in a checkpoint file.
EPOCH_KEY = "epoch/.ATTRIBUTES/VARIABLE_VALUE"
# Errors TensorFlow raises when a checkpoint does not fit the objects it is restored into.
RESTORE_ERRORS = (AssertionError, ValueError, tf.errors.OpError)


class Checkpoints:
    """A ``tf.train.Checkpoint`` of the training state with a rolling and a "best" manager.

    Args:
        directory: the checkpoint folder (the best checkpoints go to ``<directory>/best``).
        strategy: the training strategy; decides which worker writes.
        max_to_keep: how many epoch checkpoints to keep.
        configuration: a JSON-able description of the model configuration (architecture,
            trunk, tower, tasks, features), kept in the fingerprint and named when a resume
            is refused.
        epoch_step: the variable counting the steps done in the epoch under way, saved in
            step checkpoints only (so epoch checkpoints keep their layout); None: no step
            checkpoints.
        heads: task -> its head's layout (``TaskType.head_layout``), kept in the fingerprint:
            a resume across a change is refused.
        objects: the trackables to save (model, optimizer, counters, method states); the
            epochs-done counter is the one named ``epoch``.
    """

    def __init__(self, directory: str, strategy: tf.distribute.Strategy, max_to_keep: int = 3,
                 configuration: Mapping[str, Any] | None = None, epoch_step: tf.Variable | None = None,
                 heads: Mapping[str, str] | None = None, **objects):
        self.directory = os.fspath(directory)
        self.configuration = configuration
        self.heads = dict(heads or {})
        self.objects = objects
        self.max_to_keep = max_to_keep
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.epoch_step = epoch_step
        self.step_checkpoint = None if epoch_step is None else tf.train.Checkpoint(**objects, epoch_step=epoch_step)
        self.chief = is_chief(strategy)
        self._scratch = os.path.join(self.directory, f".scratch-{worker_id(strategy)}")
        self._open_managers()

    def _open_managers(self) -> None:
        if self.chief:
            self.latest_manager = tf.train.CheckpointManager(
                self.checkpoint, self.directory, max_to_keep=self.max_to_keep, checkpoint_name="ckpt")
            self.best_manager = tf.train.CheckpointManager(
                self.checkpoint, self.best_directory, max_to_keep=2, checkpoint_name="best")
            self.step_manager = None if self.step_checkpoint is None else tf.train.CheckpointManager(
                self.step_checkpoint, self.steps_directory, max_to_keep=1, checkpoint_name="step")

    @property
    def best_directory(self) -> str:
        return os.path.join(self.directory, "best")

    @property
    def steps_directory(self) -> str:
        return os.path.join(self.directory, STEPS_DIR)

    @property
    def history_path(self) -> Path:
        return Path(self.directory) / HISTORY_FILE

    @property
    def latest(self) -> str | None:
        """The newest epoch checkpoint's path prefix, or None."""
        return tf.train.latest_checkpoint(self.directory)

    @property
    def latest_best(self) -> str | None:
        """The newest best checkpoint's path prefix, or None."""
        return tf.train.latest_checkpoint(self.best_directory)

    def fingerprint(self) -> dict[str, Any]:
        """The fingerprint of the objects this folder saves (see :mod:`mtl_tf.training.fingerprint`)."""
        return fingerprint(self.objects, self.configuration, self.heads)

    # --- writing ------------------------------------------------------------------------
    def start_over(self) -> None:
        """Removes an earlier run's checkpoints, history and fingerprint; writes this run's fingerprint."""
        if not self.chief:
            return
        folder = Path(self.directory)
        for pattern in ("ckpt-*.index", "ckpt-*.data-*", "checkpoint", HISTORY_FILE, FINGERPRINT_FILE,
                        "best/best-*.index", "best/best-*.data-*", "best/checkpoint",
                        f"{STEPS_DIR}/step-*.index", f"{STEPS_DIR}/step-*.data-*", f"{STEPS_DIR}/checkpoint"):
            for path in folder.glob(pattern):
                path.unlink()
        self._open_managers()
        write_fingerprint(self.directory, self.fingerprint())

    def commit(self, epoch: int, history: History, best: bool) -> None:
        """Writes a finished epoch: the history, then the best checkpoint (when ``best``),
        then the epoch checkpoint, which commits the epoch (see the module docstring)."""
        if self.chief:
            self.write_history(history)
        if best:
            self.save_best(epoch)
        self.save(epoch)

    def write_history(self, history: History) -> None:
        """Writes ``history.json`` (atomically)."""
        history.write(self.history_path)

    def save(self, epoch: int) -> str | None:
        """Writes the epoch checkpoint; returns its path on the chief."""
        if self.chief:
            return self.latest_manager.save(checkpoint_number=epoch)
        self._scratch_write()
        return None

    def save_best(self, epoch: int) -> str | None:
        """Writes the best checkpoint (the one before it stays until the next best)."""
        if self.chief:
            return self.best_manager.save(checkpoint_number=epoch)
        self._scratch_write()
        return None

    def save_step(self, number: int) -> str | None:
        """Writes a step checkpoint (the state and ``epoch_step``) numbered ``number``, replacing
        the previous one; returns its path on the chief."""
        if self.step_checkpoint is None:
            raise ValueError("these checkpoints were opened without epoch_step; step checkpoints need it")
        if self.chief:
            return self.step_manager.save(checkpoint_number=number)
        self._scratch_write(self.step_checkpoint)
        return None

    def _scratch_write(self, checkpoint: tf.train.Checkpoint | None = None) -> None:
        (checkpoint or self.checkpoint).write(os.path.join(self._scratch, "ckpt"))
        shutil.rmtree(self._scratch, ignore_errors=True)

    # --- reading ------------------------------------------------------------------------
    def restore_latest(self) -> str | None:
        """Restores every saved object from the newest checkpoint; returns its path or None.

        The newest is the step checkpoint when it was written in the epoch after the last
        committed one (``epoch_step`` then holds its steps done in that epoch), else the last
        epoch checkpoint (``epoch_step`` is set to 0).

        Raises:
            IncompatibleCheckpoint: the folder was written by another model configuration.
        """
        path = self.latest
        step_path = self.current_step_checkpoint()
        if self.epoch_step is not None:
            self.epoch_step.assign(0)
        if step_path or path:
            check_fingerprint(self.directory, self.fingerprint())
        if step_path:
            self._restore(self.step_checkpoint, step_path, match_all=True)
            return step_path
        if path:
            self._restore(self.checkpoint, path, match_all=True)
        return path

    def current_step_checkpoint(self) -> str | None:
        """The newest step checkpoint if it was written after the last committed epoch, else None."""
        if self.step_checkpoint is None:
            return None
        path = tf.train.latest_checkpoint(self.steps_directory)
        if path is None:
            return None
        try:
            written_after = int(tf.train.load_checkpoint(path).get_tensor(EPOCH_KEY))
        except (tf.errors.OpError, ValueError):
            return None  # not ours, or unreadable: the epoch checkpoint stands
        return path if written_after == epochs_checkpointed(self.directory) else None

    def read_history(self, done: int) -> History:
        """The saved history up to epoch ``done`` (later epochs were never committed)."""
        history = History.read(self.history_path) if self.history_path.is_file() else History()
        history.epochs = [logs for logs in history.epochs if logs.get("epoch", 0) <= done]
        history.stopped_reason = "completed"
        return history

    def checkpoint_of(self, epoch: int) -> str | None:
        """The checkpoint written at the end of ``epoch``: a best one, else an epoch one, else None."""
        for folder in (self.best_directory, self.directory):
            state = tf.train.get_checkpoint_state(folder)
            for path in [] if state is None else state.all_model_checkpoint_paths:
                if path.rsplit("-", 1)[-1] == str(epoch):
                    return path
        return None

    def model_weights_of(self, epoch: int) -> list[np.ndarray]:
        """The model weights checkpointed at the end of ``epoch``; the model keeps its own.

        Raises:
            ValueError: no checkpoint of that epoch is left.
        """
        path = self.checkpoint_of(epoch)
        if path is None:
            raise ValueError(f"the best epoch ({epoch}) has no checkpoint left in {self.best_directory} or "
                             f"{self.directory}; start over without resume")
        model = self.checkpoint.model
        current = model.get_weights()
        self.read_model_only(path)
        weights = model.get_weights()
        model.set_weights(current)
        return weights

    def read_model_only(self, path: str) -> None:
        """Loads only the model weights from ``path`` (a full training checkpoint)."""
        self._restore(tf.train.Checkpoint(model=self.checkpoint.model), path, match_all=False)

    def _restore(self, checkpoint: tf.train.Checkpoint, path: str, match_all: bool) -> None:
        """Restores ``path``; a checkpoint that does not fit becomes one IncompatibleCheckpoint line."""
        failure = None
        with _quiet_restore():
            try:
                status = checkpoint.restore(path) if match_all else checkpoint.read(path)
                if match_all:
                    status.assert_existing_objects_matched()
                status.expect_partial()
            except RESTORE_ERRORS as err:
                failure = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            status = None
        if failure is not None:
            raise IncompatibleCheckpoint(self.directory,
                                         f"written by another model configuration (restoring {path}: {failure})")


def epochs_checkpointed(directory: str | os.PathLike) -> int:
    """The last epoch with a committed checkpoint in ``directory`` (0 when there is none)."""
    path = tf.train.latest_checkpoint(os.fspath(directory))
    return 0 if path is None else int(path.rsplit("-", 1)[-1])


@contextlib.contextmanager
def _quiet_restore() -> Iterator[None]:
    """Holds back TensorFlow's warnings about unrestored values (one line per variable) while
    a restore runs and while its leftovers are collected; a mismatch is reported once instead."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        gc.collect()
        logger.setLevel(level)
