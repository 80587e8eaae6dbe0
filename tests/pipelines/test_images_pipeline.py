"""A JSON-lines manifest through the real Beam pipeline: every reject reason, the examples as
written, the counts and dataset.json's statistics against NumPy."""

import glob
import json

import numpy as np
import pytest

from mtl_tf.data.spec import DatasetSpec
from pipelines.images.pipeline import check_counts, run
from tests.pipelines.images_tiny import (CLASSES, HEIGHT, OBJECTS, WIDTH, boundaries_by_loops, decode_depth,
                                        decode_png, random_depth, random_image, random_mask, save_png,
                                        save_png_header_only, scene_recipe, write_jsonl)

GOOD = 12
# reject kind -> how the bad row differs from a good one
BAD = {
    "missing_image": lambda row: row.pop("image"),
    "file_not_found": lambda row: row.update(image="images/nothing.png"),
    "unreadable_image": lambda row: row.update(image="junk.png"),
    "image_too_large": lambda row: row.update(image="bomb.png"),
    "not_8_bit": lambda row: row.update(image="deep.png"),
    "too_small": lambda row: row.update(image="small.png"),
    "mask_class_out_of_range": lambda row: row.update(mask="bad_class.png"),
    "mask_size_mismatch": lambda row: row.update(mask="half_mask.png"),
    "depth_not_finite": lambda row: row.update(depth="nan.npy"),
    "depth_negative": lambda row: row.update(depth="negative.npy"),
    "depth_size_mismatch": lambda row: row.update(depth="half_depth.png"),
    "box_outside_image": lambda row: row.update(boxes=[[20, 2, WIDTH + 5, 10, "car"]]),
    "box_empty": lambda row: row.update(boxes=[[4, 4, 4, 10, "car"]]),
    "box_unknown_class": lambda row: row.update(boxes=[[1, 1, 5, 5, "truck"]]),
    "too_many_boxes": lambda row: row.update(boxes=[[1, 1, 5, 5, "car"]] * 4),
    "unparsable_boxes": lambda row: row.update(boxes=[[1, 2, 3]]),
    "unknown_class": lambda row: row.update(weather="snow"),
    "missing_required": lambda row: row.pop("seq"),
}


