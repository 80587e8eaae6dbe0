"""The training step with per-task gradients: shared/task split, parameter and representation
gradients, per-part optimizers, samplers, learned weightings and resume of method state."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.recipe.loader import parse_recipe
from mtl_tf.training import Trainer
from mtl_tf.training.losses import masked_losses
from mtl_tf.training.model_split import ModelSplit
from training_toy import FEATURES, build_model, make_tasks, toy_arrays, toy_dataset, weights_of


def one_batch(rows=32, seed=0):
    features, labels = toy_arrays(rows, seed, missing=0.0)
    masks = {k: np.ones(rows, "float32") for k in labels}
    return features, labels, masks


def one_step_trainer(tasks, lr=0.1, **kwargs):
    """A Trainer for one SGD step on :func:`one_batch` (call ``step(trainer)`` to run it)."""
    return Trainer(lambda: build_model(tasks), tasks, {"name": "sgd", "learning_rate": lr}, epochs=1,
                   steps_per_epoch=1, verbose=0, **kwargs)


def step(trainer):
    trainer.fit(tf.data.Dataset.from_tensors(one_batch()))
    return weights_of(trainer.model)


def test_the_split_tells_shared_from_task_variables():
    tasks = make_tasks()
    split = ModelSplit(build_model(tasks), ["a", "b"])
    assert [v.path for v in split.shared] == ["trunk/kernel", "trunk/bias"]
    layers = [v.path.split("/")[0] for v in split.task_specific]
    assert layers == ["a_tower", "a_tower", "b_tower", "b_tower", "a_head", "a_head", "b_head", "b_head"]
    assert [split.task_names[o] for o in split.owners] == [layer.split("_")[0] for layer in layers]


def test_one_backward_pass_through_the_copies_gives_each_tasks_representation_gradient():
    tasks = make_tasks()
    model = build_model(tasks)
    split = ModelSplit(model, ["a", "b"])
    features, labels, masks = one_batch()
    with tf.GradientTape(persistent=True) as tape:
        representation, copies, outputs = split.forward(features)
        losses, _ = masked_losses(tasks, labels, masks, outputs)
        total = tf.reduce_sum(losses)
        each = tf.unstack(losses)
    stacked = split.representation_gradients(tape.gradient(total, [c for cs in copies for c in cs]), representation)[0]
    for t in range(2):
        np.testing.assert_allclose(stacked[t], tape.gradient(each[t], representation[0]), rtol=1e-5, atol=1e-7)
    full = model(features)
    for name in ("a", "b"):
        np.testing.assert_allclose(outputs[name], full[name], rtol=1e-6)


def _manual_gradients(tasks, trainer):
    """Per-task gradients of every variable, and of the trunk output, on one batch, from the
    trainer's initial weights."""
    model = build_model(tasks)
    model.set_weights(trainer.model.get_weights())
    features, labels, masks = one_batch()
    front = keras.Model(model.inputs, model.get_layer("trunk").output)
    back = keras.Model(front.output, model.output)
    with tf.GradientTape(persistent=True) as tape:
        z = front(features)
        losses, _ = masked_losses(tasks, labels, masks, back(z))
        losses = tf.unstack(losses)
    variables = model.trainable_variables
    per_task = [[np.zeros(v.shape) if g is None else g.numpy()
                 for g, v in zip(tape.gradient(losses[t], variables), variables)] for t in range(2)]
    return model, tape, z, losses, per_task


def _expected_after(model, per_task, shared_update, lr=0.1):
    shared = {"trunk/kernel", "trunk/bias"}
    expected, position = [], 0
    for i, v in enumerate(model.trainable_variables):
        if v.path in shared:
            grad = shared_update[position:position + int(np.prod(v.shape))].reshape(v.shape)
            position += int(np.prod(v.shape))
        else:
            grad = per_task[0][i] + per_task[1][i]  # only the owner's gradient is non-zero
        expected.append(v.numpy() - lr * grad)
    return expected


