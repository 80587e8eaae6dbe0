"""Every weighting against its definition, on known losses and gradient norms."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.tasks import BinaryTask, RegressionTask
from mtl_tf.training.weighting import WEIGHTINGS
from training_toy import make_tasks

STEP = tf.constant(0, tf.int64)


def make(spec, tasks=None):
    weighting = WEIGHTINGS.get(spec)
    weighting.build(tasks or make_tasks())
    return weighting


def test_static_weighting_uses_task_weights_and_overrides():
    tasks = make_tasks(weights=(2.0, 0.5))
    assert make("static", tasks)(tf.constant([3.0, 4.0]), STEP).numpy().tolist() == [2.0, 0.5]
    override = make({"name": "static", "weights": {"b": 3.0}}, tasks)
    assert override(tf.zeros([2]), STEP).numpy().tolist() == [2.0, 3.0]


def test_static_weighting_refuses_an_unknown_task():
    with pytest.raises(ValueError, match=r"unknown task 'c'.*tasks: a, b"):
        make({"name": "static", "weights": {"c": 1.0}})


def test_uncertainty_weights_and_regulariser_follow_kendall_et_al():
    tasks = [BinaryTask("fraud"), RegressionTask("amount")]
    weighting = make({"name": "uncertainty"}, tasks)
    s = np.array([0.4, -0.7], "float32")
    weighting.log_variance.assign(s)
    weights = weighting(tf.constant([1.0, 2.0]), STEP).numpy()
    # classification: 1/sigma^2 = exp(-s); regression: 1/(2 sigma^2) = 0.5 exp(-s)
    np.testing.assert_allclose(weights, [np.exp(-0.4), 0.5 * np.exp(0.7)], rtol=1e-6)
    # log sigma = 0.5 s for both
    np.testing.assert_allclose(weighting.regularization().numpy(), 0.5 * s, rtol=1e-6)
    assert weighting.parameters == [weighting.log_variance]


def test_uncertainty_log_variance_moves_toward_the_loss():
    # d/ds [exp(-s) L + s/2] = 0 at s = log(2L): a large loss raises its variance.
    weighting = make("uncertainty")
    losses = tf.constant([2.0, 0.1])
    for _ in range(300):
        with tf.GradientTape() as tape:
            objective = tf.reduce_sum(weighting(losses, STEP) * losses + weighting.regularization())
        grad = tape.gradient(objective, weighting.parameters)[0]
        weighting.log_variance.assign_sub(0.1 * grad)
    np.testing.assert_allclose(weighting.log_variance.numpy(), np.log([4.0, 0.2]), atol=1e-3)


def test_dwa_weights_follow_the_loss_ratio_of_the_last_two_epochs():
    weighting = make({"name": "dwa", "temperature": 2.0})
    epochs = [[(1.0, 2.0), (3.0, 2.0)], [(1.0, 1.5), (1.0, 1.5)]]  # means: (2, 2) then (1, 1.5)
    for batches in epochs:
        for losses in batches:
            assert weighting(tf.constant(losses), STEP).numpy().tolist() == [1.0, 1.0]
        weighting.on_epoch_end()
    ratio = np.array([1.0 / 2.0, 1.5 / 2.0])
    expected = 2 * np.exp(ratio / 2.0) / np.exp(ratio / 2.0).sum()
    np.testing.assert_allclose(weighting(tf.constant([5.0, 5.0]), STEP).numpy(), expected, rtol=1e-6)
    assert expected[1] > expected[0]  # the task whose loss fell less gains weight


def test_dwa_ignores_losses_of_inactive_steps():
    weighting = make("dwa")
    weighting(tf.constant([4.0, 1.0]), STEP, active=tf.constant([1.0, 1.0]))
    weighting(tf.constant([0.0, 3.0]), STEP, active=tf.constant([0.0, 1.0]))
    weighting.on_epoch_end()
    np.testing.assert_allclose(weighting.last.numpy(), [4.0, 2.0])


def test_rlw_weights_are_positive_sum_to_T_vary_with_the_step_and_repeat_for_a_seed():
    weighting = make({"name": "rlw", "seed": 3}, make_tasks())
    draws = [weighting(tf.ones([2]), tf.constant(step, tf.int64)).numpy() for step in range(5)]
    for weights in draws:
        assert np.all(weights > 0) and weights.sum() == pytest.approx(2.0, rel=1e-6)
    assert len({w.tobytes() for w in draws}) == 5  # a fresh draw every step
    again = make({"name": "rlw", "seed": 3}, make_tasks())(tf.ones([2]), tf.constant(2, tf.int64)).numpy()
    np.testing.assert_array_equal(again, draws[2])  # a resumed run or another replica draws the same
    other = make({"name": "rlw", "seed": 4}, make_tasks())(tf.ones([2]), tf.constant(2, tf.int64)).numpy()
    assert not np.allclose(other, draws[2])


def test_rlw_log_weight_ratios_are_differences_of_standard_normal_draws():
    # w = T softmax(z), z ~ N(0, I): log(w_i / w_j) = z_i - z_j ~ N(0, 2), independent of T.
    tasks = [BinaryTask(f"t{i}") for i in range(3)]
    weighting = make({"name": "rlw", "seed": 0}, tasks)
    draws = np.stack([weighting(tf.ones([3]), tf.constant(i, tf.int64)).numpy() for i in range(600)])
    ratios = np.log(draws[:, 0] / draws[:, 1])
    assert abs(ratios.mean()) < 0.2
    assert ratios.std() == pytest.approx(np.sqrt(2.0), rel=0.1)


def test_rlw_weights_average_one_and_skip_inactive_tasks():
    tasks = [BinaryTask(f"t{i}") for i in range(4)]
    weighting = make("rlw", tasks)
    draws = np.stack([weighting(tf.ones([4]), tf.constant(i, tf.int64)).numpy() for i in range(400)])
    np.testing.assert_allclose(draws.sum(1), 4.0, rtol=1e-5)
    np.testing.assert_allclose(draws.mean(0), 1.0, atol=0.12)
    masked = weighting(tf.ones([4]), STEP, active=tf.constant([1.0, 0.0, 1.0, 1.0])).numpy()
    assert masked[1] == 0.0 and masked.sum() == pytest.approx(3.0)


def test_gradnorm_step_matches_the_closed_form():
    weighting = make({"name": "gradnorm", "alpha": 1.5, "learning_rate": 0.1})
    gram = tf.constant([[4.0, 0.0], [0.0, 1.0]])  # norms 2 and 1
    weighting(tf.constant([1.0, 1.0]), STEP, gram=gram)  # records L(0); rates equal
    # G = (2, 1), mean 1.5, r = (1, 1): targets 1.5; grad = sign(G - 1.5) n = (2, -1)
    # w = (1 - 0.2, 1 + 0.1) = (0.8, 1.1), renormalised to sum 2.
    np.testing.assert_allclose(weighting.weights.numpy(), np.array([0.8, 1.1]) * 2 / 1.9, rtol=1e-5)


def test_gradnorm_moves_weight_to_the_task_that_trains_slower():
    weighting = make("gradnorm")
    gram = tf.eye(2)  # equal gradient norms
    weighting(tf.constant([1.0, 1.0]), STEP, gram=gram)
    for _ in range(10):
        used = weighting(tf.constant([0.2, 0.9]), STEP, gram=gram)  # task b's loss fell less
    assert used.numpy()[1] > used.numpy()[0]
    assert weighting.weights.numpy().sum() == pytest.approx(2.0, rel=1e-5)


def test_gradnorm_needs_the_gram_matrix():
    with pytest.raises(ValueError, match="gradnorm' needs the Gram matrix"):
        make("gradnorm")(tf.ones([2]), STEP)


def test_famo_weights_are_softmax_over_loss_normalised():
    weighting = make("famo")
    weighting.logits.assign([0.5, -0.5])
    losses = tf.constant([2.0, 0.5])
    z = np.exp([0.5, -0.5]) / np.exp([0.5, -0.5]).sum()
    inverse = z / np.array([2.0, 0.5])
    np.testing.assert_allclose(weighting.weights_for(losses, tf.ones([2])).numpy(),
                               2 * inverse / inverse.sum(), rtol=1e-5)


def test_famo_gives_more_weight_to_the_task_whose_loss_falls_least():
    weighting = make("famo")
    losses = np.array([1.0, 1.0], "float32")
    for _ in range(20):
        weighting(tf.constant(losses), STEP)
        losses = losses * np.array([0.8, 0.99], "float32")
    logits = weighting.logits.numpy()
    assert logits[1] > logits[0]


@pytest.mark.parametrize("name", ["static", "uncertainty", "dwa", "rlw", "gradnorm", "famo"])
def test_every_weighting_returns_T_finite_weights(name):
    tasks = [BinaryTask(f"t{i}") for i in range(5)]
    weighting = make(name, tasks)
    losses = tf.constant([0.5, 1.0, 0.0, 2.0, 0.3])
    active = tf.constant([1.0, 1.0, 0.0, 1.0, 1.0])
    for step in range(3):
        weights = weighting(losses, tf.constant(step, tf.int64), active=active, gram=tf.eye(5))
    assert weights.shape == (5,) and np.all(np.isfinite(weights.numpy()))
