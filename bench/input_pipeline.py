"""Input pipeline: examples/s of TFRecord -> tf.data parsing vs the trainer's consumption.

The fraud-signals recipe's data (synthetic, preprocessed by the real Beam pipeline) is read by
`mtl_tf.data.reader.make_dataset` as fast as it goes (no training), shuffled, in each of its
modes: in memory (the default when the split fits: parsed once, a full reshuffle per epoch),
the disk cache (the default when it does not: parsed once into chunks on disk, read back every
epoch) and, as the reference, the shards streamed (gzip TFRecords parsed every epoch).
Separately, the recipe's model is trained on the same batches cached in memory (so input costs
nothing there). Target: the default reader
delivers >= 5x what the trainer consumes, so training is never input-bound.

Each reader is read as the trainer reads it: its batches taken inside a compiled function
(``tf.function``), with no Python per batch. The same readers iterated in a Python loop are
timed too, as a reference (each batch's tensor dict handed to Python costs about as much as
reading it). The readers are timed in interleaved rounds (one pass of each per round, after a
warm-up pass of each), so a noisy neighbour slows both rather than one; figures are medians.

Each pass starts a new iterator, as each training epoch does, and that start (building the
tf.data pipeline, opening the cache, the first batch's latency) is a fixed cost per epoch. So
each reader is also timed over ``--passes`` passes of one iterator (``repeat``): the two times
give the fixed cost per epoch and the cost per row, and from them the rate on a split of any
size, reported for the smallest split the default reader sends to the disk cache (one just
over ``IN_MEMORY_BUDGET_BYTES`` decoded), the only splits the disk cache serves unless asked.

    python bench/input_pipeline.py [--rows 60000] [--repeats 7] [--passes 4] [--name input_pipeline]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import shutil
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import interleaved_rates, write_result  # noqa: E402
from fraud_fixture import fraud_recipe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--passes", type=int, default=4, help="passes read by one iterator")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--name", default="input_pipeline", help="results file name")
    args = parser.parse_args()
    if args.passes < 2:
        parser.error(f"--passes must be at least 2 (one iterator's start against its rows); received {args.passes}")

    from pipelines.csv_to_tfrecords import run as run_pipeline

    from mtl_tf.data.reader import IN_MEMORY_BUDGET_BYTES, make_dataset, row_bytes
    from mtl_tf.models import build_model
    from mtl_tf.tasks import build_tasks
    from mtl_tf.training import Trainer

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mtl_bench_input_"))
    recipe, _ = fraud_recipe(workdir, args.rows)
    spec = run_pipeline(recipe).spec
    tasks = build_tasks(recipe.tasks)
    batch = recipe.training.batch_size

    import tensorflow as tf

    def in_graph(ds):
        """Reads ``ds`` as the trainer reads: batches taken inside a compiled function, no Python per batch."""
        @tf.function
        def read_in_graph():
            total = tf.constant(0, tf.int64)
            for features, _, _ in ds:
                total += tf.shape(features["amount"], out_type=tf.int64)[0]
            return total
        return lambda: int(read_in_graph())

    def several_passes(cache: str, batches: int):
        """Reads ``args.passes`` passes of one iterator: the epoch's start paid once."""
        ds = make_dataset(spec, "train", tasks, batch, shuffle=True, shuffle_buffer=recipe.training.shuffle_buffer,
                          cache=cache, repeat=True)
        return in_graph(ds.take(args.passes * batches))

    def reader(cache: str):
        """``(read in a compiled function, read in a Python loop, batches)`` of one reading mode."""
        ds = make_dataset(spec, "train", tasks, batch, shuffle=True, shuffle_buffer=recipe.training.shuffle_buffer,
                          cache=cache)
        read_all = in_graph(ds)

        def read_in_python() -> int:
            return sum(int(features["amount"].shape[0]) for features, _, _ in ds)
        return read_all, read_in_python, int(ds.cardinality().numpy())

    cache_dir = Path(spec.root) / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    streamed, streamed_in_python, streamed_batches = reader("none")
    start = time.perf_counter()
    in_memory, memory_in_python, memory_batches = reader("memory")  # parses the split once
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    disk, disk_in_python, disk_batches = reader("disk")  # parses the split once into the cache
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    reader("disk")  # opens the cache built above: checks its manifest and files
    open_s = time.perf_counter() - start
    cache_bytes = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file())
    shard_bytes = sum(p.stat().st_size for p in Path(spec.root).glob("train-*"))
    load_before = os.getloadavg()
    rates = interleaved_rates({"in_memory": in_memory, "disk_cache": disk, "streamed": streamed}, args.repeats,
                              warm_up=True)
    passes = interleaved_rates({"in_memory": several_passes("memory", memory_batches),
                                "disk_cache": several_passes("disk", disk_batches),
                                "streamed": several_passes("none", streamed_batches)},
                               max(3, args.repeats // 2), warm_up=True)
    in_python = interleaved_rates({"in_memory": memory_in_python, "disk_cache": disk_in_python,
                                   "streamed": streamed_in_python}, max(3, args.repeats // 2), warm_up=True)
    load_after = os.getloadavg()
    memory_rate, memory_all = rates["in_memory"]
    disk_rate, disk_all = rates["disk_cache"]
    streamed_rate, streamed_all = rates["streamed"]

    cached = make_dataset(spec, "train", tasks, batch).cache()
    for _ in cached:  # fill the cache before timing
        pass
    trainer = Trainer(model_fn=lambda: build_model(recipe, spec, tasks), tasks=tasks,
                      optimizer=recipe.training.optimizer.as_dict(), epochs=args.epochs,
                      early_stopping=None, checkpoint_dir=None, verbose=0)
    history = trainer.fit(cached.prefetch(2))
    train_rates = [e["steps_per_s"] * batch for e in history.epochs[1:]]
    train_rate = statistics.median(train_rates)
    rows = spec.splits["train"].num_examples
    budget_rows = IN_MEMORY_BUDGET_BYTES // row_bytes(spec, tasks) + 1
    costs = {name: epoch_costs(rows, rates[name][0], passes[name][0], args.passes) for name in rates}
    at_budget = {name: budget_rows / (start + per_row * budget_rows) for name, (start, per_row) in costs.items()}
    write_result(args.name, {
        "workload": {"recipe": recipe.name, "train_examples": spec.splits["train"].num_examples, "batch": batch,
                     "features": len(spec.features), "tasks": len(tasks)},
        "reader_in_memory_examples_per_s": {"median": memory_rate, "all": memory_all,
                                            "one_off_load_s": load_s, "cardinality": memory_batches},
        "reader_disk_cache_examples_per_s": {"median": disk_rate, "all": disk_all, "one_off_build_s": build_s,
                                             "open_s": open_s, "cache_bytes": cache_bytes,
                                             "train_shard_bytes": shard_bytes, "cardinality": disk_batches},
        "reader_streamed_examples_per_s": {"median": streamed_rate, "all": streamed_all,
                                           "cardinality": streamed_batches},
        "read_in_python_examples_per_s": {name: {"median": rate, "all": values}
                                          for name, (rate, values) in in_python.items()},
        "read_in_python_note": "the same readers iterated in a Python loop (a tensor dict per batch handed to "
                               "Python): a cost the trainer, which reads inside its compiled function, does not pay",
        f"read_{args.passes}_passes_per_iterator_examples_per_s": {
            name: {"median": rate, "all": values} for name, (rate, values) in passes.items()},
        "epoch_start_s_and_row_us": {name: {"epoch_start_s": start, "per_row_us": per_row * 1e6}
                                     for name, (start, per_row) in costs.items()},
        "smallest_split_on_disk_rows": budget_rows,
        "at_smallest_split_on_disk_examples_per_s": at_budget,
        "ratio_disk_cache_reader_over_trainer_at_smallest_split_on_disk": at_budget["disk_cache"] / train_rate,
        "ratio_streamed_reader_over_trainer_at_smallest_split_on_disk": at_budget["streamed"] / train_rate,
        "load_average_1_5_15": {"before_rounds": load_before, "after_rounds": load_after},
        "trainer_examples_per_s": {"median": train_rate, "all": train_rates},
        "ratio_reader_over_trainer": memory_rate / train_rate,
        "ratio_disk_cache_reader_over_trainer": disk_rate / train_rate,
        "ratio_streamed_reader_over_trainer": streamed_rate / train_rate,
        "target": ">= 5 for the defaults: in memory when the split fits (as here), the disk cache when not "
                  "(splits over the budget: the ratio at the smallest split on disk)",
    })


def epoch_costs(rows: int, one_pass_rate: float, several_rate: float, passes: int) -> tuple[float, float]:
    """``(seconds an epoch's start costs, seconds per row)`` from the rates of one pass per
    iterator and of ``passes`` passes per iterator (each: its rows / its time)."""
    one, several = rows / one_pass_rate, passes * rows / several_rate
    per_pass = max(0.0, (several - one) / (passes - 1))
    return max(0.0, one - per_pass), per_pass / rows


if __name__ == "__main__":
    main()
