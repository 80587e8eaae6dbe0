"""Metrics the data cannot define are NaN with a reason, never 0, and stay out of model selection."""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.tasks import BinaryTask, MultilabelTask
from mtl_tf.training import Trainer
from mtl_tf.training.early_stopping import EarlyStopping
from mtl_tf.training.task_metrics import NO_LABELS, ONE_CLASS, TaskMetrics, UndefinedMetricWarning, epoch_summary
from training_toy import as_dataset, build_model, make_tasks, toy_arrays, toy_dataset


def results_of(tasks, labels, outputs, masks):
    trackers = TaskMetrics(tasks)
    per_example = [task.per_example_loss(tf.constant(labels[task.name]), tf.constant(outputs[task.name]))
                   for task in tasks]
    trackers.update({k: tf.constant(v) for k, v in labels.items()}, {k: tf.constant(v) for k, v in masks.items()},
                    {k: tf.constant(v) for k, v in outputs.items()}, per_example)
    return trackers.task_results(), trackers.undefined


def test_one_class_among_labelled_rows_makes_auc_and_pr_auc_undefined_not_zero():
    task = BinaryTask("fraud", metrics=["auc", "pr_auc", "accuracy"])
    # Rows 3 and 4 are negatives but unlabelled: among labelled rows every label is 1.
    labels = {"fraud": np.array([1, 1, 1, 0, 0], "float32")}
    outputs = {"fraud": np.array([0.9, 0.8, 0.3, 0.1, 0.2], "float32")}
    masks = {"fraud": np.array([1, 1, 1, 0, 0], "float32")}
    results, undefined = results_of([task], labels, outputs, masks)
    roc, pr = keras.metrics.AUC(num_thresholds=500), keras.metrics.AUC(curve="PR", num_thresholds=500)
    for metric in (roc, pr):  # Keras alone gives numbers here
        metric.update_state(labels["fraud"][:3], outputs["fraud"][:3])
    assert (float(roc.result()), float(pr.result())) == (0.0, 1.0)
    assert math.isnan(results["fraud"]["auc"]) and math.isnan(results["fraud"]["pr_auc"])
    assert results["fraud"]["accuracy"] == pytest.approx(2 / 3)
    assert undefined == {"fraud": {"auc": ONE_CLASS, "pr_auc": ONE_CLASS}}

    masks["fraud"][3] = 1.0  # one labelled negative: the AUC is defined again
    results, undefined = results_of([task], labels, outputs, masks)
    assert results["fraud"]["auc"] == pytest.approx(1.0, abs=0.01) and undefined == {}


def test_a_task_without_labelled_rows_has_every_metric_undefined():
    tasks = [BinaryTask("fraud", metrics=["auc", "accuracy"]), BinaryTask("churn", metrics=["auc"])]
    labels = {"fraud": np.array([1, 0], "float32"), "churn": np.array([1, 0], "float32")}
    outputs = {"fraud": np.array([0.7, 0.2], "float32"), "churn": np.array([0.6, 0.5], "float32")}
    masks = {"fraud": np.zeros(2, "float32"), "churn": np.ones(2, "float32")}
    results, undefined = results_of(tasks, labels, outputs, masks)
    assert all(math.isnan(v) for v in results["fraud"].values())
    assert undefined == {"fraud": {"loss": NO_LABELS, "auc": NO_LABELS, "accuracy": NO_LABELS}}
    assert results["churn"]["auc"] == pytest.approx(1.0, abs=0.01)


def test_a_multilabel_auc_averages_the_classes_that_have_both_values():
    task = MultilabelTask("tags", classes=["a", "b", "c"], metrics=["auc"])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (40, 3)).astype("float32")
    labels[:, 0] = 1.0  # class a: every row positive
    outputs = rng.random((40, 3)).astype("float32")
    results, undefined = results_of([task], {"tags": labels}, {"tags": outputs}, {"tags": np.ones(40, "float32")})
    per_class = []
    for column in (1, 2):
        alone = keras.metrics.AUC()
        alone.update_state(labels[:, column], outputs[:, column])
        per_class.append(float(alone.result()))
    assert results["tags"]["auc"] == pytest.approx(np.mean(per_class), abs=1e-5)
    assert undefined == {}

    labels[:, 1:] = 0.0  # now every class holds one value
    results, undefined = results_of([task], {"tags": labels}, {"tags": outputs}, {"tags": np.ones(40, "float32")})
    assert math.isnan(results["tags"]["auc"]) and undefined == {"tags": {"auc": ONE_CLASS}}


def test_a_nan_score_never_becomes_the_best():
    stopping = EarlyStopping(make_tasks(), patience=3)
    assert stopping.update(float("nan"), 1) is False
    assert stopping.best == (None, None)
    assert stopping.update(0.6, 2) is True
    assert stopping.update(float("nan"), 3) is False
    assert stopping.update(0.7, 4) is True
    assert stopping.best == (4, pytest.approx(0.7))


