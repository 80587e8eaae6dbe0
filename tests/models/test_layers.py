"""Custom layers: encodings and get_config / keras.saving round-trips."""

import math

import keras
import numpy as np
import pytest

from mtl_tf.models.layers import CyclicalTime, Standardize
from mtl_tf.models.towers import TOWERS, MLPTower
from mtl_tf.models.trunks import TRUNKS, MLPTrunk

DAY = 86_400
MONDAY_1970_01_05 = 4 * DAY


def assert_round_trip(layer, inputs):
    """The layer survives get_config/from_config and keras.saving serialisation unchanged."""
    expected = keras.ops.convert_to_numpy(layer(inputs))
    config = layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config
    restored(inputs)
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(inputs)), expected, rtol=1e-6)


def test_standardize_values_missing_and_round_trip():
    layer = Standardize(mean=10.0, variance=4.0)
    out = keras.ops.convert_to_numpy(layer(np.array([10.0, 14.0, np.nan, 6.0], np.float32)))
    np.testing.assert_allclose(out, [[0, 0], [2, 0], [0, 1], [-2, 0]])
    assert_round_trip(layer, np.array([1.0, np.nan], np.float32))


def test_standardize_constant_feature_does_not_divide_by_zero():
    out = keras.ops.convert_to_numpy(Standardize(mean=3.0, variance=0.0)(np.array([3.0, 5.0], np.float32)))
    np.testing.assert_allclose(out, [[0, 0], [2, 0]])


def test_standardize_refuses_bad_statistics():
    with pytest.raises(ValueError, match=r"variance must be a finite number >= 0; received -1"):
        Standardize(mean=0.0, variance=-1.0)


def test_cyclical_time_is_periodic_by_day_and_week():
    t = MONDAY_1970_01_05 + 6 * 3600  # Monday 06:00 UTC
    stamps = np.array([t, t + DAY, t + 7 * DAY, MONDAY_1970_01_05 + DAY - 1, -1], np.int64)
    out = keras.ops.convert_to_numpy(CyclicalTime()(stamps))
    assert out.shape == (5, 5)
    np.testing.assert_allclose(out[0], [1, 0, 0, 1, 0], atol=1e-6)  # 06:00 is a quarter day
    np.testing.assert_allclose(out[1, :2], out[0, :2], atol=1e-6)  # same hour next day
    assert not np.allclose(out[1, 2:4], out[0, 2:4])  # ...but another weekday
    np.testing.assert_allclose(out[2], out[0], atol=1e-6)  # a week later: identical
    # 23:59:59 sits next to midnight on the circle.
    np.testing.assert_allclose(out[3, :2], [math.sin(-2 * math.pi / DAY), 1.0], atol=1e-4)
    np.testing.assert_allclose(out[4], [0, 0, 0, 0, 1])  # missing timestamp
    assert_round_trip(CyclicalTime(), stamps)


@pytest.mark.parametrize("cls", [MLPTrunk, MLPTower])
def test_mlp_shapes_and_round_trip(cls):
    layer = cls(units=[6, 3], activation="gelu", dropout=0.25, batch_norm=True)
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    assert layer(x).shape == (4, 3)
    assert layer.get_config()["units"] == [6, 3]
    assert_round_trip(layer, x)


def test_mlp_dropout_acts_only_in_training():
    layer = MLPTrunk(units=[64], dropout=0.5)
    x = np.ones((8, 4), "float32")
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_array_equal(inference, keras.ops.convert_to_numpy(layer(x)))
    assert not np.allclose(keras.ops.convert_to_numpy(layer(x, training=True)), inference)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layer(inputs))
    assert not np.allclose(keras.ops.convert_to_numpy(model(x, training=True)), inference)


def test_mlp_tower_without_units_is_identity():
    x = np.arange(6, dtype="float32").reshape(2, 3)
    tower = MLPTower(units=[])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(tower(x)), x)
    assert tower.count_params() == 0


def test_registries_build_mlps_with_defaults():
    assert TRUNKS.get("mlp").units == [128, 64]
    assert TOWERS.get({"name": "mlp", "units": [7]}, name="fraud_tower").name == "fraud_tower"


def test_mlp_options_are_checked():
    with pytest.raises(ValueError, match=r"unknown option 'unitz' \(did you mean 'units'\?\)"):
        TRUNKS.get({"name": "mlp", "unitz": [8]}, "model.trunk")
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'"):
        MLPTrunk(units=[4], activation="rleu")
    with pytest.raises(ValueError, match=r"dropout must be a rate in \[0, 1\); received 1.5"):
        MLPTower(units=[4], dropout=1.5)
    with pytest.raises(ValueError, match=r"units must be positive integers; received \[8, 0\]"):
        MLPTrunk(units=[8, 0])
