"""Per-task gradients and lookahead losses of a multi-task model, without touching its weights.

The probe reads the model's variables once per measurement and runs the model functionally
(``keras.Model.stateless_call``) on those values: gradients are taken with respect to the
values and the lookahead model is the same values with the shared part moved. The model's
variables are never assigned, so nothing needs restoring, the optimizer state is untouched,
and no collective op runs: under a tf.distribute strategy the probe computes on the calling
worker alone with its local copy of the (replicated, identical) weights.

The model runs in inference mode (``training=False``): dropout is off and batch-norm layers
use their moving statistics and do not update them, so a probe cannot change training.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.analysis.matrices import affinity_from_losses, cosine_from_gram, nanmean_matrices
from mtl_tf.models.builder import task_variables
from mtl_tf.training.losses import unpack_batch


class TaskProbe:
    """Measures task relationships of a model on given batches.

    Args:
        model: a functional model whose outputs are a dict keyed by task name, with layers
            named after the convention of :mod:`mtl_tf.models.naming` (``"<task>_..."`` for a
            task's own layers; everything else is shared).
        tasks: TaskType objects, in matrix order.

    Example:
        >>> probe = TaskProbe(trainer.model, tasks)
        >>> probe.conflict(batches)        # (T, T) cosine similarities
        >>> probe.affinity(batches, 1e-3)  # (T, T) lookahead affinities
    """

    def __init__(self, model: keras.Model, tasks: Sequence[Any]):
        self.model = model
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError("TaskProbe needs at least one task; received none")
        self._shared = shared_indices(model, self.tasks)
        if not self._shared:
            raise ValueError(no_shared_reason(model))
        self._shapes = [tuple(model.trainable_variables[i].shape) for i in self._shared]
        self._gradients_fn = tf.function(self._gradients, reduce_retracing=True)
        self._lookahead_fn = tf.function(self._lookahead, reduce_retracing=True)

    @property
    def shared_size(self) -> int:
        """The number of shared scalar parameters the gradients cover."""
        return int(sum(np.prod(shape, dtype=np.int64) for shape in self._shapes))

    # --- public measurements --------------------------------------------------------------
    def task_gradients(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        """Each task's loss and gradient on the shared parameters for one batch.

        Args:
            batch: ``(features, labels, masks)`` or ``(features, labels)`` dicts, as the reader yields.

        Returns:
            ``(losses, gradients)``: ``(T,)`` masked mean losses and ``(T, P)`` flattened
            gradients (zero for a task without a label in the batch).
        """
        losses, gradients = self._gradients_fn(*self._values(), *self._unpack(batch))
        return losses.numpy(), gradients.numpy()

    def conflict(self, batches: Sequence[Any]) -> np.ndarray:
        """The mean over batches of the task-gradient cosine matrix, ``(T, T)``."""
        matrices = []
        for batch in batches:
            _, gradients = self.task_gradients(batch)
            gradients = gradients.astype(np.float64)
            matrices.append(cosine_from_gram(gradients @ gradients.T))
        return nanmean_matrices(matrices)

    def affinity(self, batches: Sequence[Any], learning_rate: float) -> np.ndarray:
        """The mean over batches of the lookahead affinity matrix, ``(T, T)``.

        ``Z[i, j] = 1 - L_j(theta_s - lr * g_i, theta_j) / L_j(theta)`` on each batch: a plain
        gradient step of size ``learning_rate`` on task i's shared gradient, task j's loss read
        before and after on the same batch.
        """
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; received {learning_rate!r}")
        matrices = []
        for batch in batches:
            trainable, non_trainable = self._values()
            features, labels, masks = self._unpack(batch)
            before, gradients = self._gradients_fn(trainable, non_trainable, features, labels, masks)
            after = self._lookahead_fn(trainable, non_trainable, features, labels, masks, gradients,
                                       tf.constant(learning_rate, tf.float32))
            matrices.append(affinity_from_losses(before.numpy(), after.numpy()))
        return nanmean_matrices(matrices)

    def relations(self, batches: Sequence[Any], learning_rate: float | None,
                  conflict_batches: int, affinity_batches: int) -> dict[str, np.ndarray]:
        """Conflict on the first ``conflict_batches`` and affinity on the first
        ``affinity_batches`` batches, sharing one backward pass where the batches overlap.

        Returns:
            ``{"conflict": (T, T), "affinity": (T, T), "gradient_norms": (T,)}``; a key is
            left out when its batch count is 0.
        """
        cosines, affinities, norms = [], [], []
        trainable, non_trainable = self._values()
        for n, batch in enumerate(batches[:max(conflict_batches, affinity_batches)]):
            features, labels, masks = self._unpack(batch)
            before, gradients = self._gradients_fn(trainable, non_trainable, features, labels, masks)
            grads = gradients.numpy().astype(np.float64)
            if n < conflict_batches:
                gram = grads @ grads.T
                cosines.append(cosine_from_gram(gram))
                norms.append(np.sqrt(np.diag(gram)))
            if n < affinity_batches and learning_rate:
                after = self._lookahead_fn(trainable, non_trainable, features, labels, masks, gradients,
                                           tf.constant(learning_rate, tf.float32))
                affinities.append(affinity_from_losses(before.numpy(), after.numpy()))
        found: dict[str, np.ndarray] = {}
        if cosines:
            found["conflict"] = nanmean_matrices(cosines)
            found["gradient_norms"] = np.mean(norms, axis=0)
        if affinities:
            found["affinity"] = nanmean_matrices(affinities)
        return found

    # --- compiled pieces ------------------------------------------------------------------
    def _gradients(self, trainable, non_trainable, features, labels, masks):
        shared = [trainable[i] for i in self._shared]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(shared)
            losses = self._losses(trainable, non_trainable, features, labels, masks)
            per_task = [losses[t] for t in range(len(self.tasks))]
        rows = []
        for loss in per_task:
            grads = tape.gradient(loss, shared)
            rows.append(tf.concat([tf.reshape(_dense(g, v), [-1]) for g, v in zip(grads, shared)], axis=0))
        del tape
        return losses, tf.stack(rows)

    def _lookahead(self, trainable, non_trainable, features, labels, masks, gradients, learning_rate):
        rows = []
        for t in range(len(self.tasks)):
            moved = list(trainable)
            offset = 0
            for index, shape in zip(self._shared, self._shapes):
                size = int(np.prod(shape, dtype=np.int64))
                step = tf.reshape(gradients[t, offset:offset + size], shape)
                moved[index] = trainable[index] - tf.cast(learning_rate, trainable[index].dtype) * step
                offset += size
            rows.append(self._losses(moved, non_trainable, features, labels, masks))
        return tf.stack(rows)

    def _losses(self, trainable, non_trainable, features, labels, masks):
        """Each task's mean loss over its labelled rows (0 for a task without labels), ``(T,)``."""
        outputs, _ = self.model.stateless_call(list(trainable), list(non_trainable), features, training=False)
        losses = []
        for task in self.tasks:
            rows = tf.cast(task.per_example_loss(labels[task.name], outputs[task.name]), tf.float32)
            mask = tf.cast(masks[task.name], tf.float32)
            # tf.where, not a product: an unlabelled row's garbage loss must not leak as NaN.
            rows = tf.where(mask > 0, rows, tf.zeros_like(rows))
            losses.append(tf.reduce_sum(rows * mask) / tf.maximum(tf.reduce_sum(mask), 1.0))
        return tf.stack(losses)

    # --- helpers --------------------------------------------------------------------------
    def _values(self) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
        """The current variable values, read once (local copies under a strategy)."""
        return ([tf.convert_to_tensor(v.value) for v in self.model.trainable_variables],
                [tf.convert_to_tensor(v.value) for v in self.model.non_trainable_variables])

    def _unpack(self, batch: Any) -> tuple[Mapping, dict, dict]:
        return unpack_batch(batch, self.tasks)


def shared_indices(model: keras.Model, tasks: Sequence[Any]) -> list[int]:
    """Positions in ``model.trainable_variables`` of the variables no task owns."""
    names = [task.name for task in tasks]
    owned = {id(v) for name in names for v in task_variables(model, name, names)}
    return [i for i, v in enumerate(model.trainable_variables) if id(v) not in owned]


def no_shared_reason(model: keras.Model) -> str:
    """Why a model without shared trainable variables has no task relationships to measure."""
    return (f"model '{model.name}' has no shared trainable variables (every layer with weights belongs to one "
            "task, as with sps on numeric features); task relationships are measured on shared parameters, "
            "so there is no gradient conflict or affinity to measure")


def _dense(grad: Any, value: tf.Tensor) -> tf.Tensor:
    return tf.zeros_like(value) if grad is None else tf.convert_to_tensor(grad)
