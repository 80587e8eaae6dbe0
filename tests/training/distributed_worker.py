"""Trains the toy model under one strategy and saves the final weights (run as a script).

Usage: python distributed_worker.py MODE OUT.npz [CHECKPOINT_DIR]
  single       the default strategy
  mirrored     MirroredStrategy over two logical CPU devices, then the default strategy
               (saved as "mirrored_*" and "default_*")
  multi_worker MultiWorkerMirroredStrategy over the cluster in TF_CONFIG
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH = 32


def train(strategy, checkpoint_dir=None):
    from mtl_tf.training import Trainer
    from training_toy import build_model, make_tasks, toy_dataset

    tasks = make_tasks(weights=(1.0, 0.5))
    trainer = Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.02},
                      strategy=strategy, epochs=2, checkpoint_dir=checkpoint_dir, verbose=0)
    history = trainer.fit(toy_dataset(256, batch_size=GLOBAL_BATCH), toy_dataset(64, seed=1, batch_size=GLOBAL_BATCH))
    return trainer.model.get_weights(), history.epochs[-1]


def main(mode, out, checkpoint_dir=None):
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        mirrored, logs = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
        default, default_logs = train(None)
        arrays = {f"mirrored_{i}": w for i, w in enumerate(mirrored)}
        arrays.update({f"default_{i}": w for i, w in enumerate(default)})
        arrays["val_auc"] = np.array([logs["a/val_auc"], default_logs["a/val_auc"]])
    elif mode == "multi_worker":
        from mtl_tf.training import make_strategy

        weights, logs = train(make_strategy("multi_worker"), checkpoint_dir)
        arrays = {f"w_{i}": w for i, w in enumerate(weights)}
        arrays["val_auc"] = np.array([logs["a/val_auc"]])
    else:
        weights, logs = train(None)
        arrays = {f"w_{i}": w for i, w in enumerate(weights)}
        arrays["val_auc"] = np.array([logs["a/val_auc"]])
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
