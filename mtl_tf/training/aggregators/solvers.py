"""Small solvers on ``(T, T)`` Gram matrices, shared by the aggregators.

Each runs a fixed number of iterations inside the compiled step (no host round-trip), so the
result is the same on every replica.
"""

from __future__ import annotations

import tensorflow as tf

# Exact subset enumeration up to this many tasks (2^T small linear systems in one batch);
# beyond, the batch of systems costs more than an iterative solver.
MAX_ENUMERATED_TASKS = 8


def project_to_simplex(v: tf.Tensor, active: tf.Tensor) -> tf.Tensor:
    """Euclidean projection of ``v`` onto the simplex over the active coordinates (others 0).

    Args:
        v: shape ``(T,)`` or ``(N, T)`` (one projection per row).
        active: shape ``(T,)`` mask.
    """
    squeeze = v.shape.rank == 1
    v = v[None] if squeeze else v
    big = tf.constant(1e30, v.dtype)
    masked = tf.where(active[None] > 0, v, -big)
    u = tf.sort(masked, axis=-1, direction="DESCENDING")
    count = tf.reduce_sum(active)
    k = tf.range(1, tf.shape(v)[-1] + 1, dtype=v.dtype)[None]
    css = tf.cumsum(tf.where(u > -big / 2, u, 0.0), axis=-1) - 1.0
    ok = tf.logical_and(u - css / k > 0, k <= count)
    rho = tf.reduce_max(tf.where(ok, k, 1.0), axis=-1, keepdims=True)
    theta = tf.gather(css, tf.cast(rho, tf.int32) - 1, batch_dims=1) / rho
    out = tf.maximum(v - theta, 0.0) * active[None]
    return out[0] if squeeze else out


def min_norm_simplex(gram: tf.Tensor, active: tf.Tensor, iterations: int = 250) -> tf.Tensor:
    """``argmin_{a in simplex(active)} a^T G a``: the weights of the min-norm point of the
    convex hull of the active gradients.

    Exact (every support enumerated) up to :data:`MAX_ENUMERATED_TASKS` tasks; accelerated
    projected gradient (stopping when it no longer moves) beyond.
    """
    num_tasks = int(gram.shape[0])
    if num_tasks <= MAX_ENUMERATED_TASKS:
        return _min_norm_enumerated(gram, active)
    return _min_norm_projected(gram, active, iterations)


def _min_norm_enumerated(gram: tf.Tensor, active: tf.Tensor) -> tf.Tensor:
    num_tasks = int(gram.shape[0])
    subsets = tf.range(1, 2 ** num_tasks)
    bits = tf.cast(tf.bitwise.bitwise_and(subsets[:, None], 2 ** tf.range(num_tasks)[None]) > 0, gram.dtype)
    valid = tf.reduce_all(bits <= active[None], axis=-1)
    scale = tf.maximum(tf.linalg.trace(gram), 1e-30)
    g = gram / scale + 1e-7 * tf.eye(num_tasks, dtype=gram.dtype)
    inside = bits[:, :, None] * bits[:, None, :]
    systems = g[None] * inside + tf.linalg.diag(1.0 - bits)
    x = tf.linalg.solve(systems, bits[:, :, None])[..., 0] * bits
    total = tf.reduce_sum(x, axis=-1, keepdims=True)
    alpha = x / tf.where(tf.abs(total) > 0, total, 1.0)
    feasible = tf.logical_and(valid, tf.reduce_all(alpha >= -1e-6, axis=-1))
    feasible = tf.logical_and(feasible, tf.reduce_all(tf.math.is_finite(alpha), axis=-1))
    values = tf.einsum("si,ij,sj->s", alpha, g, alpha)
    best = tf.argmin(tf.where(feasible, values, tf.constant(float("inf"), gram.dtype)))
    chosen = tf.maximum(tf.gather(alpha, best), 0.0) * active
    return chosen / tf.maximum(tf.reduce_sum(chosen), 1e-30)


