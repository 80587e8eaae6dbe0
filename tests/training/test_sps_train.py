"""Soft parameter sharing (a trunk per task, nothing shared) trains with every gradient
aggregator and every weighting: nothing is aggregated, and each task's variables move by
their own task's gradient times its weight, exactly as with the plain weighted sum."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.models import shared_variables, task_variables
from mtl_tf.training import Trainer
from tests.models.toy import tasks, toy_data, toy_model

AGGREGATORS = ["pcgrad", "gradvac", "cagrad", "mgda", "imtl_g", "nash_mtl", "aligned_mtl", "upgrad",
               {"name": "pcgrad", "rep_grad": True}, {"name": "mgda", "rep_grad": True}]
WEIGHTINGS = ["uncertainty", "dwa", "rlw", "gradnorm", "famo"]
LEARNING_RATE = 0.5


def _id(spec):
    return spec if isinstance(spec, str) else f"{spec['name']}_rep"


def batch(rows=16):
    x, labels = toy_data(rows)
    return tf.data.Dataset.from_tensors(({"x": x}, labels, {k: np.ones(rows, "float32") for k in labels}))


def step(penalty=0.0, **methods):
    """One SGD step; returns the model, each variable's change and the logs."""
    trainer = Trainer(lambda: toy_model({"name": "sps", "penalty_weight": penalty}), tasks(),
                      {"name": "sgd", "learning_rate": LEARNING_RATE}, epochs=1, verbose=0, **methods)
    model = trainer.model
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = trainer.fit(batch()).epochs[-1]
    deltas = {id(v): v.numpy() - b for v, b in zip(model.trainable_variables, before)}
    return model, deltas, logs


@pytest.fixture(scope="module")
def plain():
    """The plain weighted sum with weights 1: each task's variables move by -lr g_t."""
    model, deltas, _ = step()
    assert not shared_variables(model)
    return model, deltas


def _assert_own_gradient_times_weight(model, deltas, logs, plain):
    reference_model, reference = plain
    for task in ("a", "b"):
        weight = logs[f"{task}/weight"]
        pairs = zip(task_variables(model, task), task_variables(reference_model, task))
        for variable, reference_variable in pairs:
            np.testing.assert_allclose(deltas[id(variable)], weight * reference[id(reference_variable)],
                                       rtol=1e-4, atol=1e-7, err_msg=f"{task}: {variable.path}")


@pytest.mark.parametrize("gradient", AGGREGATORS, ids=_id)
def test_every_aggregator_trains_sps_with_each_tasks_own_gradient(gradient, plain):
    model, deltas, logs = step(gradient=gradient)
    assert logs["a/weight"] == 1.0 and logs["b/weight"] == 1.0
    _assert_own_gradient_times_weight(model, deltas, logs, plain)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_every_weighting_trains_sps_with_each_tasks_own_gradient_times_its_weight(weighting, plain):
    # (RLW's random weights also go through an aggregator, which must leave them alone.)
    model, deltas, logs = step(weighting=weighting, gradient="pcgrad" if weighting == "rlw" else "sum")
    _assert_own_gradient_times_weight(model, deltas, logs, plain)


def test_gradnorm_on_sps_says_there_is_nothing_to_balance_and_keeps_equal_weights():
    with pytest.warns(UserWarning, match="no shared layer with weights, so there are no gradient norms to balance"):
        _, _, logs = step(weighting="gradnorm")
    assert logs["a/weight"] == 1.0 and logs["b/weight"] == 1.0


def test_sps_with_its_penalty_trains_with_a_per_task_gradient_method_as_with_the_sum():
    # The penalty's gradient reaches both trunks whatever the aggregator.
    model, deltas, _ = step(penalty=0.5, gradient="upgrad")
    reference_model, reference, _ = step(penalty=0.5)
    for variable, reference_variable in zip(model.trainable_variables, reference_model.trainable_variables):
        np.testing.assert_allclose(deltas[id(variable)], reference[id(reference_variable)], rtol=1e-4, atol=1e-7,
                                   err_msg=variable.path)
