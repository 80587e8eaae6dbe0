"""Recipe keys for images: sources, image features, dense tasks, augmentation, training options."""

import pytest

from mtl_tf.recipe.loader import RecipeError, parse_recipe


def image_recipe(**changes):
    raw = {
        "name": "scenes",
        "data": {"source": {"kind": "manifest", "path": "raw/manifest.jsonl"},
                 "features": [{"name": "image", "kind": "image", "height": 32, "width": 48}],
                 "output_dir": "out/dataset"},
        "tasks": [{"name": "semantic", "type": "segmentation", "label": "mask", "classes": ["sky", "road"]},
                  {"name": "depth", "type": "depth", "label": "depth", "depth_scale": 256},
                  {"name": "objects", "type": "detection", "label": "boxes", "classes": ["car"]},
                  {"name": "presence", "type": "multilabel", "label": "mask", "derive": "class_presence",
                   "classes": ["sky", "road"]}],
    }
    for key, value in changes.items():
        node, *path = key.split("__")
        target = raw
        for part in [node, *path][:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = [node, *path][-1]
        target[int(last) if last.isdigit() else last] = value
    return raw


def test_an_image_recipe_reads_with_its_defaults():
    recipe = parse_recipe(image_recipe(), check=False)
    image = recipe.data.image_feature
    assert (image.height, image.width, image.channels, image.encoding, image.resize) == (32, 48, 3, "png", "stretch")
    assert recipe.data.split_names() == ["train", "validation", "test"]
    assert [t.label_key for t in recipe.tasks] == ["mask", "depth", "boxes", "mask:class_presence"]
    assert recipe.tasks[0].ignore_index == 255 and recipe.tasks[2].max_boxes == 32


def test_a_recipe_without_a_source_kind_is_still_csv():
    raw = {"name": "t", "data": {"source": {"path": "x.csv"}, "features": [{"name": "a", "kind": "numeric"}],
                                 "output_dir": "o"},
           "tasks": [{"name": "y", "type": "binary", "label": "y"}]}
    recipe = parse_recipe(raw, check=False)
    assert recipe.data.source.kind == "csv"
    dumped = recipe.model_dump(mode="json")
    assert "height" not in dumped["data"]["features"][0] and "augment" not in dumped["data"]
    assert "ignore_index" not in dumped["tasks"][0] and "decoder" not in dumped["model"]
    assert parse_recipe(dumped, check=False) == recipe


@pytest.mark.parametrize("key, value, words", [
    ("data__source__kind", "manifst", ["data.source.kind", "'manifst'", "did you mean 'manifest'", "npz"]),
    ("data__source__splits", {"train": "tr"}, ["data.source.splits", "unknown key", "allowed: delimiter"]),
    ("data__features__0__height", None, ["data.features.0", "needs 'height' and 'width'"]),
    ("tasks__0__depth_scale", 3, ["tasks.0", "depth_scale", "is for depth"]),
    ("tasks__1__type", "segmentation", ["tasks.1", "needs 'classes'"]),
    ("tasks__0__ignore_index", 1, ["tasks.0", "ignore_index must be at least 2"]),
    ("tasks__3__type", "binary", ["tasks.3", "class_presence makes a multilabel label"]),
])
def test_bad_image_keys_are_one_line_naming_the_key(key, value, words):
    with pytest.raises(RecipeError) as err:
        parse_recipe(image_recipe(**{key: value}), check=False)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_dense_tasks_need_exactly_one_image_feature():
    raw = image_recipe()
    raw["data"]["features"].append({"name": "other", "kind": "image", "height": 8, "width": 8})
    with pytest.raises(RecipeError, match="exactly one image feature"):
        parse_recipe(raw, check=False)


def test_image_features_need_an_image_source_and_augment_needs_images():
    raw = image_recipe()
    raw["data"]["source"] = {"kind": "csv", "path": "x.csv"}
    with pytest.raises(RecipeError, match="need an image source"):
        parse_recipe(raw, check=False)
    tabular = {"name": "t", "data": {"source": {"path": "x.csv"}, "features": [{"name": "a", "kind": "numeric"}],
                                     "output_dir": "o", "augment": {"flip_horizontal": True}},
               "tasks": [{"name": "y", "type": "binary", "label": "y"}]}
    with pytest.raises(RecipeError, match="augment applies to image features"):
        parse_recipe(tabular, check=False)


def test_npz_splits_come_from_the_file():
    raw = image_recipe()
    raw["data"]["source"] = {"kind": "npz", "path": "d.npz", "splits": {"train": "train", "test": "test"}}
    assert parse_recipe(raw, check=False).data.split_names() == ["train", "test"]
    raw["data"]["split"] = {"train": 0.5, "validation": 0.25, "test": 0.25}
    with pytest.raises(RecipeError, match="remove data.split"):
        parse_recipe(raw, check=False)


def test_augment_and_training_options():
    raw = image_recipe()
    raw["data"]["augment"] = {"flip_horizontal": True, "scale": [0.8, 1.25], "brightness": 0.2}
    raw["training"] = {"mixed_precision": "mixed_bfloat16", "jit_compile": True}
    recipe = parse_recipe(raw, check=False)
    assert recipe.data.augment.active and recipe.data.augment.scale == (0.8, 1.25)
    assert recipe.training.mixed_precision == "mixed_bfloat16" and recipe.training.jit_compile is True
    raw["data"]["augment"] = {"scale": [1.5, 1.0]}
    with pytest.raises(RecipeError, match="0 < low <= high"):
        parse_recipe(raw, check=False)


def test_an_npz_recipe_with_its_own_splits_reads_back_from_its_dump_and_as_a_baseline():
    from mtl_tf.runner import single_task_recipe

    raw = image_recipe()
    raw["data"]["source"] = {"kind": "npz", "path": "d.npz", "splits": {"train": "train", "test": "test"}}
    raw["data"]["split"] = {"key": "patient"}
    recipe = parse_recipe(raw, check=False)
    assert parse_recipe(recipe.model_dump(mode="json"), check=False) == recipe
    single = single_task_recipe(recipe, "semantic")
    assert single.data.split.key == "patient" and single.data.split_names() == ["train", "test"]
