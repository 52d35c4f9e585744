r"""Numerical parts shared by the oracles that search :math:`\Omega(Z)` over directions.

Values :math:`\|Z^\top (X_r u)_+\|^2` at many directions at once, the top eigenvector of
each cell's quadratic form (used by the exact oracle for every cell and face, and by the
heuristic oracle for its sampled cells), the exact grouping of parallel rows, the
:class:`_Evaluator` that holds the rank reduction and the equilibrated rows, and the
multi-start ascent on the sphere (heuristic oracle, rounding of the SDP bound).
"""

from __future__ import annotations

import time

import numpy as np

from .._validation import check_Z
from ..kernels import column_norms, relu_values, row_norms, sphere_gradient

__all__: list[str] = []  # private helpers; imported by name by the oracle modules


_relu_values = relu_values  # the kernel (convexrelu.kernels), under its old name


def _whitened_values(Wm: np.ndarray, s: np.ndarray, Z: np.ndarray, Yw: np.ndarray) -> np.ndarray:
    r"""Values at whitened directions ``y`` (rows of ``Yw``), normalised to unit ``u``.

    With ``u = V (y / s)`` the network input is :math:`X u = W y`, so the value of the
    unit direction is :math:`\|Z^\top (W y)_+\|^2 / \|y / s\|^2`.
    """
    vals = _relu_values(Wm, Z, Yw)
    return vals / np.sum((Yw / s) ** 2, axis=1)


def _inside(Wm, wn, P, Yw, tol):
    """Rows of ``Yw`` lying (within ``tol``, relative) in the closed cells ``P``."""
    SXU = (2.0 * P - 1.0) * (Yw @ Wm.T)  # (q, n)
    slack = tol * wn[None, :] * np.linalg.norm(Yw, axis=1, keepdims=True)
    return np.all(SXU >= -slack, axis=1), np.all(SXU <= slack, axis=1)


def _region_candidates(ev, Z, K, pats, bases, tol, chunk, floor):
    """Candidates of the cells ``pats``: top eigenvector of each cell's form, if inside the cell.

    ``K`` is ``kron(Z, X_r)``: forms are built in the rank-reduced coordinates ``u_r``
    (where ``|u| = |u_r|``), never in the equilibrated ones, so that a column of ``X``
    that is tiny next to another costs no accuracy. ``pats`` (Q, n), bool or 0/1 floats;
    ``bases`` None (the whole space) or (Q, r, k), orthonormal bases (in ``u_r``) of the
    cells' flats. Cells whose top eigenvalue is ``<= floor()`` cannot beat it (the top
    eigenvalue bounds the cell's maximum from above) and are skipped; ``floor`` is a
    callable so that a caller looking for the best can raise it as it goes. Yields
    ``(values, Y, est)`` per chunk: squared values (recomputed from :math:`(Xu)_+` at the
    floating-point direction), the candidates in whitened coordinates ``y = s * u_r``,
    and each candidate's top eigenvalue (the cell's own form, immune to a huge row
    landing on the wrong side of a rounded direction; an upper bound on the cell).
    """
    Wm, s, wn = ev.W, ev.s, ev.wn
    n, r = Wm.shape
    c = Z.shape[1]
    Q = pats.shape[0]
    for start in range(0, Q, chunk):
        stop = min(Q, start + chunk)
        P = pats[start:stop]
        Pf = P.astype(float) if P.dtype == bool else P
        G = (Pf @ K).reshape(stop - start, c, r)  # Z^T D X_r
        Bq = None if bases is None else bases[start:stop]
        if Bq is not None:
            G = np.einsum("qcr,qrk->qck", G, Bq)
        # the trace of a cell's form bounds its top eigenvalue: cells whose trace is at
        # most the floor cannot beat it and skip the eigendecomposition
        pre = np.flatnonzero(np.einsum("qck,qck->q", G, G) > floor())
        if pre.size == 0:
            continue
        G, Pf = G[pre], Pf[pre]
        if Bq is not None:
            Bq = Bq[pre]
        M = np.einsum("qck,qcl->qkl", G, G)
        lam, vecs = np.linalg.eigh(M)
        sel = np.flatnonzero(lam[:, -1] > floor())
        if sel.size == 0:
            continue
        q = vecs[sel, :, -1]
        if Bq is not None:
            q = np.einsum("qrk,qk->qr", Bq[sel], q)
        y = q * s[None, :]
        ok_p, ok_m = _inside(Wm, wn, Pf[sel], y, tol)
        cand = np.concatenate([y[ok_p], -y[ok_m]])
        if cand.shape[0] == 0:
            continue
        lam_sel = lam[sel, -1]
        yield _whitened_values(Wm, s, Z, cand), cand, np.concatenate([lam_sel[ok_p], lam_sel[ok_m]])


