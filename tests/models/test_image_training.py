"""hps + fpn learns a tiny segmentation problem through the Trainer."""

import numpy as np
import tensorflow as tf

from mtl_tf.training import Trainer
from tests.models.image_toy import PixelClasses, image_model

SHAPE = (32, 32, 1)


def bright_squares(rows: int, seed: int):
    """Dark noisy images, each with one bright square of side 8 to 14; the mask marks it."""
    rng = np.random.default_rng(seed)
    images = rng.normal(40, 15, size=(rows, *SHAPE)).clip(0, 255)
    masks = np.zeros((rows, *SHAPE[:2]), np.int32)
    for i in range(rows):
        side = rng.integers(8, 15)
        top, left = rng.integers(0, SHAPE[0] - side, size=2)
        images[i, top:top + side, left:left + side] = rng.normal(200, 15, size=(side, side, 1))
        masks[i, top:top + side, left:left + side] = 1
    return images.clip(0, 255).astype(np.uint8), masks


def dataset(images, masks, batch: int, repeat: bool = False):
    ds = tf.data.Dataset.from_tensor_slices(({"image": images}, {"mask": masks},
                                             {"mask": np.ones(len(images), np.float32)}))
    return (ds.repeat() if repeat else ds).batch(batch)


def test_hps_fpn_segments_bright_squares():
    task = PixelClasses("mask")
    train, test = bright_squares(64, seed=0), bright_squares(32, seed=1)
    background = 1.0 - test[1].mean()  # accuracy of answering "background" everywhere

    def model():
        return image_model("hps", trunk={"name": "resnet", "filters": [8, 16], "depth": 1},
                           decoder={"name": "fpn", "filters": 8}, shape=SHAPE, tasks=[task])

    trainer = Trainer(model, [task], {"name": "adam", "learning_rate": 0.01}, epochs=1, steps_per_epoch=100,
                      verbose=0, jit_compile=False)
    trainer.fit(dataset(*train, batch=16, repeat=True))
    accuracy = trainer.evaluate(dataset(*test, batch=16))["mask"]["pixel_accuracy"]
    assert background < 0.9
    assert accuracy > 0.97, (accuracy, background)
