"""Every architecture on image models: a dense task at stride 1, one at stride 4 and an
image-level task; shapes, saving, ownership, per-task sub-models, defaults and errors."""

import keras
import numpy as np
import pytest

from mtl_tf.models import build_model, check_ownership, parameter_counts, task_submodel
from mtl_tf.models.architectures import ARCHITECTURES, Architecture, image_architectures
from mtl_tf.models.naming import layer_owner
from tests.models.image_toy import (image_batch, image_model, image_recipe, image_spec, image_tasks,
                                    numpy)

TASKS = ["mask", "scene", "boxes"]
SMALL_TRUNK = {"name": "resnet", "filters": [4, 8, 16], "depth": 1}
ARCHITECTURE_SPECS = ["hps", {"name": "hps", "shared_decoder": True}, "sps", "eds", "mtan",
                      {"name": "mtan", "fusion": True}, "cross_stitch", "etr_nlp",
                      {"name": "mmoe", "experts": 2}, {"name": "dselect_k", "experts": 3, "top_k": 2},
                      {"name": "ple", "task_experts": 1, "shared_experts": 1}]


def _id(spec):
    return spec if isinstance(spec, str) else "-".join(f"{v}" for v in spec.values())


def test_every_registered_architecture_builds_image_models():
    assert image_architectures() == sorted(ARCHITECTURES.names())


@pytest.mark.parametrize("architecture", ARCHITECTURE_SPECS, ids=_id)
def test_outputs_saving_ownership_and_task_submodels(architecture, tmp_path):
    model = image_model(architecture, trunk=SMALL_TRUNK, tasks=image_tasks(detection=True))
    batch = image_batch(3)
    outputs = numpy(model(batch))
    assert {k: v.shape for k, v in outputs.items()} == {"mask": (3, 32, 32, 2), "scene": (3, 3),
                                                       "boxes": (3, 8, 8, 4)}
    for task in TASKS:  # probabilities per pixel / per image
        np.testing.assert_allclose(outputs[task].sum(-1), 1.0, rtol=1e-5)
    assert model.input["image"].dtype == "uint8"
    assert model.get_layer("shared_image_normalize") is not None

    for layer in model.layers[1:]:
        assert layer_owner(layer.name, TASKS) or layer.name.startswith("shared_"), layer.name
    check_ownership(model)

    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    for task, value in numpy(restored(batch)).items():
        np.testing.assert_allclose(value, outputs[task], rtol=1e-5, atol=1e-6)

    for task in TASKS:
        sub = task_submodel(model, task)
        owners = {layer_owner(layer.name, TASKS) for layer in sub.layers}
        assert owners <= {None, task}, (task, sorted(layer.name for layer in sub.layers))
        np.testing.assert_allclose(numpy(sub(batch))[task], outputs[task], rtol=1e-5, atol=1e-6)
        assert parameter_counts(sub)["trainable"] < parameter_counts(model)["trainable"]
    mask_layers = {layer.name for layer in task_submodel(model, "mask").layers}
    if not (isinstance(architecture, dict) and architecture.get("shared_decoder")):
        assert any(name.startswith("mask_decoder_") for name in mask_layers), sorted(mask_layers)
    assert not any(name.startswith(("boxes", "scene")) for name in mask_layers)


def test_hps_shared_decoder_is_one_decoder_per_output_stride():
    tasks = image_tasks() + [image_tasks(detection=True)[2]]
    model = image_model({"name": "hps", "shared_decoder": True}, trunk=SMALL_TRUNK, tasks=tasks)
    names = {layer.name for layer in model.layers}
    assert {"shared_decoder_s1_lateral_0", "shared_decoder_s4_lateral_1"} <= names
    assert not any(n.startswith(("mask_decoder", "boxes_decoder")) for n in names)
    one_stride = image_model({"name": "hps", "shared_decoder": True}, trunk=SMALL_TRUNK,
                             tasks=image_tasks() + [image_tasks()[0].__class__("edges")])
    shared = [layer for layer in one_stride.layers if layer.name.startswith("shared_decoder_")]
    assert shared and all("_s1_" not in layer.name for layer in shared)
    # both dense tasks read the same decoded map
    assert one_stride.get_layer("mask").input is one_stride.get_layer("edges").input


def test_mtan_gives_each_task_its_own_attended_pyramid():
    model = image_model("mtan", trunk=SMALL_TRUNK)
    names = {layer.name for layer in model.layers}
    # four pyramid levels (stem, three stages), one attention module per task and level
    assert {f"{t}_attention_{level}" for t in ("mask", "scene") for level in range(4)} <= names
    assert not any("cross_attention" in n for n in names)  # Liu et al.'s form: no fusion on images
    attention = model.get_layer("mask_attention_2")
    assert len(attention.input) == 2  # the level's shared map and the task's previous attended map


def test_eds_and_the_unet_trunk_default_to_the_unet_decoder():
    eds = image_model("eds", trunk=SMALL_TRUNK, decoder=None)
    names = {layer.name for layer in eds.layers}
    assert "mask_decoder_skip_0" in names and "shared_encoder" in names
    assert "scene_decoder_skip_0" in names  # eds decodes for image-level tasks too, then pools
    assert "scene_pool" in names
    unet = image_model("hps", trunk={"name": "unet", "filters": [4, 8]}, decoder=None)
    assert "mask_decoder_skip_0" in {layer.name for layer in unet.layers}
    fpn = image_model("hps", trunk=SMALL_TRUNK, decoder=None)
    assert "mask_decoder_lateral_0" in {layer.name for layer in fpn.layers}
    explicit = image_model("eds", trunk=SMALL_TRUNK, decoder={"name": "aspp", "filters": 4})
    assert "mask_decoder_aspp_project" in {layer.name for layer in explicit.layers}


