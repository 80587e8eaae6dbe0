"""Every gradient aggregator against its definition, on small known gradients: closed forms,
how task weights enter, and the default solvers against exact reference solutions (scipy)."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import lsq_linear, minimize, nnls

from mtl_tf.training.aggregators import AGGREGATORS
from mtl_tf.training.aggregators.pcgrad import random_orders
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


class Compiled:
    """One aggregator's compiled coefficients(), reused across cases (its state carries over,
    so each case also starts from an unrelated previous solution)."""

    def __init__(self, spec, num_tasks):
        self.aggregator = make(spec, num_tasks)
        self.fn = tf.function(self.aggregator.coefficients)

    def update(self, vectors, weights=None, losses=None):
        vectors = np.asarray(vectors, "float32")
        num_tasks = len(vectors)
        weights = np.ones(num_tasks) if weights is None else np.asarray(weights)
        losses = np.ones(num_tasks) if losses is None else np.asarray(losses)
        beta = self.fn(tf.constant(vectors @ vectors.T), tf.constant(weights, tf.float32),
                       tf.constant(losses, tf.float32), tf.constant(0, tf.int64)).numpy()
        return beta.astype("float64") @ vectors.astype("float64")


def random_vectors(num_tasks, dim=7, seed=0):
    return np.random.default_rng(seed).normal(size=(num_tasks, dim)).astype("float32")


ORTHOGONAL_UNIT = np.eye(2, dtype="float32")
WEIGHTS = np.array([1.0, 0.1])


# --- PCGrad ------------------------------------------------------------------------------
def test_pcgrad_of_two_conflicting_vectors_is_the_sum_of_the_projections():
    g1, g2 = np.array([1.0, 0.0]), np.array([-1.0, 1.0])  # g1 . g2 = -1
    # g1' = g1 - (-1 / 2) g2 = (0.5, 0.5); g2' = g2 - (-1 / 1) g1 = (0, 1)
    np.testing.assert_allclose(combine("pcgrad", [g1, g2]), [0.5, 1.5], atol=1e-6)


def test_pcgrad_leaves_agreeing_gradients_alone():
    np.testing.assert_allclose(combine("pcgrad", [[1.0, 0.2], [0.5, 1.0]]), [1.5, 1.2], atol=1e-6)


def _pcgrad_reference(vectors, orders):
    """The sequential algorithm of the paper: task i visits the others in orders[i]."""
    projected = []
    for i, g in enumerate(vectors.astype("float64")):
        g = g.copy()
        for j in orders[i]:
            if j == i:
                continue
            dot = g @ vectors[j]
            if dot < 0:
                g -= dot / (vectors[j] @ vectors[j]) * vectors[j]
        projected.append(g)
    return np.sum(projected, axis=0)


def test_pcgrad_random_orders_are_permutations_that_change_with_the_step_and_repeat_for_a_step():
    draws = [random_orders(5, stateless_seed(0, tf.constant(step, tf.int64))).numpy() for step in range(6)]
    for orders in draws:
        assert all(sorted(row) == list(range(5)) for row in orders)
    assert len({d.tobytes() for d in draws}) > 1
    again = random_orders(5, stateless_seed(0, tf.constant(3, tf.int64))).numpy()
    np.testing.assert_array_equal(again, draws[3])
    other_seed = random_orders(5, stateless_seed(1, tf.constant(3, tf.int64))).numpy()
    assert not np.array_equal(other_seed, draws[3])


def test_pcgrad_is_the_sequential_algorithm_for_one_order_per_task_and_the_orders_vary():
    # Three mutually conflicting gradients: the result depends on the order each task visits
    # the others in; every step's result must be one of the 2^3 sequential outcomes.
    vectors = np.array([[1.0, 0.0, 0.2], [-0.6, 1.0, 0.0], [-0.5, -0.7, 0.3]], "float32")
    others = [[j for j in range(3) if j != i] for i in range(3)]
    outcomes = [_pcgrad_reference(vectors, [list(p) for p in choice])
                for choice in itertools.product(*[[o, o[::-1]] for o in others])]
    seen = set()
    for step in range(12):
        got = combine("pcgrad", vectors, step=step)
        distances = [np.abs(got - outcome).max() for outcome in outcomes]
        assert min(distances) < 1e-5, (step, got)
        seen.add(int(np.argmin(distances)))
    assert len(seen) > 1  # the orders change with the step


# --- MGDA --------------------------------------------------------------------------------
def _two_task_min_norm(g1, g2):
    gamma = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0)
    return gamma, 1 - gamma


@pytest.mark.parametrize("g1, g2", [([1.0, 0.0], [0.0, 2.0]), ([1.0, 0.0], [-1.0, 1.0]), ([3.0, 1.0], [2.0, 1.0])])
def test_mgda_without_normalisation_is_the_min_norm_point_of_the_hull(g1, g2):
    g1, g2 = np.array(g1), np.array(g2)
    a, b = _two_task_min_norm(g1, g2)
    np.testing.assert_allclose(combine({"name": "mgda", "normalize": "none"}, [g1, g2]), a * g1 + b * g2, atol=1e-5)


def test_mgda_default_is_the_papers_loss_plus_normalisation_applied_to_the_raw_gradients():
    # Sener & Koltun's code: lambda = min-norm point of g_t / (L_t |g_t|), then the raw losses
    # are scaled by lambda: the update is lambda_1 g1 + lambda_2 g2 (not of the normalised ones).
    assert make("mgda").normalize == "loss+"
    g1, g2 = np.array([2.0, 0.0]), np.array([1.0, 3.0])
    losses = np.array([0.5, 2.0])
    n1, n2 = losses[0] * np.linalg.norm(g1), losses[1] * np.linalg.norm(g2)
    a, b = _two_task_min_norm(g1 / n1, g2 / n2)
    np.testing.assert_allclose(combine("mgda", [g1, g2], losses=losses), a * g1 + b * g2, rtol=1e-5)


def test_mgda_l2_normalisation_solves_on_unit_gradients_and_scales_the_raw_ones():
    g1, g2 = np.array([1.0, 0.0]), 10.0 * np.array([0.6, 0.8])
    # Unit vectors of equal norm: the min-norm weights are (1/2, 1/2), applied to g1 and g2.
    np.testing.assert_allclose(combine({"name": "mgda", "normalize": "l2"}, [g1, g2]), 0.5 * g1 + 0.5 * g2, rtol=1e-5)


def test_mgda_refuses_an_unknown_normalisation():
    with pytest.raises(ValueError, match=r"normalize must be one of none, l2, loss, loss\+; received 'L2'"):
        AGGREGATORS.get({"name": "mgda", "normalize": "L2"})


def _assert_min_norm_kkt(vectors, d):
    # d is the min-norm point of the hull iff d . g_t >= |d|^2 for every t.
    assert np.all(vectors @ d >= d @ d - 1e-4 * max(1.0, d @ d))


@pytest.mark.parametrize("num_tasks", [4, 12])
def test_mgda_min_norm_point_satisfies_the_optimality_conditions(num_tasks):
    vectors = random_vectors(num_tasks, dim=16, seed=num_tasks) + 0.3
    d = combine({"name": "mgda", "normalize": "none"}, vectors)
    _assert_min_norm_kkt(vectors.astype("float64"), d.astype("float64"))


# --- CAGrad ------------------------------------------------------------------------------
def test_cagrad_with_c_zero_is_the_average_gradient():
    vectors = random_vectors(3, seed=1)
    np.testing.assert_allclose(combine({"name": "cagrad", "c": 0.0}, vectors), vectors.mean(0), atol=1e-5)


def test_cagrad_of_orthogonal_equal_gradients_scales_the_average():
    c = 0.5
    got = combine({"name": "cagrad", "c": c}, [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(got, (1 + c) / (1 + c ** 2) * np.array([0.5, 0.5]), atol=1e-5)


def test_cagrad_of_two_conflicting_gradients_matches_a_grid_search():
    g = np.array([[1.0, 0.1], [-0.6, 1.0]])
    c = 0.4
    g0 = g.mean(0)
    radius = c * np.linalg.norm(g0)
    xs = np.linspace(0, 1, 200001)
    gx = xs[:, None] * g[0] + (1 - xs[:, None]) * g[1]
    best = gx[np.argmin(gx @ g0 + radius * np.linalg.norm(gx, axis=1))]
    expected = (g0 + radius * best / np.linalg.norm(best)) / (1 + c ** 2)
    np.testing.assert_allclose(combine({"name": "cagrad", "c": c}, g), expected, atol=1e-5)


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
    alpha = tf.function(aggregator.coefficients)(gram, tf.ones([4]), tf.ones([4]), tf.constant(0, tf.int64)).numpy()
    normalised = (vectors @ vectors.T) / np.linalg.norm(vectors @ vectors.T)
    np.testing.assert_allclose((normalised @ alpha) * alpha, np.ones(4), rtol=1e-4)
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
    np.testing.assert_allclose(combine("upgrad", [[1.0, 0.0], [-1.0, 1.0]]), [0.25, 0.75], atol=1e-5)


def test_upgrad_without_conflict_is_the_mean():
    vectors = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.3, 0.1, 1.0]])
    np.testing.assert_allclose(combine("upgrad", vectors), vectors.mean(0), atol=1e-5)


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


# --- how task weights enter --------------------------------------------------------------
# Orthogonal unit gradients with weights (1, 0.1): the update's component along task 2
# relative to task 1's, as each method states it.
STATED_RATIO = {"sum": 0.1, "pcgrad": 0.1, "gradvac": 0.1, "mgda": 0.1, "imtl_g": 0.1, "aligned_mtl": 0.1,
                "upgrad": 0.1, "nash_mtl": np.sqrt(0.1)}
STATED_UPDATE = {"sum": [1.0, 0.1], "pcgrad": [1.0, 0.1], "gradvac": [1.0, 0.1], "aligned_mtl": [1.0, 0.1],
                 "imtl_g": [0.5, 0.05], "upgrad": [0.5, 0.05],
                 # w_t m^2 / sum w^2 with m the mean weight (see MGDA's docstring)
                 "mgda": np.array([1.0, 0.1]) * 0.55 ** 2 / 1.01,
                 # G / |G|_F = I / sqrt 2: beta_t^2 / sqrt 2 = w_t
                 "nash_mtl": 2 ** 0.25 * np.sqrt([1.0, 0.1])}


@pytest.mark.parametrize("name", sorted(STATED_RATIO))
def test_a_down_weighted_task_gets_the_stated_smaller_share(name):
    spec = {"name": "mgda", "normalize": "none"} if name == "mgda" else name
    got = combine(spec, ORTHOGONAL_UNIT, weights=WEIGHTS)
    assert got[1] / got[0] == pytest.approx(STATED_RATIO[name], rel=1e-4)
    np.testing.assert_allclose(got, STATED_UPDATE[name], rtol=1e-4)
    # Equal weights give the method's unweighted update, with equal components.
    equal = combine(spec, ORTHOGONAL_UNIT)
    assert equal[0] == pytest.approx(equal[1], rel=1e-5)


def test_cagrad_weights_set_the_average_and_the_correction_protects_the_down_weighted_task():
    c = 0.4
    got = combine("cagrad", ORTHOGONAL_UNIT, weights=WEIGHTS)
    # g0 = (0.5, 0.05); the worst-off task is 2, so d = g0 + r e_2 with r = c |g0|.
    g0 = WEIGHTS / 2
    expected = (g0 + [0.0, c * np.linalg.norm(g0)]) / (1 + c ** 2)
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert got[1] < got[0]


@pytest.mark.parametrize("name", ["mgda", "imtl_g", "upgrad", "sum", "pcgrad", "aligned_mtl", "cagrad"])
def test_scaling_every_weight_scales_the_update(name):
    vectors = random_vectors(3, dim=6, seed=21)
    weights = np.array([1.0, 0.5, 2.0])
    spec = {"name": "mgda", "normalize": "none"} if name == "mgda" else name
    np.testing.assert_allclose(combine(spec, vectors, weights=3 * weights), 3 * combine(spec, vectors, weights=weights),
                               rtol=1e-4, atol=1e-5)


def test_imtl_g_projections_are_proportional_to_the_weights():
    vectors = random_vectors(3, dim=6, seed=22) * np.array([[1.0], [4.0], [0.3]], "float32")
    weights = np.array([1.0, 0.2, 0.5])
    d = combine("imtl_g", vectors, weights=weights).astype("float64")
    projections = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)) @ d
    np.testing.assert_allclose(projections / weights, projections[0] / weights[0], rtol=1e-3)


def test_mgda_improvements_are_at_least_proportional_to_the_weights():
    vectors = random_vectors(4, dim=8, seed=23) + 0.4
    weights = np.array([1.0, 0.1, 0.5, 2.0])
    d = combine({"name": "mgda", "normalize": "none"}, vectors, weights=weights).astype("float64")
    ratios = (vectors.astype("float64") @ d) / weights
    assert np.all(ratios >= ratios.min() * (1 - 1e-4)) and np.all(ratios > 0)
    # Equality on the support: at least one other task sits at the minimum with the smallest.
    assert np.sum(np.isclose(ratios, ratios.min(), rtol=1e-3)) >= 2


def test_nash_mtl_weights_are_bargaining_powers():
    vectors = random_vectors(3, dim=7, seed=24)
    weights = np.array([1.0, 0.2, 3.0])
    aggregator = make("nash_mtl", 3)
    gram = vectors @ vectors.T
    beta = tf.function(aggregator.coefficients)(tf.constant(gram), tf.constant(weights, tf.float32), tf.ones([3]),
                                                tf.constant(0, tf.int64)).numpy()
    np.testing.assert_allclose((gram / np.linalg.norm(gram)) @ beta * beta, weights, rtol=1e-4)


def test_upgrad_weights_are_its_preference_vector_and_it_conflicts_with_no_task():
    vectors = np.array([[1.0, 0.0], [-0.8, 1.0]], "float32")
    weights = np.array([1.0, 0.1])
    d = combine("upgrad", vectors, weights=weights).astype("float64")
    # (1/T) sum_i w_i pi(g_i): pi(g1) = g1 - (g1.u2) u2 for u2 = g2/|g2| (g1 conflicts with g2); g2's likewise.
    g1, g2 = vectors.astype("float64")
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    p2 = g2 - (g1 @ g2) / (g1 @ g1) * g1
    np.testing.assert_allclose(d, (weights[0] * p1 + weights[1] * p2) / 2, rtol=1e-4, atol=1e-6)
    assert np.all(vectors @ d >= -1e-6)


# --- the default solvers against exact references -----------------------------------------
def gradient_cases(num_tasks, dim=12, seed=0):
    """Random, nearly colinear, pairwise-conflicting, badly scaled, duplicated and low-rank
    gradient sets (float32, as the training step has them)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=dim)
    conflicting = rng.normal(size=(num_tasks, dim))
    half = num_tasks // 2
    conflicting[half:] = -conflicting[:num_tasks - half] + 0.3 * rng.normal(size=(num_tasks - half, dim))
    duplicated = rng.normal(size=(num_tasks, dim))
    duplicated[-1] = duplicated[0]
    cases = {"random": rng.normal(size=(num_tasks, dim)),
             "colinear": base + 0.03 * rng.normal(size=(num_tasks, dim)),
             "conflicting": conflicting,
             "scaled": rng.normal(size=(num_tasks, dim)) * np.logspace(-2, 1, num_tasks)[:, None],
             "duplicated": duplicated,
             "low_rank": rng.normal(size=(num_tasks, 3))}
    return {name: v.astype("float32") for name, v in cases.items()}