def test_a_pcgrad_step_updates_shared_weights_with_the_projected_sum_and_towers_with_their_own_gradient():
    tasks = make_tasks()
    trainer = one_step_trainer(tasks, gradient="pcgrad")
    model, _, _, _, per_task = _manual_gradients(tasks, trainer)
    shared_idx = [i for i, v in enumerate(model.trainable_variables) if v.path.startswith("trunk")]
    g1, g2 = (np.concatenate([per_task[t][i].ravel() for i in shared_idx]) for t in range(2))
    dot = g1 @ g2
    p1 = g1 - min(dot, 0) / (g2 @ g2) * g2
    p2 = g2 - min(dot, 0) / (g1 @ g1) * g1
    assert dot < 0  # the toy batch has conflicting trunk gradients
    for got, want in zip(step(trainer), _expected_after(model, per_task, p1 + p2)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_an_mgda_ub_step_back_propagates_the_min_norm_representation_gradient():
    tasks = make_tasks()
    trainer = one_step_trainer(tasks, gradient={"name": "mgda", "rep_grad": True, "normalize": "none"})
    model, tape, z, losses, per_task = _manual_gradients(tasks, trainer)
    ga, gb = (tape.gradient(losses[t], z).numpy().ravel() for t in range(2))
    gamma = np.clip((gb - ga) @ gb / ((ga - gb) @ (ga - gb)), 0, 1)
    cotangent = (gamma * ga + (1 - gamma) * gb).reshape(z.shape)
    shared = [v for v in model.trainable_variables if v.path.startswith("trunk")]
    update = np.concatenate([g.numpy().ravel() for g in tape.gradient(z, shared, output_gradients=cotangent)])
    assert 0 < gamma < 1
    for got, want in zip(step(trainer), _expected_after(model, per_task, update)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def _tangled_model(tasks):
    """A shared layer reads a task layer (on task a's path only, so ownership holds): no clean
    shared representation."""
    inputs = {name: keras.Input(shape=(), name=name) for name in FEATURES}
    x = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[n]) for n in FEATURES])
    a = keras.layers.Dense(4, name="a_tower")(x)
    mixed = keras.layers.Dense(4, name="shared_mix")(a)
    b = keras.layers.Dense(4, name="b_tower")(keras.layers.Dense(4, name="shared_dense")(x))
    heads = {"a": mixed, "b": b}
    return keras.Model(inputs, {t.name: t.head(heads[t.name]) for t in tasks})


def test_rep_grad_on_a_model_without_a_clean_split_says_why():
    tasks = make_tasks()
    with pytest.raises(ValueError, match=r"cannot be split.*a_tower.*rep_grad needs every shared layer before"):
        Trainer(lambda: _tangled_model(tasks), tasks, gradient={"name": "pcgrad", "rep_grad": True}, verbose=0)


def test_parameter_gradients_still_work_without_a_clean_split():
    tasks = make_tasks()
    fast = Trainer(lambda: _tangled_model(tasks), tasks, "sgd", epochs=1, verbose=0)
    per_task = Trainer(lambda: _tangled_model(tasks), tasks, "sgd", epochs=1, verbose=0,
                       gradient="upgrad")
    assert not per_task.step._split_ok
    fast.fit(toy_dataset(64))
    per_task.fit(toy_dataset(64))
    assert all(np.all(np.isfinite(w)) for w in weights_of(per_task.model))


def test_task_optimizer_trains_task_layers_and_optimizer_the_shared_ones():
    tasks = make_tasks()
    frozen_towers = Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.05},
                            task_optimizer={"name": "sgd", "learning_rate": 0.0}, epochs=1, verbose=0,
                            gradient="pcgrad")
    before = {v.path: v.numpy().copy() for v in frozen_towers.model.trainable_variables}
    frozen_towers.fit(toy_dataset(64))
    for v in frozen_towers.model.trainable_variables:
        changed = not np.array_equal(v.numpy(), before[v.path])
        assert changed == v.path.startswith("trunk"), v.path


