"""Task samplers: which tasks train at a step."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.tasks import BinaryTask
from mtl_tf.training.sampling import SAMPLERS
from mtl_tf.training.sampling.proportional import size_probabilities

TASKS = [BinaryTask(name) for name in ("a", "b", "c")]
SIZES = {"a": 900, "b": 90, "c": 10}


def make(spec, sizes=None, epochs=None):
    sampler = SAMPLERS.get(spec)
    sampler.build(TASKS, sizes=sizes, epochs=epochs)
    return sampler


def masks(sampler, steps, epoch=0):
    active = tf.function(sampler.active)
    return np.stack([active(tf.constant(s, tf.int64), tf.constant(epoch, tf.int64)).numpy() for s in range(steps)])


def test_joint_sampler_activates_every_task():
    assert make("joint").active(tf.constant(7, tf.int64), tf.constant(1, tf.int64)).numpy().tolist() == [1.0] * 3


def test_round_robin_trains_one_task_per_step_in_turn():
    np.testing.assert_array_equal(masks(make("round_robin"), 5), np.eye(3)[[0, 1, 2, 0, 1]])


def test_proportional_sampler_draws_by_size_to_the_power_alpha():
    sampler = make({"name": "proportional", "alpha": 0.5}, SIZES)
    drawn = masks(sampler, 3000)
    assert np.all(drawn.sum(1) == 1.0)
    expected = size_probabilities([900, 90, 10], 0.5)  # 30 : 9.5 : 3.2
    np.testing.assert_allclose(drawn.mean(0), expected, atol=0.03)
    np.testing.assert_array_equal(masks(sampler, 20), drawn[:20])  # the same step draws the same task


def test_proportional_with_alpha_zero_is_uniform():
    drawn = masks(make({"name": "proportional", "alpha": 0.0}, SIZES), 3000)
    np.testing.assert_allclose(drawn.mean(0), [1 / 3] * 3, atol=0.03)


def test_size_based_samplers_say_how_to_get_the_sizes():
    with pytest.raises(ValueError, match="needs the labelled training rows per task; pass task_sizes"):
        make("proportional")
    with pytest.raises(ValueError, match=r"no size for task\(s\) c"):
        make("annealed", {"a": 1, "b": 2})


def test_annealed_exponent_falls_from_one_to_point_two_over_the_epochs():
    sampler = make("annealed", SIZES, epochs=5)
    exponents = [float(sampler.exponent(tf.constant(e, tf.int64))) for e in range(5)]
    np.testing.assert_allclose(exponents, [1.0, 0.8, 0.6, 0.4, 0.2], atol=1e-6)
    first = sampler.probabilities(tf.constant(0, tf.int64)).numpy()
    last = sampler.probabilities(tf.constant(4, tf.int64)).numpy()
    np.testing.assert_allclose(first, size_probabilities([900, 90, 10], 1.0), rtol=1e-5)
    np.testing.assert_allclose(last, size_probabilities([900, 90, 10], 0.2), rtol=1e-5)
    assert last[2] > first[2]  # the small task is drawn more often late in training
