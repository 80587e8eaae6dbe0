"""A tiny dataset spec, functional model and tf.Examples for the export tests.

Built by hand so these tests depend only on the tasks and the dataset spec.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.data.spec import (CategoricalStats, DatasetSpec, FeatureSpec, NumericStats, SplitSpec,
                              TaskSpec, VocabEntry)
from mtl_tf.tasks import BinaryTask, MulticlassTask

CHANNELS = ["web", "app", "pos"]
SEGMENTS = ["retail", "business", "private"]


@keras.saving.register_keras_serializable(package="mtl_tf_tests")
class FillMissing(keras.layers.Layer):
    """NaN -> 0.0, reshaped to (batch, 1)."""

    def call(self, inputs):
        filled = keras.ops.where(keras.ops.isnan(inputs), keras.ops.zeros_like(inputs), inputs)
        return keras.ops.expand_dims(filled, -1)

    def compute_output_shape(self, input_shape):
        return (*input_shape, 1)


def make_spec() -> DatasetSpec:
    numeric = NumericStats(count=10, mean=0.0, variance=1.0)
    vocabulary = [VocabEntry(value=v, count=3) for v in CHANNELS]
    return DatasetSpec(
        name="tiny", created="2025-01-01T00:00:00Z", rows_in=10,
        features=[
            FeatureSpec(name="amount", kind="numeric", dtype="float32", stats=numeric),
            FeatureSpec(name="balance", kind="numeric", dtype="float32", stats=numeric),
            FeatureSpec(name="channel", kind="categorical", dtype="string",
                        stats=CategoricalStats(count=9, unique=3, vocabulary=vocabulary)),
        ],
        tasks=[
            TaskSpec(name="fraud", type="binary", label_key="is_fraud", dtype="float32"),
            TaskSpec(name="takeover", type="binary", label_key="takeover", dtype="float32"),
            TaskSpec(name="segment", type="multiclass", label_key="segment", dtype="int64",
                     classes=SEGMENTS),
        ],
        splits={"test": SplitSpec(pattern="test-*.tfrecord", num_examples=10, num_shards=1)},
    )


def make_tasks():
    return [BinaryTask("fraud"), BinaryTask("takeover"),
            MulticlassTask("segment", classes=SEGMENTS)]


def make_model(tasks, seed: int = 3) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = {"amount": keras.Input(shape=(), name="amount", dtype="float32"),
              "balance": keras.Input(shape=(), name="balance", dtype="float32"),
              "channel": keras.Input(shape=(), name="channel", dtype="string")}
    ids = keras.layers.StringLookup(vocabulary=CHANNELS, name="channel_lookup")(inputs["channel"])
    embedded = keras.layers.Flatten()(keras.layers.Embedding(len(CHANNELS) + 1, 2)(ids))
    numeric = [FillMissing(name=f"{n}_fill")(inputs[n]) for n in ("amount", "balance")]
    shared = keras.layers.Dense(8, activation="relu", name="trunk")(
        keras.layers.Concatenate()([*numeric, embedded]))
    outputs = {}
    for task in tasks:
        tower = keras.layers.Dense(4, activation="relu", name=f"{task.name}_tower")(shared)
        outputs[task.name] = task.head(tower)
    return keras.Model(inputs, outputs)


def example(amount=None, balance=None, channel=None, is_fraud=None, segment=None) -> bytes:
    """One serialized tf.Example; None leaves the key out, as the Beam pipelines do."""
    feature = {}
    for key, value in (("amount", amount), ("balance", balance), ("is_fraud", is_fraud)):
        if value is not None:
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    if channel is not None:
        feature["channel"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[channel.encode()]))
    if segment is not None:
        feature["segment"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[segment]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def complete_examples(n: int = 6) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [example(amount=float(rng.normal()), balance=float(rng.normal() * 3),
                    channel=CHANNELS[i % 3] if i % 4 else "kiosk",  # one unseen channel
                    is_fraud=float(i % 2), segment=i % 3)
            for i in range(n)]


def features_of(amounts, balances, channels) -> dict[str, tf.Tensor]:
    return {"amount": tf.constant(amounts, tf.float32), "balance": tf.constant(balances, tf.float32),
            "channel": tf.constant(channels, tf.string)}