def test_round_robin_trains_one_tasks_tower_per_step():
    tasks = make_tasks()
    trainer = Trainer(lambda: build_model(tasks), tasks, "sgd", sampling="round_robin", epochs=1,
                      steps_per_epoch=1, verbose=0)
    before = {v.path: v.numpy().copy() for v in trainer.model.trainable_variables}
    trainer.fit(toy_dataset(64))  # step 0: task a only
    for v in trainer.model.trainable_variables:
        if v.path.startswith(("a_", "b_")):
            assert (not np.array_equal(v.numpy(), before[v.path])) == v.path.startswith("a_"), v.path


def test_uncertainty_weighting_learns_its_log_variances_with_the_model():
    tasks = make_tasks()
    trainer = Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.05},
                      weighting="uncertainty", epochs=2, verbose=0)
    history = trainer.fit(toy_dataset(128))
    s = trainer.weighting.log_variance.numpy()
    # The optimum of exp(-s) L + s / 2 is s = log(2 L); losses start near log 2, so s rises from 0.
    assert np.all(s > 0.05)
    assert np.all(s < np.log(2 * np.array([history.epochs[0]["a/loss"], history.epochs[0]["b/loss"]])) + 0.05)
    last = history.epochs[-1]
    np.testing.assert_allclose([last["a/weight"], last["b/weight"]], np.exp(-s), rtol=0.2)


def test_resume_restores_weighting_and_aggregator_state(tmp_path):
    tasks = make_tasks()

    def trainer(epochs, checkpoint_dir=None):
        return Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.05},
                       weighting="dwa", gradient="gradvac", epochs=epochs, checkpoint_dir=checkpoint_dir, verbose=0)

    train = toy_dataset(96)
    reference = trainer(4)
    reference.fit(train)
    trainer(2, tmp_path).fit(train)
    resumed = trainer(4, tmp_path)
    resumed.fit(train, resume=True)
    assert int(resumed.weighting.epochs_seen.numpy()) == 4
    np.testing.assert_allclose(resumed.weighting.last.numpy(), reference.weighting.last.numpy(), rtol=1e-5)
    np.testing.assert_allclose(resumed.aggregator.targets.numpy(), reference.aggregator.targets.numpy(), atol=1e-6)
    assert np.any(reference.aggregator.targets.numpy() != 0)
    for got, want in zip(weights_of(resumed.model), weights_of(reference.model)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _recipe(training):
    return {"name": "r", "data": {"source": {"path": "x.csv"}, "features": [{"name": "x", "kind": "numeric"}],
                                  "split": {"key": "x"}, "output_dir": "out"},
            "tasks": [{"name": "a", "type": "binary", "label": "y"}], "training": training}


def test_recipes_select_methods_and_per_part_optimizers():
    recipe = parse_recipe(_recipe({"gradient": {"name": "pcgrad", "rep_grad": True}, "weighting": "gradnorm",
                                   "sampling": {"name": "annealed", "alpha_end": 0.3},
                                   "task_optimizer": {"name": "sgd", "learning_rate": 0.1}}), check=True)
    assert recipe.training.gradient.as_dict() == {"name": "pcgrad", "rep_grad": True}
    assert recipe.training.task_optimizer.as_dict() == {"name": "sgd", "learning_rate": 0.1}
    assert parse_recipe(_recipe({}), check=True).training.task_optimizer is None
    with pytest.raises(ValueError, match=r"gradient.cagrad: unknown option 'radius'.*allowed: c, rep_grad"):
        parse_recipe(_recipe({"gradient": {"name": "cagrad", "radius": 0.5}}), check=True)


def _regularised_model(tasks):
    """The toy with an L2 penalty on the shared trunk's kernel (a model loss)."""
    inputs = {name: keras.Input(shape=(), name=name) for name in FEATURES}
    x = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[n]) for n in FEATURES])
    x = keras.layers.Dense(8, activation="relu", name="trunk", kernel_regularizer=keras.regularizers.L2(0.5),
                           kernel_initializer=keras.initializers.GlorotUniform(seed=0))(x)
    return keras.Model(inputs, {t.name: t.head(keras.layers.Dense(4, name=f"{t.name}_tower")(x)) for t in tasks})