def _close(got, want, vectors, rtol=1e-3):
    """Relative error of an update, measured against the largest gradient where the exact
    update is (nearly) zero (a Pareto-stationary point)."""
    scale = max(np.linalg.norm(want), 1e-2 * np.linalg.norm(vectors, axis=1).max())
    assert np.linalg.norm(got - want) <= rtol * scale, (got, want)


def reference_min_norm(vectors):
    # min |J^T a| over the simplex = NNLS on [J^T; 1] u ~ (0, ..., 0, 1), a = u / sum u.
    matrix = np.vstack([vectors.T, np.ones((1, len(vectors)))])
    target = np.zeros(matrix.shape[0])
    target[-1] = 1.0
    u, _ = nnls(matrix, target, maxiter=100 * len(vectors))
    return u / u.sum()


def reference_upgrad(vectors):
    num_tasks = len(vectors)
    total = np.zeros(num_tasks)
    for i in range(num_tasks):  # min |J^T v| over v >= e_i / T: bounded least squares
        lower = np.eye(num_tasks)[i] / num_tasks
        total += lsq_linear(vectors.T, np.zeros(vectors.shape[1]), bounds=(lower, np.inf), method="bvls",
                            tol=1e-15).x
    return total @ vectors


def reference_cagrad(vectors, c=0.4):
    num_tasks = len(vectors)
    gram = vectors @ vectors.T
    g0 = vectors.mean(0)
    radius = c * np.linalg.norm(g0)
    b = gram @ np.full(num_tasks, 1.0 / num_tasks)
    objective = lambda x: b @ x + radius * np.sqrt(max(x @ gram @ x, 1e-300))  # noqa: E731
    best = min((minimize(objective, start, method="SLSQP", bounds=[(0, 1)] * num_tasks,
                         constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
                         options={"ftol": 1e-16, "maxiter": 1000})
                for start in [np.full(num_tasks, 1.0 / num_tasks), *np.eye(num_tasks)]), key=lambda r: r.fun)
    x = np.clip(best.x, 0, None) / np.clip(best.x, 0, None).sum()
    return (g0 + radius * (x @ vectors) / np.linalg.norm(x @ vectors)) / (1 + c ** 2), objective


