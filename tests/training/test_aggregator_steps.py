"""One training step through the Trainer moves the shared weights by each aggregator's
closed-form update.

The model is linear: ``x (2,) -> shared_w (2x2, no bias) -> <task>_head (1)``. From
``shared_w = 0``, a row ``x = (1, 0)`` and labels ``y``, task ``t``'s loss ``(x W u_t - y_t)^2``
has gradient ``-2 y_t x u_t^T``: only the first row of ``W`` moves, and its gradient is
``g_t = -2 y_t u_t``. With ``u_a = (1, 0)``, ``u_b = (1, -1)`` and ``y = (-0.5, 0.5)`` the task
gradients are ``g_a = (1, 0)`` and ``g_b = (-1, 1)``: they conflict (``g_a . g_b = -1``). One
SGD step with learning rate 1 makes the first row of ``W`` minus the update.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import fsolve

from mtl_tf.tasks import RegressionTask
from mtl_tf.training import Trainer

G_A, G_B = np.array([1.0, 0.0]), np.array([-1.0, 1.0])


def linear_model(tasks, heads):
    x = keras.Input(shape=(2,), name="x")
    z = keras.layers.Dense(2, use_bias=False, kernel_initializer="zeros", name="shared_w")(x)
    model = keras.Model({"x": x}, {task.name: task.head(z) for task in tasks})
    for task, u in zip(tasks, heads):
        model.get_layer(f"{task.name}_head").set_weights([np.array(u, "float32")[:, None], np.zeros(1, "float32")])
    return model


def shared_update(gradient, heads=((1.0, 0.0), (1.0, -1.0)), labels=(-0.5, 0.5), weights=(1.0, 1.0), jit=False):
    """The update one Trainer step applied to the first row of the shared kernel."""
    tasks = [RegressionTask("a", weight=weights[0]), RegressionTask("b", weight=weights[1])]
    trainer = Trainer(lambda: linear_model(tasks, heads), tasks, {"name": "sgd", "learning_rate": 1.0},
                      gradient=gradient, epochs=1, verbose=0, jit_compile=jit)
    batch = ({"x": np.array([[1.0, 0.0]], "float32")},
             {"a": np.array([labels[0]], "float32"), "b": np.array([labels[1]], "float32")},
             {"a": np.ones(1, "float32"), "b": np.ones(1, "float32")})
    trainer.fit(tf.data.Dataset.from_tensors(batch))
    kernel = trainer.model.get_layer("shared_w").get_weights()[0]
    np.testing.assert_allclose(kernel[1], 0.0, atol=1e-7)  # x_2 = 0: the second row never moves
    return -kernel[0]


def _pcgrad():
    p_a = G_A - min(G_A @ G_B, 0) / (G_B @ G_B) * G_B
    p_b = G_B - min(G_A @ G_B, 0) / (G_A @ G_A) * G_A
    return p_a + p_b


def _min_norm(g1, g2):
    gamma = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0, 1)
    return gamma, 1 - gamma


def _mgda_loss_plus():
    # Both losses are (0 - y)^2 = 0.25; loss+ divides each gradient by loss * norm.
    n_a, n_b = 0.25 * np.linalg.norm(G_A), 0.25 * np.linalg.norm(G_B)
    a, b = _min_norm(G_A / n_a, G_B / n_b)
    return a * G_A + b * G_B


def _cagrad(c=0.4):
    g0 = (G_A + G_B) / 2
    radius = c * np.linalg.norm(g0)
    xs = np.linspace(0, 1, 200001)[:, None]
    gx = xs * G_A + (1 - xs) * G_B
    best = gx[np.argmin(gx @ g0 + radius * np.linalg.norm(gx, axis=1))]
    return (g0 + radius * best / np.linalg.norm(best)) / (1 + c ** 2)


def _imtl_g():
    u_a, u_b = G_A / np.linalg.norm(G_A), G_B / np.linalg.norm(G_B)
    alpha_b = (G_A @ (u_a - u_b)) / ((G_A - G_B) @ (u_a - u_b))
    return (1 - alpha_b) * G_A + alpha_b * G_B


def _nash():
    gram = np.array([[G_A @ G_A, G_A @ G_B], [G_A @ G_B, G_B @ G_B]])
    gram /= np.linalg.norm(gram)
    alpha = fsolve(lambda a: gram @ a * a - 1.0, np.ones(2), xtol=1e-12)
    return alpha[0] * G_A + alpha[1] * G_B


def _aligned():
    jacobian = np.stack([G_A, G_B])
    eigenvalues, vectors = np.linalg.eigh(jacobian @ jacobian.T)
    b = np.sqrt(eigenvalues.min()) * vectors @ np.diag(eigenvalues ** -0.5) @ vectors.T
    return (b @ np.ones(2)) @ jacobian


def _upgrad():
    # Each gradient projected onto the dual cone {d : g_a . d >= 0, g_b . d >= 0}, averaged.
    p_a = G_A - (G_A @ G_B) / (G_B @ G_B) * G_B
    p_b = G_B - (G_A @ G_B) / (G_A @ G_A) * G_A
    return (p_a + p_b) / 2


EXPECTED = {
    "sum": lambda: G_A + G_B,
    "pcgrad": _pcgrad,
    "gradvac": _pcgrad,  # the first step, with target similarities 0, projects as PCGrad
    "mgda_none": lambda: np.dot(_min_norm(G_A, G_B), [G_A, G_B]),
    "mgda": _mgda_loss_plus,
    "cagrad": _cagrad,
    "imtl_g": _imtl_g,
    "nash_mtl": _nash,
    "aligned_mtl": _aligned,
    "upgrad": _upgrad,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_step_moves_the_shared_weights_by_the_aggregators_closed_form(name):
    spec = {"name": "mgda", "normalize": "none"} if name == "mgda_none" else name
    expected = EXPECTED[name]()
    got = shared_update(spec)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    if name != "sum":
        assert np.abs(got - (G_A + G_B)).max() > 0.1  # a real departure from the plain sum


@pytest.mark.parametrize("name, expected", [
    # Orthogonal unit gradients (u_b = (0, 1), y_b = -0.5: g_b = (0, 1)) with task weights (1, 0.1).
    ("aligned_mtl", [1.0, 0.1]),  # the aligned gradients (here g itself) combined with the weights
    ({"name": "mgda", "normalize": "none"}, np.array([1.0, 0.1]) * 0.55 ** 2 / 1.01),
])
def test_task_weights_shrink_the_down_weighted_tasks_share_through_the_trainer(name, expected):
    got = shared_update(name, heads=((1.0, 0.0), (0.0, 1.0)), labels=(-0.5, -0.5), weights=(1.0, 0.1))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert got[1] / got[0] == pytest.approx(0.1, rel=1e-4)


@pytest.mark.parametrize("name", ["cagrad", "upgrad", "nash_mtl"])
def test_the_solvers_compile_with_xla_and_give_the_same_step(name):
    np.testing.assert_allclose(shared_update(name, jit=True), EXPECTED[name](), rtol=1e-4, atol=1e-6)
