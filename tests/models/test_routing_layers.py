"""Conv trunk and the routing layers: behaviour and get_config / keras.saving round-trips."""

import keras
import numpy as np
import pytest

from mtl_tf.models.layers import CrossStitch, CrossTaskAttention, ResidualBlock, TaskAttention
from mtl_tf.models.trunks import TRUNKS, ConvTrunk
from tests.models.test_layers import assert_round_trip

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(2, 8, 8, 3)).astype("float32")


def test_conv_trunk_downsamples_by_its_strides_and_pools():
    trunk = TRUNKS.get({"name": "conv", "filters": [4, 6, 8]})
    assert trunk.strides == [1, 2, 2]
    assert trunk(IMAGES).shape == (2, 8)
    maps = ConvTrunk(filters=[4, 6], strides=2, global_pool=False)
    assert maps(IMAGES).shape == (2, 2, 2, 6)
    assert [b.name for b in maps.split("fraud_block")] == ["fraud_block_0", "fraud_block_1"]
    assert maps.split("x")[1](np.zeros((1, 4, 4, 4), "float32")).shape == (1, 2, 2, 6)
    assert_round_trip(ConvTrunk(filters=[4], batch_norm=True), IMAGES)


def test_conv_trunk_refuses_tabular_inputs_and_bad_strides():
    with pytest.raises(ValueError, match=r"expects images .* received shape \(2, 5\). Use the mlp trunk"):
        ConvTrunk()(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"strides needs one entry per block \(2\); received \[1\]"):
        ConvTrunk(filters=[4, 8], strides=[1])


def test_residual_block_round_trip_and_shortcut():
    block = ResidualBlock(3, stride=1, batch_norm=False)
    assert block(IMAGES).shape == (2, 8, 8, 3) and block.shortcut is None  # identity shortcut
    assert_round_trip(ResidualBlock(5, stride=2), IMAGES)


def test_cross_stitch_starts_near_separate_columns():
    a, b = np.ones((2, 3), "float32"), np.zeros((2, 3), "float32")
    unit = CrossStitch(0, self_weight=0.9)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(unit([a, b])), 0.9 * a)
    channel = CrossStitch(1, self_weight=0.6, per_channel=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(channel([a, b])), 0.4 * a)
    assert channel.alpha.shape == (2, 3)
    assert_round_trip(channel, [a, b])
    assert_round_trip(CrossStitch(0), [IMAGES, IMAGES * 2])


def test_task_attention_masks_the_shared_features():
    shared, previous = np.abs(IMAGES[:, ::2, ::2]), IMAGES
    layer = TaskAttention(stride=2)
    out = keras.ops.convert_to_numpy(layer([shared, previous]))
    assert out.shape == shared.shape
    assert (out >= 0).all() and (out <= shared + 1e-6).all()  # a sigmoid mask in [0, 1]
    assert_round_trip(layer, [shared, previous])


def test_cross_task_attention_starts_as_identity_and_mixes_other_tasks():
    own, other, third = (RNG.normal(size=(2, 4)).astype("float32") for _ in range(3))
    layer = CrossTaskAttention(key_dim=3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([own, other, third])), own)
    layer.scale.assign(1.0)
    assert not np.allclose(keras.ops.convert_to_numpy(layer([own, other, third])), own)
    assert_round_trip(layer, [own, other, third])
    with pytest.raises(ValueError, match=r"at least one other task's; received 1 input"):
        CrossTaskAttention()([own])
