"""Gates, expert utilisation and its heatmap."""

import keras
import numpy as np
import pytest

from mtl_tf.models import expert_columns, expert_utilisation, utilisation_heatmap
from mtl_tf.models.layers import DSelectKGate, ExpertGate, ExpertMixture
from tests.models.test_layers import assert_round_trip
from tests.models.toy import toy_data, toy_model


def test_mmoe_utilisation_gives_each_task_a_distribution_over_experts(tmp_path):
    model = toy_model({"name": "mmoe", "experts": 3})
    x, _ = toy_data(20)
    used = expert_utilisation(model, [x[:8], (x[8:], None)])
    assert set(used) == {"a", "b"}
    for weights in used.values():
        assert len(weights) == 3
        np.testing.assert_allclose(sum(weights), 1.0, rtol=1e-5)
    gate = keras.Model(model.input, model.get_layer("a_gate").output)
    np.testing.assert_allclose(used["a"], keras.ops.convert_to_numpy(gate(x)).mean(axis=0), rtol=1e-5)
    path = utilisation_heatmap(used, tmp_path / "plots" / "experts.png", columns=expert_columns(model))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ple_utilisation_is_per_level_over_every_expert_of_the_level(tmp_path):
    model = toy_model({"name": "ple", "task_experts": 2, "shared_experts": 1})
    columns = expert_columns(model)
    assert columns[0] == ["shared_a_expert_0_level_0", "shared_a_expert_1_level_0", "shared_b_expert_0_level_0",
                          "shared_b_expert_1_level_0", "shared_expert_0_level_0"]
    assert columns[1] == ["a_expert_0_level_1", "a_expert_1_level_1", "b_expert_0_level_1",
                          "b_expert_1_level_1", "shared_expert_0_level_1"]
    used = expert_utilisation(model, [toy_data(10)[0]])
    assert set(used) == {"a", "b", "shared"}
    assert len(used["a"]) == 2 and len(used["shared"]) == 1  # no shared gate at the last level
    a0 = used["a"][0]
    assert a0[2] == 0 and a0[3] == 0  # task a's gate never sees task b's experts
    np.testing.assert_allclose(sum(a0), 1.0, rtol=1e-5)
    assert all(v > 0 for v in used["shared"][0])  # the shared gate weighs every expert
    assert utilisation_heatmap(used, tmp_path / "ple.png", columns=columns).stat().st_size > 0


def test_utilisation_needs_gates_and_rows():
    with pytest.raises(ValueError, match=r"has no expert gates"):
        expert_utilisation(toy_model("hps"), [toy_data(2)[0]])
    with pytest.raises(ValueError, match=r"received no rows"):
        expert_utilisation(toy_model("mmoe"), [])


def test_dselect_k_weights_sum_to_one_and_become_exact_selections():
    gate = DSelectKGate(["e0", "e1", "e2", "e3", "e4"], k=1, gamma=1.0)
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    weights = keras.ops.convert_to_numpy(gate(x))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    # Codes far outside the smooth step's transition select exactly one expert.
    kernel, bias = gate.dense.weights
    kernel.assign(np.zeros(kernel.shape, "float32"))
    bias.assign(np.array([5.0, -5.0, -5.0], "float32"))  # bits (low first) 1, 0, 0: code 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gate(x)), np.eye(5)[[1] * 6], atol=1e-6)
    bias.assign(np.array([5.0, 5.0, 5.0], "float32"))  # code 7, past the 5 experts: expert 7 mod 5
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gate(x)), np.eye(5)[[2] * 6], atol=1e-6)
    assert_round_trip(gate, x)


def test_softmax_gate_pools_images_and_mixture_weighs_experts():
    gate = ExpertGate(["e0", "e1"])
    images = np.random.default_rng(1).normal(size=(2, 4, 4, 3)).astype("float32")
    assert gate(images).shape == (2, 2)
    assert_round_trip(gate, images)
    weights = np.array([[1.0, 0.0], [0.25, 0.75]], "float32")
    e0, e1 = np.ones((2, 3), "float32"), np.full((2, 3), 5.0, "float32")
    mixed = keras.ops.convert_to_numpy(ExpertMixture()([weights, e0, e1]))
    np.testing.assert_allclose(mixed, [[1, 1, 1], [4, 4, 4]])
    with pytest.raises(ValueError, match=r"weighs 2 experts but 1 expert outputs"):
        ExpertMixture()([weights, e0])
