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

    python bench/input_pipeline.py [--rows 60000] [--repeats 7]
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
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    from pipelines.csv_to_tfrecords import run as run_pipeline

    from mtl_tf.data.reader import make_dataset
    from mtl_tf.models import build_model
    from mtl_tf.tasks import build_tasks
    from mtl_tf.training import Trainer

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mtl_bench_input_"))
    recipe, _ = fraud_recipe(workdir, args.rows)
    spec = run_pipeline(recipe).spec
    tasks = build_tasks(recipe.tasks)
    batch = recipe.training.batch_size

    import tensorflow as tf

    def reader(cache: str):
        """``(read in a compiled function, read in a Python loop, batches)`` of one reading mode."""
        ds = make_dataset(spec, "train", tasks, batch, shuffle=True, shuffle_buffer=recipe.training.shuffle_buffer,
                          cache=cache)

        @tf.function
        def read_in_graph():
            total = tf.constant(0, tf.int64)
            for features, _, _ in ds:
                total += tf.shape(features["amount"], out_type=tf.int64)[0]
            return total

        def read_all() -> int:
            # As the trainer reads: batches taken inside a compiled function, no Python per batch.
            return int(read_in_graph())

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
    write_result("input_pipeline", {
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
        "load_average_1_5_15": {"before_rounds": load_before, "after_rounds": load_after},
        "trainer_examples_per_s": {"median": train_rate, "all": train_rates},
        "ratio_reader_over_trainer": memory_rate / train_rate,
        "ratio_disk_cache_reader_over_trainer": disk_rate / train_rate,
        "ratio_streamed_reader_over_trainer": streamed_rate / train_rate,
        "target": ">= 5 for the defaults: in memory when the split fits (as here), the disk cache when not",
    })


if __name__ == "__main__":
    main()
