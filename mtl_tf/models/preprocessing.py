"""Model inputs and the preprocessing layers, built from the dataset.json statistics.

Preprocessing lives inside the model, so a SavedModel serves raw feature values and training
and serving cannot drift apart. Every statistic (mean, variance, vocabulary) is read from
dataset.json, which the Beam pipeline computed on the train split; none is recomputed here.

Per feature kind:
  numeric     -> :class:`Standardize`: [(x - mean) / std, missing]            (2 columns)
  categorical -> ``StringLookup`` (train vocabulary, ``oov_buckets`` OOV indices, "" -> OOV)
                 -> ``Embedding``                                              (dim columns)
  timestamp   -> :class:`CyclicalTime`: hour of day and day of week, missing  (5 columns)
"""

from __future__ import annotations

import keras

from mtl_tf.data.spec import CategoricalStats, DatasetSpec, FeatureSpec, NumericStats
from mtl_tf.models.layers.cyclical_time import CyclicalTime
from mtl_tf.models.layers.standardize import Standardize
from mtl_tf.models.naming import shared_name

MAX_DEFAULT_EMBEDDING_DIM = 16


def build_inputs(spec: DatasetSpec) -> dict[str, keras.KerasTensor]:
    """One scalar ``keras.Input`` per feature of ``spec``, named and keyed by the feature name.

    Args:
        spec: the dataset (only its ``features`` are read).

    Returns:
        Feature name -> ``keras.Input(shape=(), dtype=float32 | string | int64)``.
    """
    return {f.name: keras.Input(shape=(), dtype=f.dtype, name=f.name) for f in spec.features}


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
    encoded = [encode_feature(inputs[f.name], f) for f in spec.features]
    if len(encoded) == 1:
        return encoded[0]
    return keras.layers.Concatenate(axis=-1, name=shared_name("features"))(encoded)


def encode_feature(x: keras.KerasTensor, feature: FeatureSpec) -> keras.KerasTensor:
    """The (batch, k) encoding of one feature; its layers are named ``"shared_<feature>_..."``."""
    encoders = {"numeric": _numeric, "categorical": _categorical, "timestamp": _timestamp}
    return encoders[feature.kind](x, feature)


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


def _timestamp(x: keras.KerasTensor, feature: FeatureSpec) -> keras.KerasTensor:
    return CyclicalTime(name=shared_name(f"{feature.name}_cyclical"))(x)


def _stats(feature: FeatureSpec, kind: type):
    if not isinstance(feature.stats, kind):
        raise ValueError(f"feature '{feature.name}' ({feature.kind}): dataset.json holds "
                         f"{type(feature.stats).__name__} statistics; expected {kind.__name__}")
    return feature.stats
