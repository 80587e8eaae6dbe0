"""Every architecture trains through the Trainer (not Keras fit), and its shared/task split
holds: a step where only task ``a`` is labelled leaves every variable of task ``b`` as it was,
moves the shared ones, and a per-task-gradient method (PCGrad, which with one active task is
that task's gradient) moves every variable exactly as the single backward pass does."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.models import shared_variables, task_variables
from mtl_tf.training import Trainer
from tests.models.toy import ARCHITECTURE_NAMES, tasks, toy_data, toy_model

# As in tests/models/test_architectures.py: the benchmarked architectures in the default run,
# the others (and image models beyond hps) in the slow run.
BENCHMARKED = {"hps", "mmoe", "ple", "cross_stitch", "etr_nlp", "sps"}
CASES = [pytest.param(name, False, marks=() if name in BENCHMARKED else pytest.mark.slow)
         for name in ARCHITECTURE_NAMES]
CASES += [pytest.param(name, True, marks=() if name == "hps" else pytest.mark.slow) for name in ARCHITECTURE_NAMES]


def _spec(name):
    # sps's penalty pulls b's trunk toward a's whatever is labelled; without it, the split alone shows.
    return {"name": "sps", "penalty_weight": 0.0} if name == "sps" else name


def only_a_labelled(image, rows=16):
    x, labels = toy_data(rows, image)
    masks = {"a": np.ones(rows, "float32"), "b": np.zeros(rows, "float32")}
    return tf.data.Dataset.from_tensors(({"x": x}, labels, masks))


def one_step(name, image, gradient):
    # (seed 1: with seed 0, the image cross-stitch toy starts with a dead ReLU tower for task a)
    trainer = Trainer(lambda: toy_model(_spec(name), image, seed=1), tasks(), {"name": "sgd", "learning_rate": 0.5},
                      gradient=gradient, epochs=1, verbose=0)
    model = trainer.model
    before = [v.numpy().copy() for v in model.trainable_variables]
    trainer.fit(only_a_labelled(image))
    return model, before, [v.numpy() for v in model.trainable_variables]


@pytest.mark.parametrize("name, image", CASES)
def test_a_step_on_task_a_alone_leaves_task_b_untouched_and_pcgrad_agrees_with_the_sum(name, image):
    model, before, after = one_step(name, image, "sum")
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    changed = {id(v): not np.array_equal(before[index[id(v)]], after[index[id(v)]]) for v in model.trainable_variables}
    b_vars, a_vars = task_variables(model, "b"), task_variables(model, "a")
    assert b_vars and not any(changed[id(v)] for v in b_vars), [v.path for v in b_vars if changed[id(v)]]
    assert any(changed[id(v)] for v in model.get_layer("a_head").trainable_weights)
    assert all(id(v) in changed for v in a_vars)
    shared = shared_variables(model)
    if name != "sps":  # sps shares nothing trainable
        assert any(changed[id(v)] for v in shared)

    _, _, per_task = one_step(name, image, "pcgrad")
    for variable, want, got in zip(model.trainable_variables, after, per_task):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=variable.path)
