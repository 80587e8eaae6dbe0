"""build_model, task_submodel, parameter_counts and the shared / task variable split."""

import keras
import numpy as np
import pytest

from mtl_tf.data.reader import make_dataset
from mtl_tf.data.spec import DatasetSpec
from mtl_tf.models import (build_model, parameter_counts, shared_variables, task_submodel,
                           task_variables)
from mtl_tf.models.naming import layer_owner
from mtl_tf.recipe import RecipeError, load_recipe, parse_recipe
from mtl_tf.tasks import build_tasks
from tests.helpers.tiny_dataset import make_tiny_dataset, tiny_recipe

TASKS = ["fraud", "default_risk"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("builder"), rows=32)


@pytest.fixture(scope="module")
def model(spec):
    return build_model(parse_recipe(tiny_recipe(spec), check=False), spec)


@pytest.fixture(scope="module")
def features(spec):
    recipe = parse_recipe(tiny_recipe(spec), check=False)
    return next(iter(make_dataset(spec, "train", build_tasks(recipe.tasks), batch_size=6)))[0]


def _numpy(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def test_outputs_are_keyed_by_task_with_one_value_per_row(model, features):
    outputs = _numpy(model(features))
    assert list(outputs) == TASKS
    assert all(v.shape == (6,) and ((v > 0) & (v < 1)).all() for v in outputs.values())
    assert model.name == "tiny"
    assert set(model.input) == {"amount", "balance", "channel", "timestamp"}


def test_hps_layers_are_named_shared_or_by_task(model):
    names = {layer.name for layer in model.layers}
    assert {"shared_trunk", "fraud_tower", "default_risk_tower", "fraud", "default_risk"} <= names


def test_save_and_load_give_identical_outputs(model, features, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    expected, actual = _numpy(model(features)), _numpy(restored(features))
    for task in TASKS:
        np.testing.assert_allclose(actual[task], expected[task], rtol=1e-6)


def test_task_submodel_holds_only_its_path(model, features):
    sub = task_submodel(model, "fraud")
    assert "default_risk_tower" not in {layer.name for layer in sub.layers}
    assert parameter_counts(sub)["trainable"] < parameter_counts(model)["trainable"]
    np.testing.assert_allclose(_numpy(sub(features))["fraud"], _numpy(model(features))["fraud"], rtol=1e-6)
    with pytest.raises(ValueError, match=r"no task 'churn'; tasks: fraud, default_risk"):
        task_submodel(model, "churn")


def test_parameter_counts_match_the_architecture(spec):
    # features: amount 2 + balance 2 + channel embedding 4 (5 indices) + timestamp 5 = 13 columns
    embedding = 5 * 4
    heads_and_towers = 2 * ((8 * 4 + 4) + (4 + 1))
    plain = build_model(parse_recipe(tiny_recipe(spec), check=False), spec)
    assert parameter_counts(plain) == {"trainable": embedding + 13 * 8 + 8 + heads_and_towers,
                                       "non_trainable": 0}
    bn = tiny_recipe(spec, trunk={"name": "mlp", "units": [8], "batch_norm": True})
    # batch norm: no Dense bias, gamma and beta trainable, moving mean and variance not
    assert parameter_counts(build_model(parse_recipe(bn, check=False), spec)) == {
        "trainable": embedding + 13 * 8 + 2 * 8 + heads_and_towers, "non_trainable": 2 * 8}


def test_task_and_shared_variables_partition_the_weights(model):
    fraud = {v.path for v in task_variables(model, "fraud")}
    default = {v.path for v in task_variables(model, "default_risk")}
    shared = {v.path for v in shared_variables(model)}
    assert fraud and default and shared
    assert not (fraud & default) and not (fraud & shared) and not (default & shared)
    assert fraud | default | shared == {v.path for v in model.trainable_weights}
    assert all(p.startswith(("fraud_tower", "fraud_head")) for p in fraud)
    assert {p.split("/")[0] for p in shared} == {"shared_trunk", "shared_channel_embedding"}


def test_layer_owner_prefers_the_longest_task_name():
    tasks = ["risk", "risk_high"]
    assert layer_owner("risk_high_tower", tasks) == "risk_high"
    assert layer_owner("risk_tower", tasks) == "risk"
    assert layer_owner("risk", tasks) == "risk"
    assert layer_owner("shared_trunk", tasks) is None
    assert layer_owner("riskier_tower", tasks) is None


def test_missing_feature_or_task_is_named(spec):
    recipe = tiny_recipe(spec)
    recipe["data"]["features"].append({"name": "income", "kind": "numeric"})
    with pytest.raises(ValueError, match=r"data.features.4: feature 'income' is not in dataset 'tiny'"):
        build_model(parse_recipe(recipe, check=False), spec)
    recipe = tiny_recipe(spec)
    recipe["tasks"].append({"name": "churn", "type": "binary", "label": "churned"})
    with pytest.raises(ValueError, match=r"task 'churn' is not in dataset 'tiny'.*fraud, default_risk"):
        build_model(parse_recipe(recipe, check=False), spec)


def test_reserved_task_name_is_refused(spec):
    recipe = tiny_recipe(spec)
    recipe["tasks"][0]["name"] = "shared"
    with pytest.raises(ValueError, match=r"task name 'shared' is reserved"):
        build_model(parse_recipe(recipe, check=False), spec)


def test_unknown_trunk_option_suggests_the_right_one(spec):
    recipe = parse_recipe(tiny_recipe(spec, trunk={"name": "mlp", "unit": [8]}), check=False)
    typo = r"model.trunk.mlp: unknown option 'unit' \(did you mean 'units'\?\)"
    with pytest.raises(ValueError, match=typo):
        build_model(recipe, spec)


def test_recipe_check_rejects_unknown_trunk_option(spec):
    typo = r"model.trunk.mlp: unknown option 'dropuot' \(did you mean 'dropout'\?\)"
    with pytest.raises(RecipeError, match=typo):
        parse_recipe(tiny_recipe(spec, trunk={"name": "mlp", "units": [8], "dropuot": 0.1}))


def test_shipped_fraud_recipe_builds(tmp_path):
    recipe = load_recipe("recipes/fraud_signals.yaml", check=False)
    spec = _spec_for(recipe)
    model = build_model(recipe, spec)
    assert list(model.output) == recipe.task_names
    assert model.get_layer("shared_device_fingerprint_embedding").output_dim == 16


def test_learns_a_label_that_depends_on_a_feature(tmp_path):
    spec = make_tiny_dataset(tmp_path, rows=400, seed=1)
    recipe = parse_recipe(tiny_recipe(spec), check=False)
    keras.utils.set_random_seed(0)
    model = build_model(recipe, spec)
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss={t: "binary_crossentropy" for t in TASKS})
    data = make_dataset(spec, "train", build_tasks(recipe.tasks), batch_size=32, shuffle=True, seed=0)
    history = model.fit(data, epochs=6, shuffle=False, verbose=0).history["loss"]
    assert history[-1] < 0.6 * history[0], history


def _spec_for(recipe) -> DatasetSpec:
    """An in-memory dataset.json matching a recipe (no files: building reads statistics only)."""
    numeric = {"count": 10, "mean": 0.0, "variance": 1.0}
    categorical = {"count": 10, "unique": 2, "oov_buckets": 1,
                   "vocabulary": [{"value": "a", "count": 6}, {"value": "b", "count": 4}]}
    kinds = {"numeric": ("float32", numeric), "timestamp": ("int64", numeric),
             "categorical": ("string", categorical)}
    features = [{"name": f.name, "kind": f.kind, "dtype": kinds[f.kind][0], "stats": kinds[f.kind][1],
                 "embedding_dim": f.embedding_dim} for f in recipe.data.features]
    tasks = [{"name": t.name, "type": t.type, "label_key": t.label, "dtype": "float32"} for t in recipe.tasks]
    return DatasetSpec.model_validate({"name": recipe.name, "created": "now", "rows_in": 10,
                                       "features": features, "tasks": tasks, "splits": {}})
