"""Image trunks as feature pyramids: conv, resnet, unet and Keras Applications backbones."""

import keras
import numpy as np
import pytest

from mtl_tf.models.trunks import TRUNKS
from mtl_tf.models.trunks.keras_app import PYRAMID_LAYERS

X = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")


def _pyramid(spec, shape=(32, 32, 3)):
    x = keras.Input(shape)
    trunk = TRUNKS.get(spec, "model.trunk", name="shared_trunk")
    return trunk, trunk.pyramid(x), x


def _shapes(pyramid):
    return [tuple(m.shape[1:]) for m in pyramid.maps]


def test_conv_trunk_pyramid_is_each_stage_output():
    trunk, pyramid, x = _pyramid({"name": "conv", "filters": [4, 8, 8]})
    assert pyramid.strides == [1, 2, 4]
    assert _shapes(pyramid) == [(32, 32, 4), (16, 16, 8), (8, 8, 8)]
    # stages that keep the resolution share a level: the deeper map is kept
    _, merged, _ = _pyramid({"name": "conv", "filters": [4, 6, 8], "strides": [1, 1, 2]})
    assert merged.strides == [1, 2] and _shapes(merged) == [(32, 32, 6), (16, 16, 8)]


def test_conv_trunk_stem_and_depth():
    trunk, pyramid, x = _pyramid({"name": "conv", "filters": [4, 8], "strides": 2, "stem": 4, "depth": 2})
    assert pyramid.strides == [2, 4, 8]
    assert trunk.widths == [4, 4, 8] and trunk.strides == [2, 2, 2]
    assert len(trunk.blocks) == 4  # two residual blocks per stage
    block = trunk.block(0, "b")
    assert block.widths == [4] and block.strides == [2]


def test_resnet_trunk_defaults_give_strides_2_to_32():
    trunk, pyramid, x = _pyramid("resnet")
    assert pyramid.strides == [2, 4, 8, 16, 32]
    assert _shapes(pyramid) == [(16, 16, 16), (8, 8, 16), (4, 4, 32), (2, 2, 64), (1, 1, 128)]
    assert trunk.default_decoder == "fpn"
    plain = TRUNKS.get("resnet")
    assert plain(keras.Input((32, 32, 3))).shape == (None, 128)  # pooled, as the conv trunk


def test_unet_trunk_levels_max_pool_between_double_convolutions():
    trunk, pyramid, x = _pyramid({"name": "unet", "filters": [4, 8, 16]})
    assert pyramid.strides == [1, 2, 4] and _shapes(pyramid) == [(32, 32, 4), (16, 16, 8), (8, 8, 16)]
    assert [type(layer).__name__ for layer in trunk.levels[1]] == ["MaxPooling2D", "ConvBlock", "ConvBlock"]
    assert trunk.default_decoder == "unet"


@pytest.mark.parametrize("spec", [{"name": "resnet", "filters": [4, 8]}, {"name": "unet", "filters": [4, 8]},
                                  {"name": "conv", "filters": [4, 8], "stem": 4}], ids=lambda s: s["name"])
def test_pyramid_trunks_round_trip_through_saving(spec, tmp_path):
    _, pyramid, x = _pyramid(spec)
    model = keras.Model(x, pyramid.maps)
    expected = [keras.ops.convert_to_numpy(v) for v in model(X)]
    model.save(tmp_path / "trunk.keras")
    restored = keras.saving.load_model(tmp_path / "trunk.keras")
    for got, want in zip(restored(X), expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-5, atol=1e-6)


def test_a_trunk_called_for_its_last_map_is_not_reused_as_a_pyramid():
    trunk = TRUNKS.get({"name": "conv", "filters": [4]})
    trunk(keras.Input((8, 8, 3)))
    with pytest.raises(ValueError, match=r"already called for its last map; make a fresh trunk"):
        trunk.pyramid(keras.Input((8, 8, 3)))


def test_resnet50_builds_offline_with_weights_none():
    trunk, pyramid, x = _pyramid({"name": "keras_app", "application": "ResNet50"})
    assert pyramid.strides == [4, 8, 16, 32]
    assert _shapes(pyramid) == [(8, 8, 256), (4, 4, 512), (2, 2, 1024), (1, 1, 2048)]
    # the pyramid ends at the application's last layer: every parameter of it is there
    reference = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert trunk.count_params() == reference.count_params()
    outputs = keras.Model(x, pyramid.maps)(X)
    assert all(np.isfinite(keras.ops.convert_to_numpy(o)).all() for o in outputs)


