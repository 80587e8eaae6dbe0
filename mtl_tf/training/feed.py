"""Feeding batches to the compiled step: from inside the compiled function when the data
knows its length (several steps per call), else one batch at a time in Python."""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

# The most batches one call of the compiled skip loop reads (a resumed run reading its data
# up to the checkpoint).
SKIP_CHUNK = 1000


class Feed:
    """A distributed dataset's current iterator and how many batches it has left.

    Args:
        dataset: the distributed dataset.
        count: its batches (``math.inf`` when it repeats forever); None when unknown.
    """

    def __init__(self, dataset, count: float | None):
        self.dataset, self.count = dataset, count
        self.iterator, self.left, self.fresh = None, 0, False

    def restart(self) -> None:
        self.iterator = iter(self.dataset)
        self.left, self.fresh = self.count, True

    def skip_passes(self, passes: int) -> None:
        """Starts ``passes`` passes and drops them unread: each start draws the pass's shuffle
        seed (``rerandomize_each_iteration``, ``reshuffle_each_iteration``), so the next pass
        is shuffled as the pass after them is in a run that read them."""
        for _ in range(passes):
            self.iterator = iter(self.dataset)
        self.iterator, self.left, self.fresh = None, 0, False


def compile_loop(step: Callable) -> Callable:
    """A ``loop(iterator, count)`` that reads ``count`` batches inside a compiled function
    and runs the compiled ``step`` on each.

    ``step`` stays a function of its own, so with XLA only the step is compiled (the
    iterator cannot be). A call for one step has no loop, so it needs no loop count, unless
    the loop is already traced: then it runs one turn of that rather than tracing a second
    function (an epoch of several steps per call whose last call has one step).
    """
    traced = {"several": False}

    @tf.function
    def one(iterator):
        step(next(iterator))

    @tf.function
    def several(iterator, count):
        for _ in tf.range(count):
            step(next(iterator))

    def loop(iterator, count: int) -> None:
        if count == 1 and not traced["several"]:
            one(iterator)
        else:
            traced["several"] = True
            several(iterator, tf.constant(count, tf.int64))

    return loop


def compile_skip() -> Callable:
    """A ``skip(iterator, count)`` that reads and drops ``count`` batches inside a compiled function."""

    @tf.function
    def skip(iterator, count):
        for _ in tf.range(count):
            next(iterator)

    def loop(iterator, count: int) -> None:
        skip(iterator, tf.constant(count, tf.int64))

    return loop


def skip_next(feed: Feed) -> bool:
    """Reads one batch in Python and drops it; False at the end of the data."""
    try:
        next(feed.iterator)
    except (StopIteration, tf.errors.OutOfRangeError):
        return False
    feed.fresh = False
    return True


def cardinality(ds: tf.data.Dataset) -> int | None:
    count = int(ds.cardinality().numpy())
    return count if count > 0 else None


def known_batches(strategy: tf.distribute.Strategy, ds: tf.data.Dataset) -> float | None:
    """Batches in ``ds`` when the compiled function may read them itself (``math.inf``
    for a dataset that repeats forever); None when they must be read in Python.

    Several workers read finite data the Python way: each reads its own shard of the files,
    and a worker's shard need not hold the dataset's count of batches. Data that repeats
    forever never runs out on any worker, so they read it inside the compiled function too.
    """
    from mtl_tf.training.strategy import in_cluster

    infinite = int(ds.cardinality().numpy()) == tf.data.INFINITE_CARDINALITY
    if infinite:
        return math.inf
    if in_cluster(strategy):
        return None
    return cardinality(ds)


def run_steps(loop: Callable, feed: Feed, count: int) -> None:
    """Runs ``count`` steps, reading the batches inside the compiled function.

    The caller never asks for more batches than ``feed`` has left: reading past the end
    inside the function would still run the step's data-independent updates (metric
    counters) before the end-of-data error surfaced.
    """
    try:
        loop(feed.iterator, count)
    except tf.errors.OutOfRangeError as err:
        raise ValueError(
            f"the dataset ended before the {feed.count} batches its cardinality() announced; "
            "if it was declared with assert_cardinality, the count is wrong") from err
    feed.left -= count
    feed.fresh = False


def step_on_next(step: Callable, feed: Feed) -> bool:
    """Reads one batch in Python and runs ``step`` on it; False at the end of the data.

    This is the path for data of unknown length: the batch is taken before the compiled
    step starts, as the TensorFlow custom-loop guides do, so the end of the data never
    runs half a step (and a ``tf.cond`` on an optional element fails under
    MirroredStrategy).
    """
    try:
        batch = next(feed.iterator)
    except (StopIteration, tf.errors.OutOfRangeError):
        return False
    step(batch)
    feed.fresh = False
    return True
