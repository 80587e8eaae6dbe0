"""tf.Example parsing specs, shared by the training reader and the serving signature.

Both read the same spec from dataset.json, so training and serving parse identically.
Image features parse as their encoded bytes and are decoded per batch afterwards
(:func:`decode_features`); dense labels are read by :mod:`mtl_tf.data.images`.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from mtl_tf.data.images import DENSE_TYPES, DenseLabel, decode_any_images, decode_images, dense_label, image_rule
from mtl_tf.data.spec import DatasetSpec, FeatureSpec

_DEFAULTS = {"float32": float("nan"), "int64": -1, "string": ""}
_DTYPES = {"float32": tf.float32, "int64": tf.int64, "string": tf.string, "uint8": tf.uint8}


def feature_dtype(feature: FeatureSpec) -> tf.DType:
    return _DTYPES[feature.dtype]


def feature_parse_spec(spec: DatasetSpec) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec of the model inputs: a missing value parses as NaN, -1 or ''.

    A sequence feature parses as ``[length]`` floats; an absent one as ``length`` NaNs. An
    image feature parses as its encoded bytes (``''`` when absent); see :func:`decode_features`.
    """
    return {f.name: _parse_rule(f) for f in spec.features}


def _parse_rule(feature: FeatureSpec) -> tf.io.FixedLenFeature:
    if feature.kind == "image":
        return image_rule()
    default = _DEFAULTS[feature.dtype]
    shape = feature.value_shape
    if shape:
        return tf.io.FixedLenFeature(shape, _DTYPES[feature.dtype], default_value=[default] * shape[0])
    return tf.io.FixedLenFeature([], _DTYPES[feature.dtype], default_value=default)


def image_features(spec: DatasetSpec) -> list[FeatureSpec]:
    """The dataset's image features, in dataset.json order."""
    return [f for f in spec.features if f.kind == "image"]


def decode_features(features: dict[str, tf.Tensor], spec: DatasetSpec,
                    any_size: bool = False) -> dict[str, tf.Tensor]:
    """A parsed batch of features with each image feature decoded to uint8 (batch, H, W, C).

    Args:
        features: parsed features keyed by name (image features as encoded bytes).
        spec: the dataset spec.
        any_size: images may have any size and channels and are resized as the feature's
            ``resize`` says (serving); otherwise they are the stored ones (training).
    """
    decode = decode_any_images if any_size else decode_images
    decoded = dict(features)
    for feature in image_features(spec):
        if feature.name in decoded:
            decoded[feature.name] = decode(decoded[feature.name], feature)
    return decoded


def label_parse_spec(tasks: Sequence) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec of the labels, keyed by task name (``tasks``: TaskType objects).

    Label keys in the tf.Example are the tasks' label columns; see :func:`label_keys`.
    """
    return {task.name: task.parse_feature() for task in tasks}


def label_keys(spec: DatasetSpec) -> dict[str, str]:
    """Task name -> tf.Example key of its label."""
    return {t.name: t.label_key for t in spec.tasks}


def dense_labels(spec: DatasetSpec, names: Sequence[str]) -> dict[str, DenseLabel]:
    """Task name -> the reading of its dense label, for the named tasks dataset.json marks dense."""
    return {t.name: dense_label(t) for t in spec.tasks if t.name in names and t.type in DENSE_TYPES}


def input_signature(spec: DatasetSpec) -> dict[str, tf.TensorSpec]:
    """Named-tensor signature of the model inputs: (batch,) per scalar, (batch, length) per
    sequence, uint8 (batch, height, width, channels) per image."""
    return {f.name: tf.TensorSpec([None, *f.value_shape], _DTYPES[f.dtype], name=f.name)
            for f in spec.features}
