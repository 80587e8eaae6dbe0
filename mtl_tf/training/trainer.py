"""The multi-task training loop, for any tf.distribute strategy.

Keras 3 ``fit()`` fails under MultiWorkerMirroredStrategy, and multi-task methods need
per-task losses and gradients, so the framework owns its loop: one compiled step run with
``strategy.run`` over a distributed dataset, a Keras model and a Keras optimizer. When the
data knows its length, the compiled function reads the batches itself, several steps per
call (``steps_per_execution``), as ``fit`` does; otherwise each batch is read in Python.

Example:
    >>> trainer = Trainer(lambda: build_model(), tasks, {"name": "adam", "learning_rate": 1e-3},
    ...                   epochs=5, early_stopping={"patience": 2}, checkpoint_dir="ckpt")
    >>> history = trainer.fit(train_ds, val_ds)
    >>> trainer.evaluate(test_ds)["fraud"]["auc"]
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.arguments import (check_model, check_outputs, check_tasks, early_stopping_options,
                                       accelerators, mixed_precision_option, positive_int, resolve_jit,
                                       steps_per_execution_option)
from mtl_tf.training.checkpointing import HISTORY_FILE, Checkpoints
from mtl_tf.training.diverged import TrainingDiverged
from mtl_tf.training.early_stopping import EarlyStopping
from mtl_tf.training.feed import (SKIP_CHUNK, Feed, cardinality, compile_loop, compile_skip, known_batches,
                                  run_steps, skip_next, step_on_next)
from mtl_tf.training.history import History
from mtl_tf.training.losses import per_example_losses, unpack_batch
from mtl_tf.training.model_split import ModelSplit
from mtl_tf.training.precision import dtype_policy
from mtl_tf.training.progress import Progress
from mtl_tf.training.sampling import SAMPLERS
from mtl_tf.training.step import TrainStep
from mtl_tf.training.strategy import in_cluster, is_chief
from mtl_tf.training.task_metrics import TaskMetrics
from mtl_tf.training.weighting import WEIGHTINGS

__all__ = ["HISTORY_FILE", "Trainer"]

EpochCallback = Callable[[int, dict[str, float]], Any]

# Steps per call with steps_per_execution="auto" and no progress bar to redraw (at least 1/50
# of an epoch): each call costs a host round trip, and a long call delays only the divergence
# check and a Ctrl-C.
AUTO_STEPS_WITHOUT_BAR = 100


class Trainer:
    """Trains a multi-task Keras model with per-task masked losses.

    Datasets yield ``(features, labels, masks)``: dicts keyed by feature name, task name and
    task name; a mask is 1.0 where the row has that task's label. ``(features, labels)`` also
    works: the masks then come from each task's ``mask(label)`` (NaN or -1 means missing).
    Batch datasets with the global batch size; the strategy splits each batch across replicas.

    Each step computes the task losses once. With the ``sum`` aggregator (and a weighting
    that needs no gradients) it differentiates ``sum_t w_t L_t`` in one backward pass.
    Otherwise it splits the variables into shared and task-specific ones (layer names, see
    :mod:`mtl_tf.models.naming`): the task-specific ones get their own task's weighted
    gradient; for the shared ones it computes every task's gradient -- of the shared
    parameters in one vectorised pass, or of the shared representation with ``rep_grad`` --
    sums them across replicas, and lets the aggregator combine them (see
    :mod:`mtl_tf.training.aggregators.base`). So N replicas end with the weights one replica
    would reach on the same global batches.

    Args:
        model_fn: builds the model (called inside ``strategy.scope()``); the model maps the
            feature dict to a dict of outputs keyed by task name.
        tasks: TaskType objects, in the order of the loss vector.
        optimizer: optimizer name, ``{"name": ..., **options}`` or a Keras optimizer.
        weighting: weighting name, config or instance (see ``WEIGHTINGS``).
        gradient: gradient aggregator name, config or instance (see ``AGGREGATORS``).
        sampling: task sampler name, config or instance (see ``SAMPLERS``).
        task_optimizer: optimizer of the task-specific variables (layers named
            ``"<task>_..."``); default: ``optimizer`` trains every variable. With it,
            ``optimizer`` trains the shared variables and the weighting's parameters.
        task_sizes: task name -> labelled training rows, for size-based task samplers.
        strategy: a tf.distribute strategy; default: the current one.
        epochs: the last epoch to train (a resumed run continues up to it).
        steps_per_epoch: steps per epoch; default one pass over the training data. With a
            value, the data is read on across epochs and restarted when it runs out.
        early_stopping: ``{"patience": int, "min_delta": float}`` (or an object with those
            attributes) to stop when the validation score stops improving and end with the
            best epoch's weights; None trains every epoch and keeps the last weights.
        checkpoint_dir: folder for a checkpoint every epoch, the best one and the history
            (see :mod:`mtl_tf.training.checkpointing`). A first ``fit`` without ``resume``
            starts the folder over; with ``resume`` it must hold checkpoints of this model.
        configuration: a JSON-able description of what built the model (architecture,
            trunk, tower, tasks, features), kept next to the checkpoints and named when a
            resume meets checkpoints of another model.
        seed: seeds Python, NumPy, TensorFlow and Keras before the model is built.
        verbose: 1 prints a line per epoch, with a progress bar when stdout is a terminal
            (see :mod:`mtl_tf.training.progress`); 0 is silent.
        train_metrics: also compute every task metric on the training batches (costs time).
        mixed_precision: ``"mixed_float16"`` or ``"mixed_bfloat16"``: the model computes in
            half precision with float32 weights (and float32 task outputs); float16 gets dynamic
            loss scaling (a step whose gradients overflow is skipped and the scale halved).
            None: float32.
        jit_compile: compile the step with XLA: True, False or "auto" (on a GPU or TPU with
            one replica, when every layer supports it, like Keras ``fit``).
        max_to_keep: epoch checkpoints kept.
        steps_per_execution: steps run per call of the compiled function when the number of
            batches is known (see below): an integer >= 1, or ``"auto"``: the progress bar's
            update interval (1/50 of an epoch) when a bar is shown, else up to
            ``AUTO_STEPS_WITHOUT_BAR`` (100) steps, and at least 1/50 of an epoch (validation
            passes too). It changes speed only, not results.
        checkpoint_every_steps: also write a step checkpoint every N steps of an epoch
            (counted from the epoch's start), so a run killed mid-epoch resumes from its last
            N-step mark rather than from the epoch's start (needs ``checkpoint_dir``).

    Reading the data: when the dataset knows its number of batches (``cardinality()``, for
    in-memory data and files read with a known count) or is infinite with
    ``steps_per_epoch`` set, the compiled function reads the batches itself, up to
    ``steps_per_execution`` of them per call, and is never called past the end of the data.
    Otherwise (unknown length, or several workers reading finite data, whose shards may hold
    different numbers of batches) each batch is read in Python and handed to the compiled
    step. Several workers reading data that repeats forever (``steps_per_epoch``, mixed
    datasets) take the compiled path too: no worker can run out.

    Resuming: the newest checkpoint is restored (a step checkpoint when one was written in
    the epoch after the last committed one), then the data is read up to where that
    checkpoint was: each pass already made is started again (so its shuffle seed is drawn
    again, as in the uninterrupted run) and the batches already trained on in the current
    pass are read and dropped. So with deterministic data a resumed run sees the batches an
    uninterrupted one sees, and ends with its weights. The training loss and metrics of the
    epoch a run resumed in average the steps after the restart only.
    """

    def __init__(self, model_fn: Callable[[], keras.Model], tasks: Sequence,
                 optimizer: str | Mapping[str, Any] | keras.optimizers.Optimizer = "adam",
                 weighting: Any = "static", gradient: Any = "sum", sampling: Any = "joint",
                 strategy: tf.distribute.Strategy | None = None, epochs: int = 1,
                 steps_per_epoch: int | None = None, early_stopping: Any = None,
                 checkpoint_dir: str | os.PathLike | None = None, seed: int = 0, verbose: int = 1,
                 train_metrics: bool = False, jit_compile: bool | str = "auto", max_to_keep: int = 3,
                 task_optimizer: str | Mapping[str, Any] | keras.optimizers.Optimizer | None = None,
                 task_sizes: Mapping[str, int] | None = None, steps_per_execution: int | str = "auto",
                 configuration: Mapping[str, Any] | None = None, mixed_precision: str | None = None,
                 checkpoint_every_steps: int | None = None):
        self.tasks = check_tasks(tasks)
        self.epochs = positive_int("epochs", epochs)
        self.steps_per_epoch = None if steps_per_epoch is None else positive_int("steps_per_epoch", steps_per_epoch)
        self.verbose = int(verbose)
        self.steps_per_execution = steps_per_execution_option(steps_per_execution)
        self.checkpoint_every_steps = (None if checkpoint_every_steps is None
                                       else positive_int("checkpoint_every_steps", checkpoint_every_steps))
        if self.checkpoint_every_steps is not None and checkpoint_dir is None:
            raise ValueError(f"checkpoint_every_steps={self.checkpoint_every_steps} needs a checkpoint_dir to write "
                             "to; received checkpoint_dir=None")
        self.strategy = strategy or tf.distribute.get_strategy()
        self.progress = Progress(self.epochs, self.verbose, chief=is_chief(self.strategy))
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
        keras.utils.set_random_seed(seed)
        patience, min_delta = early_stopping_options(early_stopping)
        with self.strategy.scope():
            self.mixed_precision = mixed_precision_option(mixed_precision)
            with dtype_policy(self.mixed_precision):
                self._model = check_model(model_fn())
            self.split = ModelSplit(self._model, [task.name for task in self.tasks])
            self.weighting = WEIGHTINGS.get(weighting, "training.weighting")
            self.weighting.build(self.tasks)
            self.aggregator = AGGREGATORS.get(gradient, "training.gradient")
            self.aggregator.build(self.tasks, self.split.shared)
            self.sampler = SAMPLERS.get(sampling, "training.sampling")
            self.sampler.build(self.tasks, sizes=task_sizes, epochs=self.epochs)
            self.train_trackers = TaskMetrics(self.tasks, with_metrics=train_metrics)
            self.val_trackers = TaskMetrics(self.tasks)
            self.early_stopping = EarlyStopping(self.tasks, patience, min_delta)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_done")
            self.epoch_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch_steps_done")
            self._nonfinite = tf.Variable(tf.zeros([len(self.tasks)]), trainable=False, name="nonfinite")
            self._first_nonfinite = tf.Variable(-1, dtype=tf.int64, trainable=False, name="first_nonfinite")
            self.step = TrainStep(self._model, self.tasks, self.split, self.weighting, self.aggregator,
                                  self.sampler, self.strategy, self.epoch, optimizer, task_optimizer,
                                  loss_scaling=self.mixed_precision == "mixed_float16")
        self.optimizer, self.task_optimizer = self.step.optimizer, self.step.task_optimizer
        self.jit_compile = resolve_jit(jit_compile, self.strategy, self._model)
        if self.jit_compile and self.mixed_precision and not accelerators():
            raise ValueError(f"jit_compile=True with mixed_precision={self.mixed_precision!r}: XLA on a CPU refuses "
                             "half-precision gradients ('mixed precision is disallowed'); on a CPU use one or the other")
        self.checkpoints = None if self.checkpoint_dir is None else Checkpoints(
            self.checkpoint_dir, self.strategy, max_to_keep, configuration, epoch_step=self.epoch_step,
            heads={task.name: task.head_layout for task in self.tasks if getattr(task, "head_layout", None)},
            model=self._model, optimizer=self.optimizer,
            epoch=self.epoch, weighting=self.weighting, aggregator=self.aggregator, sampler=self.sampler,
            early_stopping=self.early_stopping,
            **({} if self.task_optimizer is None else {"task_optimizer": self.task_optimizer}))
        self._best_weights: list[np.ndarray] | None = None
        self._train_step = self._compile_step(self._train_on_batch)
        # Metrics computed in Python (COCO mAP) cannot run under XLA: evaluate without it then.
        self._eval_step = self._compile_step(self._eval_on_batch,
                                             self.jit_compile and all(t.metrics_support_jit for t in self.tasks))
        self._train_loop = compile_loop(self._train_step)
        self._eval_loop = compile_loop(self._eval_step)
        self._skip_loop = compile_skip()

    @property
    def model(self) -> keras.Model:
        """The Keras model (after ``fit`` with early stopping: the best epoch's weights)."""
        return self._model

    # --- public API ---------------------------------------------------------------------
    def fit(self, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset | None = None, resume: bool = False,
            on_epoch_end: EpochCallback | None = None, expected_steps: int | None = None,
            replay: bool = True) -> History:
        """Trains up to ``epochs``, validating after each epoch.

        Args:
            train_ds: batched training data (global batch size).
            val_ds: batched validation data; needed for early stopping.
            resume: continue from the newest checkpoint in ``checkpoint_dir`` (from scratch
                when there is none). With deterministic data the run ends as an uninterrupted
                one would (see the class docstring).
            on_epoch_end: called as ``on_epoch_end(epoch, logs)`` after each epoch (1-based).
            expected_steps: steps per epoch for the progress bar when the dataset cannot
                tell (files of unknown length); later epochs use the count of the first.
            replay: on resume, read ``train_ds`` up to where the checkpoint was; False when
                ``train_ds`` already starts there (only the steps done in the epoch under way
                are then skipped).

        Returns:
            The :class:`History`.

        Raises:
            TrainingDiverged: a task loss became NaN or infinite.
        """
        if self.early_stopping.patience is not None and val_ds is None:
            raise ValueError("early stopping watches the validation metrics, but val_ds is None; "
                             "pass val_ds or build the Trainer with early_stopping=None")
        if resume and self.checkpoints is None:
            raise ValueError("fit(resume=True) needs a checkpoint_dir; received checkpoint_dir=None")
        feed = Feed(self.strategy.experimental_distribute_dataset(train_ds), known_batches(self.strategy, train_ds))
        if feed.count == math.inf and self.steps_per_epoch is None:
            raise ValueError("the training dataset repeats forever, so an epoch would never end; "
                             "set steps_per_epoch or pass a finite dataset")
        history = self._resume() if resume else self._start()
        val = None if val_ds is None else self.strategy.experimental_distribute_dataset(val_ds)
        val_count = None if val_ds is None else known_batches(self.strategy, val_ds)
        steps = self.steps_per_epoch or cardinality(train_ds)
        progress_steps = steps or expected_steps
        start = int(self.epoch_step.numpy())
        if resume:
            self._replay(feed, int(self.epoch.numpy()), start, replay)
        if resume and self.early_stopping.should_stop:
            history.stopped_reason = "early_stopping"  # the run had stopped: nothing to train
            self._finish(history)
            return history
        for epoch in range(int(self.epoch.numpy()) + 1, self.epochs + 1):
            logs = self._train_epoch(epoch, feed, steps, progress_steps, start)
            start = 0
            self.weighting.on_epoch_end()
            progress_steps = steps or logs["steps"]
            if val is not None:
                logs.update(self._validation_logs(val, val_count, logs))
            self._end_epoch(epoch, logs, history)
            if on_epoch_end is not None:
                on_epoch_end(epoch, logs)
            if self.early_stopping.should_stop:
                history.stopped_reason = "early_stopping"
                break
        self._finish(history)
        return history

    def evaluate(self, ds: tf.data.Dataset) -> dict[str, dict[str, float]]:
        """Loss and metrics of every task on ``ds``.

        Returns:
            ``{task: {"loss": ..., metric: ...}}`` over the labelled rows of each task.
        """
        self._run_eval(self.strategy.experimental_distribute_dataset(ds), known_batches(self.strategy, ds))
        return self.val_trackers.task_results()

    # --- the compiled step ----------------------------------------------------------------
    def _compile_step(self, on_batch: Callable, jit_compile: bool | None = None) -> Callable:
        """``on_batch`` compiled (with XLA when ``jit_compile``, default the Trainer's): one step on a given batch."""
        jit = self.jit_compile if jit_compile is None else jit_compile
        return tf.function(on_batch, jit_compile=jit, reduce_retracing=True)

    def _chunk(self, steps: int, bar: bool = False) -> int:
        """Steps per call of the compiled loop, for a pass of ``steps`` steps (``bar``: a
        progress bar redraws after each call)."""
        if self.steps_per_execution != "auto":
            return self.steps_per_execution
        interval = max(1, steps // 50)
        return interval if bar else max(interval, min(steps, AUTO_STEPS_WITHOUT_BAR))

    def _train_on_batch(self, batch):
        flags = self.strategy.run(self._replica_train_step, args=(batch,))
        flags = self.strategy.reduce(tf.distribute.ReduceOp.SUM, flags, axis=None)
        # Only the first non-finite step's tasks are kept: once the weights are NaN every task
        # fails, and several steps may run before the loop looks.
        first_time = tf.logical_and(tf.reduce_any(flags > 0), self._first_nonfinite < 0)
        self._nonfinite.assign(tf.where(first_time, flags, self._nonfinite))
        self._first_nonfinite.assign(tf.where(first_time, tf.cast(self.optimizer.iterations, tf.int64),
                                              self._first_nonfinite))

    def _replica_train_step(self, batch):
        features, labels, masks = self._unpack(batch)
        outputs, losses, per_example, weights, total, regularization = self.step(features, labels, masks)
        self.train_trackers.update(labels, masks, outputs, per_example)
        self.train_trackers.update_objective(weights, total, regularization)
        return tf.cast(tf.logical_not(tf.math.is_finite(losses)), tf.float32)

    def _eval_on_batch(self, batch):
        self.strategy.run(self._replica_eval_step, args=(batch,))

    def _replica_eval_step(self, batch):
        features, labels, masks = self._unpack(batch)
        outputs = check_outputs(self._model(features, training=False), self.tasks)
        self.val_trackers.update(labels, masks, outputs, per_example_losses(self.tasks, labels, masks, outputs))
        self.val_trackers.regularization.update_state(self.step.regularization())

    def _unpack(self, batch):
        return unpack_batch(batch, self.tasks)

    # --- epochs ---------------------------------------------------------------------------
    def _train_epoch(self, epoch, feed, steps, progress_steps, start=0):
        """One epoch of training from step ``start`` (a resumed epoch: the feed is already
        there); returns its logs (``feed`` reads on with steps_per_epoch)."""
        self.train_trackers.reset()
        if start == 0 and (feed.iterator is None or self.steps_per_epoch is None):
            feed.restart()
        self.progress.start_epoch(epoch, progress_steps)
        every = max(1, (progress_steps or 1000) // 50)
        start_step = int(self.optimizer.iterations.numpy()) - start
        started, step = time.perf_counter(), start
        for done in self._train_calls(feed, steps, start):
            if done // every > step // every:
                self._check_finite(epoch, start_step)
                if done != progress_steps:
                    self.progress.update(done, self._training_loss)
            if self._step_checkpoint_due(done, steps):
                self._check_finite(epoch, start_step)
                self.epoch_step.assign(done)
                self.checkpoints.save_step(int(self.optimizer.iterations.numpy()))
            step = done
        self._check_finite(epoch, start_step)
        elapsed = time.perf_counter() - started
        if step == 0:
            raise ValueError("the training dataset yielded no batch; check that it is not empty")
        self.epoch_step.assign(0)
        self.progress.update(step, self._training_loss, finalize=True)
        return self._train_logs(epoch, step, elapsed, step - start)

    def _step_checkpoint_due(self, done, steps):
        every = self.checkpoint_every_steps
        return every is not None and done % every == 0 and done != steps

    def _replay(self, feed, epochs_done, start, replay):
        """Reads the data up to where the restored checkpoint was: ``epochs_done`` epochs and
        ``start`` steps of the next, starting every pass again as training did (see the
        class docstring); with ``replay`` False only the ``start`` steps."""
        if not replay:
            if start:
                feed.restart()
                self._skip(feed, start)
            return
        if self.steps_per_epoch is None:
            feed.skip_passes(epochs_done)
            if start:
                feed.restart()
                self._skip(feed, start)
            return
        self._skip(feed, epochs_done * self.steps_per_epoch + start, across_passes=True)

    def _skip(self, feed, batches, across_passes=False):
        """Reads and drops ``batches`` batches, starting a new pass when one runs out (with
        ``across_passes``, as training with steps_per_epoch does)."""
        left = batches
        while left > 0:
            if feed.iterator is None or (feed.count is not None and feed.left == 0):
                feed.restart()
            if feed.count is None:
                if skip_next(feed):
                    left -= 1
                    continue
                if not across_passes or feed.fresh:
                    return
                feed.restart()
                continue
            count = int(min(left, feed.left, SKIP_CHUNK))
            run_steps(self._skip_loop, feed, count)
            left -= count

    def _training_loss(self) -> float:
        return float(self.train_trackers.total.result())

    def _paced_by_bar(self) -> bool:
        """Whether the training calls follow the progress bar's interval: when a bar is shown;
        in a cluster, whenever ``verbose`` is on (only the chief shows a bar, and every worker
        must make the same calls)."""
        return bool(self.verbose) if in_cluster(self.strategy) else self.progress.bar_shown

    def _train_calls(self, feed, steps, start=0):
        """Runs the epoch's steps from ``start``; yields the steps done after each call (a call
        ends at every multiple of checkpoint_every_steps)."""
        if feed.count is None:
            yield from self._train_read_in_python(feed, start)
            return
        done = start
        while done < steps:
            if feed.left == 0:
                feed.restart()
            count = int(min(self._chunk(steps, self._paced_by_bar()), steps - done, feed.left))
            if self.checkpoint_every_steps is not None:
                count = min(count, self.checkpoint_every_steps - done % self.checkpoint_every_steps)
            run_steps(self._train_loop, feed, count)
            done += count
            yield done

    def _train_read_in_python(self, feed, start=0):
        step = start
        while self.steps_per_epoch is None or step < self.steps_per_epoch:
            if not step_on_next(self._train_step, feed):
                if self.steps_per_epoch is None or feed.fresh:
                    return
                feed.restart()
                continue
            step += 1
            yield step

    def _train_logs(self, epoch, steps, elapsed, run=None):
        """The epoch's training logs: ``steps`` in the epoch, ``run`` of them in this process."""
        run = steps if run is None else run
        logs: dict[str, float] = {"epoch": epoch}
        for task, values in self.train_trackers.task_results().items():
            logs.update({f"{task}/{name}": value for name, value in values.items()})
        logs.update({f"{task}/weight": w for task, w in self.train_trackers.task_weights().items()})
        logs["loss"] = float(self.train_trackers.total.result())
        logs["steps"] = steps
        logs["epoch_time_s"] = elapsed
        logs["steps_per_s"] = run / elapsed if elapsed > 0 else float("nan")
        return logs

    def _run_eval(self, dataset, count):
        self.val_trackers.reset()
        feed = Feed(dataset, None if count == math.inf else count)
        feed.restart()
        if feed.count is None:
            while step_on_next(self._eval_step, feed):
                pass
            return
        while feed.left > 0:
            run_steps(self._eval_loop, feed, min(self._chunk(feed.count), feed.left))

    def _validation_logs(self, val, val_count, train_logs):
        self._run_eval(val, val_count)
        logs, total = {}, float(self.val_trackers.regularization.result())
        for task, values in self.val_trackers.task_results().items():
            logs.update({f"{task}/val_{name}": value for name, value in values.items()})
            if "loss" not in self.val_trackers.undefined.get(task, {}):  # no labelled validation row
                total += train_logs[f"{task}/weight"] * values["loss"]
        logs["val_loss"] = total
        return logs

    def _end_epoch(self, epoch, logs, history):
        """Best-score bookkeeping, then history and checkpoints, for a finished epoch."""
        self._check_weights_finite(epoch)
        self.epoch.assign(epoch)
        score = self.early_stopping.score(logs, self.val_trackers.undefined)
        improved = score is not None and self.early_stopping.update(score, epoch)
        if improved:
            self._best_weights = self._model.get_weights()
        history.epochs.append(logs)
        if self.checkpoints is not None:
            self.checkpoints.commit(epoch, self._record(history), best=improved)
        self.progress.end_epoch(logs, self.val_trackers.undefined)

    def _record(self, history):
        history.best_epoch, history.best_score = self.early_stopping.best
        return history

    def _finish(self, history):
        self._record(history)
        if self.early_stopping.patience is not None and self._best_weights is not None:
            self._model.set_weights(self._best_weights)

    def _start(self) -> History:
        """A fit without resume: a Trainer that has not trained yet starts its folder over."""
        if self.checkpoints is not None and int(self.epoch.numpy()) == 0:
            self.checkpoints.start_over()
        return History()

    def _resume(self) -> History:
        """Restores the newest checkpoint, the best epoch's weights and the committed epochs' logs.

        The epoch checkpoint says which epoch is done and which was best, so files written
        after it by an epoch that never committed (a crash) are ignored and written again.
        """
        path = self.checkpoints.restore_latest()
        if path is None:
            return self._start()
        done = int(self.epoch.numpy())
        best_epoch, _ = self.early_stopping.best
        if best_epoch is not None:
            self._best_weights = self.checkpoints.model_weights_of(best_epoch)
        self.progress.resumed(path, done, int(self.epoch_step.numpy()))
        return self.checkpoints.read_history(done)

    # --- divergence -----------------------------------------------------------------------
    def _check_finite(self, epoch, start_step):
        first = int(self._first_nonfinite.numpy())
        if first < 0:
            return
        flags = self._nonfinite.numpy()
        tasks = [task.name for task, bad in zip(self.tasks, flags) if bad > 0]
        raise TrainingDiverged(tasks, epoch, first - start_step, self._last_checkpoint())

    def _check_weights_finite(self, epoch):
        finite = all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in self._model.trainable_variables)
        if not finite:
            steps = int(self.optimizer.iterations.numpy())
            raise TrainingDiverged([t.name for t in self.tasks], epoch, steps, self._last_checkpoint())

    def _last_checkpoint(self):
        return None if self.checkpoints is None else self.checkpoints.latest
