"""Model inputs and the preprocessing layers, built from the dataset.json statistics.

Preprocessing lives inside the model, so a SavedModel serves raw feature values and training
and serving cannot drift apart. Every statistic (mean, variance, vocabulary) is read from
dataset.json, which the Beam pipeline computed on the train split; none is recomputed here.

Per feature kind:
  numeric     -> :class:`Standardize`: [(x - mean) / std, missing]            (2 columns)
  categorical -> ``StringLookup`` (train vocabulary, ``oov_buckets`` OOV indices, "" -> OOV)
                 -> ``Embedding``                                              (dim columns)
  timestamp   -> :class:`CyclicalTime`: hour of day and day of week, missing  (5 columns)
  sequence    -> :class:`Standardize` element-wise with the statistics of all present
                 elements: per step [(x - mean) / std, missing], padding and missing
                 values as 0 with missing 1; flattened step by step          (2 x length columns)

  image       -> :class:`ImageNormalize` (:func:`normalize_image`): uint8 (H, W, C) ->
                 float (x - mean) / std per channel, the train split's ImageStats; the
                 image goes to the architecture's image path, not into the concatenation

An architecture with a sequence encoder (``eds`` with ``encoder``) takes the sequence
features apart instead, stacked per step by :func:`sequence_steps`.
"""

from __future__ import annotations

from typing import Sequence

import keras

from mtl_tf.data.spec import CategoricalStats, DatasetSpec, FeatureSpec, ImageStats, NumericStats
from mtl_tf.models.layers.cyclical_time import CyclicalTime
from mtl_tf.models.layers.image_normalize import ImageNormalize
from mtl_tf.models.layers.sequence_steps import SequenceSteps
from mtl_tf.models.layers.standardize import Standardize
from mtl_tf.models.naming import shared_name

MAX_DEFAULT_EMBEDDING_DIM = 16


def build_inputs(spec: DatasetSpec) -> dict[str, keras.KerasTensor]:
    """One ``keras.Input`` per feature of ``spec``, named and keyed by the feature name.

    Args:
        spec: the dataset (only its ``features`` are read).

    Returns:
        Feature name -> ``keras.Input(shape=(), dtype=float32 | string | int64)``,
        ``shape=(length,)`` float32 for a sequence feature, or ``shape=(H, W, C)`` uint8 for
        an image feature.
    """
    return {f.name: keras.Input(shape=tuple(f.value_shape), dtype=f.dtype, name=f.name) for f in spec.features}


def preprocess(inputs: dict[str, keras.KerasTensor], spec: DatasetSpec) -> keras.KerasTensor:
    """Encodes every feature and concatenates the encodings, in ``spec.features`` order.

    Args:
        inputs: from :func:`build_inputs`.
        spec: the dataset whose statistics parameterise the layers.

    Returns:
        A (batch, width) float tensor, the input of the architecture.
    """
    missing = [f.name for f in spec.features if f.name not in inputs]
    if missing:
        raise ValueError(f"no input for feature(s) {', '.join(missing)}; inputs: {', '.join(inputs)}")
    images = [f.name for f in spec.features if f.kind == "image"]
    if images:
        raise ValueError(f"image feature(s) {', '.join(images)} are not concatenated with the others; "
                         "normalise them with normalize_image and build them through an architecture's "
                         "image path (the model builder does)")
    encoded = [encode_feature(inputs[f.name], f) for f in spec.features]
    if len(encoded) == 1:
        return encoded[0]
    return keras.layers.Concatenate(axis=-1, name=shared_name("features"))(encoded)


def encode_feature(x: keras.KerasTensor, feature: FeatureSpec) -> keras.KerasTensor:
    """The (batch, k) encoding of one feature; its layers are named ``"shared_<feature>_..."``."""
    encoders = {"numeric": _numeric, "categorical": _categorical, "timestamp": _timestamp,
                "sequence": _flat_sequence}
    return encoders[feature.kind](x, feature)


def normalize_image(x: keras.KerasTensor, feature: FeatureSpec) -> keras.KerasTensor:
    """The image standardised per channel (``shared_<feature>_normalize``), from its ImageStats.

    Args:
        x: the feature's uint8 (batch, H, W, C) input.
        feature: the image feature of dataset.json.

    Returns:
        (batch, H, W, C) floats in the compute dtype: ``(x - mean[c]) / std[c]``.
    """
    if feature.kind != "image":
        raise ValueError(f"feature '{feature.name}' is {feature.kind}; normalize_image takes image features")
    stats = _stats(feature, ImageStats)
    channels = feature.value_shape[-1]
    if len(stats.mean) != channels or len(stats.std) != channels:
        raise ValueError(f"feature '{feature.name}': dataset.json holds {len(stats.mean)} means and "
                         f"{len(stats.std)} stds for an image of {channels} channel(s); expected one each per channel")
    return ImageNormalize(stats.mean, stats.std, name=shared_name(f"{feature.name}_normalize"))(x)


