"""The image grid: one row per example, input then truth (and prediction) per task."""

import numpy as np
import pytest

from mtl_tf.evaluation.image_grid import Panel, colour_depth, colour_mask, draw_boxes, image_grid, palette


def test_masks_depth_and_boxes_are_drawn_where_they_are():
    mask = np.array([[0, 1], [255, 1]])
    coloured = colour_mask(mask, 2, 255)
    assert (coloured[1, 0] == 0).all() and (coloured[0, 1] == coloured[1, 1]).all()
    assert (coloured[0, 0] != coloured[0, 1]).any()
    shaded = colour_depth(np.array([[0.0, 1.0, 50.0]]))
    assert (shaded[0, 0] == 0).all() and shaded[0, 1].sum() > shaded[0, 2].sum()  # near is brighter
    boxed = draw_boxes(np.zeros((10, 10, 3), np.uint8), [[2, 2, 8, 8, "b"]], classes=["a", "b"])
    assert (boxed[2, 2:8] == palette(2)[1]).all() and (boxed[5, 5] == 0).all()
    relative = draw_boxes(np.zeros((10, 10, 3), np.uint8), [[0.2, 0.2, 0.8, 0.8, 1]], relative=True, scale=2)
    assert relative.shape == (20, 20, 3) and (relative[4, 4:16] > 0).any()


def test_the_grid_has_a_tile_per_example_and_panel():
    rng = np.random.default_rng(0)
    example = {"image": rng.integers(0, 256, (6, 8, 3), dtype=np.uint8),
               "truth": {"seg": rng.integers(0, 3, (6, 8)), "depth": rng.uniform(0, 5, (6, 8)),
                         "boxes": [[1, 1, 4, 4, 0]]},
               "prediction": {"seg": rng.integers(0, 3, (6, 8))}}
    panels = [Panel("seg", "segmentation", classes=["a", "b", "c"]), Panel("depth", "depth"),
              Panel("boxes", "detection", classes=["car"])]
    grid = image_grid([example, example], panels, scale=2, gap=2)
    # input + 3 panels x (truth, prediction) columns of 16 px, 2 rows of 12 px, a 12 px title
    assert grid.size == (7 * 18 + 2, 12 + 2 * 14 + 2)
    with pytest.raises(ValueError, match="allowed: segmentation, depth, detection"):
        Panel("x", "keypoints")
