r"""Adversarial problems for the exact oracle and the certificate, and independent references.

Used by the tests (``tests/test_adversarial.py``) and by the certificate sweep
(``convexrelu bench --suite certificate-sweep``). Nothing here uses the rest of
:mod:`convexrelu`: the references are written from the definitions only, so they can
judge the library.

Contents
--------
Generators (seeded numpy, ``gen(rng, n) -> X``), in :data:`GENERATORS`
    ``gauss`` (control), ``duplicates``, ``opposite``, ``grid2``, ``grid3``,
    ``collinear``, ``circle``, ``intercept``, ``near_parallel``, ``mixed_scale``,
    ``lowrank``. Every generator keeps ``rank(X) <= 3`` (``gauss`` may give rank 4 for
    ``n <= 12``) so that the library's exact oracle is available.
Targets
    :func:`make_Z` (``gauss``, ``int``, ``sign``, ``residual``, ``teacher``).
Fixed cases
    :data:`FIXED_CASES`: the issue's 3-point case and a rank-3 4-point case with two
    opposite rows.
References (never overstate: every value is attained by a returned unit direction)
    :func:`f_value` (the value at given directions), :func:`sampled_directions` (random
    unit ``u``, every ``+-x_i/|x_i|``, the perpendiculars of every row in rank 2),
    :func:`ascent` (projected gradient / power ascent on the sphere) and
    :func:`reference_omega` (all of these plus an independent enumeration of the
    arrangement's rays, faces and cells for rank <= 4, in column-equilibrated
    coordinates).
Non-convex restarts
    :func:`objective` (paper eq. 5), :func:`lbfgs_network`, :func:`add_best_neuron`
    and :func:`restarts`: networks found without any convex machinery, whose objectives
    are upper bounds on the optimum ``p*`` (so a certified ``dual`` above any of them is
    a false certificate).
Hypothesis strategies (when hypothesis is installed)
    :func:`problems` (seeded generator draws), :func:`int_problems` (small integer ``X``
    and ``Z`` drawn element-wise, which shrink to minimal examples).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

__all__ = [
    "GENERATORS", "Z_KINDS", "FIXED_CASES", "make_Z", "make_problem", "f_value",
    "sampled_directions", "ascent", "reference_omega", "objective", "lbfgs_network",
    "add_best_neuron", "one_neuron_objective", "restarts", "numerical_rank",
]

NEAR_PARALLEL_EPS = (1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15)


# =========================================================================== generators
def _base(rng, n, d, kind=None):
    """Base rows: Gaussian or small integers (chosen at random when ``kind`` is None)."""
    kind = kind or rng.choice(["gauss", "int"])
    if kind == "gauss":
        return rng.standard_normal((n, d))
    k = int(rng.integers(1, 4))
    X = rng.integers(-k, k + 1, size=(n, d)).astype(float)
    # at most one zero row in a base set (zero rows are tested on purpose elsewhere)
    z = np.flatnonzero(~X.any(axis=1))
    for i in z[1:]:
        X[i, rng.integers(d)] = 1.0
    return X


def gen_gauss(rng, n):
    """Control: i.i.d. N(0, 1); d = 2 or 3 (d = 4 when n <= 12)."""
    d = int(rng.choice([2, 3, 4])) if n <= 12 else int(rng.choice([2, 3]))
    return rng.standard_normal((n, d))


def gen_duplicates(rng, n):
    """Rows drawn with replacement from a few base rows (exact duplicates; sometimes
    positive multiples, the same hyperplane with the same orientation)."""
    d = int(rng.choice([2, 3]))
    k = int(rng.integers(1, max(2, n // 2) + 1))
    base = _base(rng, k, d)
    idx = rng.integers(0, k, size=n)
    if n >= 2:
        idx[-1] = idx[0]  # at least one duplicate
    X = base[idx].copy()
    if rng.random() < 0.3:
        X *= rng.integers(1, 4, size=(n, 1))
    return X


def gen_opposite(rng, n):
    """Pairs x and -x (sometimes -t x, t > 0), plus unpaired rows."""
    d = int(rng.choice([2, 3]))
    k = max(1, (n + 1) // 2)
    base = _base(rng, k, d)
    rows = [base]
    neg = -base[rng.integers(0, k, size=n - k)] if n > k else np.zeros((0, d))
    if neg.shape[0] and rng.random() < 0.3:
        neg = neg * rng.choice([0.5, 1.0, 2.0, 3.0], size=(neg.shape[0], 1))
    rows.append(neg)
    X = np.concatenate(rows)[:n]
    return X[rng.permutation(X.shape[0])]


def _grid(rng, n, d):
    k = int(rng.integers(1, 4 if d == 2 else 3))
    X = rng.integers(-k, k + 1, size=(n, d)).astype(float)
    if rng.random() < 0.7:  # zero rows mostly replaced (they are still allowed sometimes)
        for i in np.flatnonzero(~X.any(axis=1)):
            X[i, rng.integers(d)] = float(rng.choice([-1, 1]))
    return X


def gen_grid2(rng, n):
    """Small integer coordinates in 2-D: many parallel, opposite and duplicate rows."""
    return _grid(rng, n, 2)


def gen_grid3(rng, n):
    """Small integer coordinates in 3-D (rank 3)."""
    return _grid(rng, n, 3)


def gen_collinear(rng, n):
    """Points on one to three (affine) lines: ``p + t q``, ``t`` integer or Gaussian."""
    d = int(rng.choice([2, 3]))
    n_lines = int(rng.integers(1, 4))
    P = _base(rng, n_lines, d)
    Q = _base(rng, n_lines, d)
    Q[~Q.any(axis=1)] = 1.0
    if rng.random() < 0.3:
        P[:] = 0.0  # lines through the origin: parallel/antiparallel rows
    line = rng.integers(0, n_lines, size=n)
    t = rng.integers(-3, 4, size=n).astype(float) if rng.random() < 0.6 else rng.standard_normal(n)
    X = P[line] + t[:, None] * Q[line]
    for i in np.flatnonzero(~X.any(axis=1)):
        X[i] = Q[line[i]]
    return X


def gen_circle(rng, n):
    """Points on a circle at angles ``2 pi j / m`` (m in 3..12): opposite pairs for even m;
    sometimes with a constant third column (points on a circle in an affine plane)."""
    m = int(rng.choice([3, 4, 5, 6, 8, 12]))
    j = rng.integers(0, m, size=n)
    th = 2 * np.pi * j / m + (rng.uniform(0, 2 * np.pi) if rng.random() < 0.5 else 0.0)
    radius = 1.0 if rng.random() < 0.5 else float(rng.uniform(0.1, 10))
    X = radius * np.column_stack([np.cos(th), np.sin(th)])
    if rng.random() < 0.4:
        X = np.column_stack([X, np.full(n, float(rng.choice([1.0, radius])))])
    return X


def gen_intercept(rng, n):
    """Features (Gaussian, integer or one-hot) and a constant column of ones."""
    kind = rng.choice(["gauss", "int", "onehot"])
    k = int(rng.choice([1, 2]))
    if kind == "onehot":
        F = np.eye(k + 1)[rng.integers(0, k + 1, size=n)][:, :k]
    else:
        F = _base(rng, n, k, kind)
    cols = [F, np.ones((n, 1))]
    if rng.random() < 0.5:
        cols = cols[::-1]
    return np.column_stack(cols)


def gen_near_parallel(rng, n):
    """Base rows and copies ``+-(x + eps |x| g)``, eps in 1e-9..1e-15 (and exact copies)."""
    d = int(rng.choice([2, 3]))
    k = max(1, n // 3)
    base = _base(rng, k, d)
    base[~base.any(axis=1)] = 1.0
    idx = rng.integers(0, k, size=n - k)
    eps = rng.choice(NEAR_PARALLEL_EPS, size=(n - k, 1))
    eps[rng.random(n - k) < 0.15] = 0.0
    g = rng.standard_normal((n - k, d))
    sign = rng.choice([-1.0, 1.0], size=(n - k, 1))
    copies = sign * (base[idx] + eps * np.linalg.norm(base[idx], axis=1, keepdims=True) * g)
    X = np.concatenate([base, copies])
    return X[rng.permutation(n)]


def gen_mixed_scale(rng, n):
    """Columns scaled by 1e-8 ... 1e8, with 1e-8 and 1e8 in the same X."""
    d = int(rng.choice([2, 3]))
    X = _base(rng, n, d)
    scales = rng.permutation(np.array([1e-8, 1e8] + [float(rng.choice([1e-4, 1.0, 1e4]))] * (d - 2)))
    if rng.random() < 0.5:  # some rows see only the small columns
        X[rng.random(n) < 0.3, int(np.argmax(scales))] = 0.0
    return X * scales[None, :]


def gen_lowrank(rng, n):
    """Rank 2 or 3 data (Gaussian, integer or one of the other generators) embedded in
    d = 5..10 by a random (Gaussian or integer) map."""
    r = int(rng.choice([2, 3]))
    d = int(rng.integers(5, 11))
    src = rng.choice(["base", "grid", "opposite"])
    if src == "grid":
        A = _grid(rng, n, r)
    elif src == "opposite":
        A = gen_opposite(rng, n)
        r = A.shape[1]
    else:
        A = _base(rng, n, r)
    if rng.random() < 0.5:
        B = rng.standard_normal((r, d))
    else:
        B = rng.integers(-2, 3, size=(r, d)).astype(float)
        while np.linalg.matrix_rank(B) < r:
            B = rng.integers(-2, 3, size=(r, d)).astype(float)
    return A @ B


GENERATORS = {
    "gauss": gen_gauss,
    "duplicates": gen_duplicates,
    "opposite": gen_opposite,
    "grid2": gen_grid2,
    "grid3": gen_grid3,
    "collinear": gen_collinear,
    "circle": gen_circle,
    "intercept": gen_intercept,
    "near_parallel": gen_near_parallel,
    "mixed_scale": gen_mixed_scale,
    "lowrank": gen_lowrank,
}


# =========================================================================== targets
def make_Z(rng, X, c, kind):
    """A target / dual point ``Z`` of shape ``(n, c)`` for ``X``.

    ``gauss``: N(0, 1); ``int``: integers in [-2, 2]; ``sign``: +-1; ``teacher``:
    ``relu(X U) V`` of a random teacher (rows scaled to unit norm first so mixed scales
    do not overflow); ``residual``: the teacher's targets minus their least-squares fit on
    a few random ReLU features (a structured residual, like a solver's); ``masked``:
    Gaussian on the rows where the largest column is zero (else a random half), zero
    elsewhere (targets that only a small-scale column can see).
    """
    n = X.shape[0]
    if kind == "gauss":
        return rng.standard_normal((n, c))
    if kind == "int":
        return rng.integers(-2, 3, size=(n, c)).astype(float)
    if kind == "sign":
        return rng.choice([-1.0, 1.0], size=(n, c))
    if kind == "masked":
        # nonzero only on rows the dominant column does not see (or a random half)
        big = int(np.argmax(np.linalg.norm(X, axis=0)))
        rows = X[:, big] == 0
        if not rows.any() or rows.all():
            rows = rng.random(n) < 0.5
        return rng.standard_normal((n, c)) * rows[:, None]
    if kind in ("teacher", "residual"):
        nrm = np.linalg.norm(X, axis=1, keepdims=True)
        Xn = X / np.where(nrm > 0, nrm, 1.0)
        d = X.shape[1]
        m = int(rng.integers(2, 8))
        T = np.maximum(Xn @ rng.standard_normal((d, m)), 0.0) @ rng.standard_normal((m, c))
        T += 0.1 * rng.standard_normal((n, c))
        if kind == "teacher":
            return T
        k = int(rng.integers(1, 4))
        H = np.maximum(Xn @ rng.standard_normal((d, k)), 0.0)
        coef, *_ = np.linalg.lstsq(H, T, rcond=None)
        return T - H @ coef
    raise ValueError(f"unknown Z kind {kind!r}")


Z_KINDS = ("gauss", "int", "sign", "teacher", "residual", "masked")


def make_problem(kind, seed, n, c=None, zkind=None):
    """``(X, Z)`` from generator ``kind`` with ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    X = GENERATORS[kind](rng, n)
    c = int(rng.integers(1, 4)) if c is None else c
    zkind = str(rng.choice(Z_KINDS)) if zkind is None else zkind
    return X, make_Z(rng, X, c, zkind)


# =========================================================================== fixed cases
#: The issue's smallest case: rows 0 and 2 opposite; Omega(Y) = 6 at u = (1, 0); with
#: beta = 5.7 the zero network (objective 6) is not optimal (one neuron along (1, 0)
#: reaches 5.991...).
ISSUE_3PT = dict(X=np.array([[1.0, -2.0], [2.0, 2.0], [-1.0, 2.0]]),
                 Y=np.array([[-2.0], [-2.0], [2.0]]), beta=5.7, omega=6.0,
                 u=np.array([1.0, 0.0]))

#: Rank 3, 4 points, rows 0 and 2 opposite (found by a search over small integer
#: problems for the face-sweep defect the issue describes at rank 3): Omega(Y) = 2 sqrt(2)
#: at u = (-1, 0, -1)/sqrt(2) (X u = (-3, 0, 3, 4)/sqrt(2)); today's exact oracle reports
#: sqrt(5). With beta = 2.6 the zero network (objective 3) is not optimal.
RANK3_OPPOSITE_4PT = dict(
    X=np.array([[1.0, -2.0, 2.0], [0.0, -1.0, 0.0], [-1.0, 2.0, -2.0], [-2.0, -1.0, -2.0]]),
    Y=np.array([[1.0], [-2.0], [0.0], [1.0]]), beta=2.6, omega=2.0 * np.sqrt(2.0),
    u=np.array([-1.0, 0.0, -1.0]) / np.sqrt(2.0),
)

FIXED_CASES = {"issue_3pt": ISSUE_3PT, "rank3_opposite_4pt": RANK3_OPPOSITE_4PT}


# =========================================================================== references
def f_value(X, Z, U):
    r""":math:`\|Z^\top (X u)_+\|` at every row ``u`` of ``U`` (normalised to unit length;
    zero rows give 0). ``U`` of shape (d,) gives a float."""
    U = np.asarray(U, dtype=float)
    single = U.ndim == 1
    U = np.atleast_2d(U)
    nrm = np.linalg.norm(U, axis=1)
    ok = nrm > 0
    Un = np.zeros_like(U)
    Un[ok] = U[ok] / nrm[ok, None]
    G = Z.T @ np.maximum(X @ Un.T, 0.0)  # (c, q)
    vals = np.sqrt(np.einsum("cq,cq->q", G, G))
    vals[~ok] = 0.0
    return float(vals[0]) if single else vals


def numerical_rank(X, rtol=1e-10):
    """Rank of the column-equilibrated ``X`` (singular values above ``rtol * s_max``), the
    map ``T`` (d, r) with ``u = T y``, the reduced rows ``W = X T`` (n, r) and ``Q``
    (d, r), an orthonormal basis of the row space of ``X`` in the original metric.

    Sign patterns do not change when columns are rescaled, so the arrangement is read on
    equilibrated columns (``Xs = X C^-1``); ``T = C^-1 V_s`` maps reduced coordinates
    back to ``u``, and ``Q`` spans ``C V_s`` (the row space of ``X``), onto which a
    direction is projected to give the shortest ``u`` with the same ``X u``.
    """
    n, d = X.shape
    cn = np.linalg.norm(X, axis=0)
    cn[cn == 0] = 1.0
    Xs = X / cn
    empty = (0, np.zeros((d, 0)), np.zeros((n, 0)), np.zeros((d, 0)))
    if n == 0:
        return empty
    _, s, Vt = np.linalg.svd(Xs, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return empty
    r = int(np.sum(s > rtol * s[0]))
    Vs = Vt[:r].T
    Q, _ = np.linalg.qr(Vs * cn[:, None])
    return r, Vs / cn[:, None], Xs @ Vs, Q


def _with_projection(U, Q):
    """Rows of ``U`` and their projections onto the row space (both are candidates)."""
    if Q.shape[1] == 0 or Q.shape[1] == Q.shape[0] or U.shape[0] == 0:
        return U
    return np.concatenate([U, (U @ Q) @ Q.T])


def _unit_rows(U):
    nrm = np.linalg.norm(U, axis=1)
    keep = nrm > 0
    return U[keep] / nrm[keep, None]


def sampled_directions(X, rng, n_random=256):
    """The directions the issue names: random unit ``u``, every ``+-x_i/|x_i|``, and in
    rank 2 both perpendiculars of every row (within the row space). Rows of the result
    are unit vectors in R^d."""
    n, d = X.shape
    U = [rng.standard_normal((n_random, d))]
    U += [X, -X]
    r, T, W, Q = numerical_rank(X)
    if r == 2:
        P = np.column_stack([-W[:, 1], W[:, 0]]) @ T.T
        U += [_with_projection(np.concatenate([P, -P]), Q)]
    return _unit_rows(np.concatenate(U))


def ascent(X, Z, U0, steps=40):
    """Projected ascent on the unit sphere from each row of ``U0`` (batched).

    Each step tries the power step ``u <- g/|g|`` with ``g = X^T D Z Z^T (Xu)_+`` (the
    gradient of the squared value) and tangent gradient steps of several lengths, and
    keeps the best of them when it improves. Returns ``(values, U)``, values attained.
    """
    U = _unit_rows(np.atleast_2d(np.asarray(U0, dtype=float)))
    if U.shape[0] == 0:
        return np.zeros(0), U
    cur = f_value(X, Z, U)
    hs = np.array([1.0, 0.3, 0.1, 1e-2, 1e-3, 1e-4, 1e-6])
    for _ in range(steps):
        A = X @ U.T  # (n, q)
        Ap = np.maximum(A, 0.0)
        Gq = Z @ (Z.T @ Ap)  # (n, q)
        g = (X.T @ ((A > 0) * Gq)).T  # (q, d)
        gt = g - np.sum(g * U, axis=1, keepdims=True) * U
        gtn = np.linalg.norm(gt, axis=1, keepdims=True)
        gtn[gtn == 0] = 1.0
        C = np.concatenate([g[None], U[None] + hs[:, None, None] * (gt / gtn)[None]])
        Cn = np.linalg.norm(C, axis=2, keepdims=True)
        C = np.where(Cn > 0, C / np.where(Cn > 0, Cn, 1.0), U[None])
        k, q, d = C.shape
        V = f_value(X, Z, C.reshape(k * q, d)).reshape(k, q)
        j = np.argmax(V, axis=0)
        v = V[j, np.arange(q)]
        better = v > cur * (1 + 1e-14)
        if not np.any(better):
            break
        cur = np.where(better, v, cur)
        U = np.where(better[:, None], C[j, np.arange(q)], U)
    return cur, U


def _unique_rows(P):
    """Distinct rows of a bool matrix (fast: packed bytes)."""
    if P.shape[0] <= 1:
        return P
    packed = np.ascontiguousarray(np.packbits(P, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, idx = np.unique(keys, return_index=True)
    return P[np.sort(idx)]


def _pattern_candidates(X, Z, P):
    """For each pattern (rows of bool ``P``), +-the top right singular vector of
    ``Z^T D X`` (the maximiser of the pattern's form over the whole sphere; a valid
    candidate whether or not it lies in the cell, since it is evaluated afterwards)."""
    if P.shape[0] == 0:
        return np.zeros((0, X.shape[1]))
    P = _unique_rows(P)
    A = np.einsum("nc,pn,nd->pcd", Z, P.astype(float), X, optimize=True)  # (p, c, d)
    S = np.einsum("pcd,ped->pce", A, A)
    _, vec = np.linalg.eigh(S)
    w = vec[:, :, -1]
    u = np.einsum("pcd,pc->pd", A, w)
    return np.concatenate([u, -u])


def _flat_candidates(X, Z, P, Bu):
    """Top eigenvectors of each pattern's form restricted to the flat spanned by the
    orthonormal columns of ``Bu`` (d, k); ``P`` int8 patterns (1 active, 0 inactive, -1
    undefined: rows that vanish on the flat, which contribute nothing there)."""
    if P.shape[0] == 0:
        return np.zeros((0, X.shape[1]))
    XB = X @ Bu
    A = np.einsum("nc,pn,nk->pck", Z, (P == 1).astype(float), XB, optimize=True)
    S = np.einsum("pck,pcl->pkl", A, A)
    _, vec = np.linalg.eigh(S)
    u = vec[:, :, -1] @ Bu.T
    return np.concatenate([u, -u])


def _sweep2(W):
    """The 2-D arrangement of the rows of ``W`` (n, 2): its rays (unit, the
    perpendiculars of the rows) and one direction inside each arc (the arc's bisector)."""
    nrm = np.linalg.norm(W, axis=1)
    nz = nrm > 1e-12 * max(nrm.max(initial=0.0), np.finfo(float).tiny)
    if not np.any(nz):
        th = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        return np.zeros((0, 2)), np.column_stack([np.cos(th), np.sin(th)])
    ang = np.arctan2(W[nz, 1], W[nz, 0])
    b = np.sort(np.mod(np.concatenate([ang + np.pi / 2, ang - np.pi / 2]), 2 * np.pi))
    b = b[np.concatenate([[True], np.diff(b) > 0])]
    rays = np.column_stack([np.cos(b), np.sin(b)])
    nxt = np.concatenate([b[1:], [b[0] + 2 * np.pi]])
    mid = 0.5 * (b + nxt)
    mids = np.column_stack([np.cos(mid), np.sin(mid)])
    return rays, mids


def _unique_int_rows(P):
    if P.shape[0] <= 1:
        return P
    return np.unique(P, axis=0)


def _flat_basis(T, Q):
    """Orthonormal basis, in u-space and within the row space, of ``span(T)``."""
    d = T.shape[0]
    if 0 < Q.shape[1] < d:
        T = Q @ (Q.T @ T)
    B, _ = np.linalg.qr(T)
    return B


def _enumerate_flat(X, Z, W, T, Q, top_norm):
    """Candidates and cell patterns of the arrangement restricted to a flat (recursive).

    The flat has coordinates ``y`` (k of them), ``u = T y`` and rows ``W = X T``. Returns
    ``(candidates, patterns)``: every ray, and for every cell of every face the top
    eigenvector of its form restricted to the face's span; ``patterns`` (int8, one row
    per k-cell of this flat; -1 for rows that vanish on the flat) let the caller build
    the patterns of its own cells (a k-cell is a facet of two cells one level up, which
    differ only in the rows parallel to the facet's hyperplane).
    """
    n, k = W.shape
    vanish = np.linalg.norm(W, axis=1) <= 1e-10 * top_norm
    if k == 1:
        P = np.stack([np.where(W[:, 0] > 0, 1, 0), np.where(W[:, 0] < 0, 1, 0)]).astype(np.int8)
        P[:, vanish] = -1
        return _with_projection(np.concatenate([T.T, -T.T]), Q), P
    if k == 2:
        rays, mids = _sweep2(np.where(vanish[:, None], 0.0, W))
        P = ((mids @ W.T) > 0).astype(np.int8)
        P[:, vanish] = -1
        cands = [_with_projection(rays @ T.T, Q), _flat_candidates(X, Z, P, _flat_basis(T, Q))]
        return np.concatenate(cands), P
    cands, pats = [], []
    seen = set()
    for i in np.flatnonzero(~vanish):
        wi = W[i] / np.linalg.norm(W[i])
        key = tuple(np.round(wi * np.sign(wi[np.argmax(np.abs(wi))]), 10))
        if key in seen:
            continue
        seen.add(key)
        _, _, Vt = np.linalg.svd(wi[None, :])
        By = Vt[1:].T  # (k, k-1): the hyperplane w_i-perp in this flat
        c_sub, P_sub = _enumerate_flat(X, Z, W @ By, T @ By, Q, top_norm)
        cands.append(c_sub)
        par = (P_sub[0] == -1) & ~vanish if P_sub.shape[0] else np.zeros(n, bool)
        side = ((W @ wi) > 0).astype(np.int8)
        for sbits in (side, 1 - side):
            Pk = P_sub.copy()
            Pk[:, par] = sbits[par]
            pats.append(Pk)
    P = _unique_int_rows(np.concatenate(pats)) if pats else np.zeros((0, n), np.int8)
    P[:, vanish] = -1
    cands.append(_flat_candidates(X, Z, P, _flat_basis(T, Q)))
    return np.concatenate(cands), P


#: Largest (rank, n) enumerated by :func:`reference_omega` (cost ~ n^(rank-1) sweeps).
ENUMERATE_MAX_N = {1: 10**9, 2: 10**9, 3: 200, 4: 24}


def _face_polish(X, Z, U, taus=(1e-2, 1e-4, 1e-6, 1e-8, 1e-10)):
    """Candidates on the faces the directions ``U`` are close to.

    Ascent converges slowly to a maximiser that lies on a face (a flat where some
    ``x_i^T u = 0``). For each ``u`` and each threshold ``tau``, the rows with
    ``|x_i^T u| <= tau |x_i|`` are taken as active; the top eigenvector of the form of
    ``u``'s pattern restricted to their common null space is a candidate (as is ``u``'s
    own cell's top eigenvector).
    """
    out = []
    nx = np.linalg.norm(X, axis=1)
    d = X.shape[1]
    for u in U:
        s = X @ u
        out.append(_pattern_candidates(X, Z, (s > 0)[None, :]))
        seen = set()
        for tau in taus:
            act = np.abs(s) <= tau * nx
            act &= nx > 0
            key = act.tobytes()
            if not act.any() or key in seen:
                continue
            seen.add(key)
            _, sv, Vt = np.linalg.svd(X[act], full_matrices=True)
            k = int(np.sum(sv > 1e-12 * sv[0])) if sv.size else 0
            N = Vt[k:].T  # (d, d - k): the flat where the active rows vanish
            if N.shape[1] == 0:
                continue
            D = (s > 0) & ~act
            A = (Z.T * D) @ X @ N  # (c, d - k)
            _, _, Wt = np.linalg.svd(A, full_matrices=False)
            v = N @ Wt[0]
            out.append(np.stack([v, -v]))
    return np.concatenate(out) if out else np.zeros((0, d))


def reference_omega(X, Z, rng=None, n_random=256, n_ascent=6, ascent_steps=40,
                    structured=True):
    r"""An independent lower reference for :math:`\Omega(Z)` and the direction attaining it.

    Candidates: :func:`sampled_directions`, random directions in the (equilibrated) row
    space, and for rank <= 4 (n <= 24 at rank 4) an enumeration of the arrangement
    written from scratch (:func:`_enumerate_flat`, recursive over flats, in
    column-equilibrated coordinates): every ray, and every cell of every face's top
    eigenvector restricted to the face's span; then :func:`ascent` from the best
    ``n_ascent``, and the restricted top eigenvectors of the faces the best ascent
    results are close to (:func:`_face_polish`, which matters at rank >= 4, where there
    is no enumeration). Every candidate is evaluated by :func:`f_value`, so the result never
    overstates :math:`\Omega` (it is the value of a unit direction), whatever the
    numerical trouble in finding the candidates.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    X = np.asarray(X, dtype=float)
    Z = np.asarray(Z, dtype=float).reshape(X.shape[0], -1)
    d = X.shape[1]
    r, T, W, Q = numerical_rank(X)
    cands = [sampled_directions(X, rng, n_random)]
    if r > 0:
        Yr = rng.standard_normal((n_random, r))
        cands.append(_with_projection(Yr @ T.T, Q))
        # patterns of the random directions: their cells' top eigenvectors
        P = (Yr @ W.T) > 0
        cands.append(_pattern_candidates(X, Z, P))
    if structured and 0 < r <= 4 and X.shape[0] <= ENUMERATE_MAX_N[r]:
        top = np.maximum(np.linalg.norm(W, axis=1), np.finfo(float).tiny)
        cands.append(_enumerate_flat(X, Z, W, T, Q, top)[0])
    U = _unit_rows(np.concatenate(cands))
    if U.shape[0] == 0:
        return 0.0, np.eye(d)[0]
    vals = f_value(X, Z, U)
    order = np.argsort(vals)[::-1]
    best_val, best_u = float(vals[order[0]]), U[order[0]]
    if n_ascent > 0:
        start = U[order[: n_ascent]]
        av, AU = ascent(X, Z, start, steps=ascent_steps)
        j = int(np.argmax(av))
        if av[j] > best_val:
            best_val, best_u = float(av[j]), AU[j]
        P = _unit_rows(_face_polish(X, Z, AU[np.argsort(av)[::-1][:3]]))
        if P.shape[0]:
            pv = f_value(X, Z, P)
            j = int(np.argmax(pv))
            if pv[j] > best_val:
                best_val, best_u = float(pv[j]), P[j]
    return best_val, best_u


# =========================================================================== restarts
def objective(X, Y, beta, W1, W2):
    r"""Paper eq. 5: :math:`\tfrac12\|(XW_1)_+W_2 - Y\|^2 + \tfrac\beta2(\|W_1\|^2+\|W_2\|^2)`."""
    R = np.maximum(X @ W1, 0.0) @ W2 - Y
    return 0.5 * float(np.sum(R * R)) + 0.5 * beta * float(np.sum(W1 * W1) + np.sum(W2 * W2))


def _obj_grad(theta, X, Y, beta, m):
    d, c = X.shape[1], Y.shape[1]
    W1 = theta[: d * m].reshape(d, m)
    W2 = theta[d * m:].reshape(m, c)
    A = X @ W1
    H = np.maximum(A, 0.0)
    R = H @ W2 - Y
    f = 0.5 * np.sum(R * R) + 0.5 * beta * (np.sum(W1 * W1) + np.sum(W2 * W2))
    g2 = H.T @ R + beta * W2
    g1 = X.T @ ((R @ W2.T) * (A > 0)) + beta * W1
    return f, np.concatenate([g1.ravel(), g2.ravel()])


def lbfgs_network(X, Y, beta, W1, W2, maxiter=300):
    """L-BFGS on eq. 5 from ``(W1, W2)``; returns ``(objective, W1, W2)``, never worse than
    the start (objectives recomputed by :func:`objective`)."""
    d, m = W1.shape
    c = W2.shape[1]
    f0 = objective(X, Y, beta, W1, W2)
    if m == 0:
        return f0, W1, W2
    theta0 = np.concatenate([W1.ravel(), W2.ravel()])
    try:
        res = minimize(_obj_grad, theta0, args=(X, Y, beta, m), jac=True, method="L-BFGS-B",
                       options=dict(maxiter=maxiter, ftol=1e-15, gtol=1e-12))
        th = res.x
    except (FloatingPointError, ValueError):  # pragma: no cover - numerical trouble
        return f0, W1, W2
    nW1, nW2 = th[: d * m].reshape(d, m), th[d * m:].reshape(m, c)
    f1 = objective(X, Y, beta, nW1, nW2)
    if np.isfinite(f1) and f1 < f0:
        return f1, nW1, nW2
    return f0, W1, W2


def one_neuron_objective(X, Y, beta, u, base=None):
    """Best objective of ``base`` (default: the zero network) plus one balanced neuron with
    input weight along ``u``, in closed form; returns ``(objective, W1, W2)``.

    With residual ``R = Y - f(X)`` and ``a = (Xu)_+`` the neuron ``s a g^T`` (``g`` the unit
    direction of ``R^T a``, weight decay ``beta s`` when balanced) lowers the objective by
    ``(|R^T a| - beta)^2 / (2 |a|^2)`` when ``|R^T a| > beta`` (unit ``u``).
    """
    d, c = X.shape[1], Y.shape[1]
    W1b, W2b = base if base is not None else (np.zeros((d, 0)), np.zeros((0, c)))
    f0 = objective(X, Y, beta, W1b, W2b)
    u = np.asarray(u, dtype=float)
    u = u / np.linalg.norm(u)
    a = np.maximum(X @ u, 0.0)
    R = Y - np.maximum(X @ W1b, 0.0) @ W2b
    q = R.T @ a
    qn = float(np.linalg.norm(q))
    an2 = float(a @ a)
    if qn <= beta or an2 == 0:
        return f0, W1b, W2b
    s = (qn - beta) / an2
    W1 = np.column_stack([W1b, np.sqrt(s) * u])
    W2 = np.vstack([W2b, np.sqrt(s) * q / qn])
    f1 = objective(X, Y, beta, W1, W2)
    if f1 < f0:
        return f1, W1, W2
    return f0, W1b, W2b


def add_best_neuron(X, Y, beta, W1, W2, rng, polish=True):
    """Add one neuron along the reference maximiser of the residual's oracle (the
    first-order descent direction that a false certificate claims does not exist), then
    polish with L-BFGS."""
    R = Y - np.maximum(X @ W1, 0.0) @ W2
    _, u = reference_omega(X, R, rng)
    f, A, B = one_neuron_objective(X, Y, beta, u, base=(W1, W2))
    if polish:
        f, A, B = lbfgs_network(X, Y, beta, A, B)
    return f, A, B


def restarts(X, Y, beta, rng, n_random=2, m=None, start=None, maxiter=150):
    """Networks found by non-convex restarts; returns a list of ``(objective, W1, W2)``.

    * the zero network plus the best neuron along the reference direction, polished;
    * ``start`` (e.g. a certified network) plus the best neuron along the reference
      direction of its residual, polished;
    * ``n_random`` random initialisations (width ``m``, default ``min(n, 8)``; L-BFGS
      for at most ``maxiter`` iterations).

    Inputs are rescaled column-wise for the random starts (the objective is evaluated on
    the original data; a network on equilibrated inputs maps back exactly).
    """
    n, d = X.shape
    c = Y.shape[1]
    out = [add_best_neuron(X, Y, beta, np.zeros((d, 0)), np.zeros((0, c)), rng)]
    if start is not None:
        W1s, W2s = (np.asarray(a, dtype=float) for a in start)
        out.append(add_best_neuron(X, Y, beta, W1s, W2s, rng))
    m = min(n, 8) if m is None else m
    cn = np.linalg.norm(X, axis=0)
    cn[cn == 0] = 1.0
    ysc = np.sqrt(max(float(np.sum(Y * Y)) / max(n, 1), 1e-12))
    for _ in range(n_random):
        W1 = rng.standard_normal((d, m)) / cn[:, None] * np.sqrt(ysc / max(d, 1))
        W2 = rng.standard_normal((m, c)) * np.sqrt(ysc / m)
        out.append(lbfgs_network(X, Y, beta, W1, W2, maxiter=maxiter))
    return out


# =========================================================================== hypothesis
try:  # pragma: no cover - exercised when hypothesis is installed
    from hypothesis import strategies as st

    def problems(kinds=None, min_n=3, max_n=40, max_c=3, zkinds=Z_KINDS):
        """Hypothesis strategy of ``(kind, seed, X, Z)`` drawn from :data:`GENERATORS`.

        ``n`` and the seed shrink; the generator draws the rest from the seeded rng, so a
        failure is replayed exactly by :func:`make_problem` (kind, seed, n, c, zkind).
        """
        kinds = sorted(GENERATORS) if kinds is None else list(kinds)

        @st.composite
        def _draw(draw):
            kind = draw(st.sampled_from(kinds))
            n = draw(st.integers(min_n, max_n))
            c = draw(st.integers(1, max_c))
            zkind = draw(st.sampled_from(list(zkinds)))
            seed = draw(st.integers(0, 2**32 - 1))
            X, Z = make_problem(kind, seed, n, c, zkind)
            return dict(kind=kind, seed=seed, n=n, c=c, zkind=zkind, X=X, Z=Z)

        return _draw()

    def int_problems(max_n=8, dims=(2, 3), max_abs=2, max_c=2):
        """Hypothesis strategy of small integer ``(X, Z)``, element-wise (shrinks to
        minimal counterexamples such as the issue's 3-point case)."""

        @st.composite
        def _draw(draw):
            d = draw(st.sampled_from(list(dims)))
            n = draw(st.integers(2, max_n))
            c = draw(st.integers(1, max_c))
            ints = st.integers(-max_abs, max_abs)
            X = np.array(draw(st.lists(st.lists(ints, min_size=d, max_size=d),
                                       min_size=n, max_size=n)), dtype=float)
            Z = np.array(draw(st.lists(st.lists(ints, min_size=c, max_size=c),
                                       min_size=n, max_size=n)), dtype=float)
            return dict(kind="int", X=X, Z=Z)

        return _draw()

    __all__ += ["problems", "int_problems"]
except ImportError:  # pragma: no cover
    pass
