"""Decoders: a pyramid in, one map at the requested output stride out; names and options."""

import keras
import numpy as np
import pytest

from mtl_tf.models.decoders import DECODERS
from mtl_tf.models.pyramid import Pyramid
from mtl_tf.recipe import RecipeError
from tests.models.image_toy import image_recipe

STRIDES = [2, 4, 8, 16]
SIZE = 32


def _pyramid(strides=STRIDES, channels=(3, 5, 7, 9)):
    maps = [keras.Input((SIZE // s, SIZE // s, c), name=f"c{s}") for s, c in zip(strides, channels)]
    return Pyramid(maps, list(strides))


def _decoded(spec, stride, strides=STRIDES):
    pyramid = _pyramid(strides)
    out = DECODERS.get(spec, "model.decoder").decode(pyramid, stride, "seg_decoder")
    model = keras.Model(pyramid.maps, out)
    rng = np.random.default_rng(0)
    values = model([rng.normal(size=(2, *m.shape[1:])).astype("float32") for m in pyramid.maps])
    return model, keras.ops.convert_to_numpy(values)


@pytest.mark.parametrize("name", ["unet", "fpn", "aspp"])
@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_decoders_end_at_the_requested_output_stride(name, stride):
    model, values = _decoded({"name": name, "filters": 6}, stride)
    assert values.shape[:3] == (2, SIZE // stride, SIZE // stride)
    assert np.isfinite(values).all()
    built = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert built and all(name.startswith("seg_decoder_") for name in built), built


def test_a_stride_coarser_than_every_level_pools_the_deepest_map():
    for name in ("unet", "fpn", "aspp"):
        _, values = _decoded({"name": name, "filters": 4}, 8, strides=[2, 4])
        assert values.shape[:3] == (2, 4, 4)


def test_unet_decoder_goes_up_level_by_level_with_skips():
    model, values = _decoded({"name": "unet"}, 1)
    names = [layer.name for layer in model.layers]
    for level in (2, 1, 0):
        assert {f"seg_decoder_upsample_{level}", f"seg_decoder_skip_{level}",
                f"seg_decoder_conv_{level}_0", f"seg_decoder_conv_{level}_1"} <= set(names)
    # the finest level is at stride 2: upsampled the rest of the way
    assert "seg_decoder_upsample_out" in names
    # filters null: each level's conv blocks keep the skip's channels (the symmetric U-Net)
    assert model.get_layer("seg_decoder_conv_1_1").filters == 5
    assert values.shape == (2, 32, 32, 3)


def test_fpn_decoder_has_laterals_top_down_merges_and_one_sum():
    model, values = _decoded({"name": "fpn", "filters": 6}, 4)
    names = {layer.name for layer in model.layers}
    assert {"seg_decoder_lateral_1", "seg_decoder_lateral_3", "seg_decoder_merge_1", "seg_decoder_smooth_3",
            "seg_decoder_resample_3", "seg_decoder_sum"} <= names
    assert "seg_decoder_lateral_0" not in names  # stride 2 is finer than the output stride 4
    assert "seg_decoder_upsample" not in names
    assert values.shape == (2, 8, 8, 6)


def test_aspp_decoder_has_its_branches_and_the_low_level_skip():
    model, values = _decoded({"name": "aspp", "filters": 6, "rates": [1, 2], "low_level_filters": 3}, 1)
    names = {layer.name for layer in model.layers}
    assert {"seg_decoder_aspp_conv", "seg_decoder_aspp_rate_1", "seg_decoder_aspp_rate_2",
            "seg_decoder_aspp_pool", "seg_decoder_aspp_project", "seg_decoder_low_level", "seg_decoder_refine_1",
            "seg_decoder_upsample"} <= names
    assert model.get_layer("seg_decoder_aspp_rate_2").dilation == 2
    assert model.get_layer("seg_decoder_low_level").input.shape[1:3] == (8, 8)  # stride 4
    assert model.get_layer("seg_decoder_concat").output.shape[-1] == 6 + 3
    without_pooling = _decoded({"name": "aspp", "image_pooling": False}, 1)[0]
    assert "seg_decoder_aspp_pool" not in {layer.name for layer in without_pooling.layers}


def test_aspp_without_a_finer_level_has_no_skip():
    model, values = _decoded({"name": "aspp", "filters": 4}, 1, strides=[8])
    assert "seg_decoder_low_level" not in {layer.name for layer in model.layers}
    assert values.shape == (2, 32, 32, 4)


@pytest.mark.parametrize("spec, message", [
    ({"name": "fpn", "filters": 0}, r"filters must be a positive integer; received 0"),
    ({"name": "aspp", "rates": [2, 2]}, r"rates must be distinct positive integers; received \[2, 2\]"),
    ({"name": "unet", "interpolation": "cubic"}, r"interpolation must be one of bilinear, nearest; received 'cubic'"),
    ({"name": "fpn", "filter": 8}, r"unknown option 'filter' \(did you mean 'filters'\?\)"),
])
def test_bad_decoder_options_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        DECODERS.get(spec, "model.decoder")


def test_unet_filters_list_needs_one_width_per_level():
    decoder = DECODERS.get({"name": "unet", "filters": [4, 4]})
    with pytest.raises(ValueError, match=r"filters lists one width per pyramid level \(4: strides \[2, 4, 8, 16\]\)"):
        decoder.decode(_pyramid(), 1, "seg_decoder")


def test_the_recipe_loader_checks_the_decoder_of_image_recipes_only():
    with pytest.raises(RecipeError, match=r"model.decoder.fpn: unknown option 'filter'"):
        image_recipe(decoder={"name": "fpn", "filter": 8})
    with pytest.raises(RecipeError, match=r"model.decoder: unknown decoder 'fpm'"):
        image_recipe(decoder="fpm")
    from mtl_tf.recipe import parse_recipe
    tabular = {"name": "t", "data": {"source": {"path": "x.csv"}, "features": [{"name": "a", "kind": "numeric"}],
                                     "output_dir": "o"},
               "tasks": [{"name": "y", "type": "binary", "label": "y"}], "model": {"decoder": "fpm"}}
    assert parse_recipe(tabular).model.decoder.name == "fpm"  # no decoder is built for tabular models


def test_pyramids_refuse_inconsistent_levels():
    maps = [keras.Input((8, 8, 2)), keras.Input((4, 4, 2))]
    with pytest.raises(ValueError, match=r"strictly increasing .* received \[4, 4\]"):
        Pyramid(maps, [4, 4])
    with pytest.raises(ValueError, match=r"one stride per map .* received 2 map\(s\) and strides \[4\]"):
        Pyramid(maps, [4])
    pyramid = Pyramid(maps, [4, 8])
    assert pyramid.at(8) is maps[1] and pyramid.deepest is maps[1] and pyramid.widths == [2, 2]
    with pytest.raises(KeyError, match=r"no map at stride 16; strides: \[4, 8\]"):
        pyramid.at(16)
