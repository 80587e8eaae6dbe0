"""Small exact solvers on ``(T, T)`` Gram matrices, shared by the aggregators.

They run inside the compiled step (``tf.while_loop``, no host round-trip and no NumPy), so
the result is the same on every replica and XLA can compile them:

- :func:`nonnegative_qp`: ``min 1/2 x^T Q x + c^T x`` over ``x >= 0`` (optionally also
  ``s . x = 1``), for a batch of linear terms, by a primal active-set method. Each iteration
  solves the problem restricted to a set of free coordinates (one small linear system) and
  either steps to the boundary, dropping a coordinate, or frees the coordinate with the
  most negative multiplier. It stops at a point that satisfies the optimality conditions to
  :data:`KKT_TOLERANCE`, which is the exact solution up to rounding (and the ridge below);
  it takes about one iteration per coordinate of the solution's support.
- :func:`min_norm_simplex`: the min-norm point of the convex hull of the task gradients.
- :func:`nonnegative_shift_qp`: ``min v^T G v`` over ``v >= lower`` (UPGrad's projections).
- :func:`cagrad_inner`: CAGrad's inner problem, exactly (see the function).

Every problem is first equilibrated: with ``D = diag(G)^-1/2`` the solvers work on
``D G D`` (unit diagonal: the cosines of the gradients), so gradients whose norms differ by
orders of magnitude are handled as accurately as equal ones.
"""

from __future__ import annotations

import tensorflow as tf

# Optimality conditions hold to this, on the equilibrated problem.
KKT_TOLERANCE = 1e-6
# Added to the unit diagonal of the equilibrated matrix, so every restricted system is
# solvable when gradients are linearly dependent (the solution moves by about as much).
RIDGE = 1e-7


def max_active_set_iterations(num_tasks: int) -> int:
    """The iteration cap of :func:`nonnegative_qp`: each coordinate enters and leaves the free
    set a few times at most; the loop normally stops well before."""
    return 6 * num_tasks + 10


