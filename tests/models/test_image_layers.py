"""The image normalisation layer and the conv block."""

import keras
import numpy as np
import pytest

from mtl_tf.models.layers import ConvBlock, ImageNormalize

PIXELS = np.array([[[[0, 128, 255], [10, 20, 30]]]], dtype=np.uint8)  # (1, 1, 2, 3)


def test_image_normalize_standardises_each_channel_in_float32():
    layer = ImageNormalize([10.0, 100.0, 200.0], [2.0, 50.0, 0.0])
    out = keras.ops.convert_to_numpy(layer(PIXELS))
    expected = np.array([[[[-5.0, 0.56, 55.0], [0.0, -1.6, -170.0]]]], "float32")  # std 0 divides by 1
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32


def test_image_normalize_takes_uint8_inputs_in_a_model_and_round_trips(tmp_path):
    x = keras.Input((1, 2, 3), dtype="uint8", name="image")
    model = keras.Model(x, ImageNormalize([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], name="shared_image_normalize")(x))
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(PIXELS)),
                               (PIXELS.astype("float32") - [1, 2, 3]) / [4, 5, 6], rtol=1e-6)


def test_image_normalize_outputs_the_compute_dtype_under_mixed_precision():
    layer = ImageNormalize([0.0], [1.0], dtype="mixed_bfloat16")
    out = layer(np.full((1, 2, 2, 1), 200, np.uint8))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert float(keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")).max()) == 200.0


@pytest.mark.parametrize("args, message", [
    (([1.0, 2.0], [1.0]), r"one value per channel each; received 2 means and 1 stds"),
    (([1.0], [-1.0]), r"std must be >= 0; received \[-1.0\]"),
    (([], []), r"mean must be a non-empty list of finite numbers"),
])
def test_image_normalize_refuses_bad_statistics(args, message):
    with pytest.raises(ValueError, match=message):
        ImageNormalize(*args)


def test_image_normalize_refuses_a_channel_count_its_statistics_do_not_have():
    with pytest.raises(ValueError, match=r"expects \(batch, height, width, 2\) images .* received shape"):
        ImageNormalize([1.0, 2.0], [1.0, 1.0])(PIXELS)


def test_conv_block_shapes_and_config():
    block = ConvBlock(5, 3, dilation=2, batch_norm=False, name="b")
    out = block(np.ones((1, 8, 8, 2), "float32"))
    assert out.shape == (1, 8, 8, 5) and float(keras.ops.min(out)) >= 0.0  # relu
    again = ConvBlock.from_config(block.get_config())
    assert (again.filters, again.dilation, again.batch_norm) == (5, 2, False)
    assert ConvBlock(4, 3, stride=2)(np.ones((1, 8, 8, 2), "float32")).shape == (1, 4, 4, 4)
    with pytest.raises(ValueError, match=r"a dilated convolution has stride 1; received stride 2 with dilation 2"):
        ConvBlock(4, 3, stride=2, dilation=2)
