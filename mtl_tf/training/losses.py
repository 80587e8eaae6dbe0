"""Masked task losses, normalised so N replicas equal one replica with the same global batch."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import tensorflow as tf


def unpack_batch(batch: Any, tasks: Sequence) -> tuple[Mapping, dict, dict]:
    """(features, cleaned labels, masks) of a ``(features, labels[, masks])`` batch.

    Without masks they come from each task's missing-label rule; labels are cleaned so a
    missing one cannot turn a loss into NaN.
    """
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError("datasets must yield (features, labels, masks) or (features, labels) "
                         f"dicts; received an element of type {type(batch).__name__}")
    features, labels = batch[0], batch[1]
    missing = [t.name for t in tasks if t.name not in labels]
    if missing:
        raise ValueError(f"the labels lack task(s) {', '.join(missing)}; "
                         f"received label keys: {', '.join(sorted(labels))}")
    masks = batch[2] if len(batch) == 3 else {t.name: t.mask(labels[t.name]) for t in tasks}
    return (features, {t.name: t.clean(labels[t.name]) for t in tasks},
            {t.name: masks[t.name] for t in tasks})


def label_counts(tasks: Sequence, masks: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Labelled rows per task in the global batch, at least 1; shape ``(T,)``.

    Called in replica context: the local counts are summed across replicas, so every replica
    divides by the same number.
    """
    return tf.maximum(global_label_counts(tasks, masks), 1.0)


def global_label_counts(tasks: Sequence, masks: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Labelled rows per task in the global batch (0 for a task without labels); shape ``(T,)``."""
    counts = tf.stack([tf.reduce_sum(tf.cast(masks[task.name], tf.float32)) for task in tasks])
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        counts = context.all_reduce(tf.distribute.ReduceOp.SUM, counts)
    return counts


def masked_losses(tasks: Sequence, labels: Mapping[str, tf.Tensor], masks: Mapping[str, tf.Tensor],
                  outputs: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """This replica's share of each task's mean loss over the labelled rows of the global batch.

    Summed across replicas, the shares are the task losses of the global batch; a task with no
    label in the global batch has loss 0.

    Args:
        tasks: TaskType objects.
        labels: task name -> cleaned label.
        masks: task name -> presence mask (1.0 labelled, 0.0 not), shape ``(batch,)``.
        outputs: task name -> model output.

    Returns:
        ``(losses, per_example)``: losses shape ``(T,)``; per_example[t] the per-row losses
        of task t, 0 on unlabelled rows (weight them with the mask).
    """
    losses, per_example, _ = task_losses(tasks, labels, masks, outputs)
    return losses, per_example


def task_losses(tasks: Sequence, labels: Mapping[str, tf.Tensor], masks: Mapping[str, tf.Tensor],
                outputs: Mapping[str, tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor], tf.Tensor]:
    """:func:`masked_losses` plus the global label counts ``(T,)`` (0 for an unlabelled task)."""
    per_example = per_example_losses(tasks, labels, masks, outputs)
    sums = tf.stack([tf.reduce_sum(rows * tf.cast(masks[task.name], tf.float32))
                     for task, rows in zip(tasks, per_example)])
    counts = global_label_counts(tasks, masks)
    return sums / tf.maximum(counts, 1.0), per_example, counts


def per_example_losses(tasks: Sequence, labels: Mapping[str, tf.Tensor], masks: Mapping[str, tf.Tensor],
                       outputs: Mapping[str, tf.Tensor]) -> list[tf.Tensor]:
    """Each task's per-row loss, 0 on rows without its label; shape ``(batch,)`` each."""
    per_example = []
    for task in tasks:
        rows = tf.cast(task.per_example_loss(labels[task.name], outputs[task.name]), tf.float32)
        # tf.where rather than a product: a garbage value on an unlabelled row must not leak as NaN.
        present = tf.cast(masks[task.name], tf.float32) > 0
        per_example.append(tf.where(present, rows, tf.zeros_like(rows)))
    return per_example