def reference_nash(vectors):
    gram = vectors @ vectors.T
    gram = gram / np.linalg.norm(gram)
    result = minimize(lambda b: 0.5 * b @ gram @ b - np.log(b).sum(), 1.0 / np.sqrt(np.diag(gram)),
                      jac=lambda b: gram @ b - 1.0 / b, bounds=[(1e-12, None)] * len(vectors), method="L-BFGS-B",
                      options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 100000})
    return result.x @ vectors


TASK_COUNTS = [2, 3, 8, 16]


@pytest.mark.parametrize("num_tasks", TASK_COUNTS)
def test_mgda_default_solver_is_exact(num_tasks):
    compiled = Compiled({"name": "mgda", "normalize": "none"}, num_tasks)
    for name, vectors in gradient_cases(num_tasks).items():
        exact = reference_min_norm(vectors.astype("float64")) @ vectors.astype("float64")
        _close(compiled.update(vectors), exact, vectors)


@pytest.mark.parametrize("num_tasks", TASK_COUNTS)
def test_upgrad_default_solver_is_exact_and_never_conflicts(num_tasks):
    compiled = Compiled("upgrad", num_tasks)
    for name, vectors in gradient_cases(num_tasks).items():
        v64 = vectors.astype("float64")
        got = compiled.update(vectors)
        _close(got, reference_upgrad(v64), vectors)
        largest = np.linalg.norm(v64, axis=1).max()
        assert np.all(v64 @ got >= -1e-5 * largest ** 2), (name, v64 @ got)


