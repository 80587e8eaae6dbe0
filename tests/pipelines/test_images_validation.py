"""Decoding and checking one image, mask, depth map or box list: every reject reason, and what is accepted."""

import json

import numpy as np
import pytest
from PIL import Image

from pipelines.images.items import ItemRejected
from pipelines.images.validation import (BoxReading, check_mask_values, check_size, decode_depth, decode_image,
                                         decode_mask, parse_boxes)
from tests.pipelines.images_tiny import save_png, save_png_header_only


def _reject(kind, call, *args, **kwargs):
    with pytest.raises(ItemRejected) as err:
        call(*args, **kwargs)
    assert err.value.kind == kind, err.value.message
    assert "\n" not in err.value.message
    return err.value.message


def test_an_rgb_png_decodes_to_its_pixels(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = save_png(tmp_path / "a.png", image)
    np.testing.assert_array_equal(decode_image(path, 3), image)
    # relative paths are read from the base folder
    np.testing.assert_array_equal(decode_image("a.png", 3, base=str(tmp_path)), image)


def test_files_that_are_missing_empty_corrupt_or_truncated_are_rejected(tmp_path):
    assert "not found" in _reject("file_not_found", decode_image, str(tmp_path / "none.png"), 3)
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty" in _reject("unreadable_image", decode_image, str(tmp_path / "empty.png"), 3)
    (tmp_path / "junk.png").write_bytes(bytes(range(256)))
    _reject("unreadable_image", decode_image, str(tmp_path / "junk.png"), 3)
    whole = (tmp_path / "whole.png")
    save_png(whole, np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    (tmp_path / "cut.png").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "truncated" in _reject("unreadable_image", decode_image, str(tmp_path / "cut.png"), 3)


def test_a_decompression_bomb_is_rejected_from_its_header(tmp_path):
    # 30000 x 30000 claimed, no pixel data: PIL's own guard and ours both refuse it unread.
    assert "pixels" in _reject("image_too_large", decode_image, save_png_header_only(tmp_path / "bomb.png", 30000, 30000),
                               3)
    # our limit is lower than PIL's: 9000 x 9000 is refused too
    assert "at most" in _reject("image_too_large", decode_image, save_png_header_only(tmp_path / "big.png", 9000, 9000), 3)
    small = save_png(tmp_path / "small.png", np.zeros((10, 10, 3), np.uint8))
    _reject("image_too_large", decode_image, small, 3, max_pixels=99)


def test_sixteen_bit_and_float_images_are_rejected_for_now(tmp_path):
    path = save_png(tmp_path / "deep.png", np.full((4, 4), 1000, np.uint16))
    assert "16-bit" in _reject("not_8_bit", decode_image, path, 1)
    _reject("not_8_bit", decode_image, np.zeros((4, 4, 3), np.float32), 3)
    _reject("not_8_bit", decode_image, np.full((4, 4), 300, np.int32), 1)
    np.testing.assert_array_equal(decode_image(np.full((4, 4), 200, np.int32), 1), np.full((4, 4, 1), 200))


def test_channel_conversions_that_keep_the_meaning_are_made(tmp_path):
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(save_png(tmp_path / "rgba.png", rgba), 3), rgba[:, :, :3])
    gray = rng.integers(0, 256, (4, 5), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(save_png(tmp_path / "g.png", gray), 3), np.repeat(gray[:, :, None], 3, 2))
    np.testing.assert_array_equal(decode_image(save_png(tmp_path / "g1.png", gray), 1), gray[:, :, None])
    equal = np.repeat(gray[:, :, None], 3, 2)
    np.testing.assert_array_equal(decode_image(save_png(tmp_path / "eq.png", equal), 1), gray[:, :, None])
    palette = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)).convert("P")
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(decode_image(str(tmp_path / "p.png"), 3), np.asarray(palette.convert("RGB")))


def test_a_colour_image_for_a_one_channel_feature_and_odd_shapes_are_rejected(tmp_path):
    colour = np.random.default_rng(3).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    assert "colour" in _reject("wrong_channels", decode_image, save_png(tmp_path / "c.png", colour), 1)
    _reject("wrong_channels", decode_image, np.zeros((4, 5, 6), np.uint8), 3)
    _reject("wrong_channels", decode_image, np.zeros((4, 5, 3, 2), np.uint8), 3)


def test_masks_from_indexed_grayscale_and_npy_files(tmp_path):
    mask = np.random.default_rng(4).integers(0, 3, (6, 8)).astype(np.uint8)
    indexed = Image.fromarray(mask, "P")
    indexed.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    indexed.save(tmp_path / "p.png")
    np.testing.assert_array_equal(decode_mask(str(tmp_path / "p.png")), mask)
    np.testing.assert_array_equal(decode_mask(save_png(tmp_path / "l.png", mask, "L")), mask)
    np.save(tmp_path / "m.npy", mask.astype(np.int32))
    np.testing.assert_array_equal(decode_mask(str(tmp_path / "m.npy")), mask)
    colours = np.random.default_rng(5).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    _reject("mask_not_class_indices", decode_mask, save_png(tmp_path / "rgb.png", colours))
    _reject("mask_not_class_indices", decode_mask, np.full((6, 8), 1.5))
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    _reject("unreadable_label", decode_mask, str(tmp_path / "bad.npy"))