def sequence_steps(inputs: dict[str, keras.KerasTensor],
                   features: Sequence[FeatureSpec]) -> dict[int, tuple[keras.KerasTensor, keras.KerasTensor]]:
    """The sequence features stacked per step, one group per sequence length.

    Each feature is standardised element-wise (``shared_<feature>_standardize``); the
    features of one length ``N`` are concatenated per step (``shared_sequence_<N>_steps``).

    Args:
        inputs: from :func:`build_inputs`.
        features: the sequence features, in recipe order.

    Returns:
        Length -> ``(steps, presence)``: steps (batch, N, 2F) holds ``[value, missing]`` for
        each of the group's F features; presence (batch, N) is 1 where any of them has a value.
    """
    groups: dict[int, list[keras.KerasTensor]] = {}
    for feature in features:
        if feature.kind != "sequence":
            raise ValueError(f"feature '{feature.name}' is {feature.kind}; sequence_steps takes "
                             "sequence features only")
        groups.setdefault(feature.length, []).append(_standardized_sequence(inputs[feature.name], feature))
    return {length: tuple(SequenceSteps(name=shared_name(f"sequence_{length}_steps"))(encoded))
            for length, encoded in groups.items()}


def embedding_dim(feature: FeatureSpec) -> int:
    """``feature.embedding_dim``, else ``min(16, round(1.6 * n ** 0.56))`` for ``n`` indices."""
    if feature.embedding_dim:
        return feature.embedding_dim
    n = lookup_size(feature)
    return max(1, min(MAX_DEFAULT_EMBEDDING_DIM, round(1.6 * n ** 0.56)))


def lookup_size(feature: FeatureSpec) -> int:
    """Number of indices a categorical feature maps to: OOV buckets plus vocabulary."""
    stats = _stats(feature, CategoricalStats)
    return stats.oov_buckets + len(vocabulary(feature))


def vocabulary(feature: FeatureSpec) -> list[str]:
    """The kept vocabulary, without "" (which means missing) and without repeats."""
    return list(dict.fromkeys(v for v in feature.vocabulary if v != ""))


def _numeric(x: keras.KerasTensor, feature: FeatureSpec) -> keras.KerasTensor:
    stats = _stats(feature, NumericStats)
    layer = Standardize(stats.mean, stats.variance, name=shared_name(f"{feature.name}_standardize"))
    return layer(x)


def _categorical(x: keras.KerasTensor, feature: FeatureSpec) -> keras.KerasTensor:
    stats = _stats(feature, CategoricalStats)
    if stats.oov_buckets < 1:
        raise ValueError(f"feature '{feature.name}': oov_buckets must be >= 1 so that missing and "
                         f"unseen values have an index; received {stats.oov_buckets}")
    vocab = vocabulary(feature)
    name = shared_name(feature.name)
    if vocab:
        index = keras.layers.StringLookup(vocabulary=vocab, num_oov_indices=stats.oov_buckets,
                                          mask_token=None, name=f"{name}_lookup")(x)
    else:
        # No value survived in train: every value is out of vocabulary, hashed into the buckets.
        index = keras.layers.Hashing(num_bins=stats.oov_buckets, name=f"{name}_lookup")(x)
    embed = keras.layers.Embedding(lookup_size(feature), embedding_dim(feature), name=f"{name}_embedding")
    return embed(index)


def _standardized_sequence(x: keras.KerasTensor, feature: FeatureSpec) -> keras.KerasTensor:
    stats = _stats(feature, NumericStats)
    return Standardize(stats.mean, stats.variance, name=shared_name(f"{feature.name}_standardize"))(x)


def _flat_sequence(x: keras.KerasTensor, feature: FeatureSpec) -> keras.KerasTensor:
    encoded = _standardized_sequence(x, feature)
    return keras.layers.Reshape((2 * feature.length,), name=shared_name(f"{feature.name}_flatten"))(encoded)


def _timestamp(x: keras.KerasTensor, feature: FeatureSpec) -> keras.KerasTensor:
    return CyclicalTime(name=shared_name(f"{feature.name}_cyclical"))(x)


def _stats(feature: FeatureSpec, kind: type):
    if not isinstance(feature.stats, kind):
        raise ValueError(f"feature '{feature.name}' ({feature.kind}): dataset.json holds "
                         f"{type(feature.stats).__name__} statistics; expected {kind.__name__}")
    return feature.stats