@pytest.mark.parametrize("num_tasks", TASK_COUNTS)
def test_cagrad_default_solver_is_exact(num_tasks):
    compiled = Compiled("cagrad", num_tasks)
    for name, vectors in gradient_cases(num_tasks).items():
        exact, _ = reference_cagrad(vectors.astype("float64"))
        _close(compiled.update(vectors), exact, vectors)


@pytest.mark.parametrize("num_tasks", TASK_COUNTS)
def test_nash_mtl_default_solver_is_exact(num_tasks):
    compiled = Compiled("nash_mtl", num_tasks)
    for name, vectors in gradient_cases(num_tasks).items():
        if name == "low_rank" and num_tasks > 3:
            continue  # more tasks than dimensions: no direction improves every task, no bargaining solution
        _close(compiled.update(vectors), reference_nash(vectors.astype("float64")), vectors)


def test_mgda_and_upgrad_at_a_pareto_stationary_point_give_no_update():
    # g3 = -(g1 + g2): the hull contains 0 and no direction improves every task.
    vectors = np.array([[1.0, 0.2, 0.0], [0.1, 1.0, 0.3], [-1.1, -1.2, -0.3]], "float32")
    for spec in ({"name": "mgda", "normalize": "none"}, "upgrad"):
        assert np.linalg.norm(combine(spec, vectors)) < 1e-4


# --- every method ------------------------------------------------------------------------
@pytest.mark.parametrize("name", GRAM_METHODS)
def test_a_task_without_gradient_changes_nothing(name):
    vectors = random_vectors(2, dim=5, seed=11)
    with_idle = np.concatenate([vectors, np.zeros((1, 5), "float32")])
    np.testing.assert_allclose(combine(name, with_idle, losses=[0.7, 1.3, 0.0]),
                               combine(name, vectors, losses=[0.7, 1.3]), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", GRAM_METHODS)
def test_a_task_with_weight_zero_is_left_out(name):
    vectors = random_vectors(3, dim=5, seed=12)
    got = combine(name, vectors, weights=[1.0, 0.0, 1.0], losses=[0.7, 1.0, 1.3])
    np.testing.assert_allclose(got, combine(name, vectors[[0, 2]], losses=[0.7, 1.3]), rtol=1e-3, atol=1e-4)


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
