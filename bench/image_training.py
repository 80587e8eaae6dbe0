"""Training images/s of each image recipe's default model, as `mtl run` trains it.

For each recipe the model is ``build_model`` of the recipe (its trunk, decoder, towers, task
heads and losses) and the Trainer is the runner's (``mtl_tf.runner.train.make_trainer``:
the recipe's optimizer, weighting, gradient method and batch size). The training split is
decoded once and cached in memory, unaugmented, so the figure is what the model and its
update cost, not the input pipeline (``bench/image_input.py`` measures that). Each round is
one epoch over the cached split; the figure is the median over the rounds after the first
(tracing and compilation), images/s = steps/s x batch size. The device (CPU here: no GPU
on these machines) and the load average are recorded.

    python bench/image_training.py [driving_perception camvid pennfudan] [--rounds 4]

Results are merged into ``bench/results/image_training.json`` by recipe, so recipes can be
measured one at a time (each with its own ``--set``).

The datasets are the recipes' own (bench/image_fixture.py: the driving scenes are
synthesised, 2000 of them, when missing; camvid and pennfudan read ../shared/data).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from common import RESULTS, write_result  # noqa: E402
from image_fixture import IMAGE_RECIPES, recipe_dataset  # noqa: E402


def device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU: {', '.join(g.name for g in gpus)}" if gpus else f"CPU ({os.cpu_count()} cores)"


def measure(name: str, rounds: int, overrides: list[str]) -> dict:
    """Images/s of one recipe's default model over ``rounds`` epochs of its cached train split."""
    from mtl_tf.data.reader import make_dataset
    from mtl_tf.models import flops_per_example, parameter_breakdown
    from mtl_tf.runner.train import make_trainer
    from mtl_tf.tasks import build_tasks
    from mtl_tf.training import make_strategy

    recipe, spec = recipe_dataset(name, overrides)
    recipe = recipe.model_copy(update={"training": recipe.training.model_copy(
        update={"epochs": rounds, "early_stopping": None})})
    tasks = build_tasks(recipe.tasks, spec)
    batch = recipe.training.batch_size
    cached = make_dataset(spec, "train", tasks, batch).cache()
    for _ in cached:  # decode once, before timing
        pass
    with tempfile.TemporaryDirectory(prefix="mtl-bench-train-") as run_dir:
        trainer = make_trainer(recipe, spec, tasks, Path(run_dir), make_strategy("default"), verbose=0)
        history = trainer.fit(cached.prefetch(2))
        model = trainer.model
        size = {"parameters": parameter_breakdown(model), "multiply_adds_per_example": flops_per_example(model)}
    rates = [e["steps_per_s"] * batch for e in history.epochs]
    image = spec.feature(next(f.name for f in spec.features if f.kind == "image"))
    return {
        "recipe": f"recipes/{recipe.name}.yaml",
        "model": {"architecture": recipe.model.architecture.as_dict(), "trunk": recipe.model.trunk.as_dict(),
                  "decoder": recipe.model.decoder.as_dict(), **size},
        "tasks": {t.name: t.registered_type for t in tasks},
        "image": list(image.shape), "batch": batch, "train_images": spec.splits["train"].num_examples,
        "images_per_s": {"median": statistics.median(rates[1:]), "all": rates},
        "seconds_per_epoch": {"median": statistics.median(e["epoch_time_s"] for e in history.epochs[1:]),
                              "all": [e["epoch_time_s"] for e in history.epochs]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", default=list(IMAGE_RECIPES))
    parser.add_argument("--rounds", type=int, default=4, help="epochs per recipe; the first is not counted")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override for every recipe, e.g. data.source.path=... (one recipe)")
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. how busy the machine was)")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the first round traces and compiles)")
    old = RESULTS / "image_training.json"
    results = json.loads(old.read_text()).get("results", {}) if old.is_file() else {}  # other recipes kept
    for name in args.recipes:
        before = os.getloadavg()
        results[name] = measure(name, args.rounds, args.overrides)
        results[name]["load_average"] = {"before": list(before), "after": list(os.getloadavg())}
        results[name]["device"], results[name]["note"] = device(), args.note
        print(name, f"{results[name]['images_per_s']['median']:.1f} images/s", flush=True)
    write_result("image_training", {"results": results})


if __name__ == "__main__":
    main()