def _good_rows(raw, rng):
    rows, sources = [], []
    for i in range(GOOD):
        image, mask, depth = random_image(rng), random_mask(rng), random_depth(rng)
        if i == 3:
            mask[:4, :6] = 255  # ignored pixels
        save_png(raw / f"images/{i}.png", image)
        save_png(raw / f"masks/{i}.png", mask, "L")
        save_png(raw / f"depth/{i}.png", depth)
        boxes = [[1, 2, 11, 13, "car"], [15.5, 0, WIDTH, HEIGHT, 1]][: 1 + i % 2]
        row = {"image": f"images/{i}.png", "mask": f"masks/{i}.png", "depth": f"depth/{i}.png", "boxes": boxes,
               "weather": ["clear", "fog"][i % 2], "seq": f"s{i // 2}"}
        if i == 9:
            row.pop("boxes")  # no detection label
        if i == 10:
            row["mask"] = None  # no segmentation label
        if i == 11:
            row["boxes"] = []  # labelled: no object
        rows.append(row)
        sources.append({"image": image, "mask": None if i == 10 else mask, "depth": depth, "row": row})
    return rows, sources


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    raw = root / "raw"
    rng = np.random.default_rng(7)
    rows, sources = _good_rows(raw, rng)
    (raw / "junk.png").write_bytes(bytes(range(256)) * 3)
    save_png_header_only(raw / "bomb.png", 30000, 30000)
    save_png(raw / "deep.png", np.full((HEIGHT, WIDTH), 1000, np.uint16))
    save_png(raw / "small.png", random_image(rng, 10, 10))
    bad_class = random_mask(rng)
    bad_class[0, 0] = 7
    save_png(raw / "bad_class.png", bad_class, "L")
    save_png(raw / "half_mask.png", random_mask(rng, HEIGHT // 2, WIDTH // 2), "L")
    save_png(raw / "half_depth.png", random_depth(rng, HEIGHT // 2, WIDTH // 2))
    nan = np.ones((HEIGHT, WIDTH), np.float32)
    nan[3, 4] = np.nan
    np.save(raw / "nan.npy", nan)
    np.save(raw / "negative.npy", np.full((HEIGHT, WIDTH), -1.0, np.float32))
    bad_rows = []
    for kind, change in BAD.items():
        row = json.loads(json.dumps(rows[0]))
        row["seq"] = f"bad-{kind}"
        change(row)
        bad_rows.append(row)
    lines = rows[:6] + bad_rows + ["", "not json", "[1, 2]"] + rows[6:]
    manifest = write_jsonl(raw / "manifest.jsonl", lines)
    recipe = scene_recipe({"kind": "manifest", "path": manifest}, str(root / "unused"), min_height=20, min_width=20,
                          split={"key": "seq", "train": 0.5, "validation": 0.25, "test": 0.25, "seed": 3})
    result = run(recipe, ["--runner=DirectRunner"], out_dir=str(root / "dataset"))
    return result, sources


def _examples(result):
    from tests.pipelines.images_tiny import read_examples

    return read_examples(result.path.parent)


def _source_of(example, sources):
    image = decode_png(example["image"][0])
    matches = [s for s in sources if np.array_equal(s["image"], image)]
    assert len(matches) == 1
    return matches[0]


def _train_sources(result, sources):
    return [_source_of(e, sources) for e in _examples(result) if e["_split"] == "train"]


@pytest.mark.integration
def test_every_item_is_written_or_rejected_once_with_its_reason(scenes):
    result, _ = scenes
    bad = len(BAD) + 2  # and the two lines that are not JSON objects; the blank line is no item
    assert result.rows_in == GOOD + bad
    assert sum(result.rows_written.values()) == GOOD
    assert result.rows_rejected == bad
    assert result.rejects_by_reason == {**{kind: 1 for kind in BAD}, "unparsable_row": 2}
    spec = DatasetSpec.read(result.path)
    assert spec.rows_in == GOOD + bad and spec.rejects.count == bad
    assert {s: spec.splits[s].num_examples for s in spec.splits} == result.rows_written
    assert f"items in {GOOD + bad} = written {GOOD}" in result.summary()
    assert not glob.glob(str(result.path.parent / "beam-temp-*"))


@pytest.mark.integration
def test_the_rejects_file_names_each_bad_item_its_image_and_reason(scenes):
    result, _ = scenes
    rejects = [json.loads(line) for path in glob.glob(str(result.path.parent / result.spec.rejects.location))
               for line in open(path)]
    assert len(rejects) == result.rows_rejected
    by_kind = {r["kind"]: r for r in rejects if r["kind"] != "unparsable_row"}
    assert by_kind["file_not_found"]["image"] == "images/nothing.png"
    assert "nothing.png" in by_kind["file_not_found"]["reason"]
    assert "truck" in by_kind["box_unknown_class"]["reason"]
    assert "'seq'" in by_kind["missing_required"]["reason"]
    assert all(r["file"].endswith("manifest.jsonl") and isinstance(r["item"], int) for r in rejects)


@pytest.mark.integration
def test_examples_hold_the_image_mask_depth_boxes_and_labels_as_read(scenes):
    result, sources = scenes
    examples = _examples(result)
    assert len(examples) == GOOD
    for example in examples:
        source = _source_of(example, sources)
        row = source["row"]
        assert example["weather"] == [["clear", "fog"].index(row["weather"])]
        np.testing.assert_array_equal(decode_depth(example["depth"][0], HEIGHT, WIDTH),
                                      (source["depth"] / 256.0).astype(np.float16))
        if source["mask"] is None:
            assert not {"mask", "mask:class_presence", "mask:boundaries"} & set(example)
        else:
            mask = decode_png(example["mask"][0])
            np.testing.assert_array_equal(mask, source["mask"])
            present = [float(c in set(np.unique(source["mask"]))) for c in range(len(CLASSES))]
            assert example["mask:class_presence"] == present
            np.testing.assert_array_equal(decode_png(example["mask:boundaries"][0]),
                                          boundaries_by_loops(source["mask"], 255, 255))
        if "boxes" not in row:
            assert not {"boxes/boxes", "boxes/classes", "boxes/labelled", "boxes:box_count"} & set(example)
            continue
        assert example["boxes/labelled"] == [1]
        expected = [[b[0] / WIDTH, b[1] / HEIGHT, b[2] / WIDTH, b[3] / HEIGHT] for b in row["boxes"]]
        np.testing.assert_allclose(np.reshape(example["boxes/boxes"], (-1, 4)), np.reshape(expected, (-1, 4)),
                                   rtol=1e-6)
        assert example["boxes/classes"] == [b[4] if isinstance(b[4], int) else OBJECTS.index(b[4])
                                            for b in row["boxes"]]
        assert example["boxes:box_count"] == [float(len(row["boxes"]))]


@pytest.mark.integration
def test_items_of_one_split_key_share_a_split(scenes):
    result, sources = scenes
    split_of = {}
    for example in _examples(result):
        split_of.setdefault(_source_of(example, sources)["row"]["seq"], set()).add(example["_split"])
    assert all(len(splits) == 1 for splits in split_of.values())
    assert len({s for splits in split_of.values() for s in splits}) > 1


@pytest.mark.integration
def test_image_statistics_are_the_train_pixels_mean_and_std(scenes):
    result, sources = scenes
    train = _train_sources(result, sources)
    pixels = np.concatenate([s["image"].reshape(-1, 3) for s in train]).astype(np.float64)
    stats = result.spec.feature("image").stats
    assert stats.count == len(train) == result.rows_written["train"]
    np.testing.assert_allclose(stats.mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, pixels.std(axis=0), rtol=1e-12)
    image = result.spec.feature("image")
    assert image.shape == [HEIGHT, WIDTH, 3] and image.image.encoding == "png" and image.dtype == "uint8"


@pytest.mark.integration
def test_dense_label_statistics_and_counts_match_numpy(scenes):
    result, sources = scenes
    spec = result.spec
    train = _train_sources(result, sources)
    masks = [s["mask"] for s in train if s["mask"] is not None]
    counts = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=256)
    semantic = spec.task("semantic")
    assert semantic.stats.pixels == counts[:3].tolist() and semantic.stats.ignored == counts[255]
    assert semantic.positives["train"] == [sum(c in np.unique(m) for m in masks) for c in range(3)]
    assert semantic.labelled["train"] == len(masks) and semantic.shape == [HEIGHT, WIDTH]
    assert semantic.dtype == "int32" and semantic.ignore_index == 255
    depths = np.concatenate([(s["depth"] / 256.0).ravel() for s in train])
    valid = depths[depths > 0]
    depth = spec.task("depth").stats
    assert (depth.valid, depth.invalid) == (valid.size, depths.size - valid.size)
    assert depth.min == pytest.approx(valid.min()) and depth.max == pytest.approx(valid.max())
    assert depth.mean == pytest.approx(valid.mean(), rel=1e-3)  # float16 storage
    boxed = [s["row"]["boxes"] for s in train if "boxes" in s["row"]]
    objects = spec.task("objects")
    per_class = [sum(1 for boxes in boxed for b in boxes if b[4] in (c, OBJECTS[c])) for c in range(2)]
    assert objects.stats.boxes == per_class and objects.stats.images == len(boxed)
    assert objects.stats.max_per_image == max(len(b) for b in boxed)
    assert objects.shape == [3, 5] and objects.positives["train"] == per_class
    assert spec.task("presence").label_key == "mask:class_presence" and spec.task("presence").shape == [3]
    edges = spec.task("edges")
    assert edges.derive == "boundaries" and edges.stats.ignored == counts[255]
    assert spec.task("count").positives == {}


@pytest.mark.integration
def test_the_derived_box_count_gets_its_statistics_per_split(scenes):
    result, sources = scenes
    stats = result.spec.task("count").stats
    by_split = {}
    for example in _examples(result):
        row = _source_of(example, sources)["row"]
        if "boxes" in row:  # an item without the column has no count
            by_split.setdefault(example["_split"], []).append(float(len(row["boxes"])))
    assert set(stats.root) == set(result.spec.splits) and set(by_split) <= set(stats.root)
    for split in stats.root:
        counts = np.array(by_split.get(split, []))
        moments = stats.split(split)
        assert moments.count == counts.size == result.spec.task("count").labelled[split]
        if counts.size:
            assert (moments.mean, moments.std) == (pytest.approx(counts.mean()), pytest.approx(counts.std()))
            assert (moments.min, moments.max) == (counts.min(), counts.max())


@pytest.mark.integration
def test_the_count_check_fails_when_the_files_disagree_with_what_was_read(scenes):
    result, _ = scenes
    summary = json.loads((result.path.parent / "summary.json").read_text())["counts"]
    check_counts(result.rows_in, result.rows_written, result.rows_rejected, summary)  # as written: fine
    lost = {**result.rows_written, "train": result.rows_written["train"] - 1}
    with pytest.raises(RuntimeError, match="lost 1 items"):
        check_counts(result.rows_in, lost, result.rows_rejected, summary)
    with pytest.raises(RuntimeError, match="duplicated 1 items"):
        check_counts(result.rows_in, result.rows_written, result.rows_rejected + 1, summary)
    with pytest.raises(RuntimeError, match="the conversion counted"):
        check_counts(result.rows_in, result.rows_written, result.rows_rejected,
                     {**summary, "items_in": summary["items_in"] + 1})