def test_image_level_tasks_pool_the_deepest_map():
    model = image_model("hps", trunk=SMALL_TRUNK)
    pool = model.get_layer("scene_pool")
    assert tuple(pool.input.shape[1:]) == (2, 2, 16)  # stride 16: the third stage, 16 channels


def test_tabular_features_join_the_pooled_vector_of_image_level_tasks():
    model = image_model("hps", trunk=SMALL_TRUNK, numeric=True)
    joined = model.get_layer("scene_features")
    assert joined.output.shape[-1] == 16 + 2  # pooled channels + standardised speed and missing flag
    batch = image_batch(2, numeric=True)
    changed = dict(batch, speed=batch["speed"] + 50)
    before, after = numpy(model(batch)), numpy(model(changed))
    np.testing.assert_allclose(before["mask"], after["mask"])  # dense tasks do not read it
    assert not np.allclose(before["scene"], after["scene"])


@pytest.mark.parametrize("trunk", [{"name": "conv", "filters": [4, 8]}, {"name": "unet", "filters": [4, 8, 8]},
                                   {"name": "resnet", "filters": [4, 8], "depth": 1}], ids=lambda t: t["name"])
@pytest.mark.parametrize("decoder", ["unet", "fpn", "aspp"])
def test_every_image_trunk_with_every_decoder(trunk, decoder):
    spec = {"name": decoder, "filters": 4}
    model = image_model("hps", trunk=trunk, decoder=spec, tasks=image_tasks(detection=True))
    outputs = numpy(model(image_batch(1)))
    assert outputs["mask"].shape == (1, 32, 32, 2) and outputs["boxes"].shape == (1, 8, 8, 4)


def test_grayscale_images():
    shape = (32, 32, 1)
    model = image_model("hps", trunk=SMALL_TRUNK, shape=shape)
    assert model.get_layer("shared_image_normalize").mean == [100.0]
    assert numpy(model(image_batch(2, shape=shape)))["mask"].shape == (2, 32, 32, 2)


def test_image_sizes_must_be_multiples_of_the_deepest_stride():
    with pytest.raises(ValueError, match=r"the image is 36x32 but the trunk's deepest stride is 16; height and "
                                         r"width must be multiples of it"):
        image_model("hps", trunk=SMALL_TRUNK, shape=(36, 32, 3))


def test_an_mlp_trunk_is_refused_for_images():
    with pytest.raises(ValueError, match=r"model.trunk: image models need an image trunk that gives a feature "
                                         r"pyramid \(conv, keras_app, resnet, unet\); received mlp"):
        image_model("hps", trunk={"name": "mlp", "units": [8]})


def test_block_routing_architectures_need_a_trunk_that_splits_into_blocks():
    trunk = {"name": "keras_app", "application": "MobileNetV3Small"}
    with pytest.raises(ValueError, match=r"does not describe its blocks .* use mlp, conv, resnet or unet"):
        image_model("cross_stitch", trunk=trunk)


def test_an_architecture_without_an_image_path_names_those_with_one():
    with pytest.raises(ValueError, match=r"architecture 'Architecture' does not build image models .* "
                                         r"architectures that do: cross_stitch, dselect_k, eds"):
        Architecture().pyramids(keras.Input((8, 8, 3)), [])


def test_two_image_features_are_refused():
    tasks = image_tasks()
    spec = image_spec(tasks=tasks)
    second = spec.features[0].model_copy(update={"name": "rear"})
    spec = spec.model_copy(update={"features": [*spec.features, second]})
    recipe = image_recipe(tasks=tasks, trunk=SMALL_TRUNK)
    features = [*recipe.data.features, recipe.data.features[0].model_copy(update={"name": "rear"})]
    recipe = recipe.model_copy(update={"data": recipe.data.model_copy(update={"features": features})})
    with pytest.raises(ValueError, match=r"an image model takes one image feature; received 2: image, rear"):
        build_model(recipe, spec, tasks=tasks)


def test_a_bad_decoder_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown decoder 'fpm' \(did you mean 'fpn'\?\); allowed: aspp, fpn, unet"):
        image_model("hps", trunk=SMALL_TRUNK, decoder="fpm")


def test_image_models_compute_in_the_mixed_precision_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = image_model("hps", trunk=SMALL_TRUNK, decoder={"name": "aspp", "filters": 4})
        outputs = model(image_batch(1))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("shared_image_normalize").compute_dtype == "bfloat16"
    assert model.get_layer("mask_decoder_aspp_project").compute_dtype == "bfloat16"
    assert keras.backend.standardize_dtype(outputs["mask"].dtype) == "float32"  # the head's own dtype


def test_etr_nlp_on_images_keeps_its_primitives_fixed():
    from mtl_tf.models import parameter_breakdown

    model = image_model("etr_nlp", trunk=SMALL_TRUNK)
    counts = parameter_breakdown(model)
    assert counts["fixed_primitives"] > 0
    assert model.get_layer("shared_nlp_0").trainable_weights == []
    assert {"mask_branch_0", "mask_route_0", "scene_branch_2"} <= {layer.name for layer in model.layers}


def test_mmoe_gates_on_images_weigh_the_experts_of_every_level():
    from mtl_tf.models import expert_utilisation

    model = image_model({"name": "mmoe", "experts": 2}, trunk=SMALL_TRUNK)
    used = expert_utilisation(model, [image_batch(4)])
    assert len(used["mask"]) == 4  # one row of weights per pyramid level
    for level in used["mask"]:
        assert len(level) == 2 and abs(sum(level) - 1.0) < 1e-5