def test_model_losses_reach_the_shared_variables_with_per_task_gradients():
    # Only task a is labelled, so every aggregator's update is a's gradient: the same step as
    # the sum's, penalty included.
    tasks = make_tasks()
    features, labels, masks = one_batch()
    masks["b"] = np.zeros_like(masks["b"])
    after = {}
    for gradient in ("sum", "pcgrad"):
        trainer = Trainer(lambda: _regularised_model(tasks), tasks, {"name": "sgd", "learning_rate": 0.1},
                          gradient=gradient, epochs=1, verbose=0)
        trainer.fit(tf.data.Dataset.from_tensors((features, labels, masks)))
        after[gradient] = weights_of(trainer.model)
    for got, want in zip(after["pcgrad"], after["sum"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def _cross_fed_model(tasks):
    """Not made by the builder: task a's layer feeds task b's output too."""
    inputs = {name: keras.Input(shape=(), name=name) for name in FEATURES}
    x = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[n]) for n in FEATURES])
    hidden = keras.layers.Dense(4, activation="relu", name="a_hidden")(x)
    return keras.Model(inputs, {t.name: t.head(hidden) for t in tasks})


@pytest.mark.parametrize("gradient", ["sum", "pcgrad"])
def test_a_task_layer_that_feeds_another_task_is_refused_when_the_trainer_is_built(gradient):
    tasks = make_tasks()
    with pytest.raises(ValueError, match=r"layer 'a_hidden' is named for task 'a' but task\(s\) b also depend on "
                                         r"it; name it 'shared_a_hidden'"):
        Trainer(lambda: _cross_fed_model(tasks), tasks, gradient=gradient, verbose=0)


def test_the_last_shared_layer_is_the_trunks_last_dense_or_each_experts():
    from tests.models.toy import toy_model

    def paths(architecture):
        return [v.path for v in ModelSplit(toy_model(architecture), ["a", "b"]).last_shared]

    assert paths("hps") == ["shared_trunk/dense_1/kernel", "shared_trunk/dense_1/bias"]
    mmoe = paths("mmoe")
    assert mmoe and all("/dense_1/" in p and p.startswith("shared_expert_") for p in mmoe)
    assert len({p.split("/")[0] for p in mmoe}) == 4  # every expert
    assert paths({"name": "sps", "penalty_weight": 0.0}) == []


def _gradnorm_step(norms, lr):
    """One GradNorm step from weights 1 on the first batch (L(0) = L, so every rate is 1)."""
    scaled = norms  # w = 1
    target = scaled.mean()
    moved = np.maximum(1.0 - lr * np.sign(scaled - target) * norms, 1e-3)
    return moved * len(norms) / moved.sum()


@pytest.mark.parametrize("last_shared_layer", [True, False])
def test_gradnorm_measures_the_gradient_norms_of_the_last_shared_layer(last_shared_layer):
    from tests.models.toy import tasks as toy_tasks, toy_data, toy_model

    x, labels = toy_data(32)
    masks = {k: np.ones(32, "float32") for k in labels}
    spec = {"name": "gradnorm", "learning_rate": 0.1, "last_shared_layer": last_shared_layer}
    trainer = Trainer(lambda: toy_model("hps"), toy_tasks(), {"name": "sgd", "learning_rate": 0.0},
                      weighting=spec, epochs=1, verbose=0)
    model = trainer.model
    trunk = model.get_layer("shared_trunk")
    measured = [w for w in trunk.trainable_weights if "dense_1" in w.path] if last_shared_layer \
        else trunk.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        losses, _ = masked_losses(toy_tasks(), labels, masks, model({"x": tf.constant(x)}, training=True))
        each = tf.unstack(losses)
    norms = np.array([np.sqrt(sum(float(tf.reduce_sum(g * g)) for g in tape.gradient(each[t], measured)))
                      for t in range(2)])
    trainer.fit(tf.data.Dataset.from_tensors(({"x": x}, labels, masks)))
    np.testing.assert_allclose(trainer.weighting.weights.numpy(), _gradnorm_step(norms, 0.1), rtol=1e-4)
