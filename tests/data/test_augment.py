"""Augmentation of the training split: images and every dense label move together."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.data.augment import Augmenter, BatchSeeds
from mtl_tf.data.reader import make_dataset
from mtl_tf.recipe.loader import parse_recipe
from mtl_tf.runner.train import datasets
from tests.helpers.tiny_images import (IGNORE, MAX_BOXES, make_tiny_images, tiny_image_items, tiny_image_tasks,
                                       write_image_dataset)

H, W = 16, 24
ALL_GEOMETRY = {"flip_horizontal": True, "rotation": 20, "scale": [0.8, 1.25], "translate": 0.1, "crop": 0.7}
AXIS_ALIGNED = {"flip_horizontal": True, "flip_vertical": True, "scale": [0.7, 1.4], "translate": 0.2, "crop": 0.6}


def _coordinate_items(n):
    """Items whose labels name where each pixel came from: image channel 0 = 10 x column and
    mask = column; channel 1 = 10 x row and depth = row + 1."""
    rows, cols = np.mgrid[0:H, 0:W]
    image = np.stack([cols * 10, rows * 10, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    return [{"image": image, "semantic": cols.copy(), "depth": (rows + 1).astype(np.float32), "objects": None,
             "scene": None} for _ in range(n)]


@pytest.fixture(scope="module")
def coordinates(tmp_path_factory):
    splits = {"train": _coordinate_items(24), "test": _coordinate_items(1)}
    return write_image_dataset(tmp_path_factory.mktemp("coordinates"), splits, H, W,
                               classes=[f"column_{i}" for i in range(W)])


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    return make_tiny_images(tmp_path_factory.mktemp("objects"), rows=48, height=32, width=48)


@pytest.fixture(scope="module")
def tasks():
    return tiny_image_tasks()


def _batch(spec, tasks, augment, seed=3, split="train", size=64):
    features, labels, masks = next(iter(make_dataset(spec, split, tasks, batch_size=size, augment=augment,
                                                     seed=seed)))
    return ({k: v.numpy() for k, v in features.items()}, {k: v.numpy() for k, v in labels.items()},
            {k: v.numpy() for k, v in masks.items()})


@pytest.mark.parametrize("augment, pads", [({"rotation": 30}, True), ({"scale": [0.6, 1.6]}, True),
                                           ({"translate": 0.3}, True), ({"crop": 0.5}, False),
                                           ({"flip_vertical": True}, False), (ALL_GEOMETRY, True),
                                           (AXIS_ALIGNED, True)],
                         ids=["rotation", "zoom", "translate", "crop", "flip_vertical", "all", "axis_aligned"])
def test_masks_and_depth_stay_within_half_a_pixel_of_the_image(coordinates, augment, pads):
    features, labels, _ = _batch(coordinates, tiny_image_tasks(["semantic", "depth"]), augment)
    image = features["image"].astype(np.float64) / 10.0
    column, row = labels["semantic"], labels["depth"] - 1.0
    padded = column == IGNORE
    # On every pixel not brought in from outside, the image's interpolated source position and
    # the masks' nearest one are at most half a pixel apart.
    kept = ~padded
    assert kept.sum() > 0.5 * kept.size
    assert np.abs(image[..., 0] - column)[kept].max() <= 0.55
    assert np.abs(image[..., 1] - row)[kept].max() <= 0.55
    rows, cols = np.mgrid[0:H, 0:W]
    moved = np.maximum(np.abs(image[..., 0] - cols), np.abs(image[..., 1] - rows)).max(axis=(1, 2)) > 1
    assert moved.mean() > 0.3, "the augmentation must move most images"
    # padding: ignore in the mask exactly where depth is 0 (invalid), black in the image
    np.testing.assert_array_equal(padded, labels["depth"] == 0)
    assert (features["image"][padded] == 0).all()
    assert padded.any() == pads, "a crop resized back or a flip brings in nothing from outside"


def test_horizontal_flip_mirrors_image_mask_depth_and_boxes_together(objects, tasks):
    items = tiny_image_items(48, 32, 48)["test"]
    plain_masks = _batch(objects, tasks, None, split="test")[2]
    flipped_rows = 0
    for seed in range(3):
        features, labels, masks = _batch(objects, tasks, {"flip_horizontal": True}, seed=seed, split="test")
        for i, item in enumerate(items):
            flipped = not np.array_equal(features["image"][i], item["image"])
            flipped_rows += flipped
            mirror = (lambda a: a[:, ::-1]) if flipped else (lambda a: a)  # noqa: E731
            np.testing.assert_array_equal(features["image"][i], mirror(item["image"]))
            if item["semantic"] is not None:
                np.testing.assert_array_equal(labels["semantic"][i], mirror(item["semantic"]))
            if item["depth"] is not None:
                np.testing.assert_array_equal(labels["depth"][i], mirror(item["depth"]))
            if item["objects"] is not None and len(item["objects"]):
                x0, y0, x1, y1, cls = item["objects"][0]
                expected = [1 - x1, y0, 1 - x0, y1, cls] if flipped else [x0, y0, x1, y1, cls]
                np.testing.assert_allclose(labels["objects"][i][0], expected, atol=1e-6)
                assert (labels["objects"][i][1:, 4] == -1).all()
        assert all((masks[k] == plain_masks[k]).all() for k in masks)
    assert 0 < flipped_rows < 3 * len(items), "some rows flipped, some not"


def _object_pixels_inside_their_box(labels, masks, height, width, tight):
    """Per row with an object: whether every object pixel lies in its (only) box, and the box
    hugs them (``tight``, for axis-aligned steps)."""
    checked = dropped = 0
    for i in range(len(labels["semantic"])):
        if not (masks["semantic"][i] and masks["objects"][i]):
            continue
        pixels = np.argwhere(labels["semantic"][i] == 1)
        kept = labels["objects"][i][labels["objects"][i][:, 4] >= 0]
        assert len(kept) <= 1 and (labels["objects"][i][len(kept):] == [0, 0, 0, 0, -1]).all()
        if len(pixels) == 0:
            if len(kept) and tight:  # what is left of a box pushed out is too thin to hold a pixel centre
                x0, y0, x1, y1 = kept[0, :4] * [width, height, width, height]
                assert min(x1 - x0, y1 - y0) < 1.5
            else:
                dropped += 1
            continue
        assert len(kept) == 1, "a visible object keeps its box"
        x0, y0, x1, y1 = kept[0, :4] * [width, height, width, height]
        cy, cx = pixels[:, 0] + 0.5, pixels[:, 1] + 0.5
        assert ((cx >= x0 - 1) & (cx <= x1 + 1) & (cy >= y0 - 1) & (cy <= y1 + 1)).all()
        if tight and len(pixels) > 4:
            assert abs(cx.min() - 0.5 - x0) <= 1.5 and abs(cx.max() + 0.5 - x1) <= 1.5
            assert abs(cy.min() - 0.5 - y0) <= 1.5 and abs(cy.max() + 0.5 - y1) <= 1.5
        checked += 1
    return checked, dropped


@pytest.mark.parametrize("augment, tight", [
    ({"rotation": 40}, False), ({"scale": [0.6, 1.6]}, True), ({"translate": 0.45}, True), ({"crop": 0.4}, True),
    ({"flip_vertical": True}, True), (ALL_GEOMETRY, False)],
    ids=["rotation", "zoom", "translate", "crop", "flip_vertical", "all"])
def test_boxes_follow_their_object_and_are_dropped_when_it_leaves(objects, tasks, augment, tight):
    checked = dropped = 0
    for seed in range(2):
        _, labels, masks = _batch(objects, tasks, augment, seed=seed)
        c, d = _object_pixels_inside_their_box(labels, masks, 32, 48, tight)
        checked, dropped = checked + c, dropped + d
    assert checked >= 10
    if "translate" in augment:
        assert dropped >= 1, "a shift of up to 45% pushes some objects out"


def test_each_steps_pixel_map_resamples_as_its_keras_layer_does(coordinates):
    image = tf.constant(np.stack([i["image"] for i in _coordinate_items(6)]), tf.float32)
    size = (tf.constant(float(H)), tf.constant(float(W)))
    for option in [{"flip_horizontal": True}, {"flip_vertical": True}, {"rotation": 30}, {"scale": [0.7, 1.4]},
                   {"translate": 0.2}]:
        step = Augmenter(option, coordinates, []).geometric[0]
        transformation = step.draw({"images": image}, tf.constant([4, 2], tf.int64))
        by_layer = step.layer.transform_images(image, transformation, training=True)
        by_map = keras.ops.image.affine_transform(
            image, tf.reshape(step.matrix(transformation, *size), [-1, 9])[:, :8], interpolation="bilinear",
            fill_mode="constant", fill_value=0.0)
        np.testing.assert_allclose(by_map.numpy(), by_layer.numpy(), atol=1e-3, err_msg=str(option))


def test_colour_changes_touch_only_the_image(objects, tasks):
    plain = _batch(objects, tasks, None)
    colour = {"brightness": 0.3, "contrast": 0.5, "saturation": 0.5, "hue": 0.1}
    features, labels, masks = _batch(objects, tasks, colour)
    assert (features["image"] != plain[0]["image"]).mean() > 0.5
    for key in labels:
        np.testing.assert_array_equal(labels[key], plain[1][key])
        np.testing.assert_array_equal(masks[key], plain[2][key])


def test_contrast_both_lowers_and_raises(objects, tasks):
    plain = _batch(objects, tasks, None)[0]["image"].astype(np.float64)
    changed = _batch(objects, tasks, {"contrast": 0.5})[0]["image"].astype(np.float64)
    ratio = changed.std(axis=(1, 2, 3)) / plain.std(axis=(1, 2, 3))
    assert ratio.min() < 0.9 and ratio.max() > 1.1


def test_scale_above_one_zooms_in_and_below_one_zooms_out(coordinates):
    tasks = tiny_image_tasks(["semantic"])
    middle = lambda scale: _batch(coordinates, tasks, {"scale": [scale, scale]})[1]["semantic"][:, H // 2]  # noqa
    zoomed_in, zoomed_out = middle(2.0), middle(0.5)
    span = zoomed_in.max(axis=1) - zoomed_in.min(axis=1)  # columns of the stored image still in view
    assert (np.abs(span - W / 2) <= 1.5).all() and not (zoomed_in == IGNORE).any()
    visible = (zoomed_out != IGNORE).sum(axis=1)  # the whole image in the middle half
    assert (np.abs(visible - W / 2) <= 1.5).all()


def test_same_seed_same_batches_each_pass_new_draws(objects, tasks):
    def passes(seed, count=2):
        ds = make_dataset(objects, "train", tasks, batch_size=18, shuffle=True, seed=seed, augment=ALL_GEOMETRY)
        return [[b[0]["image"].numpy() for b in ds] for _ in range(count)]

    first, again, other = passes(1), passes(1), passes(2, count=1)
    for a, b in zip(first, again):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0][0], other[0][0])
    assert not np.array_equal(np.concatenate(first[0]), np.concatenate(first[1])), "each pass redraws"


def test_the_augmentation_does_not_depend_on_the_map_threads(objects, tasks):
    """A batch's draws come from its own seed: the same batch with the same seed in a
    one-batch pipeline and in the parallel one is augmented alike."""
    augmenter = Augmenter(ALL_GEOMETRY, objects, tasks)
    batch = next(iter(make_dataset(objects, "test", tasks, batch_size=12)))
    seed = tf.constant([5, 9], tf.int64)
    a = tf.function(lambda b: augmenter(*b, seed=seed))(batch)
    b = augmenter(*batch, seed=seed)
    np.testing.assert_array_equal(a[0]["image"].numpy(), b[0]["image"].numpy())
    np.testing.assert_allclose(a[1]["objects"].numpy(), b[1]["objects"].numpy(), atol=1e-6)
    assert not np.array_equal(augmenter(*batch, seed=seed + 1)[0]["image"].numpy(), b[0]["image"].numpy())


def test_seeds_are_fresh_per_draw():
    seeds = BatchSeeds(tf.constant([1, 2], tf.int64))
    draws = [keras.random.uniform([3], seed=seeds).numpy() for _ in range(2)]
    assert not np.array_equal(*draws)


def test_only_the_training_split_is_augmented(tmp_path, tasks):
    splits = tiny_image_items(24, H, W)
    splits["validation"] = splits["test"]
    spec = write_image_dataset(tmp_path, splits, H, W)
    recipe = parse_recipe({
        "name": "tiny_images",
        "data": {"source": {"kind": "manifest", "path": "unused.jsonl"}, "output_dir": str(tmp_path),
                 "features": [{"name": "image", "kind": "image", "height": H, "width": W}],
                 "augment": {"flip_horizontal": True, "rotation": 10}},
        "tasks": [{"name": "semantic", "type": "segmentation", "label": "mask", "classes": ["g", "o", "s"]},
                  {"name": "depth", "type": "depth", "label": "depth"},
                  {"name": "objects", "type": "detection", "label": "boxes", "classes": ["box", "ball"],
                   "max_boxes": MAX_BOXES},
                  {"name": "scene", "type": "multiclass", "label": "weather", "classes": ["a", "b", "c"]}],
        "training": {"batch_size": 32, "seed": 0},
    }, check=False)
    data = datasets(recipe, spec, tasks)
    for split in ("validation", "test"):
        plain = make_dataset(spec, split, tasks, batch_size=32)
        for a, b in zip(data[split], plain):
            np.testing.assert_array_equal(a[0]["image"].numpy(), b[0]["image"].numpy())
            np.testing.assert_array_equal(a[1]["semantic"].numpy(), b[1]["semantic"].numpy())
    train = next(iter(data["train"]))
    plain = next(iter(make_dataset(spec, "train", tasks, batch_size=32, shuffle=True, shuffle_buffer=10_000)))
    assert not np.array_equal(train[0]["image"].numpy(), plain[0]["image"].numpy())
    key = lambda images: sorted(np.sort(i.ravel()).tobytes() for i in images)  # noqa: E731
    assert key(train[0]["image"].numpy()) != key(plain[0]["image"].numpy()), "more than a reshuffle"


def test_options_the_data_cannot_take_are_refused(tmp_path, objects, tasks):
    with pytest.raises(ValueError, match=r"scale: low must be at least 0.5.*received \[0.4, 1.0\]"):
        make_dataset(objects, "train", tasks, batch_size=4, augment={"scale": [0.4, 1.0]})
    gray = make_tiny_images(tmp_path, rows=8, height=H, width=W, channels=1)
    with pytest.raises(ValueError, match=r"saturation and hue need RGB images; feature 'image' has 1 channel"):
        make_dataset(gray, "train", tasks, batch_size=4, augment={"saturation": 0.1, "hue": 0.1})
    assert make_dataset(gray, "train", tasks, batch_size=4, augment={"brightness": 0.1}) is not None
    with pytest.raises(ValueError, match="unknown|extra"):
        make_dataset(objects, "train", tasks, batch_size=4, augment={"flip": True})
