"""One item to a tf.Example without Beam: resize modes, label forms, derived labels, the encoding,
an unexpected failure, and the summary CombineFn."""

import numpy as np
import pytest

from mtl_tf.recipe.loader import parse_recipe
from pipelines.encoding import Int64List, encode_example
from pipelines.images.convert import ItemConverter
from pipelines.images.items import Item
from pipelines.images.labels import boundaries, class_presence, column_plan
from pipelines.images.statistics import image_stats
from tests.pipelines.images_tiny import (HEIGHT, WIDTH, boundaries_by_loops, decode_depth,
                                        decode_png, random_image, random_mask, scene_recipe)


def _parse(serialized: bytes) -> dict:
    import tensorflow as tf

    example = tf.train.Example.FromString(serialized)
    return {key: list(getattr(f, f.WhichOneof("kind")).value) if f.WhichOneof("kind") else []
            for key, f in example.features.feature.items()}


def _item(rng, boxes, **values):
    return Item(source="memory", index=0, values={"image": random_image(rng), "mask": random_mask(rng),
                                                  "depth": rng.uniform(1, 9, (HEIGHT, WIDTH)), "boxes": boxes,
                                                  "weather": "fog", "seq": "a", **values})


def _convert(recipe, item):
    batch = ItemConverter(recipe).convert([item])
    assert not batch.rejects, batch.rejects
    (split, [serialized]), = [(s, e) for s, e in batch.examples.items() if e]
    return _parse(serialized)


@pytest.mark.parametrize("mode, expected", [
    # 32 x 24 source, box [4, 6, 20, 18] (pixels), stored 16 x 16
    ("stretch", [4 / 32, 6 / 24, 20 / 32, 18 / 24]),
    ("pad", [2 / 16, (3 + 2) / 16, 10 / 16, (9 + 2) / 16]),  # scale 1/2, 2 rows of padding on top
    ("crop", [0 / 24, 6 / 24, 16 / 24, 18 / 24]),  # source columns 4..28 kept
])
def test_boxes_follow_the_resize_mode_into_the_written_example(mode, expected):
    recipe = scene_recipe({"kind": "manifest", "path": "m.jsonl"}, "out", size=(16, 16), resize=mode)
    example = _convert(recipe, _item(np.random.default_rng(0), [[4, 6, 20, 18, "person"], [0, 0, 2, 24, "car"]]))
    boxes = np.reshape(example["boxes/boxes"], (-1, 4))
    np.testing.assert_allclose(boxes[0], expected, rtol=1e-6)
    # the thin box at the left edge does not survive the crop
    assert example["boxes/classes"] == ([1] if mode == "crop" else [1, 0])
    assert example["boxes:box_count"] == [float(len(boxes))]
    mask = decode_png(example["mask"][0])
    if mode == "pad":
        assert (mask[:2] == 255).all() and (decode_depth(example["depth"][0], 16, 16)[:2] == 0).all()
        assert (decode_png(example["mask:boundaries"][0])[:2] == 255).all()
    assert mask.shape == (16, 16) and decode_png(example["image"][0]).shape == (16, 16, 3)


def test_labels_from_json_values_arrays_and_text_are_typed_as_csv_types_them():
    raw = {"name": "t", "data": {"source": {"kind": "manifest", "path": "m.jsonl", "na_values": ["n/a"]},
                                 "features": [{"name": "image", "kind": "image", "height": 8, "width": 8},
                                              {"name": "speed", "kind": "numeric", "max": 50},
                                              {"name": "road", "kind": "categorical"}],
                                 "output_dir": "o", "split": {"train": 0.98, "validation": 0.01, "test": 0.01}},
           "tasks": [{"name": "kind", "type": "multiclass", "label": "kind", "classes": ["a", "b", "c"]},
                     {"name": "tags", "type": "multilabel", "label": "tags", "classes": ["x", "y"]},
                     {"name": "wet", "type": "binary", "label": "wet"},
                     {"name": "lux", "type": "regression", "label": "lux"}]}
    recipe = parse_recipe(raw, check=False)
    rng = np.random.default_rng(1)
    converter = ItemConverter(recipe)

    def stored(**values):
        item = Item(source="m", values={"image": random_image(rng, 8, 8), **values})
        return converter.convert_item(item).values

    out = stored(kind=2, tags=[1, 0], wet=True, lux=3.5, speed="12", road="A1")
    assert (out["kind"], out["tags"], out["wet"], out["lux"], out["speed"], out["road"]) == (2, [1.0, 0.0], 1.0,
                                                                                           3.5, 12.0, "A1")
    out = stored(kind="b", tags="y|x", wet="no", lux=np.float32(2.0))
    assert (out["kind"], out["tags"], out["wet"], out["lux"]) == (1, [1.0, 1.0], 0.0, 2.0)
    out = stored(kind=-1, tags=np.array([np.nan, np.nan]), wet="n/a", lux=float("nan"))
    assert not {"kind", "tags", "wet", "lux", "speed"} & set(out)
    rejected = converter.convert([Item(source="m", values={"image": random_image(rng, 8, 8), "kind": 3}),
                                  Item(source="m", values={"image": random_image(rng, 8, 8), "tags": [1, 2]}),
                                  Item(source="m", values={"image": random_image(rng, 8, 8), "speed": 80})])
    assert [r["kind"] for r in rejected.rejects] == ["unknown_class", "label_not_allowed", "above_max"]