def test_an_epoch_where_every_primary_metric_is_undefined_has_no_score():
    stopping = EarlyStopping(make_tasks())
    with pytest.warns(UndefinedMetricWarning):
        assert stopping.score({"a/val_auc": float("nan"), "b/val_auc": float("nan")}) is None
    assert stopping.score({"a/val_auc": 0.8, "b/val_auc": 0.6}) == pytest.approx(0.7)


def _val_with_one_class_for_a():
    """Validation rows where every labelled row of task a is positive."""
    features, labels = toy_arrays(128, seed=1, missing=0.0)
    labels["a"] = np.where(labels["a"] == 1.0, 1.0, np.nan).astype("float32")
    return as_dataset(features, labels)


def test_training_with_a_one_class_validation_split(capsys):
    tasks = make_tasks()
    trainer = Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.02}, epochs=3,
                      early_stopping={"patience": 3}, verbose=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = trainer.fit(toy_dataset(256), _val_with_one_class_for_a())
    undefined = [w for w in caught if issubclass(w.category, UndefinedMetricWarning)]
    assert len(undefined) == 1, [str(w.message) for w in undefined]  # once for the task, not every epoch
    assert "a/val_auc is undefined (only one class in the validation split)" in str(undefined[0].message)

    assert all(math.isnan(v) for v in history.metric("a/val_auc"))  # not 0.0
    assert all(np.isfinite(history.metric("a/val_accuracy")))  # defined with one class
    best = history.epochs[history.best_epoch - 1]
    assert history.best_score == pytest.approx(best["b/val_auc"], abs=1e-6)  # b alone chooses the epoch
    assert history.best_epoch == 1 + int(np.argmax(history.metric("b/val_auc")))
    for logs in history.epochs:
        assert np.isfinite(logs["val_loss"])
        assert logs["val_loss"] == pytest.approx(logs["a/val_loss"] + logs["b/val_loss"], rel=1e-5)
    printed = capsys.readouterr().out
    assert printed.count("a/val_auc=undefined (only one class in validation)") == 3
    assert "a/val_auc=nan" not in printed and "a/val_auc=0.0000" not in printed


def test_a_task_without_labelled_validation_rows_leaves_val_loss_to_the_others():
    tasks = make_tasks()
    features, labels = toy_arrays(96, seed=1, missing=0.0)
    labels["b"][:] = np.nan
    trainer = Trainer(lambda: build_model(tasks), tasks, "adam", epochs=2, early_stopping={"patience": 2},
                      verbose=0)
    with pytest.warns(UndefinedMetricWarning, match="b/val_auc is undefined .no labelled rows"):
        history = trainer.fit(toy_dataset(128), as_dataset(features, labels))
    last = history.epochs[-1]
    assert math.isnan(last["b/val_loss"]) and math.isnan(last["b/val_auc"])
    assert np.isfinite(last["val_loss"]) and last["val_loss"] == pytest.approx(last["a/val_loss"], rel=1e-5)
    assert history.best_score == pytest.approx(history.epochs[history.best_epoch - 1]["a/val_auc"], abs=1e-6)


def test_epoch_summary_names_undefined_values():
    logs = {"epoch": 2, "loss": 0.5, "val_loss": 0.4, "a/val_auc": float("nan"), "b/val_auc": 0.75,
            "epoch_time_s": 1.25}
    line = epoch_summary(logs, {"a": {"auc": ONE_CLASS}})
    assert line == ("epoch 2: loss=0.5000 val_loss=0.4000 a/val_auc=undefined (only one class in validation) "
                    "b/val_auc=0.7500 (1.2s)")


def test_undefined_validation_metrics_are_not_logged_to_mlflow_as_numbers(tmp_path):
    from mlflow import MlflowClient

    from mtl_tf.runner import epoch_logger
    from mtl_tf.tracking import TrackedRun

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tasks = make_tasks()
    trainer = Trainer(lambda: build_model(tasks), tasks, "adam", epochs=2, verbose=0)
    with TrackedRun("undefined", tracking_uri=uri, artifact_location=str(tmp_path / "artifacts")) as run:
        with pytest.warns(UndefinedMetricWarning):
            trainer.fit(toy_dataset(128), _val_with_one_class_for_a(), on_epoch_end=epoch_logger(run))
    client = MlflowClient(tracking_uri=uri)
    assert client.get_metric_history(run.run_id, "a/val_auc") == []
    assert len(client.get_metric_history(run.run_id, "b/val_auc")) == 2
    assert len(client.get_metric_history(run.run_id, "a/val_accuracy")) == 2
    assert client.get_run(run.run_id).data.tags["mtl.undefined_metrics"] == "a/val_auc"
