"""Input pipeline: examples/s of TFRecord -> tf.data parsing vs the trainer's consumption.

The fraud-signals recipe's data (synthetic, preprocessed by the real Beam pipeline) is read by
`mtl_tf.data.reader.make_dataset` as fast as it goes (no training), and, separately, the
recipe's model is trained on the same batches cached in memory (so input costs nothing
there). Target: the reader delivers >= 5x what the trainer consumes, so training is never
input-bound.

    python bench/input_pipeline.py [--rows 60000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median_rate, write_result  # noqa: E402
from fraud_fixture import fraud_recipe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=3)
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

    def read_all() -> int:
        ds = make_dataset(spec, "train", tasks, batch, shuffle=True, shuffle_buffer=recipe.training.shuffle_buffer)
        return sum(int(tf_batch[0]["amount"].shape[0]) for tf_batch in ds)

    read_all()  # warm the file cache
    input_rate, input_all = median_rate(read_all, args.repeats)

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
        "reader_examples_per_s": {"median": input_rate, "all": input_all},
        "trainer_examples_per_s": {"median": train_rate, "all": train_rates},
        "ratio_reader_over_trainer": input_rate / train_rate,
        "target": ">= 5",
    })


if __name__ == "__main__":
    main()