def test_an_unexpected_failure_rejects_the_item_only_with_its_exception_type():
    class Broken:
        def __str__(self):
            raise RuntimeError("cannot be a path")

    recipe = scene_recipe({"kind": "manifest", "path": "m.jsonl"}, "out")
    rng = np.random.default_rng(2)
    batch = ItemConverter(recipe).convert([Item(source="m", values={"image": Broken()}),
                                           _item(rng, [[1, 1, 5, 5, "car"]])])
    assert [r["kind"] for r in batch.rejects] == ["error: RuntimeError"]
    assert "cannot be a path" in batch.rejects[0]["reason"]
    assert sum(len(e) for e in batch.examples.values()) == 1
    assert batch.summary["rejected"] == {"error: RuntimeError": 1} and batch.summary["items_in"] == 2


def test_a_column_read_in_two_ways_is_refused():
    recipe = scene_recipe({"kind": "manifest", "path": "m.jsonl"}, "out", tasks=[
        {"name": "a", "type": "segmentation", "label": "x", "classes": ["p", "q"]},
        {"name": "b", "type": "regression", "label": "x", "derive": "box_count"}])
    with pytest.raises(ValueError, match="column 'x' is read in different ways by tasks 'a' \\(mask\\), 'b' \\(boxes\\)"):
        column_plan(recipe)


def test_derived_labels_match_a_pixel_by_pixel_computation():
    rng = np.random.default_rng(3)
    mask = random_mask(rng, 9, 11)
    mask[rng.random(mask.shape) < 0.15] = 255
    np.testing.assert_array_equal(boundaries(mask, 255, 7), boundaries_by_loops(mask, 255, 7))
    present = set(np.unique(mask[mask != 255]))
    assert class_presence(mask, 4, 255) == [float(c in present) for c in range(4)]
    assert class_presence(np.full((2, 2), 255, np.uint8), 2, 255) == [0.0, 0.0]


def test_bytes_and_int64_lists_encode_as_tensorflow_parses_them():
    import tensorflow as tf

    serialized = encode_example({"png": b"\x89PNG\x00\xff", "classes": Int64List([3, 0, 2]), "none": Int64List(),
                                 "boxes": [], "labelled": Int64List([1]), "count": 2.0})
    parsed = tf.io.parse_single_example(serialized, {
        "png": tf.io.FixedLenFeature([], tf.string), "classes": tf.io.VarLenFeature(tf.int64),
        "none": tf.io.VarLenFeature(tf.int64), "boxes": tf.io.VarLenFeature(tf.float32),
        "labelled": tf.io.FixedLenFeature([1], tf.int64), "count": tf.io.FixedLenFeature([], tf.float32)})
    assert parsed["png"].numpy() == b"\x89PNG\x00\xff"
    assert parsed["classes"].values.numpy().tolist() == [3, 0, 2]
    assert parsed["none"].values.shape == (0,) and parsed["boxes"].values.shape == (0,)
    assert parsed["labelled"].numpy().tolist() == [1] and parsed["count"].numpy() == 2.0


def test_partial_summaries_merge_to_the_summary_of_all_items():
    recipe = scene_recipe({"kind": "manifest", "path": "m.jsonl"}, "out")
    rng = np.random.default_rng(4)
    items = [_item(rng, [[1, 1, 9, 9, "car"]] * (i % 3)) for i in range(9)]
    for item in items:
        item.split = "train"
    converter = ItemConverter(recipe)
    fn = converter.summary_fn
    whole = fn.extract_output(converter.convert(items).summary)
    parts = [converter.convert(items[i:i + 3]).summary for i in (0, 3, 6)]
    assert fn.extract_output(fn.merge_accumulators([fn.merge_accumulators(parts[:2]), parts[2]])) == whole
    pixels = np.concatenate([i.values["image"].reshape(-1, 3) for i in items]).astype(np.float64)
    assert whole["image"]["count"] == 9
    np.testing.assert_allclose(whole["image"]["mean"], pixels.mean(0), rtol=1e-12)
    np.testing.assert_allclose(whole["image"]["std"], pixels.std(0), rtol=1e-12)
    assert whole["labels"]["train"]["objects"]["positives"] == [9, 0]  # 0 + 1 + 2 boxes, three times
    assert whole["dense"]["objects"] == {"boxes": [9, 0], "images": 9, "max_per_image": 2}


def test_image_stats_are_exact_for_large_counts():
    # a billion pixels of 255 and one of 0: std = 255 sqrt(n) / (n + 1), which float sums of squares lose
    n = 10 ** 9
    stats = image_stats(1, [255 * n], [255 * 255 * n], n + 1)
    assert stats["mean"][0] == pytest.approx(255 * n / (n + 1), rel=1e-15)
    assert stats["std"][0] == pytest.approx(255 * n ** 0.5 / (n + 1), rel=1e-9)
