"""Image input: images/s of decode + augment (the training path) vs the trainer's consumption.

The driving perception recipe (``recipes/driving_perception.yaml``) on its synthetic scenes
(``--rows`` training items of 96 x 128 RGB PNG with a segmentation mask, a depth map, boxes,
weather and time of day; written by ``mtl data synth driving_perception`` and the recipe's
Beam pipeline, bench/image_fixture.py) is read by ``mtl_tf.data.reader.make_dataset`` as
the runner reads the training split: shuffled, decoded per batch, augmented with the
recipe's ``data.augment``, every label kind decoded. Separately, the runner's Trainer
(``make_trainer``: the recipe's default model from ``build_model`` -- resnet trunk, an FPN
decoder per dense task, the real segmentation, depth, detection and multiclass task types
with their losses -- and its optimizer and batch size) trains on the same split cached in
memory, already decoded (so input costs it nothing). Target: the reader delivers >= 2x what
the trainer consumes.

Each round is one training epoch followed by one pass of each reader (called from the
Trainer's epoch-end callback, so the two share the machine in turns); figures are medians
over the rounds after the first (tracing).

    python bench/image_input.py [--rows 768] [--rounds 5] [--batch N (default: the recipe's)]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import write_result  # noqa: E402
from image_fixture import recipe_dataset  # noqa: E402

RECIPE = "driving_perception"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=768, help="about this many train items (scenes synthesised: "
                                                               "a quarter more, for validation and test)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None, help="default: the recipe's batch size")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. how busy the machine was)")
    args = parser.parse_args()

    from mtl_tf.data.reader import make_dataset
    from mtl_tf.models import flops_per_example
    from mtl_tf.runner.train import make_trainer
    from mtl_tf.tasks import build_tasks
    from mtl_tf.training import make_strategy

    load_before = os.getloadavg()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mtl_bench_images_"))
    start = time.perf_counter()
    # The recipe splits 80 / 10 / 10 by street: about ``rows`` scenes land in train.
    recipe, spec = recipe_dataset(RECIPE, [f"data.source.path={workdir / 'raw' / 'manifest.jsonl'}"],
                                  workdir=workdir, synth_rows=args.rows * 5 // 4)
    write_s = time.perf_counter() - start
    batch = args.batch or recipe.training.batch_size
    recipe = recipe.model_copy(update={"training": recipe.training.model_copy(
        update={"epochs": args.rounds, "early_stopping": None, "batch_size": batch})})
    tasks = build_tasks(recipe.tasks, spec)  # every label kind: the reader decodes them all
    augment = recipe.data.augment

    def reader(in_memory: bool, augment):
        ds = make_dataset(spec, "train", tasks, batch, shuffle=True, in_memory=in_memory, augment=augment)

        def one_pass() -> float:
            begin, count = time.perf_counter(), 0
            for features, _, _ in ds:
                count += int(features["image"].shape[0])
            return count / (time.perf_counter() - begin)
        return one_pass

    readers = {"decode_augment_in_memory": reader(True, augment), "decode_augment_streamed": reader(False, augment),
               "decode_only_in_memory": reader(True, None)}
    rates: dict[str, list[float]] = {name: [] for name in readers}

    cached = make_dataset(spec, "train", tasks, batch).cache()
    for _ in cached:  # decode once, before timing
        pass

    def between_epochs(epoch: int, logs: dict) -> None:
        for name, one_pass in readers.items():
            rates[name].append(one_pass())

    trainer = make_trainer(recipe, spec, tasks, workdir / "run", make_strategy("default"), verbose=0)
    history = trainer.fit(cached.prefetch(2), on_epoch_end=between_epochs)
    train = [e["steps_per_s"] * batch for e in history.epochs[1:]]
    measured = {name: values[1:] for name, values in rates.items()}
    train_rate = statistics.median(train)
    result = {
        "workload": {"recipe": f"recipes/{RECIPE}.yaml", "train_images": spec.splits["train"].num_examples,
                     "size": list(spec.feature("image").shape), "batch": batch,
                     "labels_decoded": {t.name: t.registered_type for t in tasks},
                     "augment": augment.model_dump() if augment else None,
                     "model": {"architecture": recipe.model.architecture.as_dict(),
                               "trunk": recipe.model.trunk.as_dict(), "decoder": recipe.model.decoder.as_dict(),
                               "parameters": trainer.model.count_params(),
                               "multiply_adds_per_example": flops_per_example(trainer.model)},
                     "synthesise_and_preprocess_s": write_s},
        "trainer_images_per_s": {"median": train_rate, "all": train},
        **{f"{name}_images_per_s": {"median": statistics.median(values), "all": values}
           for name, values in measured.items()},
        "ratio_reader_over_trainer": statistics.median(measured["decode_augment_in_memory"]) / train_rate,
        "ratio_streamed_reader_over_trainer": statistics.median(measured["decode_augment_streamed"]) / train_rate,
        "target": ">= 2 (decode + augment, the training path, in memory as the split fits)",
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "note": args.note,
    }
    write_result("image_input", result)


if __name__ == "__main__":
    main()
