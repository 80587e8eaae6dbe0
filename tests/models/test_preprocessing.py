"""Inputs and preprocessing built from the dataset.json statistics."""

import keras
import numpy as np
import pytest

from mtl_tf.data.spec import DatasetSpec, VocabEntry
from mtl_tf.models.preprocessing import build_inputs, embedding_dim, preprocess
from tests.helpers.tiny_dataset import make_tiny_dataset


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("prep"), rows=32)


@pytest.fixture(scope="module")
def encoder(spec):
    inputs = build_inputs(spec)
    return keras.Model(inputs, preprocess(inputs, spec))


def _batch(amount, channel, stamp=-1, balance=0.5):
    n = len(amount)
    return {"amount": np.array(amount, np.float32), "balance": np.full(n, balance, np.float32),
            "channel": np.array(channel), "timestamp": np.full(n, stamp, np.int64)}


def test_inputs_are_named_scalars_of_the_feature_dtype(spec):
    inputs = build_inputs(spec)
    assert {k: (v.shape, v.dtype) for k, v in inputs.items()} == {
        "amount": ((None,), "float32"), "balance": ((None,), "float32"),
        "channel": ((None,), "string"), "timestamp": ((None,), "int64")}


def test_width_and_statistics_come_from_dataset_json(spec, encoder):
    # amount 2 + balance 2 + channel embedding + timestamp 5
    assert encoder.output.shape == (None, 2 + 2 + embedding_dim(spec.feature("channel")) + 5)
    stats = spec.feature("amount").stats
    out = keras.ops.convert_to_numpy(encoder(_batch([stats.mean + 2 * stats.variance ** 0.5, np.nan],
                                                    ["web", "web"])))
    np.testing.assert_allclose(out[:, :2], [[2, 0], [0, 1]], atol=1e-5)


def test_unknown_and_missing_categories_map_to_oov(encoder):
    lookup = encoder.get_layer("shared_channel_lookup")
    index = keras.ops.convert_to_numpy(lookup(np.array(["web", "app", "pos", "atm", "", "zzz"])))
    oov_buckets = 2
    np.testing.assert_array_equal(index[:3], [oov_buckets, oov_buckets + 1, oov_buckets + 2])
    assert all(i < oov_buckets for i in index[3:])


def test_embedding_dim_rule_and_override(spec):
    channel = spec.feature("channel")
    assert embedding_dim(channel) == round(1.6 * 5 ** 0.56)  # 3 words + 2 OOV buckets
    assert embedding_dim(channel.model_copy(update={"embedding_dim": 9})) == 9
    big = channel.model_copy(update={"stats": channel.stats.model_copy(
        update={"vocabulary": [VocabEntry(value=str(i), count=1) for i in range(5000)]})})
    assert embedding_dim(big) == 16


def test_wrong_statistics_kind_is_named(spec):
    broken = spec.model_copy(update={"features": [
        spec.feature("amount").model_copy(update={"stats": spec.feature("channel").stats})]})
    expected = r"feature 'amount' \(numeric\).*CategoricalStats.*expected NumericStats"
    with pytest.raises(ValueError, match=expected):
        preprocess(build_inputs(broken), broken)


def test_empty_vocabulary_hashes_everything_into_oov(spec):
    channel = spec.feature("channel")
    empty = channel.model_copy(update={"stats": channel.stats.model_copy(update={"vocabulary": []})})
    only = DatasetSpec.model_validate({**spec.model_dump(), "features": [empty.model_dump()]})
    inputs = build_inputs(only)
    out = keras.Model(inputs, preprocess(inputs, only))({"channel": np.array(["web", ""])})
    assert out.shape == (2, embedding_dim(empty))
