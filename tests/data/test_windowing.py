"""16-bit images reach the served model through the same intensity window the image pipeline
used, to the level: fixed windows, per-image min..max and the plain 16-to-8-bit scale."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mtl_tf.data.images import decode_any_images, window_to_8_bit
from mtl_tf.data.spec import FeatureSpec
from pipelines.images.validation import decode_image
from pipelines.images.validation import window_to_8_bit as beam_window

WINDOWS = [{"center": 1000.0, "width": 1500.0}, {"center": -600.0, "width": 1500.0}, "per_image", "none"]


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _feature(window, height=10, width=14, channels=1):
    return FeatureSpec.model_validate({"name": "scan", "kind": "image", "dtype": "uint8",
                                       "image": {"height": height, "width": width, "channels": channels,
                                                 "encoding": "png", "bit_depth": 16, "window": window},
                                       "stats": {"count": 1, "mean": [0.0] * channels, "std": [1.0] * channels}})


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_the_graph_windows_to_the_level_the_pipeline_does(window):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 65536, (40, 50)).astype(np.uint16)
    values[0, :6] = [0, 1, 65535, 250, 1750, 257 * 128 + 128]  # window edges and a half-way level
    expected = beam_window(values, window)
    assert (window_to_8_bit(tf.constant(values), window).numpy() == expected).all()


def test_the_window_maps_its_range_onto_0_to_255_and_clips_outside():
    values = np.array([[250, 500, 1000, 1500, 1750, 3000]], np.uint16)
    levels = beam_window(values, {"center": 1000, "width": 1000})
    assert levels.tolist() == [[0, 0, 128, 255, 255, 255]]  # 500..1500; 1000 is 127.5, rounded up
    assert beam_window(values, "per_image").tolist() == [[0, 23, 70, 116, 139, 255]]  # 250..3000
    assert beam_window(np.full((2, 2), 700, np.uint16), "per_image").tolist() == [[0, 0], [0, 0]]
    assert beam_window(np.array([[0, 257, 65535]], np.uint16), "none").tolist() == [[0, 1, 255]]


@pytest.mark.parametrize("window", WINDOWS[::2], ids=str)
def test_serving_decodes_a_16_bit_png_as_the_pipeline_stored_it(window, tmp_path):
    rng = np.random.default_rng(1)
    scan = rng.integers(0, 4096, (10, 14)).astype(np.uint16)
    path = tmp_path / "scan.png"
    path.write_bytes(_png(scan))
    stored = decode_image(str(path), 1, bit_depth=16, window=window)  # what Beam writes (10 x 14 x 1)
    eight = rng.integers(0, 256, (10, 14)).astype(np.uint8)
    served = decode_any_images(tf.constant([_png(scan), _png(eight)]), _feature(window)).numpy()
    assert (served[0] == stored).all()
    assert (served[1][..., 0] == eight).all()  # an 8-bit image is taken as already windowed


def test_a_16_bit_request_of_another_size_is_windowed_then_resized():
    rng = np.random.default_rng(2)
    scan = rng.integers(0, 4096, (20, 28)).astype(np.uint16)
    served = decode_any_images(tf.constant([_png(scan)]), _feature("per_image")).numpy()[0]
    windowed = beam_window(scan, "per_image")
    resized = np.asarray(Image.fromarray(windowed).resize((14, 10), Image.BILINEAR))
    assert served.shape == (10, 14, 1)
    assert np.abs(served[..., 0].astype(int) - resized.astype(int)).max() <= 1
