"""The tf.data reader on a tiny image dataset: images and every dense label kind decoded per batch."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mtl_tf.data.reader import _batch_parser, _load_split, fits_in_memory, make_dataset, row_bytes
from tests.helpers.tiny_images import (IGNORE, MAX_BOXES, boxes_label, encode, make_tiny_images, tiny_image_items,
                                       tiny_image_tasks, write_image_dataset)

ROWS = 24  # train 18 items in 2 shards, test 6 items in 1 shard (read in written order)
H, W = 16, 24


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return make_tiny_images(tmp_path_factory.mktemp("images"), rows=ROWS, height=H, width=W)


@pytest.fixture(scope="module")
def tasks():
    return tiny_image_tasks()


def _concat(ds):
    batches = list(ds.as_numpy_iterator())
    return tuple({k: np.concatenate([b[part][k] for b in batches]) for k in batches[0][part]} for part in range(3))


def test_every_label_kind_decodes_as_written_and_absent_labels_are_masked(spec, tasks, reading):
    items = tiny_image_items(ROWS, H, W)["test"]
    features, labels, masks = _concat(make_dataset(spec, "test", tasks, batch_size=4, **reading))
    kinds = {"semantic": 0, "depth": 0, "objects": 0, "scene": 0}
    for i, item in enumerate(items):
        np.testing.assert_array_equal(features["image"][i], item["image"])
        if item["semantic"] is None:
            assert (labels["semantic"][i] == IGNORE).all() and masks["semantic"][i] == 0
            kinds["semantic"] += 1
        else:
            np.testing.assert_array_equal(labels["semantic"][i], item["semantic"])
            assert masks["semantic"][i] == 1
        if item["depth"] is None:
            assert (labels["depth"][i] == 0).all() and masks["depth"][i] == 0
            kinds["depth"] += 1
        else:
            np.testing.assert_array_equal(labels["depth"][i], item["depth"])
            assert masks["depth"][i] == 1
        np.testing.assert_allclose(labels["objects"][i], boxes_label(item), atol=1e-7)
        assert masks["objects"][i] == (item["objects"] is not None)
        kinds["objects"] += item["objects"] is None
        assert labels["scene"][i] == (item["scene"] or 0) and masks["scene"][i] == (item["scene"] is not None)
        kinds["scene"] += item["scene"] is None
    assert min(kinds.values()) >= 1, "the test split must hold an unlabelled item of every kind"
    no_box = [i for i, item in enumerate(items) if item["objects"] is not None and len(item["objects"]) == 0]
    assert no_box and all(masks["objects"][i] == 1 for i in no_box), "labelled with no box is labelled"
    assert (labels["semantic"] == IGNORE).any(axis=(1, 2)).sum() > kinds["semantic"], "ignored pixels kept"


def test_batches_have_static_shapes_and_the_documented_dtypes(spec, tasks, reading):
    features, labels, masks = make_dataset(spec, "train", tasks, batch_size=5, **reading).element_spec
    assert features["image"] == tf.TensorSpec([None, H, W, 3], tf.uint8)
    assert labels["semantic"] == tf.TensorSpec([None, H, W], tf.int32)
    assert labels["depth"] == tf.TensorSpec([None, H, W], tf.float32)
    assert labels["objects"] == tf.TensorSpec([None, MAX_BOXES, 5], tf.float32)
    assert all(m == tf.TensorSpec([None], tf.float32) for m in masks.values())


@pytest.mark.parametrize("other", [{"in_memory": True}, {"cache": "disk"}], ids=["in_memory", "disk_cache"])
def test_in_memory_disk_cache_and_streamed_give_the_same_batches(spec, tasks, other):
    streamed = list(make_dataset(spec, "train", tasks, batch_size=5, cache="none").as_numpy_iterator())
    kept = list(make_dataset(spec, "train", tasks, batch_size=5, **other).as_numpy_iterator())
    assert len(streamed) == len(kept) == 4
    for a, b in zip(streamed, kept):
        for part in range(3):
            for key in a[part]:
                np.testing.assert_array_equal(a[part][key], b[part][key])


def test_shuffled_image_batches_hold_every_item_once(spec, tasks, reading):
    train = tiny_image_items(ROWS, H, W)["train"]
    features, _, _ = _concat(make_dataset(spec, "train", tasks, batch_size=4, shuffle=True, seed=2,
                                          **reading))
    key = lambda images: sorted(image.tobytes() for image in images)  # noqa: E731
    assert key(features["image"]) == key([item["image"] for item in train])


def test_a_subset_of_tasks_reads_only_its_labels(spec):
    _, labels, masks = next(iter(make_dataset(spec, "test", tiny_image_tasks(["depth"]), batch_size=2)))
    assert set(labels) == set(masks) == {"depth"}


def test_jpeg_and_grayscale_images(tmp_path, tasks):
    spec = make_tiny_images(tmp_path / "jpeg", rows=8, height=H, width=W, encoding="jpeg")
    items = tiny_image_items(8, H, W)["test"]
    features, _, _ = next(iter(make_dataset(spec, "test", tasks, batch_size=8)))
    assert features["image"].shape == (len(items), H, W, 3)
    # JPEG is lossy: compare with PIL's decoding of the same bytes (another decoder)
    decoded_by_pil = np.stack([np.asarray(Image.open(io.BytesIO(encode(i["image"], "jpeg")))) for i in items])
    difference = np.abs(features["image"].numpy().astype(int) - decoded_by_pil)
    assert difference.max() <= 2
    gray = make_tiny_images(tmp_path / "gray", rows=8, height=H, width=W, channels=1)
    features, _, _ = next(iter(make_dataset(gray, "test", tasks, batch_size=8)))
    gray_items = tiny_image_items(8, H, W, channels=1)["test"]
    np.testing.assert_array_equal(features["image"].numpy(), np.stack([i["image"] for i in gray_items]))
    assert features["image"].shape[-1] == 1


def test_an_image_of_another_size_than_dataset_json_says_fails_the_pipeline(tmp_path, tasks):
    splits = tiny_image_items(8, H, W)
    splits["test"][0]["image"] = np.zeros((H + 1, W, 3), np.uint8)
    spec = write_image_dataset(tmp_path, splits, H, W)
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(make_dataset(spec, "test", tasks, batch_size=2))


def test_memory_estimate_counts_decoded_images_and_dense_labels(spec, tasks):
    # uint8 image + int32 mask + float32 depth (each with a float mask) + 4 boxes x 5 floats
    # (+ mask) + the multiclass label at 8 bytes x 3 classes x 2.
    expected = H * W * 3 + (H * W * 4 + 4) * 2 + (MAX_BOXES * 5 * 4 + 4) + 3 * 2 * 8
    assert row_bytes(spec, tasks) == expected
    train = spec.splits["train"].num_examples
    assert fits_in_memory(spec, "train", tasks, budget=train * expected)
    assert not fits_in_memory(spec, "train", tasks, budget=train * expected - 1)


def test_in_memory_split_holds_encoded_bytes_not_decoded_tensors(spec, tasks):
    kept = _load_split(spec, "train", _batch_parser(spec, tasks))
    features, labels, _ = kept
    assert features["image"].dtype == tf.string and labels["semantic"].dtype == tf.string
    held = sum(int(tf.reduce_sum(tf.strings.length(t))) if t.dtype == tf.string else t.numpy().nbytes
               for t in tf.nest.flatten(kept))
    assert held < spec.splits["train"].num_examples * row_bytes(spec, tasks) / 2
    # and, forced into memory with a budget its decoded form would not fit, it still reads
    assert not fits_in_memory(spec, "train", tasks, budget=held)
    assert len(list(make_dataset(spec, "train", tasks, batch_size=6, in_memory=True))) == 3
