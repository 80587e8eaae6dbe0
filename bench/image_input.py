"""Image input: images/s of decode + augment (the training path) vs the trainer's consumption.

A synthetic image dataset (``--rows`` items of 96 x 128 RGB PNG with a segmentation mask, a
depth map, boxes and a scene class, written in the image tf.Example layout; the tiny image
helper of the tests at the driving recipe's size) is read by
``mtl_tf.data.reader.make_dataset`` as the runner reads the training split: shuffled,
decoded per batch, augmented with the driving recipe's options (flip, scale [0.8, 1.25],
brightness, contrast), every label kind decoded. Separately, the mtl_tf Trainer trains a
small image model on the same images cached in memory, already decoded (so input costs it
nothing): a 4-stage conv trunk (filters 16, 32, 64, 128, stride 2 each), an FPN-style
decoder back to full resolution for a per-pixel segmentation head, and the pooled trunk for
the scene head. (The segmentation loss is a per-pixel cross-entropy defined here, standing
in for the segmentation task type.) Target: the reader delivers >= 2x what the trainer
consumes.

Each round is one training epoch followed by one pass of each reader (called from the
Trainer's epoch-end callback, so the two share the machine in turns); figures are medians
over the rounds after the first (tracing).

    python bench/image_input.py [--rows 768] [--rounds 5] [--batch 32]
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

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import write_result  # noqa: E402

HEIGHT, WIDTH = 96, 128
AUGMENT = {"flip_horizontal": True, "scale": [0.8, 1.25], "brightness": 0.2, "contrast": 0.2}
FILTERS = (16, 32, 64, 128)


def pixel_task(name: str, classes: list[str], ignore_index: int):
    """A segmentation task for the Trainer: per-pixel cross-entropy over labelled pixels."""
    from mtl_tf.tasks.base import TaskType

    class PixelCrossEntropy(TaskType):
        registered_type = "segmentation"
        default_metrics = ("loss",)

        def metric_factories(self):
            return {"loss": lambda: keras.metrics.Mean(name="loss")}

        def clean(self, label):  # the reader's segmentation labels are already clean
            return label

        def per_example_loss(self, label, output):
            valid = tf.cast(label != ignore_index, tf.float32)
            safe = tf.where(label == ignore_index, 0, label)
            loss = keras.losses.sparse_categorical_crossentropy(safe, output) * valid
            return tf.reduce_sum(loss, axis=[1, 2]) / tf.maximum(tf.reduce_sum(valid, axis=[1, 2]), 1.0)

    return PixelCrossEntropy(name, classes=classes)


def small_image_model(spec, classes: int, scenes: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    image = keras.Input(shape=(HEIGHT, WIDTH, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="shared_image_normalize")(image)
    pyramid = []
    for i, filters in enumerate(FILTERS):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"shared_down{i}")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"shared_conv{i}")(x)
        pyramid.append(x)
    y = keras.layers.Conv2D(32, 1, name="semantic_lateral3")(pyramid[-1])
    for i in (2, 1, 0):
        y = keras.layers.UpSampling2D(name=f"semantic_up{i}")(y)
        y = keras.layers.Add(name=f"semantic_add{i}")([y, keras.layers.Conv2D(32, 1, name=f"semantic_lateral{i}")(
            pyramid[i])])
        y = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name=f"semantic_smooth{i}")(y)
    y = keras.layers.UpSampling2D(name="semantic_up")(y)
    semantic = keras.layers.Conv2D(classes, 1, activation="softmax", name="semantic")(y)
    pooled = keras.layers.GlobalAveragePooling2D(name="scene_pool")(pyramid[-1])
    tower = keras.layers.Dense(32, activation="relu", name="scene_tower")(pooled)
    scene = keras.layers.Dense(scenes, activation="softmax", name="scene")(tower)
    return keras.Model({"image": image}, {"semantic": semantic, "scene": scene})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=768, help="train items (the test split adds a third)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. how busy the machine was)")
    args = parser.parse_args()

    from tests.helpers.tiny_images import CLASSES, IGNORE, SCENES, make_tiny_images, tiny_image_tasks

    from mtl_tf.data.reader import make_dataset
    from mtl_tf.tasks import MulticlassTask
    from mtl_tf.training import Trainer

    load_before = os.getloadavg()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mtl_bench_images_"))
    start = time.perf_counter()
    spec = make_tiny_images(workdir, rows=args.rows * 4 // 3, height=HEIGHT, width=WIDTH)
    write_s = time.perf_counter() - start
    every_label = tiny_image_tasks()  # names of every label kind: the reader decodes them all
    batch = args.batch

    def reader(in_memory: bool, augment):
        ds = make_dataset(spec, "train", every_label, batch, shuffle=True, in_memory=in_memory, augment=augment)

        def one_pass() -> float:
            begin, count = time.perf_counter(), 0
            for features, _, _ in ds:
                count += int(features["image"].shape[0])
            return count / (time.perf_counter() - begin)
        return one_pass

    readers = {"decode_augment_in_memory": reader(True, AUGMENT), "decode_augment_streamed": reader(False, AUGMENT),
               "decode_only_in_memory": reader(True, None)}
    rates: dict[str, list[float]] = {name: [] for name in readers}

    tasks = [pixel_task("semantic", CLASSES, IGNORE), MulticlassTask("scene", classes=SCENES)]
    cached = make_dataset(spec, "train", tasks, batch).cache()
    for _ in cached:  # decode once, before timing
        pass

    def between_epochs(epoch: int, logs: dict) -> None:
        for name, one_pass in readers.items():
            rates[name].append(one_pass())

    trainer = Trainer(model_fn=lambda: small_image_model(spec, len(CLASSES), len(SCENES)), tasks=tasks,
                      optimizer={"name": "adam", "learning_rate": 1e-3}, epochs=args.rounds, early_stopping=None,
                      checkpoint_dir=None, verbose=0, jit_compile=False)
    history = trainer.fit(cached.prefetch(2), on_epoch_end=between_epochs)
    train = [e["steps_per_s"] * batch for e in history.epochs[1:]]
    measured = {name: values[1:] for name, values in rates.items()}
    train_rate = statistics.median(train)
    result = {
        "workload": {"train_images": spec.splits["train"].num_examples, "size": [HEIGHT, WIDTH, 3], "batch": batch,
                     "labels_decoded": [t.name for t in every_label], "augment": AUGMENT,
                     "model": f"conv trunk {list(FILTERS)} + FPN decoder (32) to full resolution, "
                              f"{trainer.model.count_params()} parameters", "write_s": write_s},
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
