"""Resize modes: where the source goes, and that masks, depth and boxes follow the image."""

import numpy as np
import pytest

from pipelines.images.geometry import (placement, resize_depth, resize_image, resize_mask, source_boxes,
                                      transform_boxes)


def test_stretch_maps_the_whole_source_to_the_whole_image():
    where = placement(32, 24, 16, 16, "stretch")
    x, y = where.map_points(np.array([0.0, 32.0, 8.0]), np.array([0.0, 24.0, 6.0]))
    np.testing.assert_allclose(x, [0, 16, 4])
    np.testing.assert_allclose(y, [0, 16, 4])


def test_pad_keeps_the_aspect_ratio_and_centres_the_source():
    # 32 x 24 into 16 x 16: scale 0.5 -> 16 x 12, 2 rows of padding above and below
    where = placement(32, 24, 16, 16, "pad")
    assert where.size == (16, 12) and where.offset == (0, 2)
    x, y = where.map_points(np.array([0.0, 32.0]), np.array([0.0, 24.0]))
    np.testing.assert_allclose(x, [0, 16])
    np.testing.assert_allclose(y, [2, 14])


def test_crop_keeps_the_aspect_ratio_and_keeps_the_centre():
    # 32 x 24 into 16 x 16: scale 16/24 covers the height, the middle 24 source columns stay
    where = placement(32, 24, 16, 16, "crop")
    np.testing.assert_allclose(where.box, (4, 0, 28, 24))
    x, y = where.map_points(np.array([4.0, 28.0, 16.0]), np.array([0.0, 24.0, 12.0]))
    np.testing.assert_allclose(x, [0, 16, 8])
    np.testing.assert_allclose(y, [0, 16, 8])


def test_an_unknown_mode_is_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: stretch, pad, crop"):
        placement(4, 4, 2, 2, "zoom")


def test_the_same_size_is_left_as_it_is():
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    for mode in ("stretch", "pad", "crop"):
        where = placement(32, 24, 32, 24, mode)
        assert where.identity
        np.testing.assert_array_equal(resize_image(image, where), image)


def test_masks_resize_by_nearest_neighbour_and_pad_with_the_ignore_value():
    mask = np.kron(np.array([[0, 1], [2, 1]], np.uint8), np.ones((12, 16), np.uint8))  # 24 x 32, four blocks
    stored = resize_mask(mask, placement(32, 24, 16, 16, "pad"), ignore=255)
    assert stored.shape == (16, 16)
    assert (stored[:2] == 255).all() and (stored[14:] == 255).all()
    np.testing.assert_array_equal(stored[2:14], np.kron([[0, 1], [2, 1]], np.ones((6, 8), np.uint8)))
    stretched = resize_mask(mask, placement(32, 24, 8, 8, "stretch"), ignore=255)
    assert set(np.unique(stretched)) <= {0, 1, 2}


def test_depth_resizes_by_nearest_neighbour_so_invalid_pixels_do_not_bleed():
    rng = np.random.default_rng(1)
    depth = rng.uniform(1, 50, (24, 32)).astype(np.float32)
    depth[rng.random((24, 32)) < 0.3] = 0.0
    for mode in ("stretch", "pad", "crop"):
        stored = resize_depth(depth, placement(32, 24, 20, 12, mode))  # 20 wide, 12 high
        assert stored.shape == (12, 20) and stored.dtype == np.float32
        # every stored depth is a source depth (no blend of 0 and a depth, nor of two depths)
        assert set(np.unique(stored)) <= set(np.unique(depth)) | {0.0}
    padded = resize_depth(depth, placement(32, 24, 16, 16, "pad"))
    assert (padded[:2] == 0).all()


def test_images_resize_bilinearly_to_the_stored_size():
    image = np.full((24, 32, 3), 90, np.uint8)
    image[:, 16:] = 200
    stored = resize_image(image, placement(32, 24, 16, 12, "stretch"))
    assert stored.shape == (12, 16, 3)
    assert stored[0, 0, 0] == 90 and stored[0, -1, 0] == 200
    gray = resize_image(image[:, :, :1], placement(32, 24, 16, 16, "pad"))
    assert gray.shape == (16, 16, 1) and (gray[:2] == 0).all()


def test_boxes_are_scaled_shifted_clipped_and_dropped_when_nothing_is_left():
    boxes = np.array([[0, 0, 8, 6], [0, 0, 3, 24], [26, 4, 32, 10], [10, 2, 20, 8]], np.float64)
    classes = np.array([0, 1, 1, 0])
    stretched, kept = transform_boxes(boxes, classes, placement(32, 24, 16, 12, "stretch"))
    np.testing.assert_allclose(stretched, boxes / 2)
    assert kept.tolist() == [0, 1, 1, 0]
    padded, _ = transform_boxes(boxes, classes, placement(32, 24, 16, 16, "pad"))
    np.testing.assert_allclose(padded, boxes / 2 + [0, 2, 0, 2])
    # crop keeps source columns 4..28 (scale 2/3): the box in columns 0..3 is gone, the ones at the
    # edges are clipped to the stored image
    cropped, kept = transform_boxes(boxes, classes, placement(32, 24, 16, 16, "crop"))
    expected = np.array([[0, 0, (8 - 4) * 2 / 3, 6 * 2 / 3], [(26 - 4) * 2 / 3, 4 * 2 / 3, 16, 10 * 2 / 3], [4, 4 / 3, 32 / 3, 16 / 3]])
    np.testing.assert_allclose(cropped, expected)
    assert kept.tolist() == [0, 1, 0]


def test_stored_boxes_map_back_to_the_source_pixels_of_each_mode():
    stored = np.array([[0, 2, 16, 14], [4, 4, 8, 8], [0, 0, 16, 1.5]], np.float64)
    # stretch 32 x 24 -> 16 x 12: twice the coordinates, clipped to the source (row 14 is below it)
    back, kept = source_boxes(stored[:2], placement(32, 24, 16, 12, "stretch"), 32, 24)
    np.testing.assert_allclose(back, [[0, 4, 32, 24], [8, 8, 16, 16]])
    assert kept.tolist() == [0, 1]
    # pad 32 x 24 -> 16 x 16: rows 2..14 hold the source at scale 1/2; a box in the padding is gone
    back, kept = source_boxes(stored, placement(32, 24, 16, 16, "pad"), 32, 24)
    np.testing.assert_allclose(back, [[0, 0, 32, 24], [8, 4, 16, 12]])
    assert kept.tolist() == [0, 1]
    # crop 32 x 24 -> 16 x 16 keeps source columns 4..28 at scale 2/3
    back, _ = source_boxes(stored[1:2], placement(32, 24, 16, 16, "crop"), 32, 24)
    np.testing.assert_allclose(back, [[4 + 4 * 1.5, 4 * 1.5, 4 + 8 * 1.5, 8 * 1.5]])


def test_source_boxes_undo_transform_boxes():
    boxes = np.array([[1, 2, 9, 7], [12, 3, 30, 22]], np.float64)
    for mode in ("stretch", "pad"):  # crop cuts boxes off: no inverse there
        where = placement(32, 24, 20, 12, mode)
        stored, _ = transform_boxes(boxes, np.zeros(2), where)
        back, kept = source_boxes(stored, where, 32, 24)
        np.testing.assert_allclose(back, boxes)
        assert kept.tolist() == [0, 1]
