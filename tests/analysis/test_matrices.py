"""The closed forms: cosine matrix, lookahead affinity, NaN-aware means."""

import numpy as np
import pytest

from mtl_tf.analysis.matrices import affinity_from_losses, cosine_from_gram, cosine_matrix, nanmean_matrices


def test_cosine_matrix_matches_numpy_on_known_gradients():
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(4, 17))
    grads[3] = -2.5 * grads[0]  # exactly opposite direction to task 0
    expected = np.array([[a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for b in grads] for a in grads])
    got = cosine_matrix(grads)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got[0, 3] == pytest.approx(-1.0)
    np.testing.assert_allclose(np.diag(got), 1.0)


def test_zero_gradient_task_has_undefined_cosine():
    gram = cosine_from_gram(np.array([[4.0, 0.0], [0.0, 0.0]]))
    assert gram[0, 0] == 1.0
    assert np.isnan(gram[0, 1]) and np.isnan(gram[1, 1])


def test_affinity_formula_and_unlabelled_column():
    before = np.array([2.0, 4.0, 0.0])
    after = np.array([[1.0, 5.0, 0.0], [2.0, 3.0, 0.0], [2.0, 4.0, 0.0]])
    z = affinity_from_losses(before, after)
    np.testing.assert_allclose(z[:, :2], [[0.5, -0.25], [0.0, 0.25], [0.0, 0.0]])
    assert np.isnan(z[:, 2]).all()


def test_affinity_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(3,\)"):
        affinity_from_losses(np.ones(3), np.ones((2, 2)))


def test_nanmean_ignores_missing_batches():
    a = np.array([[1.0, np.nan], [np.nan, np.nan]])
    b = np.array([[3.0, 2.0], [np.nan, np.nan]])
    got = nanmean_matrices([a, b])
    assert got[0, 0] == 2.0 and got[0, 1] == 2.0 and np.isnan(got[1, 1])