def test_mask_values_must_be_classes_or_the_ignore_value():
    check_mask_values(np.array([[0, 2], [255, 1]]), 3, 255, "mask")
    message = _reject("mask_class_out_of_range", check_mask_values, np.array([[0, 3], [7, 255]]), 3, 255, "mask")
    assert "3, 7" in message and "0..2" in message
    _reject("mask_class_out_of_range", check_mask_values, np.array([[0, 255]]), 3, 11, "mask")


def test_a_mask_or_depth_map_of_another_size_than_the_image_is_rejected():
    check_size(np.zeros((4, 5)), 5, 4, "mask", "mask")
    assert "5 x 3" in _reject("mask_size_mismatch", check_size, np.zeros((3, 5)), 5, 4, "mask", "mask")
    _reject("depth_size_mismatch", check_size, np.zeros((4, 6)), 5, 4, "depth", "depth")


def test_depth_from_16_bit_png_is_divided_by_the_scale_and_arrays_are_depths(tmp_path):
    raw = np.array([[0, 256, 512], [1000, 65535, 3]], np.uint16)
    np.testing.assert_allclose(decode_depth(save_png(tmp_path / "d.png", raw), 256.0), raw / 256.0)
    np.save(tmp_path / "d.npy", np.array([[1.5, 0.0]], np.float32))
    np.testing.assert_array_equal(decode_depth(str(tmp_path / "d.npy"), 256.0), [[1.5, 0.0]])


def test_depth_must_be_finite_non_negative_and_fit_float16():
    _reject("depth_not_finite", decode_depth, np.array([[1.0, np.nan]]), 1.0)
    _reject("depth_not_finite", decode_depth, np.array([[np.inf, 1.0]]), 1.0)
    _reject("depth_negative", decode_depth, np.array([[1.0, -0.5]]), 1.0)
    _reject("depth_out_of_range", decode_depth, np.array([[70000.0]]), 1.0)


PIXELS = BoxReading(("car", "person"), "pixels", 3)


def test_boxes_are_read_from_json_text_lists_and_padded_arrays():
    boxes, classes = parse_boxes('[[1, 2, 10, 12, "person"], [0, 0, 5, 5, 0]]', PIXELS, 32, 24, "boxes")
    np.testing.assert_array_equal(boxes, [[1, 2, 10, 12], [0, 0, 5, 5]])
    assert classes.tolist() == [1, 0]
    padded = np.array([[1, 2, 3, 4], [-1, -1, -1, -1], [-1, -1, -1, -1]], np.float32)
    boxes, classes = parse_boxes(padded, PIXELS, 32, 24, "boxes")
    assert boxes.tolist() == [[1, 2, 3, 4]] and classes.tolist() == [0]  # 4 columns: class 0
    relative = BoxReading(("car",), "relative", None)
    boxes, _ = parse_boxes([[0.25, 0.5, 0.75, 1.0, "car"]], relative, 32, 24, "boxes")
    np.testing.assert_allclose(boxes, [[8, 12, 24, 24]])
    assert parse_boxes([], PIXELS, 32, 24, "boxes")[0].shape == (0, 4)


def test_sub_pixel_overshoot_is_clipped_and_more_is_outside():
    boxes, _ = parse_boxes([[-0.6, 0, 32.8, 24.4, "car"]], PIXELS, 32, 24, "boxes")
    np.testing.assert_allclose(boxes, [[0, 0, 32, 24]])
    assert "outside" in _reject("box_outside_image", parse_boxes, [[0, 0, 35, 10, "car"]], PIXELS, 32, 24, "boxes")
    _reject("box_outside_image", parse_boxes, [[-3, 0, 5, 10, "car"]], PIXELS, 32, 24, "boxes")


def test_zero_size_unknown_class_too_many_and_unparsable_boxes_are_rejected():
    _reject("box_empty", parse_boxes, [[5, 5, 5, 9, "car"]], PIXELS, 32, 24, "boxes")
    _reject("box_empty", parse_boxes, [[6, 5, 2, 9, "car"]], PIXELS, 32, 24, "boxes")
    assert "'truck'" in _reject("box_unknown_class", parse_boxes, [[1, 1, 5, 5, "truck"]], PIXELS, 32, 24, "boxes")
    _reject("box_unknown_class", parse_boxes, [[1, 1, 5, 5, 2]], PIXELS, 32, 24, "boxes")
    _reject("box_unknown_class", parse_boxes, [[1, 1, 5, 5, 0.5]], PIXELS, 32, 24, "boxes")
    assert "max_boxes is 3" in _reject("too_many_boxes", parse_boxes, [[1, 1, 5, 5, 0]] * 4, PIXELS, 32, 24, "boxes")
    _reject("unparsable_boxes", parse_boxes, "[[1, 2, 3", PIXELS, 32, 24, "boxes")
    _reject("unparsable_boxes", parse_boxes, [[1, 2, 3]], PIXELS, 32, 24, "boxes")
    _reject("unparsable_boxes", parse_boxes, json.dumps([[1, "a", 3, 4, 0]]), PIXELS, 32, 24, "boxes")
    _reject("unparsable_boxes", parse_boxes, {"x": 1}, PIXELS, 32, 24, "boxes")