def _min_norm_projected(gram: tf.Tensor, active: tf.Tensor, iterations: int) -> tf.Tensor:
    scale = tf.maximum(tf.linalg.trace(gram), 1e-30)
    g = gram / scale
    start = active / tf.maximum(tf.reduce_sum(active), 1.0)

    def gradient(a):
        return 2.0 * tf.linalg.matvec(g, a)

    return accelerated_projected_gradient(gradient, start, lambda v: project_to_simplex(v, active),
                                          step=0.5, iterations=iterations)


def accelerated_projected_gradient(gradient, start: tf.Tensor, project, step: float | tf.Tensor,
                                   iterations: int, tolerance: float = 1e-7) -> tf.Tensor:
    """FISTA: ``x <- P(y - step * grad(y))`` with Nesterov momentum, at most ``iterations``
    times, stopping once an iteration moves ``x`` by less than ``tolerance`` (max norm).

    Args:
        gradient: ``x -> grad f(x)`` (same shape as ``x``).
        start: the starting point (feasible).
        project: the projection onto the feasible set.
        step: the step size, at most ``1 / L`` for an ``L``-smooth ``f``.
        iterations: the most iterations.
        tolerance: the movement below which it stops.
    """

    def body(i, x, y, t, moved):
        x_next = project(y - step * gradient(y))
        t_next = (1.0 + tf.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y_next = x_next + ((t - 1.0) / t_next) * (x_next - x)
        return i + 1, x_next, y_next, t_next, tf.reduce_max(tf.abs(x_next - x))

    def keep_going(i, x, y, t, moved):
        return tf.logical_and(i < iterations, moved > tolerance)

    big = tf.constant(float("inf"), start.dtype)
    _, x, _, _, _ = tf.while_loop(keep_going, body, (tf.constant(0), start, start, tf.constant(1.0, start.dtype), big))
    return x


def nonnegative_shift_qp(gram: tf.Tensor, lower: tf.Tensor, iterations: int = 200) -> tf.Tensor:
    """``argmin_{v >= lower_i} v^T G v`` for each row ``lower_i`` of ``lower`` (shape ``(N, T)``).

    Exact (every set of free coordinates tried at once) up to :data:`MAX_ENUMERATED_TASKS`
    tasks; accelerated projected gradient beyond. ``G`` should be positive definite on the
    coordinates that matter (isolate inactive tasks first).
    """
    num_tasks = int(gram.shape[0])
    if num_tasks <= MAX_ENUMERATED_TASKS:
        return _shift_qp_enumerated(gram, lower)
    return accelerated_projected_gradient(lambda v: 2.0 * tf.matmul(v, gram), lower,
                                          lambda v: tf.maximum(v, lower), step=0.5 / tf.maximum(
                                              tf.linalg.trace(gram), 1e-30), iterations=iterations)


def _shift_qp_enumerated(gram: tf.Tensor, lower: tf.Tensor) -> tf.Tensor:
    # v = lower + s, s >= 0; on a free set S: G_SS s_S = -(G lower)_S, s = 0 elsewhere.
    num_tasks = int(gram.shape[0])
    subsets = tf.range(0, 2 ** num_tasks)
    bits = tf.cast(tf.bitwise.bitwise_and(subsets[:, None], 2 ** tf.range(num_tasks)[None]) > 0, gram.dtype)
    g = gram + 1e-7 * tf.linalg.trace(gram) / num_tasks * tf.eye(num_tasks, dtype=gram.dtype)
    systems = g[None] * bits[:, :, None] * bits[:, None, :] + tf.linalg.diag(1.0 - bits)  # (S, T, T)
    rhs = -tf.transpose(tf.matmul(lower, g))[None] * bits[:, :, None]  # (S, T, N): one column per problem
    shifts = tf.transpose(tf.linalg.solve(systems, rhs), [2, 0, 1]) * bits[None]  # (N, S, T)
    candidates = lower[:, None, :] + shifts
    feasible = tf.reduce_all(shifts >= -1e-7, axis=-1) & tf.reduce_all(tf.math.is_finite(shifts), axis=-1)
    values = tf.einsum("nsi,ij,nsj->ns", candidates, g, candidates)
    best = tf.argmin(tf.where(feasible, values, tf.constant(float("inf"), gram.dtype)), axis=-1)
    return tf.maximum(tf.gather(candidates, best, batch_dims=1), lower)
