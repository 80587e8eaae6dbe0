"""Every gradient aggregator against its definition, on small known gradients."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.pcgrad import random_orders
from mtl_tf.training.aggregators.solvers import _min_norm_enumerated, _min_norm_projected
from mtl_tf.training.state import stateless_seed
from training_toy import make_tasks

GRAM_METHODS = ["sum", "pcgrad", "gradvac", "cagrad", "mgda", "imtl_g", "nash_mtl", "aligned_mtl", "upgrad"]


class _Task:
    def __init__(self, name):
        self.name, self.weight, self.registered_type = name, 1.0, "binary"


def make(spec, num_tasks=2):
    aggregator = AGGREGATORS.get(spec)
    aggregator.build([_Task(f"t{i}") for i in range(num_tasks)], [])
    return aggregator


def combine(spec, vectors, weights=None, step=0, losses=None, aggregator=None):
    """The aggregate of task gradients given as rows of a matrix (one variable)."""
    vectors = np.asarray(vectors, dtype="float32")
    aggregator = aggregator or make(spec, len(vectors))
    weights = np.ones(len(vectors), "float32") if weights is None else np.asarray(weights, "float32")
    grads = [[tf.constant(v)] for v in vectors]
    # Compiled, as in the training step (the solvers' loops are slow eagerly).
    losses = None if losses is None else tf.constant(losses, tf.float32)
    return tf.function(aggregator.aggregate)(grads, tf.constant(weights), losses=losses,
                                             step=tf.constant(step, tf.int64))[0].numpy()


def random_vectors(num_tasks, dim=7, seed=0):
    return np.random.default_rng(seed).normal(size=(num_tasks, dim)).astype("float32")


# --- PCGrad ------------------------------------------------------------------------------
def test_pcgrad_of_two_conflicting_vectors_is_the_sum_of_the_projections():
    g1, g2 = np.array([1.0, 0.0]), np.array([-1.0, 1.0])  # g1 . g2 = -1
    # g1' = g1 - (-1 / 2) g2 = (0.5, 0.5); g2' = g2 - (-1 / 1) g1 = (0, 1)
    np.testing.assert_allclose(combine("pcgrad", [g1, g2]), [0.5, 1.5], atol=1e-6)


def test_pcgrad_leaves_agreeing_gradients_alone():
    np.testing.assert_allclose(combine("pcgrad", [[1.0, 0.2], [0.5, 1.0]]), [1.5, 1.2], atol=1e-6)


def _pcgrad_reference(vectors, orders):
    projected = []
    for i, g in enumerate(vectors):
        g = g.astype("float64").copy()
        for j in orders[i]:
            if j == i:
                continue
            dot = g @ vectors[j]
            if dot < 0:
                g -= dot / (vectors[j] @ vectors[j]) * vectors[j]
        projected.append(g)
    return np.sum(projected, axis=0)


@pytest.mark.parametrize("num_tasks", [3, 6])
def test_pcgrad_matches_the_sequential_algorithm_with_its_random_orders(num_tasks):
    vectors = random_vectors(num_tasks, dim=4, seed=num_tasks)
    orders = random_orders(num_tasks, stateless_seed(0, tf.constant(5, tf.int64))).numpy()
    got = combine("pcgrad", vectors, step=5)
    np.testing.assert_allclose(got, _pcgrad_reference(vectors, orders), rtol=1e-4, atol=1e-5)


# --- MGDA --------------------------------------------------------------------------------
@pytest.mark.parametrize("g1, g2", [([1.0, 0.0], [0.0, 2.0]), ([1.0, 0.0], [-1.0, 1.0]), ([3.0, 1.0], [2.0, 1.0])])
def test_mgda_of_two_vectors_is_the_min_norm_point_of_their_hull(g1, g2):
    g1, g2 = np.array(g1), np.array(g2)
    gamma = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0)
    expected = gamma * g1 + (1 - gamma) * g2
    np.testing.assert_allclose(combine("mgda", [g1, g2]), expected, atol=1e-5)


def _assert_min_norm_kkt(vectors, d):
    # d is the min-norm point of the hull iff d . g_t >= |d|^2 for every t.
    assert np.all(vectors @ d >= d @ d - 1e-4 * max(1.0, d @ d))


@pytest.mark.parametrize("num_tasks", [4, 12])
def test_mgda_min_norm_point_satisfies_the_optimality_conditions_beyond_three_tasks(num_tasks):
    vectors = random_vectors(num_tasks, dim=16, seed=num_tasks) + 0.3
    d = combine("mgda", vectors)
    _assert_min_norm_kkt(vectors.astype("float64"), d.astype("float64"))


def test_mgda_exact_and_iterative_solvers_agree():
    vectors = random_vectors(6, dim=10, seed=3) + 0.2
    gram = tf.constant(vectors @ vectors.T)
    exact = _min_norm_enumerated(gram, tf.ones([6])).numpy()
    iterative = tf.function(_min_norm_projected)(gram, tf.ones([6]), 2000).numpy()
    np.testing.assert_allclose(exact @ vectors, iterative @ vectors, atol=2e-3)


def test_mgda_l2_normalisation_ignores_gradient_scale():
    g1, g2 = np.array([1.0, 0.0]), np.array([0.6, 0.8])
    scaled = combine({"name": "mgda", "normalize": "l2"}, [g1, 10.0 * g2])
    unit = combine("mgda", [g1, g2])
    np.testing.assert_allclose(scaled, unit, atol=1e-5)


def test_mgda_refuses_an_unknown_normalisation():
    with pytest.raises(ValueError, match=r"normalize must be one of none, l2, loss, loss\+; received 'L2'"):
        AGGREGATORS.get({"name": "mgda", "normalize": "L2"})


# --- CAGrad ------------------------------------------------------------------------------
def test_cagrad_with_c_zero_is_the_average_gradient():
    vectors = random_vectors(3, seed=1)
    np.testing.assert_allclose(combine({"name": "cagrad", "c": 0.0}, vectors), vectors.mean(0), atol=1e-5)


def test_cagrad_of_orthogonal_equal_gradients_scales_the_average():
    c = 0.5
    got = combine({"name": "cagrad", "c": c}, [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(got, (1 + c) / (1 + c ** 2) * np.array([0.5, 0.5]), atol=1e-4)


def test_cagrad_of_two_conflicting_gradients_matches_a_grid_search():
    g = np.array([[1.0, 0.1], [-0.6, 1.0]])
    c = 0.4
    g0 = g.mean(0)
    radius = c * np.linalg.norm(g0)
    xs = np.linspace(0, 1, 200001)
    gx = xs[:, None] * g[0] + (1 - xs[:, None]) * g[1]
    best = gx[np.argmin(gx @ g0 + radius * np.linalg.norm(gx, axis=1))]
    expected = (g0 + radius * best / np.linalg.norm(best)) / (1 + c ** 2)
    np.testing.assert_allclose(combine({"name": "cagrad", "c": c, "iterations": 500}, g), expected, atol=2e-3)


# --- IMTL-G ------------------------------------------------------------------------------
@pytest.mark.parametrize("num_tasks", [2, 3, 6])
def test_imtl_g_gives_equal_projections_on_every_unit_gradient(num_tasks):
    vectors = random_vectors(num_tasks, dim=8, seed=num_tasks) * np.arange(1, num_tasks + 1)[:, None]
    g = combine("imtl_g", vectors).astype("float64")
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    projections = units @ g
    np.testing.assert_allclose(projections, projections[0], rtol=1e-3)


def test_imtl_g_matches_the_papers_closed_form():
    h = random_vectors(3, dim=5, seed=9).astype("float64")
    u = h / np.linalg.norm(h, axis=1, keepdims=True)
    d, uu = h[0] - h[1:], u[0] - u[1:]
    rest = h[0] @ uu.T @ np.linalg.inv(d @ uu.T)
    alpha = np.concatenate([[1 - rest.sum()], rest])
    np.testing.assert_allclose(combine("imtl_g", h), alpha @ h, rtol=1e-3, atol=1e-4)


# --- Nash-MTL ----------------------------------------------------------------------------
def test_nash_mtl_of_orthogonal_gradients_gives_each_the_same_norm():
    g = np.array([[3.0, 0.0], [0.0, 0.5]])
    frobenius = np.linalg.norm(np.diag([9.0, 0.25]))
    # G_n = diag(n^2) / F, alpha_t^2 n_t^2 / F = 1: alpha_t = sqrt(F) / n_t.
    expected = np.sqrt(frobenius) * np.array([1.0, 1.0])
    np.testing.assert_allclose(combine("nash_mtl", g), expected, rtol=1e-4)


def test_nash_mtl_solves_the_bargaining_fixed_point():
    vectors = random_vectors(4, dim=9, seed=2)
    aggregator = make("nash_mtl", 4)
    gram = tf.constant(vectors @ vectors.T)
    alpha = tf.function(aggregator.coefficients)(gram, tf.ones([4]), tf.constant(0, tf.int64)).numpy()
    normalised = (vectors @ vectors.T) / np.linalg.norm(vectors @ vectors.T)
    np.testing.assert_allclose((normalised @ alpha) * alpha, np.ones(4), rtol=1e-3)
    assert np.all(alpha > 0)


# --- Aligned-MTL -------------------------------------------------------------------------
def test_aligned_mtl_of_orthogonal_gradients_scales_each_to_the_smallest_norm():
    g = np.array([[3.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(combine("aligned_mtl", g), [1.0, 1.0], atol=1e-5)


def test_aligned_mtl_update_norm_is_sqrt_T_times_the_smallest_singular_value():
    vectors = random_vectors(4, dim=10, seed=4).astype("float64")
    update = combine("aligned_mtl", vectors)
    smallest = np.linalg.eigvalsh(vectors @ vectors.T).min()
    assert update @ update == pytest.approx(4 * smallest, rel=1e-3)


def test_aligned_mtl_survives_linearly_dependent_gradients():
    g = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert np.all(np.isfinite(combine("aligned_mtl", g)))


# --- UPGrad ------------------------------------------------------------------------------
def test_upgrad_of_two_conflicting_vectors_is_half_the_pcgrad_sum():
    np.testing.assert_allclose(combine("upgrad", [[1.0, 0.0], [-1.0, 1.0]]), [0.25, 0.75], atol=1e-4)


def test_upgrad_without_conflict_is_the_mean():
    vectors = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.3, 0.1, 1.0]])
    np.testing.assert_allclose(combine("upgrad", vectors), vectors.mean(0), atol=1e-5)


def test_upgrad_conflicts_with_no_task():
    vectors = random_vectors(6, dim=8, seed=6)
    update = combine({"name": "upgrad", "iterations": 1000}, vectors)
    assert np.all(vectors @ update >= -1e-4)


# --- GradVac -----------------------------------------------------------------------------
def test_gradvac_first_step_equals_pcgrad():
    vectors = random_vectors(4, dim=5, seed=8)
    np.testing.assert_allclose(combine("gradvac", vectors, step=3), combine("pcgrad", vectors, step=3),
                               rtol=1e-4, atol=1e-5)


def test_gradvac_raises_similarity_to_its_target_and_tracks_it():
    aggregator = make({"name": "gradvac", "beta": 0.5}, 2)
    aggregator.targets.assign([[0.0, 0.5], [0.5, 0.0]])
    h1, h2 = np.array([2.0, 0.0]), np.array([0.0, 1.0])  # cos = 0 < 0.5
    got = combine("gradvac", [h1, h2], aggregator=aggregator)
    root = np.sqrt(0.75)
    a12 = 2.0 * 0.5 / (1.0 * root)  # |h1| (phi_hat sqrt(1-phi^2) - phi sqrt(1-phi_hat^2)) / (|h2| sqrt(1-phi_hat^2))
    a21 = 1.0 * 0.5 / (2.0 * root)
    np.testing.assert_allclose(got, h1 + a12 * h2 + h2 + a21 * h1, rtol=1e-4)
    moved = h1 + a12 * h2
    assert moved @ h2 / (np.linalg.norm(moved) * np.linalg.norm(h2)) == pytest.approx(0.5, abs=1e-5)
    np.testing.assert_allclose(aggregator.targets.numpy(), [[0.0, 0.25], [0.25, 0.0]], atol=1e-6)


# --- every method ------------------------------------------------------------------------
@pytest.mark.parametrize("name", GRAM_METHODS)
def test_a_task_without_gradient_changes_nothing(name):
    vectors = random_vectors(2, dim=5, seed=11)
    with_idle = np.concatenate([vectors, np.zeros((1, 5), "float32")])
    np.testing.assert_allclose(combine(name, with_idle), combine(name, vectors), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", GRAM_METHODS)
def test_a_task_with_weight_zero_is_left_out(name):
    vectors = random_vectors(3, dim=5, seed=12)
    got = combine(name, vectors, weights=[1.0, 0.0, 1.0])
    np.testing.assert_allclose(got, combine(name, vectors[[0, 2]]), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", GRAM_METHODS)
@pytest.mark.parametrize("num_tasks", [2, 5, 12])
def test_every_method_gives_a_finite_descent_direction_for_any_number_of_tasks(name, num_tasks):
    vectors = random_vectors(num_tasks, dim=20, seed=num_tasks) + 0.5  # a common descent direction exists
    update = combine(name, vectors, losses=np.linspace(0.5, 2.0, num_tasks))
    assert np.all(np.isfinite(update))
    assert update @ vectors.mean(0) > 0


def test_sum_aggregator_is_the_weighted_sum_of_task_gradients():
    aggregator = AGGREGATORS.get("sum")
    assert not aggregator.needs_task_gradients
    grads = [[tf.constant([1.0, 0.0]), tf.constant(2.0)], [tf.constant([0.0, 1.0]), tf.constant(-1.0)]]
    out = aggregator.aggregate(grads, tf.constant([2.0, 3.0]))
    np.testing.assert_allclose(out[0], [2.0, 3.0])
    np.testing.assert_allclose(out[1], 1.0)


def test_mismatched_weights_are_refused():
    with pytest.raises(ValueError, match="3 task gradient lists but 2 weights"):
        make("pcgrad", 3).aggregate([[tf.ones([2])]] * 3, tf.ones([2]))


def test_rep_grad_is_an_option_of_every_aggregator():
    for name in GRAM_METHODS:
        assert AGGREGATORS.get({"name": name, "rep_grad": True}).rep_grad
    with pytest.raises(TypeError, match="rep_grad must be true or false; received 'yes'"):
        AGGREGATORS.get({"name": "pcgrad", "rep_grad": "yes"})
    assert make_tasks()  # the toy tasks import cleanly alongside
