"""ETR-NLP: the primitives stay fixed, the routing splits channels by gamma."""

import keras
import numpy as np
import pytest

from mtl_tf.models import parameter_breakdown, task_submodel
from mtl_tf.models.layers import GroupLinear, NonLearnablePrimitives
from tests.models.test_layers import assert_round_trip
from tests.models.toy import fit_losses, numpy, toy_data, toy_model


def _fixed_layers(model):
    return [layer for layer in model.layers if isinstance(layer, NonLearnablePrimitives)]


@pytest.mark.parametrize("image", [False, True], ids=["mlp", "conv"])
def test_primitives_are_not_trainable_and_unchanged_by_training(image):
    model = toy_model({"name": "etr_nlp", "gamma": 0.5}, image)
    fixed = _fixed_layers(model)
    assert [layer.name for layer in fixed] == ["shared_nlp_0", "shared_nlp_1"]
    fixed_ids = {id(v) for layer in fixed for v in layer.weights}
    assert fixed_ids and not fixed_ids & {id(v) for v in model.trainable_weights}
    before = [keras.ops.convert_to_numpy(v).copy() for layer in fixed for v in layer.weights]
    mix_before = keras.ops.convert_to_numpy(model.get_layer("shared_nlp_mix_0").weights[0]).copy()
    fit_losses(model, *toy_data(64, image), epochs=2)
    after = [keras.ops.convert_to_numpy(v) for layer in fixed for v in layer.weights]
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)
    # ...while the learnable group-wise mix did train.
    assert not np.allclose(mix_before, keras.ops.convert_to_numpy(model.get_layer("shared_nlp_mix_0").weights[0]))


def test_gamma_splits_each_block_into_shared_and_task_channels():
    model = toy_model({"name": "etr_nlp", "gamma": 0.25}, trunk={"name": "mlp", "units": [8, 8]})
    assert model.get_layer("shared_nlp_mix_0").output.shape == (None, 2)
    assert model.get_layer("a_branch_0").output.shape == (None, 6)
    assert model.get_layer("a_route_1").output.shape == (None, 8)
    shared_only = toy_model({"name": "etr_nlp", "gamma": 1.0})
    assert not [layer for layer in shared_only.layers if "_branch_" in layer.name]
    task_only = toy_model({"name": "etr_nlp", "gamma": 0.0})
    assert not _fixed_layers(task_only)


def test_parameter_breakdown_reports_learnable_and_fixed_counts():
    model = toy_model({"name": "etr_nlp", "gamma": 0.5})
    counts = parameter_breakdown(model)
    # block 0: 6 inputs -> projection 6x4 + fourier 6x4 + 4 phases; block 1: 4 -> 4x4 + 4x4 + 4
    assert counts["fixed_primitives"] == (24 + 24 + 4) + (16 + 16 + 4)
    assert counts["non_trainable"] == counts["fixed_primitives"]
    assert counts["trainable"] == counts["shared_trainable"] + counts["task_trainable"]
    sub = task_submodel(model, "a")
    assert "b_branch_0" not in {layer.name for layer in sub.layers}


def test_classical_filters_find_edges_and_shift_moves_pixels():
    image = np.zeros((1, 4, 4, 1), "float32")
    image[0, :, 2:, 0] = 1.0  # a vertical edge between columns 1 and 2
    layer = NonLearnablePrimitives(["classical_filters", "shift"])
    out = keras.ops.convert_to_numpy(layer(image))
    assert out.shape == (1, 4, 4, 7)
    sobel_x, sobel_y = out[0, 1:3, :, 0], out[0, 1:3, :, 1]
    assert (sobel_x[:, 1:3] > 0).all() and np.allclose(sobel_x[:, [0, 3]], [[0, -1]] * 2)  # col 3 sees the zero padding
    np.testing.assert_allclose(sobel_y, 0, atol=1e-6)
    left = out[0, :, :, 6]  # moved one pixel: column j now holds column j - 1
    np.testing.assert_array_equal(left[:, 1:], image[0, :, :-1, 0])


def test_primitives_and_group_linear_round_trip():
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 2)).astype("float32")
    assert_round_trip(NonLearnablePrimitives(seed=3), x)
    assert_round_trip(NonLearnablePrimitives(units=3), x[:, 0, 0, :])
    assert_round_trip(GroupLinear(4, groups=2, stride=2), x)


def test_group_linear_keeps_groups_apart():
    layer = GroupLinear(4, groups=2)
    x = np.zeros((1, 6), "float32")
    base = keras.ops.convert_to_numpy(layer(x))
    x[0, 0] = 1.0  # first group's input moves only the first group's outputs
    moved = keras.ops.convert_to_numpy(layer(x)) - base
    assert np.abs(moved[0, :2]).sum() > 0 and np.all(moved[0, 2:] == 0)
    with pytest.raises(ValueError, match=r"groups \(2\) must divide the input width \(5\)"):
        GroupLinear(4, groups=2)(np.zeros((1, 5), "float32"))


def test_unknown_primitive_lists_the_allowed_ones():
    with pytest.raises(ValueError, match=r"not all available for tabular features; allowed: "
                                         r"random_projection, random_fourier"):
        NonLearnablePrimitives(["sobel"])(np.zeros((1, 3), "float32"))


def test_etr_nlp_reloads_with_the_same_fixed_weights(tmp_path):
    model = toy_model({"name": "etr_nlp"}, image=True)
    x, _ = toy_data(3, image=True)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    for old, new in zip(_fixed_layers(model), _fixed_layers(restored)):
        for a, b in zip(old.weights, new.weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    np.testing.assert_allclose(numpy(restored(x))["a"], numpy(model(x))["a"], rtol=1e-5)