def test_mobilenet_v3_small_builds_offline_without_its_own_preprocessing():
    trunk, pyramid, x = _pyramid({"name": "keras_app", "application": "MobileNetV3Small"}, (64, 64, 3))
    assert _shapes(pyramid) == [(16, 16, 16), (8, 8, 24), (4, 4, 48), (2, 2, 96)]
    backbone_layers = {layer.name for layer in trunk.features.layers}
    assert "rescaling" not in backbone_layers  # include_preprocessing=False: our normalisation only
    reference = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(64, 64, 3),
                                                    include_preprocessing=False)
    head = reference.get_layer("conv_1").count_params() + reference.get_layer("conv_1_bn").count_params()
    assert trunk.count_params() == reference.count_params() - head  # up to expanded_conv_10_add
    keras.Model(x, pyramid.maps)(np.zeros((1, 64, 64, 3), "float32"))


def test_keras_app_loads_a_local_weights_file(tmp_path):
    source = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3),
                                                 include_preprocessing=False)
    path = tmp_path / "mobilenet.weights.h5"
    source.save_weights(path)
    trunk, pyramid, x = _pyramid({"name": "keras_app", "application": "MobileNetV3Small", "weights": str(path)})
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(trunk.features.get_layer("conv").kernel),
                                  keras.ops.convert_to_numpy(source.get_layer("conv").kernel))
    assert trunk.get_config()["weights"] is None  # a saved model carries the weights itself


@pytest.mark.parametrize("spec, message", [
    ({"weights": "imagenet"}, r"weights 'imagenet' would download ResNet50's weights, which this framework never "
                              r"does; .* pass that local path, or use weights: null"),
    ({"weights": "/nowhere/resnet.weights.h5"}, r"keras_app weights file not found: '/nowhere/resnet.weights.h5'"),
    ({"weights": "/nowhere/resnet.h5"}, r"must be a local .weights.h5 file \(Keras save_weights\); received"),
    ({"application": "ResNet5O"}, r"application 'ResNet5O' is not supported \(did you mean 'ResNet50'\?\); "
                                  r"allowed: ResNet50"),
    ({"options": {"include_top": True}}, r"options: include_top are set by the trunk"),
    ({"options": {"alhpa": 0.5}}, r"ResNet50 has no argument 'alhpa'"),
])
def test_keras_app_refuses_downloads_and_bad_options_in_one_line(spec, message):
    with pytest.raises(ValueError, match=message) as caught:
        TRUNKS.get({"name": "keras_app", "application": "ResNet50", **spec}, "model.trunk")
    assert "\n" not in str(caught.value)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Keras warns about each layer it cannot match
def test_a_weights_file_of_another_application_is_refused(tmp_path):
    source = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3),
                                                 include_preprocessing=False)
    path = tmp_path / "other.weights.h5"
    source.save_weights(path)
    with pytest.raises(ValueError, match=r"weights file .* does not fit ResNet50 at input \(32, 32, 3\)"):
        _pyramid({"name": "keras_app", "application": "ResNet50", "weights": str(path)})


@pytest.mark.slow  # builds thirteen backbones (about 20 s)
@pytest.mark.parametrize("application", sorted(PYRAMID_LAYERS))
def test_every_listed_application_gives_maps_at_strides_4_to_32(application):
    _, pyramid, _ = _pyramid({"name": "keras_app", "application": application}, (64, 64, 3))
    assert [m.shape[1:3] for m in pyramid.maps] == [(16, 16), (8, 8), (4, 4), (2, 2)]


def test_an_image_model_on_a_keras_application_reloads_with_its_weights(tmp_path):
    from tests.models.image_toy import image_batch, image_model, numpy

    model = image_model("hps", trunk={"name": "keras_app", "application": "MobileNetV3Small"})
    batch = image_batch(2)
    expected = numpy(model(batch))
    model.save(tmp_path / "model.keras")
    # Keras numbers some MobileNetV3 layers by a global counter: build another one first so
    # that the reloaded backbone's generated names differ from the saved one's.
    keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    restored = keras.saving.load_model(tmp_path / "model.keras")
    for task, value in numpy(restored(batch)).items():
        np.testing.assert_allclose(value, expected[task], rtol=1e-5, atol=1e-6)