def _best_in_regions(ev, Z, K, pats, bases, tol, chunk, floor=-1.0):
    """Best candidate over cells (see :func:`_region_candidates`).

    Returns ``(value, y, est)``: the best recomputed value, its ``y`` (None when no cell
    beats ``floor``) and the largest eigenvalue estimate met (``-inf`` if none).
    """
    best = [float(floor), None]
    est_max = -np.inf
    for vals, cand, est in _region_candidates(ev, Z, K, pats, bases, tol, chunk,
                                              lambda: best[0]):
        est_max = max(est_max, float(est.max()))
        j = int(np.argmax(vals))
        if vals[j] > best[0]:
            best = [float(vals[j]), cand[j]]
    return best[0], best[1], est_max


def row_groups(X: np.ndarray, zero: np.ndarray):
    r"""Rows of ``X`` grouped by direction *exactly*: ``x`` and ``a x`` share a group.

    Each nonzero row is divided by its largest absolute entry and multiplied by the sign
    of its first nonzero entry. Negation and scaling by a power of two are exact in
    floating point, so duplicate rows, opposite rows (``x`` and ``-x``) and rows
    ``2^k x`` get bitwise-identical keys, whatever rounding the later linear algebra does;
    rows that are parallel only approximately stay apart (they do define distinct
    hyperplanes, however close).

    Returns ``(group, sign, first)``: ``group[k]`` the group of row ``k`` (-1 for the
    ``zero`` rows), ``sign[k] = +-1`` with ``x_k`` a positive multiple of ``sign[k]``
    times its group's key, and ``first[g]`` a row of group ``g``.
    """
    n = X.shape[0]
    group = np.full(n, -1, dtype=np.int64)
    sign = np.ones(n)
    idx = np.flatnonzero(~zero)
    if idx.size == 0:
        return group, sign, np.zeros(0, dtype=np.int64)
    Xn = X[idx]
    lead = Xn[np.arange(idx.size), np.argmax(Xn != 0, axis=1)]
    sgn = np.where(lead > 0, 1.0, -1.0)
    key = Xn / (np.max(np.abs(Xn), axis=1) * sgn)[:, None] + 0.0  # +0.0: no negative zeros
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group[idx] = inv.ravel()
    sign[idx] = sgn
    return group, sign, idx[first]


def contribution_scale(Z: np.ndarray, X: np.ndarray):
    """``(e, Zs)`` with ``Omega(Z) = 2**e Omega(Zs)`` exactly: ``Zs`` is ``Z`` times
    ``2**-e`` with the rows whose row of ``X`` is zero set to zero (they add nothing), and
    ``e`` makes the largest product ``max|z_i| max|x_i|`` over the rows that do add
    something lie in [1/8, 1). Scaling by ``max|Z|`` alone is not enough: a row of ``Z``
    (or ``X``) that is large where the other factor is zero sets the scale while adding
    nothing, and the squares (and squares of squares) of the rows that do count then
    underflow, which took bounds below Omega (found by red-teaming). ``e = 0`` and
    ``Zs = 0`` when no row adds anything."""
    za = np.max(np.abs(Z), axis=1) if Z.shape[1] else np.zeros(Z.shape[0])
    nz = np.any(X != 0, axis=1) if X.shape[1] else np.zeros(X.shape[0], dtype=bool)
    xa = np.max(np.abs(X), axis=1) if X.shape[1] else np.zeros(X.shape[0])
    Zs = np.where(nz[:, None], Z, 0.0)
    live = (za > 0) & nz
    if not np.any(live):
        return 0, Zs
    e = int(np.max(np.frexp(za[live])[1] + np.frexp(xa[live])[1]))
    return e, np.ldexp(Zs, -e)


def unscale_result(res, e: int):
    """``res`` (an ``OracleResult`` on ``Z * 2**-e``) for ``Z``."""
    from .base import OracleResult

    if e == 0:
        return res
    return OracleResult(float(np.ldexp(res.value, e)), res.u, float(np.ldexp(res.attained, e)),
                        res.kind, res.pattern_scope, res.n_patterns, res.time,
                        float(np.ldexp(res.margin, e)), source=res.source)


