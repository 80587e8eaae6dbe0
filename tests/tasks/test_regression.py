"""Regression tasks learn in their label's standard units and answer in the label's units.

A label of mean ~1e4 (spend, a price) next to a binary task, from a CSV through the real
pipeline, the reader, the Trainer and the export: trained a few epochs it reaches an rmse
well below its std, its loss is about 1 and the binary task learns as well as alone;
``standardize: false`` keeps the raw squared error (and stays near the mean's magnitude).
"""

import csv
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.data.parsing import decode_features, feature_parse_spec
from mtl_tf.data.reader import make_dataset, raw_examples
from mtl_tf.data.spec import LabelStats, RegressionStats, TaskSpec
from mtl_tf.export import check_skew, export_model
from mtl_tf.models import build_model
from mtl_tf.recipe import parse_recipe
from mtl_tf.recipe.loader import RecipeError
from mtl_tf.tasks import RegressionTask, build_tasks
from mtl_tf.tasks.regression import LabelScaleWarning
from mtl_tf.training import Trainer
from pipelines.csv_to_tfrecords import run

ROWS = 480
EPOCHS = 5


def _write_rows(path, rows=ROWS, seed=0):
    """x1, x2 ~ N(0, 1); spend = 1e4 + 1e3 (x1 + x2 / 2) + noise (std ~1.1e3); fraud ~ x2 > 0."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    spend = 1.0e4 + 1.0e3 * (x1 + 0.5 * x2) + rng.normal(0.0, 100.0, rows)
    fraud = (x2 + 0.3 * rng.normal(size=rows) > 0).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "x1", "x2", "fraud", "spend"])
        for i in range(rows):
            writer.writerow([f"r{i}", f"{x1[i]:.5f}", f"{x2[i]:.5f}", fraud[i], f"{spend[i]:.3f}"])


def _recipe(root, tasks=("fraud", "spend"), **spend):
    entries = {"fraud": {"name": "fraud", "type": "binary", "label": "fraud"},
               "spend": {"name": "spend", "type": "regression", "label": "spend", **spend}}
    return parse_recipe({
        "name": "spend",
        "data": {"source": {"path": str(root / "raw" / "*.csv")}, "output_dir": str(root / "dataset"),
                 "split": {"key": "id", "train": 0.7, "validation": 0.15, "test": 0.15, "seed": 1},
                 "features": [{"name": "x1", "kind": "numeric"}, {"name": "x2", "kind": "numeric"}]},
        "tasks": [entries[name] for name in tasks],
        "model": {"architecture": "hps", "trunk": {"name": "mlp", "units": [16]},
                  "tower": {"name": "mlp", "units": [8]}},
    }, check=False)


def _train(recipe, spec):
    tasks = build_tasks(recipe.tasks, spec)
    trainer = Trainer(lambda: build_model(recipe, spec, tasks), tasks, {"name": "adam", "learning_rate": 0.01},
                      epochs=EPOCHS, verbose=0, seed=0)
    trainer.fit(make_dataset(spec, "train", tasks, 32, shuffle=True, seed=0),
                make_dataset(spec, "validation", tasks, 64))
    return trainer, tasks, trainer.evaluate(make_dataset(spec, "test", tasks, 64))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("spend")
    _write_rows(root / "raw" / "rows.csv")
    return root, run(_recipe(root), ["--runner=DirectRunner"]).spec


@pytest.fixture(scope="module")
def trained(dataset):
    root, spec = dataset
    return _train(_recipe(root), spec)


def _test_std(spec):
    return spec.task("spend").stats.split("test").std


# --- training: the defect's case -----------------------------------------------------------------


@pytest.mark.integration
def test_a_label_of_mean_1e4_trains_to_an_rmse_well_below_its_std_next_to_a_binary_task(dataset, trained):
    root, spec = dataset
    trainer, tasks, test = trained
    train = spec.task("spend").stats.train
    assert 9.0e3 < train.mean < 1.1e4 and 9.0e2 < train.std < 1.3e3
    assert tasks[1].standardized and (tasks[1].offset, tasks[1].scale) == (train.mean, train.std)
    # Predicting the mean would give an rmse of about the std; a raw head starts at 0, ~1e4 away.
    assert test["spend"]["rmse"] < 0.3 * _test_std(spec)
    assert test["spend"]["mae"] < 0.3 * _test_std(spec)
    # The loss is in standard units: O(1) like the binary task's, not rmse^2 ~ 1e4..1e8.
    assert test["spend"]["loss"] == pytest.approx((test["spend"]["rmse"] / train.std) ** 2, rel=0.05)
    assert test["spend"]["loss"] < 1.0 and test["fraud"]["loss"] < 1.0
    _, _, alone = _train(_recipe(root, tasks=("fraud",)), spec)
    assert test["fraud"]["auc"] >= alone["fraud"]["auc"] - 0.02


@pytest.mark.integration
def test_standardize_false_keeps_the_raw_squared_error(dataset):
    root, spec = dataset
    recipe = _recipe(root, standardize=False)
    trainer, tasks, test = _train(recipe, spec)
    spend = tasks[1]
    assert not spend.standardized and spend.describe()["standardize"] is False
    assert "spend_scale" not in [layer.name for layer in trainer.model.layers]
    loss = spend.per_example_loss(tf.constant([1.2e4, 9.0e3]), tf.constant([1.0e4, 1.0e4]))
    np.testing.assert_allclose(loss, [4.0e6, 1.0e6])
    # Raw MSE: the loss is the rmse squared, and a few epochs leave the output far below the mean.
    assert test["spend"]["loss"] == pytest.approx(test["spend"]["rmse"] ** 2, rel=0.05)
    assert test["spend"]["rmse"] > 0.5 * spec.task("spend").stats.train.mean


# --- the export ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_the_reloaded_saved_model_predicts_in_label_units(dataset, trained, tmp_path):
    _, spec = dataset
    trainer, tasks, _ = trained
    model = trainer.model
    result = export_model(model, spec, tasks, tmp_path / "export")
    examples = raw_examples(spec, "test", 64)
    batch = tf.constant(examples)
    signatures = tf.saved_model.load(str(result.saved_model_dir)).signatures
    served = signatures["serving_default"](examples=batch)["spend"].numpy()
    alone = signatures["predict_spend"](examples=batch)["spend"].numpy()
    parsed = tf.io.parse_example(batch, {**feature_parse_spec(spec), "spend": tasks[1].parse_feature()})
    in_memory = model(decode_features({k: parsed[k] for k in ("x1", "x2")}, spec), training=False)["spend"].numpy()
    np.testing.assert_allclose(served, in_memory, rtol=1e-6)
    np.testing.assert_allclose(alone, served, rtol=1e-6)
    labels = parsed["spend"].numpy()
    present = ~np.isnan(labels)
    assert present.sum() > 30
    assert np.sqrt(np.mean((served[present] - labels[present]) ** 2)) < 0.3 * _test_std(spec)
    reloaded = keras.saving.load_model(result.keras_path)
    np.testing.assert_allclose(reloaded(decode_features({k: parsed[k] for k in ("x1", "x2")}, spec))["spend"],
                               in_memory, rtol=1e-6)
    report = check_skew(model, result.saved_model_dir, examples, spec, tolerance=1e-4, tasks=tasks)
    assert report.ok and set(report.export_vs_model) == {"fraud", "spend"}


# --- the head, the loss and the fallbacks (no pipeline) ------------------------------------------


def _spec(train=(1.0e4, 1.0e3), count=100, stats=True):
    moments = LabelStats(count=count, mean=train[0], std=train[1], min=0.0, max=2.0e4) if count else LabelStats(
        count=0)
    return TaskSpec(name="spend", type="regression", label_key="spend", dtype="float32",
                    labelled={"train": count}, stats=RegressionStats({"train": moments}) if stats else None)


def _outputs(task, x):
    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, task.head(inputs))
    model.get_layer("spend_head").set_weights([np.zeros((2, 1), "float32"), np.zeros(1, "float32")])
    return model(np.asarray(x, "float32")).numpy(), model


def test_the_head_starts_at_the_train_mean_and_its_loss_is_in_standard_units():
    task = RegressionTask("spend", spec=_spec())
    output, model = _outputs(task, [[0.3, -2.0], [5.0, 1.0]])
    np.testing.assert_allclose(output, [1.0e4, 1.0e4])
    loss = task.per_example_loss(tf.constant([1.2e4, 9.5e3]), tf.constant(output))
    np.testing.assert_allclose(loss, [4.0, 0.25], rtol=1e-6)
    rmse = task.make_metrics()["rmse"]
    rmse.update_state(*task.metric_inputs(tf.constant([1.2e4, 1.0e4]), tf.constant(output)))
    assert float(rmse.result()) == pytest.approx(np.sqrt(2.0e6), rel=1e-6)  # in the label's units
    assert task.describe()["label_scaling"] == {"offset": 1.0e4, "scale": 1.0e3}
    assert task.serving_units() == {"spend": 1.0e3} and task.head_layout == "standardized"
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    np.testing.assert_allclose(copy(np.ones((1, 2), "float32")), [1.0e4])


def test_a_constant_train_label_keeps_its_offset_with_scale_1_and_says_so():
    with pytest.warns(LabelScaleWarning, match=r"spend.*every train label is 7 \(std 0\).*scale 1"):
        task = RegressionTask("spend", spec=_spec(train=(7.0, 0.0)))
    assert (task.offset, task.scale) == (7.0, 1.0)
    np.testing.assert_allclose(_outputs(task, [[1.0, 1.0]])[0], [7.0])
    np.testing.assert_allclose(task.per_example_loss(tf.constant([9.0]), tf.constant([7.0])), [4.0])


@pytest.mark.parametrize("spec, why", [(_spec(stats=False), "dataset.json has no label statistics"),
                                       (_spec(count=0), "the train split has no labelled row")])
def test_without_train_statistics_the_head_learns_raw_units_and_says_why(spec, why):
    with pytest.warns(LabelScaleWarning, match=why):
        task = RegressionTask("spend", spec=spec)
    assert not task.standardized and task.serving_units() == {} and task.head_layout is None
    np.testing.assert_allclose(_outputs(task, [[1.0, 1.0]])[0], [0.0])


def test_a_task_built_without_its_dataset_json_entry_is_as_before():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task = RegressionTask("spend")
    assert not task.standardized
    _, model = _outputs(task, [[1.0, 1.0]])
    assert [layer.name for layer in model.layers][1:] == ["spend_head", "spend"]
    np.testing.assert_allclose(task.per_example_loss(tf.constant([3.0]), tf.constant([1.0])), [4.0])


def test_standardize_is_a_regression_option_checked_with_the_recipe(tmp_path):
    def recipe(task):
        return {"name": "r", "data": {"source": {"path": "x"}, "output_dir": "o", "split": {"key": "k"},
                                      "features": [{"name": "a", "kind": "numeric"}]}, "tasks": [task]}

    with pytest.raises(RecipeError, match="standardize is for regression"):
        parse_recipe(recipe({"name": "y", "type": "binary", "label": "l", "standardize": False}), check=False)
    with pytest.raises(RecipeError, match=r"tasks\.0\.standardize"):
        parse_recipe(recipe({"name": "y", "type": "regression", "label": "l", "standardize": "often"}), check=False)
    with pytest.raises(TypeError, match=r"task 'y' standardize: expected true or false; received 'yes'"):
        RegressionTask("y", standardize="yes")
    unset = parse_recipe(recipe({"name": "y", "type": "regression", "label": "l"}), check=False)
    assert "standardize" not in unset.model_dump(mode="json")["tasks"][0]  # resolved recipes unchanged
    off = parse_recipe(recipe({"name": "y", "type": "regression", "label": "l", "standardize": False}), check=False)
    spec = _spec().model_copy(update={"name": "y", "label_key": "l"})
    dataset = type("Dataset", (), {"tasks": [spec]})()
    assert build_tasks(off.tasks, dataset)[0].standardized is False
    assert build_tasks(unset.tasks, dataset)[0].standardized is True


@pytest.mark.parametrize("standardize", [None, False])
def test_with_several_datasets_the_run_and_the_baseline_scale_a_task_by_its_own_datasets_train_split(standardize):
    from mtl_tf.data.collection import DatasetCollection
    from mtl_tf.runner import single_task_recipe
    from tests.export.tiny import make_spec

    main = make_spec()
    spend = _spec(train=(2.5e4, 4.0e3)).model_copy(update={"label_key": "amount_spent"})
    side = main.model_copy(update={"name": "side", "tasks": [spend]})
    collection = DatasetCollection({"data": main, "cases": side})
    recipe = parse_recipe({
        "name": "toy",
        "data": {"source": {"path": "raw/main/*.csv"}, "output_dir": "out/main", "split": {"key": "id"},
                 "features": [{"name": "amount", "kind": "numeric"}, {"name": "balance", "kind": "numeric"}]},
        "datasets": [{"name": "cases", "source": {"path": "raw/cases/*.csv"}, "output_dir": "out/cases"}],
        "tasks": [{"name": "fraud", "type": "binary", "label": "is_fraud"},
                  {"name": "spend", "type": "regression", "label": "amount_spent", "dataset": "cases",
                   **({} if standardize is None else {"standardize": standardize})}],
    }, check=False)
    # The combined spec keeps each task's own entry: the side dataset's train split holds spend's labels.
    assert collection.combined.task("spend").stats == spend.stats
    in_run = build_tasks(recipe.tasks, collection.combined)[1]
    # mtl baseline builds the single-task model on the task's own dataset (runner/baselines.py).
    in_baseline = build_tasks(single_task_recipe(recipe, "spend").tasks, collection.spec("cases"))[0]
    expected = (None, None) if standardize is False else (2.5e4, 4.0e3)
    assert (in_run.offset, in_run.scale) == (in_baseline.offset, in_baseline.scale) == expected
