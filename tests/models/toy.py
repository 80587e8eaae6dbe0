"""Toy multi-task problems and model factories for the architecture tests.

Tabular: 6 standard-normal features; task ``a`` is ``x0 + x1 > 0``, task ``b`` is
``x2 - x3 > 0``. Images: 8x8x2; ``a`` is "channel 0 is bright on average", ``b`` is "the
top half of channel 1 is brighter than the bottom half". Both are learnable by every
architecture in a few epochs.
"""

from __future__ import annotations

import keras
import numpy as np

from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.tasks import BinaryTask

TASKS = ("a", "b")
TABULAR = (6,)
IMAGE = (8, 8, 2)
MLP_TRUNK = {"name": "mlp", "units": [8, 8]}
CONV_TRUNK = {"name": "conv", "filters": [4, 8], "batch_norm": False}
TOWER = {"name": "mlp", "units": [4]}
ARCHITECTURE_NAMES = ["hps", "sps", "cross_stitch", "eds", "mmoe", "dselect_k", "ple", "mtan", "etr_nlp"]


def tasks() -> list[BinaryTask]:
    return [BinaryTask(name) for name in TASKS]


def toy_model(architecture, image: bool = False, seed: int = 0, trunk=None) -> keras.Model:
    """inputs -> architecture.build -> binary heads, as build_model wires them."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(IMAGE if image else TABULAR, name="x")
    spec = {"name": architecture} if isinstance(architecture, str) else architecture
    built = ARCHITECTURES.get(spec, "model.architecture", trunk=trunk or (CONV_TRUNK if image else MLP_TRUNK),
                              tower=TOWER)
    representations = built.build(inputs, tasks())
    return keras.Model(inputs, {task.name: task.head(representations[task.name]) for task in tasks()})


def toy_data(rows: int = 128, image: bool = False, seed: int = 0):
    rng = np.random.default_rng(seed)
    if image:
        x = rng.normal(size=(rows, *IMAGE)).astype("float32")
        x[:, :, :, 0] += rng.choice([-1.0, 1.0], size=(rows, 1, 1)).astype("float32")
        a = x[:, :, :, 0].mean(axis=(1, 2)) > 0
        b = x[:, :4, :, 1].mean(axis=(1, 2)) > x[:, 4:, :, 1].mean(axis=(1, 2))
    else:
        x = rng.normal(size=(rows, *TABULAR)).astype("float32")
        a, b = x[:, 0] + x[:, 1] > 0, x[:, 2] - x[:, 3] > 0
    return x, {"a": a.astype("float32"), "b": b.astype("float32")}


def fit_losses(model: keras.Model, x, y, epochs: int = 12, learning_rate: float = 0.02) -> list[float]:
    """Trains with Keras fit (the model's add_loss penalties included); the loss per epoch."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={task: "binary_crossentropy" for task in TASKS}, jit_compile=False)
    return model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0).history["loss"]


def numpy(outputs) -> dict[str, np.ndarray]:
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
