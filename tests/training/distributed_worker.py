"""Trains the toy model under one strategy and saves the final weights (run as a script).

Usage: python distributed_worker.py MODE OUT.npz [CHECKPOINT_DIR [DATASETS_DIR]]
  single       the default strategy: equal weighting and each of MULTI_WORKER_METHODS
  mirrored     MirroredStrategy over two logical CPU devices, then the default strategy
               (saved as "mirrored_<method>_*" and "default_<method>_*"); the mirrored
               equal-weighting run reads 3 batches per call of the compiled function, the
               others one
  multi_worker MultiWorkerMirroredStrategy over the cluster in TF_CONFIG, once per method of
               MULTI_WORKER_METHODS (the checkpoint folder is used by the first only)
With DATASETS_DIR (two tiny datasets, "main" and "side", made by the test), single and
multi_worker also train on batches mixed from both (round robin, an endless mix, 3 steps
per call of the compiled function), saved as "mixed_*".
Arrays are saved as "<method>_<i>" (weights) and "<method>_val_auc".

Usage: python distributed_worker.py resumable OUT.npz CHECKPOINT_DIR [resume]
  resumable    one equal-weighting run with step checkpoints (RESUMABLE), on data reshuffled
               every pass; MultiWorkerMirroredStrategy when TF_CONFIG is set, else the
               default strategy; "resume" continues from CHECKPOINT_DIR. Each batch takes at
               least $MTL_TEST_BATCH_PAUSE_S seconds to read, so that a test can kill the
               workers mid-epoch. Saved as "resumable_<i>" (weights) and "resumable_epochs"
               (the epochs of the history); no validation data. The chief prints its
               progress lines (verbose 1).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH = 32
# Equal weighting, then per-task gradient methods: parameter gradients (PCGrad, MGDA) and
# representation gradients (MGDA-UB).
METHODS = {"ew": "sum", "pcgrad": "pcgrad", "mgda": "mgda", "mgda_ub": {"name": "mgda", "rep_grad": True}}
# Under several workers, one method per path through the step: parameter gradients (PCGrad; MGDA
# takes the same all-reduced Jacobian) and representation gradients (MGDA-UB); the summed
# gradient of equal weighting is the mixed-datasets run's.
MULTI_WORKER_METHODS = ("pcgrad", "mgda_ub")
# The resumable run: 2 epochs of 24 steps of 16 rows, a step checkpoint every 5 steps.
RESUMABLE = {"rows": 384, "batch_size": 16, "epochs": 2, "checkpoint_every_steps": 5}
PAUSE_ENV = "MTL_TEST_BATCH_PAUSE_S"


def train(strategy, gradient="sum", checkpoint_dir=None, steps_per_execution="auto"):
    from mtl_tf.training import Trainer
    from training_toy import build_model, make_tasks, toy_dataset

    tasks = make_tasks(weights=(1.0, 0.5))
    trainer = Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.02},
                      gradient=gradient, strategy=strategy, epochs=2, checkpoint_dir=checkpoint_dir, verbose=0,
                      steps_per_execution=steps_per_execution)
    history = trainer.fit(toy_dataset(256, batch_size=GLOBAL_BATCH), toy_dataset(64, seed=1, batch_size=GLOBAL_BATCH))
    return trainer.model.get_weights(), history.epochs[-1]


def train_mixed(strategy, datasets_dir):
    """Two datasets with different tasks mixed round robin (mtl_tf.data.mixing), as `mtl run`
    trains a recipe with `datasets`: an endless mix, steps_per_epoch, several steps per call."""
    from pathlib import Path

    from mtl_tf.data.collection import DatasetCollection
    from mtl_tf.data.mixing import mixed_split, mixed_train
    from mtl_tf.data.spec import DatasetSpec
    from mtl_tf.models import build_model
    from mtl_tf.recipe.loader import parse_recipe
    from mtl_tf.tasks import build_tasks
    from mtl_tf.training import Trainer

    root = Path(datasets_dir)
    collection = DatasetCollection({"data": DatasetSpec.read(root / "main" / "dataset"),
                                    "side": DatasetSpec.read(root / "side" / "dataset")})
    recipe = parse_recipe(mixed_recipe(str(root / "main" / "dataset")), check=False)
    tasks = build_tasks(recipe.tasks, collection.combined)
    mix = mixed_train(collection, tasks, GLOBAL_BATCH // 2, "round_robin", epochs=2, seed=0)
    trainer = Trainer(lambda: build_model(recipe, collection.combined, tasks), tasks,
                      {"name": "adam", "learning_rate": 0.02}, strategy=strategy, epochs=2,
                      steps_per_epoch=mix.steps_per_epoch, steps_per_execution=3, verbose=0)
    history = trainer.fit(mix.dataset, mixed_split(collection, "test", tasks, GLOBAL_BATCH // 2))
    logs = dict(history.epochs[-1])
    logs["a/val_auc"] = logs["fraud/val_auc"]
    return trainer.model.get_weights(), logs


def mixed_recipe(main_dir):
    from tests.helpers.tiny_dataset import tiny_recipe
    from mtl_tf.data.spec import DatasetSpec

    raw = tiny_recipe(DatasetSpec.read(main_dir))
    raw["tasks"].append({"name": "side_fraud", "type": "binary", "label": "is_fraud"})
    return raw


def train_resumable(strategy, checkpoint_dir, resume=False):
    """Equal weighting on reshuffled toy data with step checkpoints; resumes with ``resume``."""
    from mtl_tf.training import Trainer
    from training_toy import build_model, make_tasks, shuffled_toy_dataset

    tasks = make_tasks(weights=(1.0, 0.5))
    trainer = Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.02}, strategy=strategy,
                      epochs=RESUMABLE["epochs"], checkpoint_dir=checkpoint_dir, verbose=1,
                      checkpoint_every_steps=RESUMABLE["checkpoint_every_steps"])
    # The tf.data autotuner off, as the reader runs: an autotuned iterator that ends can hold
    # its worker for seconds while tf.data's tuning thread finishes its wait.
    options = tf.data.Options()
    options.autotune.enabled = False
    train = shuffled_toy_dataset(RESUMABLE["rows"], batch_size=RESUMABLE["batch_size"]).with_options(options)
    pause = float(os.environ.get(PAUSE_ENV, "0"))
    if pause > 0:
        train = train.map(_paused(pause))
    history = trainer.fit(train, resume=resume)  # no validation: the weights are compared
    return trainer.model.get_weights(), history


def _paused(seconds):
    """A map that holds each batch back ``seconds`` (the data is unchanged)."""

    def sleep():
        time.sleep(seconds)
        return np.float32(0)

    def pause(features, labels, masks):
        waited = tf.numpy_function(sleep, [], tf.float32, stateful=True)
        with tf.control_dependencies([waited]):
            features = {name: tf.identity(value) for name, value in features.items()}
        return features, labels, masks

    return pause


def save_run(arrays, prefix, weights, logs):
    arrays.update({f"{prefix}_{i}": w for i, w in enumerate(weights)})
    arrays[f"{prefix}_val_auc"] = np.array([logs["a/val_auc"]])


def main(mode, out, checkpoint_dir=None, datasets_dir=None):
    arrays = {}
    checkpoint_dir = checkpoint_dir or None
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        # One strategy for every run: a second one in the same process would reuse collective keys.
        mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        for label in ("ew", "pcgrad"):
            several = 3 if label == "ew" else "auto"
            save_run(arrays, f"mirrored_{label}", *train(mirrored, METHODS[label], steps_per_execution=several))
            save_run(arrays, f"default_{label}", *train(None, METHODS[label]))
    elif mode == "multi_worker":
        from mtl_tf.training import make_strategy

        strategy = make_strategy("multi_worker")
        for i, label in enumerate(MULTI_WORKER_METHODS):
            save_run(arrays, label, *train(strategy, METHODS[label], checkpoint_dir if i == 0 else None))
        if datasets_dir:
            save_run(arrays, "mixed", *train_mixed(strategy, datasets_dir))
    else:
        for label in ("ew", *MULTI_WORKER_METHODS):
            save_run(arrays, label, *train(None, METHODS[label]))
        if datasets_dir:
            save_run(arrays, "mixed", *train_mixed(None, datasets_dir))
    np.savez(out, **arrays)


def main_resumable(out, checkpoint_dir, resume=""):
    from mtl_tf.training import make_strategy

    strategy = make_strategy("multi_worker") if os.environ.get("TF_CONFIG") else None
    weights, history = train_resumable(strategy, checkpoint_dir, resume=resume == "resume")
    arrays = {f"resumable_{i}": w for i, w in enumerate(weights)}
    arrays["resumable_epochs"] = np.array([logs["epoch"] for logs in history.epochs])
    np.savez(out, **arrays)


if __name__ == "__main__":
    if sys.argv[1] == "resumable":
        main_resumable(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