def equilibrate(q: tf.Tensor, active: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(D Q D + RIDGE I, d)`` with ``d_t = Q_tt^-1/2`` on active coordinates (1 elsewhere)."""
    diagonal = tf.linalg.diag_part(q)
    d = tf.where(tf.logical_and(active > 0, diagonal > 0), tf.math.rsqrt(tf.maximum(diagonal, 1e-30)), 1.0)
    scaled = q * d[:, None] * d[None, :]
    return scaled + RIDGE * tf.eye(int(q.shape[0]), dtype=q.dtype), d


def nonnegative_qp(q: tf.Tensor, c: tf.Tensor, active: tf.Tensor, simplex: tf.Tensor | None = None,
                   start: tf.Tensor | None = None, iterations: int | None = None) -> tf.Tensor:
    """``argmin_x 1/2 x^T Q x + c_i^T x`` over ``x >= 0`` (and ``s . x = 1`` with ``simplex=s``),
    for each row ``c_i`` of ``c``, with ``x_t = 0`` wherever ``active_t = 0``.

    Args:
        q: ``(T, T)`` symmetric positive semi-definite (equilibrated and ridged here).
        c: ``(N, T)``: one problem per row.
        active: ``(T,)`` mask of the coordinates that may be non-zero.
        simplex: ``s``, ``(T,)`` positive: also require ``s . x = 1`` (then at least one
            coordinate must be active); None for ``x >= 0`` alone.
        start: ``(N, T)`` starting points (default: 0, or the best vertex with ``simplex``),
            made feasible here; a good start (the previous step's solution) saves iterations.
        iterations: the most active-set iterations (default :func:`max_active_set_iterations`).

    Returns:
        ``(N, T)``: the solutions (feasible even if the cap was reached).
    """
    q, d = equilibrate(q, active)
    weights = None if simplex is None else simplex * d
    y = _active_set(q, c * d[None], active, weights, None if start is None else start / d[None], iterations)
    return y * d[None]


def _active_set(q, c, active, simplex, start, iterations):
    num_tasks = int(q.shape[0])
    iterations = max_active_set_iterations(num_tasks) if iterations is None else int(iterations)
    allowed = active[None] > 0
    tolerance = KKT_TOLERANCE * tf.maximum(1.0, tf.reduce_max(tf.abs(c), axis=-1))  # (N,)
    x = _initial_point(q, c, allowed, simplex)
    if start is not None:
        x = _feasible_start(start, x, allowed, simplex)
    free = tf.logical_and(x > 0, allowed)
    big = tf.constant(float("inf"), q.dtype)
    one_hot = lambda index: tf.one_hot(index, num_tasks, on_value=True, off_value=False)  # noqa: E731

    def body(i, x, free, done):
        z, mu = _restricted_solution(q, c, free, simplex)
        blocked = tf.logical_and(free, z < 0)
        feasible = tf.logical_not(tf.reduce_any(blocked, axis=-1))
        # Infeasible: go from x toward z until the first free coordinate reaches 0; drop it.
        ratios = tf.where(blocked, x / tf.maximum(x - z, 1e-30), big)
        step = tf.clip_by_value(tf.reduce_min(ratios, axis=-1), 0.0, 1.0)
        blocking = one_hot(tf.argmin(ratios, axis=-1))
        moved = tf.where(blocking, 0.0, tf.maximum(x + step[:, None] * (z - x), 0.0))
        # Feasible: move to z, then free the coordinate with the most negative multiplier.
        z = tf.maximum(z, 0.0)
        multipliers = tf.matmul(z, q) + c
        if simplex is not None:
            multipliers -= mu[:, None] * simplex[None]
        candidates = tf.where(tf.logical_and(allowed, tf.logical_not(free)), multipliers, big)
        optimal = tf.reduce_min(candidates, axis=-1) >= -tolerance
        entered = tf.logical_or(free, one_hot(tf.argmin(candidates, axis=-1)))
        new_x = tf.where(feasible[:, None], z, moved)
        new_free = tf.where(feasible[:, None], tf.where(optimal[:, None], free, entered),
                            tf.logical_and(free, tf.logical_not(blocking)))
        keep = done[:, None]
        return (i + 1, tf.where(keep, x, new_x), tf.where(keep, free, new_free),
                tf.logical_or(done, tf.logical_and(feasible, optimal)))

    def keep_going(i, x, free, done):
        return tf.logical_and(i < iterations, tf.logical_not(tf.reduce_all(done)))

    done = tf.zeros([tf.shape(c)[0]], tf.bool)
    _, x, _, _ = tf.while_loop(keep_going, body, (tf.constant(0), x, free, done))
    return x


def _initial_point(q, c, allowed, simplex):
    if simplex is None:
        return tf.zeros_like(c)
    # The vertex e_t / s_t with the smallest objective value.
    vertex = 1.0 / simplex
    values = tf.where(allowed, 0.5 * (tf.linalg.diag_part(q) * vertex * vertex)[None] + c * vertex[None], float("inf"))
    return tf.one_hot(tf.argmin(values, axis=-1), int(q.shape[0]), dtype=q.dtype) * vertex[None]


def _feasible_start(start, fallback, allowed, simplex):
    """``start`` restricted to the allowed coordinates (and rescaled onto ``s . x = 1``), or
    ``fallback`` where nothing of it is left."""
    kept = tf.where(allowed, tf.maximum(start, 0.0), 0.0)
    if simplex is None:
        return kept
    total = tf.reduce_sum(kept * simplex[None], axis=-1, keepdims=True)
    return tf.where(total > 0, kept / tf.maximum(total, 1e-30), fallback)


def _restricted_solution(q, c, free, simplex):
    """The minimiser over the free coordinates (the others held at 0), and the multiplier of
    ``s . x = 1`` (0 without it): one linear system per problem."""
    f = tf.cast(free, q.dtype)  # (N, T)
    system = q[None] * f[:, :, None] * f[:, None, :] + tf.linalg.diag(1.0 - f)
    rhs = -c * f
    if simplex is None:
        return tf.linalg.solve(system, rhs[:, :, None])[:, :, 0] * f, tf.zeros_like(c[:, 0])
    # [Q_SS  -s_S] [x ]   [-c_S]
    # [s_S^T   0 ] [mu] = [ 1  ]
    border = f * simplex[None]
    top = tf.concat([system, -border[:, :, None]], axis=2)
    bottom = tf.concat([border[:, None, :], tf.zeros_like(f[:, :1, None])], axis=2)
    solution = tf.linalg.solve(tf.concat([top, bottom], axis=1),
                               tf.concat([rhs, tf.ones_like(c[:, :1])], axis=1)[:, :, None])[:, :, 0]
    return solution[:, :-1] * f, solution[:, -1]


def min_norm_simplex(gram: tf.Tensor, active: tf.Tensor, start: tf.Tensor | None = None) -> tf.Tensor:
    """``argmin_{a in simplex(active)} a^T G a``: the weights of the min-norm point of the
    convex hull of the active gradients (exact, by :func:`nonnegative_qp`).

    Args:
        gram: ``(T, T)`` Gram matrix.
        active: ``(T,)`` mask; with no active task the result is 0.
        start: a starting point ``(T,)`` (e.g. the previous step's solution).
    """
    num_tasks = int(gram.shape[0])
    alpha = nonnegative_qp(gram, tf.zeros([1, num_tasks], gram.dtype), active, simplex=tf.ones([num_tasks], gram.dtype),
                           start=None if start is None else start[None])[0]
    return alpha * tf.cast(tf.reduce_any(active > 0), gram.dtype)


def nonnegative_shift_qp(gram: tf.Tensor, lower: tf.Tensor, active: tf.Tensor) -> tf.Tensor:
    """``argmin_{v >= lower_i} v^T G v`` for each row ``lower_i`` of ``lower`` (shape ``(N, T)``),
    with ``v_t = lower_t`` for inactive tasks (exact, by :func:`nonnegative_qp` on
    ``v = lower + s``, ``s >= 0``)."""
    return lower + nonnegative_qp(gram, tf.matmul(lower, gram), active)


def _support_parts(gram, b, s, support):
    """On the support ``S``: ``u = G_SS^-1 s``, ``v = G_SS^-1 b_S`` and ``A = s.u``,
    ``B = s.v``, ``C = b.v`` (zeros off ``S``)."""
    f = tf.cast(support, gram.dtype)
    system = gram * f[:, None] * f[None, :] + tf.linalg.diag(1.0 - f)
    solved = tf.linalg.solve(system, tf.stack([s * f, b * f], axis=1)) * f[:, None]
    u, v = solved[:, 0], solved[:, 1]
    return u, v, tf.tensordot(s, u, 1), tf.tensordot(s, v, 1), tf.tensordot(b * f, v, 1)


def cagrad_inner(gram: tf.Tensor, b: tf.Tensor, radius: tf.Tensor, active: tf.Tensor,
                 start: tf.Tensor, iterations: int = 40) -> tuple[tf.Tensor, tf.Tensor]:
    """``argmin_{x in simplex(active)} b.x + radius |g_x|`` with ``|g_x|^2 = x^T G x``, exactly.

    For a fixed ``t > 0`` the quadratic program ``x(t) = argmin_x 1/2 x^T G x + t b.x`` over
    the simplex is solved by :func:`nonnegative_qp`; the answer is ``x(t*)`` where
    ``t* radius = |g_x(t*)|`` (the stationarity condition of the original problem, with
    ``t = |g_x| / radius``). On a fixed support ``S``, ``x(t) = u / A + t (B u / A - v)`` is
    affine in ``t`` (with ``u = G_SS^-1 1``, ``v = G_SS^-1 b_S``, ``A = 1.u``, ``B = 1.v``,
    ``C = b.v``), so the condition is a quadratic equation with the closed-form root
    ``t_S = 1 / sqrt(A (radius^2 - C + B^2 / A))``. Each iteration solves the program at the
    current ``t``, takes its support's root and stops when the root's point satisfies the
    optimality conditions on that support (the exact answer); otherwise it bisects the
    bracket of ``t*`` narrowed so far. (All of it on the equilibrated problem.)

    Args:
        gram: ``(T, T)`` Gram matrix.
        b: ``(T,)`` the linear term.
        radius: the scalar ``> 0``.
        active: ``(T,)`` mask (at least one active task).
        start: a starting point ``(T,)`` (the previous solution).
        iterations: the most outer iterations.

    Returns:
        ``(x, norm)``: the solution and ``|g_x|``.
    """
    # x = D y: the problem in y has the unit-diagonal matrix D G D and the constraint d . y = 1.
    g, d = equilibrate(gram, active)
    b = b * d
    start = tf.where(active > 0, tf.maximum(start, 0.0), 0.0) / d
    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
    hi0 = tf.reduce_max(tf.where(active > 0, norms, 0.0)) / radius  # |g_x| <= the largest norm
    tolerance = KKT_TOLERANCE * tf.maximum(1.0, tf.reduce_max(tf.abs(b)) / radius * hi0)

    def qp(t, y):
        return _active_set(g, (t * b)[None], active, d, y[None], None)[0]

    def body(i, t, lo, hi, y, done):
        y = qp(t, y)
        too_small = (t * radius) ** 2 < tf.tensordot(y, tf.linalg.matvec(g, y), 1)  # t* lies above t
        lo, hi = tf.where(too_small, t, lo), tf.where(too_small, hi, t)
        support = tf.logical_and(y > 0, active > 0)
        u, v, a, bb, cc = _support_parts(g, b, d, support)
        a = tf.maximum(a, 1e-30)
        spread = radius ** 2 - (cc - bb * bb / a)
        finite = spread > 0
        root = tf.where(finite, tf.math.rsqrt(tf.maximum(a * spread, 1e-30)), hi)
        candidate = u / a + root * (bb * u / a - v)
        grad = tf.linalg.matvec(g, candidate) + root * b
        # The multiplier of d . y = 1: grad_S = mu d_S on the support (least squares).
        mu = tf.reduce_sum(tf.where(support, grad * d, 0.0)) / tf.maximum(
            tf.reduce_sum(tf.where(support, d * d, 0.0)), 1e-30)
        others = tf.where(tf.logical_and(active > 0, tf.logical_not(support)), grad - mu * d, float("inf"))
        exact = finite & tf.reduce_all(tf.logical_or(tf.logical_not(support), candidate >= 0.0)) \
            & (tf.reduce_min(others) >= -tolerance)
        inside = tf.logical_and(root > lo, root < hi)
        y = tf.where(exact, tf.maximum(candidate, 0.0) * active, y)
        return i + 1, tf.where(inside, root, 0.5 * (lo + hi)), lo, hi, y, exact

    def keep_going(i, t, lo, hi, y, done):
        return tf.logical_and(i < iterations, tf.logical_not(done))

    start_norm = tf.sqrt(tf.maximum(tf.tensordot(start, tf.linalg.matvec(g, start), 1), 0.0))
    t0 = tf.clip_by_value(start_norm / radius, 1e-6 * hi0, hi0)
    zero = tf.constant(0.0, gram.dtype)
    _, _, _, _, y, _ = tf.while_loop(keep_going, body, (tf.constant(0), t0, zero, hi0, start, tf.constant(False)))
    x = y * d
    x = x / tf.maximum(tf.reduce_sum(x), 1e-30)
    return x, tf.sqrt(tf.maximum(tf.einsum("i,ij,j->", x, gram, x), 0.0))
