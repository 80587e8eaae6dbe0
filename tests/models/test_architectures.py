"""Every architecture on tabular (mlp) and image (conv) trunks: shapes, naming, saving,
per-task sub-models and learning."""

import keras
import numpy as np
import pytest

from mtl_tf.models import check_ownership, parameter_counts, shared_variables, task_submodel, task_variables
from mtl_tf.models.architectures import ARCHITECTURES
from mtl_tf.models.naming import layer_owner
from tests.models.toy import ARCHITECTURE_NAMES, TASKS, fit_losses, numpy, toy_data, toy_model

# The architectures of the real-data benchmark run in the default test run; the others, and
# image models, also in the slow run (CI), to keep the default run short.
BENCHMARKED = {"hps", "mmoe", "ple", "cross_stitch", "etr_nlp"}


def _default_for(names, keep=BENCHMARKED):
    return [n if n in keep else pytest.param(n, marks=pytest.mark.slow) for n in names]

# Layers each architecture keeps out of task "a"'s sub-model (besides b's tower and head).
ONLY_B = {
    "hps": [], "sps": ["b_trunk"], "cross_stitch": ["b_cross_stitch_1"], "eds": ["b_decoder"],
    "mmoe": ["b_gate", "b_mixture"], "dselect_k": ["b_gate"], "ple": ["b_expert_0_level_1", "b_gate_level_1"],
    "mtan": ["b_cross_attention"], "etr_nlp": ["b_branch_0", "b_branch_1"],
}


def test_every_architecture_is_registered():
    assert set(ARCHITECTURE_NAMES) <= set(ARCHITECTURES.names())


@pytest.mark.parametrize("name, image", [(n, False) for n in ARCHITECTURE_NAMES] + [
    (n, True) if n in BENCHMARKED else pytest.param(n, True, marks=pytest.mark.slow) for n in ARCHITECTURE_NAMES])
def test_outputs_names_saving_and_task_submodel(name, image, tmp_path):
    model = toy_model(name, image)
    x, _ = toy_data(5, image)
    outputs = numpy(model(x))
    assert {k: v.shape for k, v in outputs.items()} == {"a": (5,), "b": (5,)}
    assert all(((v > 0) & (v < 1)).all() for v in outputs.values())

    # Naming convention: a layer is a task's or shared, so training can split the variables,
    # and a task's layer feeds no other task (so its own gradient is all it gets).
    for layer in model.layers[1:]:
        assert layer_owner(layer.name, TASKS) or layer.name.startswith("shared_"), layer.name
    check_ownership(model)

    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    for task, value in numpy(restored(x)).items():
        np.testing.assert_allclose(value, outputs[task], rtol=1e-5, atol=1e-6)

    sub = task_submodel(model, "a")
    kept = {layer.name for layer in sub.layers}
    assert not {"b_tower", "b_head", *ONLY_B[name]} & kept, kept
    np.testing.assert_allclose(numpy(sub(x))["a"], outputs["a"], rtol=1e-5, atol=1e-6)
    assert parameter_counts(sub)["trainable"] < parameter_counts(model)["trainable"]


@pytest.mark.parametrize("name", _default_for(ARCHITECTURE_NAMES))
def test_loss_decreases_on_a_learnable_tabular_problem(name):
    model = toy_model(name)
    losses = fit_losses(model, *toy_data(128), epochs=12)
    assert losses[-1] < 0.6 * losses[0], losses


@pytest.mark.slow
@pytest.mark.parametrize("name", ARCHITECTURE_NAMES)
def test_loss_decreases_on_a_learnable_image_problem(name):
    model = toy_model(name, image=True)
    losses = fit_losses(model, *toy_data(128, image=True), epochs=8)
    assert losses[-1] < 0.95 * losses[0], losses


@pytest.mark.parametrize("spec, message", [
    ({"name": "mmoe", "experts": 0}, r"experts must be an integer >= 1; received 0"),
    ({"name": "mmoe", "gate": "top1"}, r"gate must be one of softmax, dselect_k; received 'top1'"),
    ({"name": "etr_nlp", "gamma": 1.5}, r"gamma must be a number in \[0, 1\]; received 1.5"),
    ({"name": "sps", "penalty_weight": -1}, r"penalty_weight must be a number >= 0; received -1"),
    ({"name": "ple", "task_expert": 2}, r"unknown option 'task_expert' \(did you mean 'task_experts'\?\)"),
])
def test_bad_options_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        toy_model(spec)


def test_eds_unet_refuses_sizes_it_cannot_upsample_back():
    inputs = keras.Input((6, 6, 2))
    architecture = ARCHITECTURES.get({"name": "eds"}, trunk={"name": "conv", "filters": [4, 4, 4]})
    with pytest.raises(ValueError, match=r"multiples of the encoder's total stride 4; received input shape"):
        architecture.build(inputs, [])


def test_unet_decoder_returns_full_resolution_maps_without_pooling():
    inputs = keras.Input((8, 8, 2))
    trunk = {"name": "conv", "filters": [4, 8], "global_pool": False, "batch_norm": False}
    from mtl_tf.tasks import BinaryTask
    reps = ARCHITECTURES.get({"name": "eds"}, trunk=trunk, tower={"name": "mlp", "units": []}).build(
        inputs, [BinaryTask("a")])
    assert reps["a"].shape == (None, 8, 8, 4)


def test_ple_levels_follow_the_trunk_blocks_and_shared_gate_skips_the_last_level():
    model = toy_model({"name": "ple", "task_experts": 2, "shared_experts": 1},
                      trunk={"name": "mlp", "units": [8, 6, 4]})
    names = {layer.name for layer in model.layers}
    assert {"shared_gate_level_0", "shared_gate_level_1"} <= names
    assert "shared_gate_level_2" not in names
    # Below the last level a task's experts feed the shared gate: every task trains them.
    assert model.get_layer("a_gate_level_1").experts == ["shared_a_expert_0_level_1", "shared_a_expert_1_level_1",
                                                         "shared_expert_0_level_1"]
    assert model.get_layer("shared_a_gate_level_0").task == "a"
    assert len(model.get_layer("shared_gate_level_0").experts) == 5  # 2 per task + 1 shared
    assert model.get_layer("a_expert_0_level_2").output.shape == (None, 4)


@pytest.mark.parametrize("name", ARCHITECTURE_NAMES)
def test_task_and_shared_variables_partition_the_trainable_weights(name):
    model = toy_model(name)
    a, b = ({id(v) for v in task_variables(model, t)} for t in TASKS)
    shared = {id(v) for v in shared_variables(model)}
    assert a and b and not (a & b) and not (a & shared) and not (b & shared)
    assert a | b | shared == {id(v) for v in model.trainable_weights}
    if name != "sps":  # sps has no shared trainable layer: its trunks are the tasks'
        assert shared


def test_check_ownership_refuses_a_task_layer_that_feeds_another_task():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, name="a_hidden")(inputs)
    model = keras.Model(inputs, {"a": keras.layers.Dense(1, name="a_head")(hidden),
                                 "b": keras.layers.Dense(1, name="b_head")(hidden)})
    with pytest.raises(ValueError, match=r"layer 'a_hidden' is named for task 'a' but task\(s\) b also "
                                         r"depend on it; name it 'shared_a_hidden'"):
        check_ownership(model)
