"""Soft parameter sharing: the L2 penalty between task trunks."""

import keras
import numpy as np

from mtl_tf.models import penalty_values
from tests.models.toy import fit_losses, toy_data, toy_model


def _distance(model):
    a, b = model.get_layer("a_trunk").trainable_weights, model.get_layer("b_trunk").trainable_weights
    return sum(float(np.sum((keras.ops.convert_to_numpy(x) - keras.ops.convert_to_numpy(y)) ** 2))
               for x, y in zip(a, b))


def test_penalty_is_the_weighted_l2_distance_between_trunks_and_is_a_model_loss(tmp_path):
    model = toy_model({"name": "sps", "penalty_weight": 0.5})
    x, _ = toy_data(4)
    model(x, training=True)
    expected = 0.5 * _distance(model)
    assert expected > 0
    np.testing.assert_allclose([float(loss) for loss in model.losses], [expected], rtol=1e-5)
    np.testing.assert_allclose(penalty_values(model)["shared_soft_sharing"], expected, rtol=1e-5)
    model.save(tmp_path / "sps.keras")
    restored = keras.saving.load_model(tmp_path / "sps.keras")
    restored(x)
    np.testing.assert_allclose([float(loss) for loss in restored.losses], [expected], rtol=1e-5)


def test_a_strong_penalty_pulls_the_trunks_together():
    free, tied = toy_model({"name": "sps", "penalty_weight": 0.0}), toy_model({"name": "sps", "penalty_weight": 1.0})
    assert _distance(free) == _distance(tied)  # same seed, same start
    data = toy_data(128)
    fit_losses(free, *data, epochs=2, learning_rate=0.05)
    fit_losses(tied, *data, epochs=2, learning_rate=0.05)
    assert _distance(tied) < 0.5 * _distance(free)
    assert not free.losses or float(free.losses[0]) == 0.0