class _Evaluator:
    r"""Shared precomputation: rank reduction, equilibrated rows, exact row groups.

    ``Xr = X V`` (original metric, used by the heuristic and SDP oracles) and
    ``W = Xr / s`` with ``s`` the column norms of ``Xr`` (unit columns), which define the
    same arrangement (``X u = W y`` with ``y = s * u_r``) and are used for every
    geometric test of the exact oracle. ``group``/``gsign``/``gdir``: the rows grouped
    by exact direction (:func:`row_groups`) and one unit normal per group (in ``u_r``), so
    that every geometric decision about parallel rows is made once, for the group.
    ``residual``: :math:`\|X - X V V^\top\|_2`, what the rank reduction left out.
    """

    def __init__(self, problem):
        X = self.X = problem.X
        self.basis = problem.basis
        self.Xr = problem.Xr
        self.s = column_norms(self.Xr)
        self.zero = problem.zero_rows
        self._W = None
        self.xn = row_norms(X)
        self._problem = problem
        self.residual = problem.residual
        self._groups = None

    @property
    def W(self) -> np.ndarray:
        """The equilibrated rows (the exact oracle's geometry; formed on first use)."""
        if self._W is None:
            W = self.Xr / np.where(self.s > 0, self.s, 1.0)
            W[self.zero] = 0.0
            self._W = (W, np.linalg.norm(W, axis=1))
        return self._W[0]

    @property
    def wn(self) -> np.ndarray:
        """The equilibrated rows' norms."""
        self.W  # noqa: B018  (formed with W)
        return self._W[1]

    @property
    def fingerprint(self) -> str:
        """The data's fingerprint (hashed on first use: a pass over all of ``X``)."""
        return self._problem.fingerprint

    def _row_groups(self):
        """``(group, gsign, gdir)``, computed on first use (the exact oracle's geometry;
        a sort of the ``n`` rows that the searching oracles never need)."""
        if self._groups is None:
            group, gsign, first = row_groups(self.X, self.zero)
            G = self.Xr[first] * gsign[first, None]
            nrm = np.linalg.norm(G, axis=1, keepdims=True)
            self._groups = (group, gsign, G / np.where(nrm > 0, nrm, 1.0))
        return self._groups

    @property
    def group(self):
        return self._row_groups()[0]

    @property
    def gsign(self):
        return self._row_groups()[1]

    @property
    def gdir(self):
        return self._row_groups()[2]

    def check_Z(self, Z):
        return check_Z(Z, self.X.shape[0])

    def kron(self, Z, A=None):
        A = self.Xr if A is None else A
        n, r = A.shape
        return (Z[:, :, None] * A[:, None, :]).reshape(n, Z.shape[1] * r)

    def to_original(self, u_r):
        u = self.basis @ u_r
        nrm = np.linalg.norm(u)
        return u / nrm if nrm > 0 else u

    def from_whitened(self, y):
        return self.to_original(y / self.s)

    def rounding(self, Z) -> float:
        r"""Outward rounding for a value computed from sums over the rows:
        :math:`2(n + r + 4)\,\epsilon \sum_k \|z_k\| \|x_k\|` (recursive-summation
        error of every region's :math:`Z^\top D X_r`, evaluated at a unit direction)."""
        n, r = self.Xr.shape
        S = float(np.dot(np.linalg.norm(Z, axis=1), self.xn))
        return 2.0 * (n + r + 4) * np.finfo(float).eps * S

    def margin(self, Z) -> float:
        r"""Bound on what the rank reduction can hide: :math:`\|Z\|_2 \|X - X V V^\top\|_2`."""
        if self.residual == 0.0:
            return 0.0
        return float(np.linalg.norm(Z, 2)) * self.residual * (1.0 + 1e-12)


#: :func:`_ascent` leaves out a start once its step is at most this (on the unit sphere):
#: the value could then rise by about this times the gradient's norm (relative), where
#: the maximum is a kink; at a smooth maximum by its square. Measured on iris, beta = 0.1
#: lambda_max, the first search of ``cg`` (85 starts): 8.6 ms at 1e-14, 6.3 ms at 1e-8,
#: the same maximum to 15 digits. Every value the ascent returns is attained, whatever
#: this is (a lower estimate of Omega, as before).
ASCENT_MIN_STEP = 1e-9


def _ascent(Xr, Z, U, n_iter, deadline=None):
    r"""Multi-start ascent on the unit sphere with backtracking, one step size per start.

    Each step moves along the normalised tangent (sub)gradient of
    :math:`\|Z^\top (X_r u)_+\|^2`; a step is kept only if it increases the value,
    otherwise the step is halved, so the iteration also settles on kinks (boundary
    rays), where the maximum often lies. Stops early at ``deadline`` (a
    ``time.perf_counter()`` value).
    """
    U = U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-300)
    vals = _relu_values(Xr, Z, U)
    step = np.full(U.shape[0], 0.5)
    act = np.arange(U.shape[0])  # the starts still moving
    for _ in range(n_iter):
        if act.size == 0 or (deadline is not None and time.perf_counter() >= deadline):
            break
        Ua = U[act]
        grad = sphere_gradient(Xr, Z, Ua)
        gn = np.linalg.norm(grad, axis=1)
        live = (gn > 0) & (step[act] > ASCENT_MIN_STEP)
        # a start whose gradient vanished or whose step fell below ASCENT_MIN_STEP has
        # settled: it is left out of the next iterations (the same answer, less work)
        act, Ua, grad, gn = act[live], Ua[live], grad[live], gn[live]
        if act.size == 0:
            break
        cand = Ua + step[act, None] * (grad / gn[:, None])
        cand /= np.linalg.norm(cand, axis=1, keepdims=True)
        cv = _relu_values(Xr, Z, cand)
        better = cv > vals[act]
        U[act[better]] = cand[better]
        vals[act[better]] = cv[better]
        step[act] = np.where(better, np.minimum(step[act] * 1.5, 1.0), step[act] * 0.5)
    return U
