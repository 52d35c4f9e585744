r"""The certificate's self-check: a second, independent look at :math:`\Omega(Z)`.

A certificate says ``is_global=True`` only if the oracle's value ``s`` really bounds
:math:`\Omega(Z) = \max_{\|u\| \le 1} \|Z^\top (X u)_+\|` from above. The oracle is the
fast path (an angular sweep with cumulative sums, face recursions, pruning); this module
re-derives the maximum by a *different* route that shares none of the oracle's geometry
and compares. Any direction it finds whose value exceeds ``s`` (beyond rounding)
refutes the claim: the certificate then reports ``is_global=False`` with the reason,
and its dual is no longer called a bound.

Routes, by the numerical rank ``r`` of ``X``:

``r = 1``
    The two rays of the row space (all there is).
``r = 2`` (and every 2-D flat it visits at ``r = 3``)
    An *independent enumeration*: every row's two perpendicular rays (no grouping of
    rows, no merging of events) are sorted by angle; each arc between consecutive rays
    gets its active set from the sign of every row at the arc's mid-angle, computed
    directly, and its maximum from the closed form of the 2x2 generalised eigenproblem
    (kept when it falls inside the arc); every candidate and every ray is re-evaluated
    exactly from :math:`(Xu)_+`. The cost is :math:`O(n^2 c)` per flat (dense, no
    cumulative sums), so it runs within ``budget`` flops.
``r >= 3``
    The 2-D flats through each row's hyperplane (``r = 3``: the great circles that hold
    every face of dimension <= 2), as many as ``budget`` allows, plus the cells met by
    random directions (top eigenvector of each cell's form when it lies in the cell).

Always, whatever the rank: probes at every row normal (+-), random directions, the
oracle's own maximiser, and projected ascent on the sphere from the best of them.

The check can refute a wrong value; where its enumeration is complete (rank 1, rank 2
within budget) it also confirms that no arc holds a better direction. What it ran is
recorded in :attr:`SelfCheck.method`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["SelfCheck", "check_omega"]

#: Flops allowed for the independent enumerations of one check (about 0.1-0.3 s).
DEFAULT_CHECK_BUDGET = 3e8
#: Relative excess over the oracle's value (beyond the evaluation's own rounding bound)
#: that counts as a disagreement.
CHECK_RTOL = 1e-12


@dataclass(frozen=True)
class SelfCheck:
    """Outcome of :func:`check_omega`.

    Attributes
    ----------
    passed : bool
        False when a direction beating the oracle's value was found.
    reference : float
        The best value :math:`\\|Z^\\top (Xu)_+\\|` the check attained (a lower bound on
        :math:`\\Omega(Z)`).
    value : float
        The oracle value that was checked.
    method : str
        What the check ran ("independent arc enumeration", "probes + ascent", ...).
    complete : bool
        True when the check's own enumeration covers every arc (rank <= 2 within budget).
    time : float
        Seconds spent.
    """

    passed: bool
    reference: float
    value: float
    method: str
    complete: bool
    time: float

    @property
    def reason(self) -> str:
        if self.passed:
            return ""
        return (f"self-check failed: the {self.method} found a direction with "
                f"||Z^T (Xu)_+|| = {self.reference:.10g} above the oracle's value "
                f"{self.value:.10g} (relative excess {self.reference / max(self.value, 1e-300) - 1:.2e})")


def _values(X, Z, U):
    """:math:`\\|Z^\\top (X u)_+\\|^2` for each column ``u`` of ``U`` (shape (d, q))."""
    A = np.maximum(X @ U, 0.0)
    G = Z.T @ A
    return np.einsum("cq,cq->q", G, G)


def _basis(X):
    """Orthonormal basis of the row space, rank decided on equilibrated columns.

    Written here again on purpose (SVD of the equilibrated matrix, no shared code with
    the oracle's rank reduction), so that a defect there cannot hide itself.
    """
    n, d = X.shape
    col = np.linalg.norm(X, axis=0)
    live = col > 0
    if not np.any(live):
        return np.zeros((d, 0))
    _, s, Vt = np.linalg.svd(X[:, live] / col[live], full_matrices=False)
    r = int(np.sum(s > max(n, d) * np.finfo(float).eps * s[0]))
    if r == d:
        return np.eye(d)
    M = np.zeros((d, r))
    M[live] = Vt[:r].T * col[live, None]
    Q, _ = np.linalg.qr(M)
    return Q


def _arcs_2d(X, Z, B, chunk_bytes=32 << 20):
    """Independent enumeration over the 2-D flat ``span(B)`` (``B`` (d, 2) orthonormal).

    Returns candidate directions (d, q): every row's perpendicular rays in the flat and,
    for each arc between consecutive rays, the top generalised eigenvector of the arc's
    form when it lies in the arc. Active sets come from the sign of each row at the
    arc's mid-angle, computed directly.
    """
    A = X @ B  # (n, 2): u = B t gives X u = A t
    n = A.shape[0]
    an = np.linalg.norm(A, axis=1)
    col = np.linalg.norm(A, axis=0)
    col = np.where(col > 0, col, 1.0)
    Ae = A / col  # equilibrated: t = y / col
    live = an > 0
    if not np.any(live):
        return np.zeros((X.shape[1], 0))
    P = Ae[live]
    th = np.arctan2(P[:, 0], -P[:, 1])  # angle of the perpendicular (-p1, p0)
    ang = np.sort(np.mod(np.concatenate([th, th + np.pi]), 2 * np.pi))
    width = np.diff(np.concatenate([ang, [ang[0] + 2 * np.pi]]))
    mid = ang + 0.5 * width
    Mv = np.column_stack([np.cos(mid), np.sin(mid)])  # (L, 2), equilibrated coordinates y
    rays = np.column_stack([np.cos(ang), np.sin(ang)])
    c = Z.shape[1]
    # values are measured in t = y / col, the coordinates where |u| = |t|
    K = (Z[:, :, None] * A[:, None, :]).reshape(n, 2 * c)
    cands = [rays / col]
    step = max(1, int(chunk_bytes // (8 * max(n, 1))))
    for start in range(0, Mv.shape[0], step):
        mv = Mv[start:start + step]
        D = (Ae @ mv.T > 0).T.astype(float)  # (q, n) active sets, computed directly
        G = (D @ K).reshape(-1, c, 2)  # Z^T D A
        M = np.einsum("qck,qcl->qkl", G, G)
        _, vec = np.linalg.eigh(M)
        top = vec[:, :, -1]  # in t
        y = top * col
        tang = np.arctan2(y[:, 1], y[:, 0])
        a0 = ang[start:start + step]
        w0 = width[start:start + step]
        in_p = np.mod(tang - a0, 2 * np.pi) <= w0 + 1e-12
        in_m = np.mod(tang + np.pi - a0, 2 * np.pi) <= w0 + 1e-12
        cands.append(np.concatenate([top[in_p], -top[in_m]]))
    T = np.concatenate(cands)
    U = B @ T.T
    nrm = np.linalg.norm(U, axis=0)
    return U[:, nrm > 0] / nrm[nrm > 0]


def _ascent(X, Z, U, n_iter=60):
    """Projected (sub)gradient ascent on the sphere from the columns of ``U`` (monotone)."""
    U = U / np.maximum(np.linalg.norm(U, axis=0, keepdims=True), 1e-300)
    vals = _values(X, Z, U)
    step = np.full(U.shape[1], 0.3)
    for _ in range(n_iter):
        A = X @ U
        act = A > 0
        g = X.T @ (act * (Z @ (Z.T @ (act * A))))
        g -= np.sum(g * U, axis=0, keepdims=True) * U
        gn = np.linalg.norm(g, axis=0)
        live = (gn > 0) & (step > 1e-12)
        if not np.any(live):
            break
        cand = U + step * np.where(live, g / np.where(gn > 0, gn, 1.0), 0.0)
        cand /= np.linalg.norm(cand, axis=0, keepdims=True)
        cv = _values(X, Z, cand)
        better = live & (cv > vals)
        U = np.where(better, cand, U)
        vals = np.where(better, cv, vals)
        step = np.where(better, np.minimum(step * 1.5, 1.0), step * 0.5)
    return U, vals


def check_omega(X, Z, value, u=None, *, budget: float = DEFAULT_CHECK_BUDGET,
                random_state=0) -> SelfCheck:
    r"""Look for a direction whose value beats the oracle's ``value``, by other means.

    Parameters
    ----------
    X : ndarray (n, d), validated
    Z : ndarray (n, c), the (unscaled) dual direction the oracle was called on
    value : float
        The oracle's claimed :math:`\Omega(Z)` (upper bound).
    u : ndarray (d,), optional
        The oracle's maximiser (one more probe).
    budget : float
        Flops for the independent enumerations; probes and ascent always run.
    random_state : int
        Seed of the random probes (fixed: the check is deterministic).

    Returns
    -------
    SelfCheck
    """
    t0 = time.perf_counter()
    X = np.asarray(X, dtype=float)
    Z = np.asarray(Z, dtype=float)
    n, d = X.shape
    c = Z.shape[1]
    rng = np.random.default_rng(random_state)
    V = _basis(X)
    r = V.shape[1]
    methods = []
    complete = False
    cands = []
    if r == 0 or not np.any(Z):
        return SelfCheck(True, 0.0, float(value), "trivial (X = 0 or Z = 0)", True,
                         time.perf_counter() - t0)
    if r == 1:
        cands.append(np.column_stack([V[:, 0], -V[:, 0]]))
        methods.append("both rays of the rank-1 row space")
        complete = True
    elif r == 2:
        if 4.0 * n * n * c <= budget:
            cands.append(_arcs_2d(X, Z, V))
            methods.append("independent arc enumeration")
            complete = True
    else:
        # 2-D flats through row hyperplanes, largest |z_k| |x_k| first
        Xr = X @ V
        rn = np.linalg.norm(Xr, axis=1)
        weight = rn * np.linalg.norm(Z, axis=1)
        order = [k for k in np.argsort(weight)[::-1] if rn[k] > 0]
        per_flat = 4.0 * n * n * c
        k_flats = int(min(len(order), budget // max(per_flat, 1.0)))
        if r == 3 and k_flats:
            for k in order[:k_flats]:
                h = Xr[k] / rn[k]
                # orthonormal basis of h^perp in the row space
                _, _, vt = np.linalg.svd(h[None, :])
                B = V @ vt[1:].T  # (d, 2)
                cands.append(_arcs_2d(X, Z, B))
            methods.append(f"arc enumeration on {k_flats} of {len(order)} row great circles")
            complete = False
        # cells met by random directions: top eigenvector of the cell's form if inside
        q = int(min(4096, max(64, budget // max(8.0 * n * c * r, 1.0))))
        S = V @ rng.standard_normal((r, q))
        pats = (X @ S >= 0).T  # (q, n)
        pats = np.unique(pats, axis=0)
        Kc = np.einsum("nc,nr->ncr", Z, Xr).reshape(n, c * r)
        H = (pats.astype(float) @ Kc).reshape(-1, c, r)
        M = np.einsum("qck,qcl->qkl", H, H)
        _, vec = np.linalg.eigh(M)
        top = vec[:, :, -1]
        SXU = (2.0 * pats - 1.0) * (top @ Xr.T)
        slack = 1e-12 * rn[None, :]
        ok_p = np.all(SXU >= -slack, axis=1)
        ok_m = np.all(SXU <= slack, axis=1)
        cands.append(V @ np.concatenate([top[ok_p], -top[ok_m]]).T)
        methods.append(f"cells of {pats.shape[0]} sampled patterns")
    # probes: row normals, random directions, the oracle's maximiser
    nzr = np.flatnonzero(np.linalg.norm(X, axis=1) > 0)
    if nzr.size > 512:
        nzr = rng.choice(nzr, 512, replace=False)
    P = (X[nzr] @ V) if nzr.size else np.zeros((0, r))
    P = P / np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-300)
    probes = [V @ P.T, -(V @ P.T), V @ rng.standard_normal((r, 256))]
    if u is not None and np.any(u):
        probes.append(np.asarray(u, dtype=float)[:, None])
    Up = np.concatenate([p for p in probes if p.size], axis=1)
    cands.append(Up)
    U = np.concatenate([c_ for c_ in cands if c_.size], axis=1)
    U = U / np.maximum(np.linalg.norm(U, axis=0, keepdims=True), 1e-300)
    vals = _values(X, Z, U)
    top = np.argsort(vals)[::-1][:16]
    # a complete enumeration already holds the maximiser: a short ascent suffices there
    Ua, va = _ascent(X, Z, U[:, top], n_iter=15 if complete else 60)
    methods.append("probes + ascent")
    best = float(np.sqrt(max(vals.max(), va.max(), 0.0)))
    value = float(value)
    # a refutation must survive the rounding of its own evaluation: ||Z^T (Xu)_+|| at a
    # floating-point u is within (d + n + 4) eps sum_k |z_k| |x_k| of the exact value
    err = (d + n + 4) * np.finfo(float).eps * float(
        np.dot(np.linalg.norm(Z, axis=1), np.linalg.norm(X, axis=1)))
    passed = best - err <= value * (1.0 + CHECK_RTOL)
    return SelfCheck(bool(passed), best, value, " + ".join(methods), complete,
                     time.perf_counter() - t0)
