r"""The cone-constrained PCA oracle :math:`\Omega(Z) = \max_{\|u\| \le 1} \|Z^\top (X u)_+\|_2`.

One oracle, three uses: the Frank–Wolfe linear minimisation oracle (paper eq. 72), the
cutting-plane separation oracle (eq. 75) and the dual-feasibility test of the
certificate (eq. 11). Per sign pattern :math:`D_i` it is the cone-constrained PCA problem

.. math::

    \max_{\|u\| \le 1,\ (2D_i - I) X u \ge 0} u^\top X^\top D_i Z Z^\top D_i X u .

Three oracles, each tagging its result with its ``kind``:

``ExactOracle`` (``kind="exact"``)
    Exhaustive: the maximiser lies in the relative interior of some face of some cell;
    there it is the top eigenvector of the quadratic form restricted to the face's span.
    The faces of all cells are the cells of the arrangement restricted to every flat
    (intersection of hyperplanes), so the oracle enumerates the cells of every flat of
    dimension ``r, r-1, ..., 2`` and the rays (dimension 1), takes the top eigenvector
    of each cell's restricted form, keeps it if it lies in the cell, and evaluates every
    ray. The largest value found is :math:`\Omega(Z)` (each candidate's value is
    recomputed from :math:`(Xu)_+`, so the value returned is attained by the ``u``
    returned).
``SDPOracle`` (``kind="upper_bound"``)
    A Shor/RLT semidefinite relaxation of :math:`\max \|Z^\top a\|^2` over the lifting of
    ``(u, a = (Xu)_+)``; valid for any ``d``, practical for moderate ``n``.
``HeuristicOracle`` (``kind="heuristic"``)
    Sampled patterns and multi-start ascent on the sphere: a *lower* estimate, never a
    bound.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ._validation import check_choice, check_max_patterns, check_positive_int, check_X, check_Z
from .patterns import (
    DEFAULT_MAX_PATTERNS,
    DEFAULT_TIE_TOL,
    SignPatterns,
    _arrangement_cells,
    _null_vector,
    _unique_hyperplanes,
    fingerprint,
    pattern_bound,
    rank_reduce,
    rank_residual,
    zero_rows,
)

__all__ = [
    "OracleResult",
    "ExactOracle",
    "SDPOracle",
    "HeuristicOracle",
    "make_oracle",
    "omega",
    "ORACLE_KINDS",
]

logger = logging.getLogger(__name__)

ORACLE_KINDS = ("exact", "upper_bound", "heuristic")
#: Pattern matrices up to this size are cached as floats by ExactOracle.
_FLOAT_CACHE_BYTES = 256 << 20


@dataclass(frozen=True)
class OracleResult:
    r"""Result of an oracle call.

    Attributes
    ----------
    value : float
        For ``kind="exact"``: the largest value of any cell, face or ray computed from
        that region's own active set, plus ``margin`` (rounding and rank truncation): an
        upper bound on :math:`\Omega(Z)`, within ``margin`` of it. An upper bound for
        ``kind="upper_bound"``; a lower estimate for ``kind="heuristic"``.
    u : ndarray of shape (d,)
        A unit direction with :math:`\|Z^\top (Xu)_+\| =` ``attained``.
    attained : float
        The value reached by ``u`` (always a lower bound on :math:`\Omega(Z)`).
    kind : {"exact", "upper_bound", "heuristic"}
    pattern_scope : {"exact", "sampled"}
        Whether the search covered every sign pattern (the SDP covers every ``u`` by
        construction and reports ``"exact"``).
    n_patterns : int or None
        Number of top-level sign patterns searched (None for the SDP).
    time : float
        Seconds spent in the call.
    margin : float
        What was added to make ``value`` a bound: for the exact oracle, the outward
        rounding :math:`2(n + r + 4)\epsilon \sum_k \|z_k\|\|x_k\|` plus
        :math:`\|Z\|_2 \|X - X V_r V_r^\top\|_2` when the rank reduction truncated
        ``X``; for the SDP bound, the verification's correction (plus the truncation).
    """

    value: float
    u: np.ndarray
    attained: float
    kind: str
    pattern_scope: str
    n_patterns: int | None
    time: float
    margin: float = 0.0

    @property
    def is_upper_bound(self) -> bool:
        """True when ``value`` is a proven upper bound on :math:`\\Omega(Z)`."""
        return self.kind in ("exact", "upper_bound") and self.pattern_scope == "exact"


def _relu_values(Xr: np.ndarray, Z: np.ndarray, U: np.ndarray) -> np.ndarray:
    r""":math:`\|Z^\top (X_r u)_+\|^2` for each row ``u`` of ``U`` (shape (q, r))."""
    A = np.maximum(Xr @ U.T, 0.0)  # (n, q)
    G = Z.T @ A  # (c, q)
    return np.einsum("cq,cq->q", G, G)


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
        if bases is not None:
            G = np.einsum("qcr,qrk->qck", G, bases[start:stop])
        M = np.einsum("qck,qcl->qkl", G, G)
        lam, vecs = np.linalg.eigh(M)
        sel = np.flatnonzero(lam[:, -1] > floor())
        if sel.size == 0:
            continue
        q = vecs[sel, :, -1]
        if bases is not None:
            q = np.einsum("qrk,qk->qr", bases[start:stop][sel], q)
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

    def __init__(self, X, basis):
        self.X = X
        self.basis = basis
        self.Xr = X @ basis
        self.s = np.linalg.norm(self.Xr, axis=0)
        self.zero = zero_rows(X, basis)
        W = self.Xr / np.where(self.s > 0, self.s, 1.0)
        W[self.zero] = 0.0
        self.W = W
        self.wn = np.linalg.norm(W, axis=1)
        self.xn = np.linalg.norm(X, axis=1)
        self.fingerprint = fingerprint(X)
        self.residual = rank_residual(X, basis)
        self.group, self.gsign, first = row_groups(X, self.zero)
        G = self.Xr[first] * self.gsign[first, None]
        nrm = np.linalg.norm(G, axis=1, keepdims=True)
        self.gdir = G / np.where(nrm > 0, nrm, 1.0)

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


class _Sweep2D:
    r"""Exact maximum over a 2-D flat of the arrangement, by an angular sweep.

    The flat is ``span(B)`` in the rank-reduced coordinates ``u_r`` (``B`` orthonormal,
    ``r x 2``; ``u_r = B t`` with ``|u| = |t|``) and its rows are ``A = X_r B``. Angles
    are measured in *equilibrated* coordinates ``e = t * col`` (``col``: the column norms
    of ``A``), where the rows ``A / col`` are well conditioned however the columns of
    ``X`` are scaled; values and eigenvectors are computed in ``t``, where the norm is
    Euclidean.

    **Combinatorial sweep.** Each exact row group (:func:`row_groups`) gives one line
    through 0 in the flat, unless it vanishes there (it contains the flat). Its normal is
    turned into the upper half-plane, so that its angle is :math:`\varphi \in [0, \pi)`;
    lines with the same angle are one line. With the ``m`` distinct angles sorted, the
    ``2m`` boundary rays are :math:`\varphi_j - \pi/2` (``j = 0..m-1``) followed by
    :math:`\varphi_j + \pi/2`, already in angular order, so cell ``t`` (the arc after
    boundary ``t``) has line ``j`` on the side of its normal exactly when
    ``j <= t < j + m``. Every active set follows from that rule alone; no active set is
    ever measured with a dot product inside a thin cell, so opposite and duplicate rows,
    simultaneous events and slivers cannot make the sweep count a row twice. Between two
    consecutive cells one line changes side, so every cell's
    :math:`G_t = Z^\top D_t A` comes from one sparse product and a cumulative sum,
    :math:`O(n c)` per call.

    Candidates: each cell's top eigenvector (closed form) when it lies in the cell, and
    every boundary ray; they are re-evaluated exactly from :math:`(X_r u_r)_+` in
    decreasing order of their estimate until no estimate can beat the best exact value.
    """

    def __init__(self, ev: "_Evaluator", B: np.ndarray | None, zero: np.ndarray, tol: float):
        from scipy.sparse import csr_matrix

        self.ev = ev
        r = ev.Xr.shape[1]
        self.B = np.eye(r)[:, :2] if B is None else B
        A = ev.Xr @ self.B
        n = A.shape[0]
        self.A = A
        self.col = np.ones(2)
        self.n_cells = 0
        # one normal per exact row group, in the flat; groups containing the flat vanish
        Gd = ev.gdir @ self.B
        gn = np.linalg.norm(Gd, axis=1)
        glive = gn > tol
        grp = ev.group
        live_rows = (grp >= 0) & ~np.asarray(zero, dtype=bool)
        live_rows[live_rows] = glive[grp[live_rows]]
        rows = np.flatnonzero(live_rows)
        if rows.size == 0:
            return
        # angles in equilibrated coordinates of the unit normals: rows of any size count
        # alike (a huge row cannot squash the others onto an axis), columns too
        Gd = Gd / np.where(glive, gn, 1.0)[:, None]
        col = np.linalg.norm(Gd[np.unique(grp[rows])], axis=0)
        self.col = np.where(col > 0, col, 1.0)
        Gd = Gd / self.col
        # canonical normal in the upper half-plane: angle in [0, pi)
        flip = (Gd[:, 1] < 0) | ((Gd[:, 1] == 0) & (Gd[:, 0] < 0))
        Gc = np.where(flip[:, None], -Gd, Gd)
        phi_g = np.arctan2(Gc[:, 1], Gc[:, 0])
        # a normal within rounding of the negative x-axis can come out at pi: it is the
        # line at angle 0 with the opposite orientation
        wrap = phi_g >= np.pi
        flip = flip ^ wrap
        phi_g = np.where(wrap, 0.0, phi_g)
        orient = ev.gsign[rows] * np.where(flip[grp[rows]], -1.0, 1.0)  # +1: on the normal's side
        phi, line_of = np.unique(phi_g[grp[rows]], return_inverse=True)
        line_of = line_of.ravel()
        m = phi.size
        L = 2 * m
        bang = np.concatenate([phi - 0.5 * np.pi, phi + 0.5 * np.pi])
        two_pi = 2.0 * np.pi
        self.angles = bang
        self.width = np.maximum(np.diff(np.concatenate([bang, [bang[0] + two_pi]])), 0.0)
        # cell 0: line 0 on its normal's side, every other line on the other side
        pos = orient > 0
        active0 = np.zeros(n)
        active0[rows] = np.where(line_of == 0, pos, ~pos)
        self.active0 = active0
        # crossing boundary t (t = 1..m-1) turns line t to its normal's side; crossing
        # boundary m + j turns line j away from it
        sgn_in = np.where(pos, 1.0, -1.0)
        ti = np.concatenate([line_of, line_of + m])
        ci = np.concatenate([rows, rows])
        di = np.concatenate([sgn_in, -sgn_in])
        keep = ti != 0  # no transition into cell 0
        self.E = csr_matrix((di[keep], (ti[keep], ci[keep])), shape=(L, n))
        rays = np.column_stack([np.cos(bang), np.sin(bang)]) / self.col  # in t
        self.rays = rays / np.linalg.norm(rays, axis=1, keepdims=True)
        self.tol = tol
        self.n_cells = L

    def _estimates(self, Z: np.ndarray):
        """Estimated values (cells: top eigenvalue if its vector is inside; rays) and
        directions ``t`` (unit)."""
        n, c = Z.shape
        K = (Z[:, :, None] * self.A[:, None, :]).reshape(n, 2 * c)
        G = (np.cumsum(np.asarray(self.E @ K), axis=0) + self.active0 @ K).reshape(-1, c, 2)
        a = np.einsum("lc,lc->l", G[:, :, 0], G[:, :, 0])
        b = np.einsum("lc,lc->l", G[:, :, 0], G[:, :, 1])
        d = np.einsum("lc,lc->l", G[:, :, 1], G[:, :, 1])
        lam = 0.5 * (a + d) + np.sqrt(0.25 * (a - d) ** 2 + b * b)
        psi = 0.5 * np.arctan2(2.0 * b, a - d)
        tv = np.column_stack([np.cos(psi), np.sin(psi)])
        ev_ = tv * self.col  # equilibrated, for the angle test
        ang = np.arctan2(ev_[:, 1], ev_[:, 0])
        two_pi = 2.0 * np.pi
        lim = self.width + self.tol
        in_p = np.mod(ang - self.angles, two_pi) <= lim
        in_m = np.mod(ang + np.pi - self.angles, two_pi) <= lim
        tdir = np.where(in_p[:, None], tv, -tv)
        GR = np.einsum("lck,lk->lc", G, self.rays)
        ray_vals = np.einsum("lc,lc->l", GR, GR)
        est = np.concatenate([np.where(in_p | in_m, lam, -np.inf), ray_vals])
        return est, np.concatenate([tdir, self.rays])

    def _to_whitened(self, T):
        return (T @ self.B.T) * self.ev.s[None, :]

    def best(self, Z: np.ndarray, floor: float = -1.0, batch: int = 16):
        """Best recomputed value (squared, unit ``u``), its whitened ``y`` (None if none
        beats ``floor``) and the largest estimate (each cell's or ray's value from its own
        active set: the bound)."""
        if self.n_cells == 0:
            return floor, None, -np.inf
        est, dirs = self._estimates(Z)
        est_max = float(np.max(est))
        order = np.argsort(est)[::-1]
        best_val, best_y = float(floor), None
        for start in range(0, order.size, batch):
            idx = order[start : start + batch]
            if est[idx[0]] <= best_val * (1.0 + 1e-12):
                break
            Yw = self._to_whitened(dirs[idx])
            vals = _whitened_values(self.ev.W, self.ev.s, Z, Yw)
            j = int(np.argmax(vals))
            if vals[j] > best_val:
                best_val, best_y = float(vals[j]), Yw[j]
        return best_val, best_y, est_max

    def above(self, Z: np.ndarray, threshold: float, kmax: int):
        """Up to ``kmax`` candidates whose exact (squared) value exceeds ``threshold``."""
        if self.n_cells == 0:
            return np.zeros(0), np.zeros((0, self.ev.W.shape[1]))
        est, dirs = self._estimates(Z)
        idx = np.flatnonzero(est > threshold)
        idx = idx[np.argsort(est[idx])[::-1][: 4 * kmax]]
        Yw = self._to_whitened(dirs[idx])
        vals = _whitened_values(self.ev.W, self.ev.s, Z, Yw)
        keep = np.argsort(vals)[::-1]
        keep = keep[vals[keep] > threshold][:kmax]
        return vals[keep], Yw[keep]


class ExactOracle:
    r"""Exact :math:`\Omega(Z)` over all sign patterns of ``X`` (``kind="exact"``).

    Parameters
    ----------
    X : array of shape (n, d)
    patterns : SignPatterns, optional
        Exhaustive patterns of ``X`` (``scope="exact"``); enumerated if omitted and
        ``rank(X) >= 3``. For rank <= 2 the oracle sweeps the arrangement itself and
        never stores the ``P x n`` pattern matrix, so ``n`` can be large.
    max_patterns : float, default 1e9
        Passed to :meth:`SignPatterns.enumerate` when ``patterns`` is omitted.
    tol : float, default 1e-12
        Tie tolerance (see :class:`SignPatterns`); also the relative slack allowed when
        testing whether an eigenvector lies in its cell.
    chunk : int, default 4096
        Cells processed per vectorised block.

    Notes
    -----
    The rank is decided on equilibrated columns (:func:`~convexrelu.patterns.rank_reduce`),
    so a column of size 1e-8 next to one of size 1e8 is kept; what a truncation leaves out
    is added to the value as ``margin`` (:math:`\|Z\|_2 \|X - X V_r V_r^\top\|_2`), so
    ``value`` stays an upper bound. Geometric decisions (which side of a hyperplane,
    which rows are parallel, angular order) are made in equilibrated coordinates, where
    the rows are well conditioned; eigenproblems and values in the rank-reduced
    coordinates ``u_r``, where the norm of ``u`` is Euclidean. Rows are grouped by exact
    direction first (:func:`row_groups`: duplicates, opposite rows and power-of-two
    multiples share one hyperplane, bitwise), and the 2-D sweeps derive every active set
    combinatorially from the angular order (:class:`_Sweep2D`), so thin cells and
    simultaneous events cannot corrupt them. Rank 2: one angular sweep,
    :math:`O(n \log n)` set-up and :math:`O(n c)` per call. Rank ``r >= 3``: the top
    eigenvector of every cell's form (vectorised over cells, :math:`O(P n c r)`), the
    cells of every flat of dimension ``3 .. r-1`` the same way, and every 2-dimensional
    flat by a sweep, which also covers the rays. Values are recomputed from
    :math:`(Xu)_+`, so ``attained`` is reached by the ``u`` returned. The certificate
    does not take this value on trust: :func:`convexrelu.verify.check_omega` looks for a
    better direction by an independent route before ``is_global`` is set.
    """

    kind = "exact"

    def __init__(self, X, patterns: SignPatterns | None = None, *, max_patterns=DEFAULT_MAX_PATTERNS,
                 tol: float = DEFAULT_TIE_TOL, chunk: int = 4096):
        X = check_X(X)
        t0 = time.perf_counter()
        fp = fingerprint(X)
        if patterns is not None:
            if not isinstance(patterns, SignPatterns):
                raise ValueError(
                    f"patterns must be a SignPatterns object or None; got {type(patterns).__name__}"
                )
            if patterns.scope != "exact":
                raise ValueError(
                    "ExactOracle needs exhaustive sign patterns (scope='exact'); got "
                    f"scope={patterns.scope!r}. Use HeuristicOracle for sampled patterns."
                )
            if patterns.n_samples != X.shape[0]:
                raise ValueError(
                    f"patterns were computed for {patterns.n_samples} rows but X has {X.shape[0]}"
                )
            if patterns.fingerprint and patterns.fingerprint != fp:
                raise ValueError("patterns were computed for a different X (fingerprint mismatch)")
            basis, r = patterns.basis, patterns.rank
        else:
            basis, r = rank_reduce(X)
            if r >= 3:
                patterns = SignPatterns.enumerate(X, max_patterns=max_patterns, tol=tol)
        self.patterns = patterns
        self.tol = float(tol)
        self.chunk = int(chunk)
        self._ev = _Evaluator(X, basis)
        self.fingerprint = fp
        self._last = None
        self.rank = r
        ev = self._ev
        self._groups: list[tuple[np.ndarray | None, np.ndarray | None, np.ndarray]] = []
        self._sweeps: list[_Sweep2D] = []
        if r == 1:
            self._n_patterns = 2
        elif r == 2:
            sweep = _Sweep2D(ev, None, ev.zero, self.tol)
            self._sweeps.append(sweep)
            self._n_patterns = sweep.n_cells
        elif r >= 3:
            self._groups.append((None, patterns.patterns))
            self._n_patterns = patterns.n_patterns
            face_groups: dict[int, tuple[list, list]] = {}
            self._collect_faces(np.eye(r), face_groups)
            for k in sorted(face_groups, reverse=True):
                Bs, Ps = face_groups[k]
                self._groups.append((np.concatenate(Bs), np.concatenate(Ps)))
            # keep 0/1 float copies when they are small enough, to save a cast per call
            self._groups = [(B, P.astype(float) if P.size * 8 <= _FLOAT_CACHE_BYTES else P)
                            for B, P in self._groups]
        else:
            self._n_patterns = 1
        self.n_regions = (sum(p.shape[0] for _, p in self._groups)
                          + sum(sw.n_cells for sw in self._sweeps) + (2 if r == 1 else 0))
        self.setup_time = time.perf_counter() - t0
        logger.debug("ExactOracle: rank %d, %d patterns, %d cells/faces/rays, %d sweeps (%.3fs)",
                     r, self._n_patterns, self.n_regions, len(self._sweeps), self.setup_time)

    def _collect_faces(self, B, face_groups):
        """Recurse over the flats ``span(B)`` (orthonormal, in ``u_r``) of dimension >= 2.

        Hyperplanes are told apart in the flat's equilibrated coordinates; the flats
        themselves are kept in ``u_r``, where the norm of ``u`` is Euclidean.
        """
        ev = self._ev
        k = B.shape[1]
        xn = np.linalg.norm(ev.Xr, axis=1)
        A = ev.Xr @ B
        an = np.linalg.norm(A, axis=1)
        tight = ev.zero | (an <= self.tol * xn)
        An = A / np.where(tight, 1.0, an)[:, None]  # unit rows: sizes do not matter
        col = np.linalg.norm(An[~tight], axis=0) if np.any(~tight) else np.ones(k)
        col = np.where(col > 0, col, 1.0)
        hp = _unique_hyperplanes(An / col, self.tol, tight)
        for h in hp.reps:
            hc = h * col  # the same hyperplane in the flat's own coordinates
            Bn = B @ _null_vector(hc / np.linalg.norm(hc))
            An = ev.Xr @ Bn
            tight_n = ev.zero | (np.linalg.norm(An, axis=1) <= self.tol * xn)
            if k - 1 == 2:
                self._sweeps.append(_Sweep2D(ev, Bn, tight_n, self.tol))
                continue
            pats, _ = _arrangement_cells(An, self.tol, tight_n)
            Bs, Ps = face_groups.setdefault(k - 1, ([], []))
            Bs.append(np.broadcast_to(Bn, (pats.shape[0],) + Bn.shape))
            Ps.append(pats)
            self._collect_faces(Bn, face_groups)

    @property
    def n_patterns(self) -> int:
        """Number of sign patterns (cells) of ``X``."""
        return self._n_patterns

    def arrangement_2d(self):
        """For rank-2 ``X``: ``(W, s, basis, angles, widths)`` of the angular sweep, else None.

        ``W`` (n, 2) are the equilibrated rows (``X u = W y`` with ``u = basis (y / s)``);
        cell ``j`` is the arc of angles of ``y``, ``[angles[j], angles[j] + widths[j]]``.
        Solvers use it to slide atoms inside their cells.
        """
        if self.rank != 2 or not self._sweeps or self._sweeps[0].n_cells == 0:
            return None
        sw = self._sweeps[0]
        # the sweep's boundaries run over [-pi/2, 3pi/2); hand them out in [0, 2pi), sorted,
        # with the coordinates they are measured in (y = col * u_r, X u = (X_r / col) y)
        ang = np.mod(sw.angles, 2.0 * np.pi)
        k = int(np.argmin(ang))
        return (self._ev.Xr / sw.col, sw.col, self._ev.basis, np.roll(ang, -k),
                np.roll(sw.width, -k))

    def candidates(self, Z, threshold: float, kmax: int = 50):
        r"""Several good directions at once: unit ``u`` with :math:`\|Z^\top (Xu)_+\| >` ``threshold``.

        The best direction of each cell, face and ray (every region the exact oracle
        examines) whose value is above the threshold, best first, at most ``kmax``,
        near-duplicates removed. Used by column generation to add several atoms per
        oracle call. Returns ``(values, U)`` with ``U`` of shape ``(k, d)``.
        """
        ev = self._ev
        Z = ev.check_Z(Z)
        thr2 = float(threshold) ** 2
        d = ev.X.shape[1]
        if self.rank <= 1:
            res = self(Z)
            if res.value > threshold:
                return np.array([res.value]), res.u[None, :]
            return np.zeros(0), np.zeros((0, d))
        vals, ys = [], []
        for sweep in self._sweeps:
            v, Yw = sweep.above(Z, thr2, kmax)
            vals.append(v)
            ys.append(Yw)
        if self._groups:
            K = ev.kron(Z, ev.Xr)
            for bases, pats in self._groups:
                for v, Yw, _ in _region_candidates(ev, Z, K, pats, bases, self.tol, self.chunk,
                                                   lambda: thr2):
                    vals.append(v)
                    ys.append(Yw)
        if not vals:
            return np.zeros(0), np.zeros((0, d))
        vals = np.concatenate(vals)
        ys = np.concatenate(ys).reshape(-1, self.rank)
        order = np.argsort(vals)[::-1]
        out_v, out_y = [], []
        for i in order:
            if len(out_y) >= kmax:
                break
            y = ys[i] / np.linalg.norm(ys[i])
            if any(float(y @ w) > 1.0 - 1e-13 for w in out_y):
                continue
            out_v.append(vals[i])
            out_y.append(y)
        U = np.array([ev.from_whitened(y) for y in out_y]).reshape(-1, d)
        return np.sqrt(np.array(out_v)), U

    def __call__(self, Z) -> OracleResult:
        t0 = time.perf_counter()
        ev = self._ev
        Z = ev.check_Z(Z)
        best_val, best_y = 0.0, None
        bound = 0.0  # largest value of a region from its own active set
        if self.rank == 1:
            rays = np.array([[1.0], [-1.0]])
            vals = _whitened_values(ev.W, ev.s, Z, rays)
            j = int(np.argmax(vals))
            best_val, best_y = float(vals[j]), rays[j]
            bound = float(vals.max())
        elif self.rank >= 2:
            # 2-D flats first: their values are a floor that prunes most cells below
            for sweep in self._sweeps:
                val, y, est = sweep.best(Z, floor=best_val)
                bound = max(bound, est)
                if y is not None:
                    best_val, best_y = val, y
            if self._groups:
                K = ev.kron(Z, ev.Xr)
                for bases, pats in self._groups:
                    val, y, est = _best_in_regions(ev, Z, K, pats, bases, self.tol, self.chunk,
                                                   floor=best_val)
                    bound = max(bound, est)
                    if y is not None and val > best_val:
                        best_val, best_y = val, y
        if best_y is None:  # rank 0 (X = 0) or Z = 0: every u attains 0
            u = np.eye(ev.X.shape[1])[0]
            best_val = 0.0
        else:
            u = ev.from_whitened(best_y)
        attained = float(np.linalg.norm(Z.T @ np.maximum(ev.X @ u, 0.0)))
        # the bound: the largest region value, widened by what floating point can hide
        # (the sums behind every region's form) and by the rank truncation
        margin = ev.rounding(Z) + ev.margin(Z)
        value = float(np.sqrt(max(bound, best_val, 0.0))) + margin
        value = max(value, attained)
        res = OracleResult(value, u, attained, "exact", "exact", self.n_patterns,
                           time.perf_counter() - t0, margin)
        self._last = (Z.copy(), res)
        return res


def _ascent(Xr, Z, U, n_iter):
    r"""Multi-start ascent on the unit sphere with backtracking, one step size per start.

    Each step moves along the normalised tangent (sub)gradient of
    :math:`\|Z^\top (X_r u)_+\|^2`; a step is kept only if it increases the value,
    otherwise the step is halved, so the iteration also settles on kinks (boundary
    rays), where the maximum often lies.
    """
    U = U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-300)
    vals = _relu_values(Xr, Z, U)
    step = np.full(U.shape[0], 0.5)
    for _ in range(n_iter):
        A = Xr @ U.T  # (n, q)
        act = A > 0
        grad = (Xr.T @ (act * (Z @ (Z.T @ (act * A))))).T  # (q, r)
        grad -= np.sum(grad * U, axis=1, keepdims=True) * U
        gn = np.linalg.norm(grad, axis=1)
        live = (gn > 0) & (step > 1e-14)
        if not np.any(live):
            break
        D = np.where(live[:, None], grad / np.where(gn > 0, gn, 1.0)[:, None], 0.0)
        cand = U + step[:, None] * D
        cand /= np.linalg.norm(cand, axis=1, keepdims=True)
        cv = _relu_values(Xr, Z, cand)
        better = live & (cv > vals)
        U = np.where(better[:, None], cand, U)
        vals = np.where(better, cv, vals)
        step = np.where(better, np.minimum(step * 1.5, 1.0), step * 0.5)
    return U


class HeuristicOracle:
    r"""Heuristic :math:`\Omega(Z)`: sampled patterns plus multi-start ascent (``kind="heuristic"``).

    The value is attained by the returned ``u``, so it is a *lower* estimate of
    :math:`\Omega(Z)`; it is never used as a bound and never certifies optimality.

    Parameters
    ----------
    X : array of shape (n, d)
    patterns : SignPatterns, optional
        Patterns to search (default: ``SignPatterns.sample(X, n_samples)``).
    n_samples : int, default 2000
    n_starts : int, default 20
        Number of best candidates refined by ascent.
    n_iter : int, default 100
        Ascent iterations per start.
    random_state : None, int or Generator
    cell_budget : float, default 2e8
        The per-cell eigenvector check costs about ``P n c r`` flops per call; it is
        skipped above this budget (large problems rely on the ascent alone).
    """

    kind = "heuristic"

    def __init__(self, X, patterns: SignPatterns | None = None, *, n_samples: int = 2000,
                 n_starts: int = 20, n_iter: int = 100, random_state=None, chunk: int = 4096,
                 cell_budget: float = 2e8):
        X = check_X(X)
        n_samples = check_positive_int(n_samples, "n_samples")
        self.n_starts = check_positive_int(n_starts, "n_starts")
        self.n_iter = check_positive_int(n_iter, "n_iter", minimum=0)
        if patterns is None:
            patterns = SignPatterns.sample(X, n_samples, random_state=random_state)
        elif not isinstance(patterns, SignPatterns):
            raise ValueError(f"patterns must be a SignPatterns object or None; got {type(patterns).__name__}")
        if patterns.n_samples != X.shape[0]:
            raise ValueError(
                f"patterns were computed for {patterns.n_samples} rows but X has {X.shape[0]}"
            )
        self.patterns = patterns
        self.chunk = chunk
        self._ev = _Evaluator(X, patterns.basis)
        if patterns.fingerprint and patterns.fingerprint != self._ev.fingerprint:
            raise ValueError("patterns were computed for a different X (fingerprint mismatch)")
        self.fingerprint = self._ev.fingerprint
        self.cell_budget = float(cell_budget)
        self._last = None
        st = patterns.directions @ patterns.basis  # (P, r)
        self._starts = st / np.maximum(np.linalg.norm(st, axis=1, keepdims=True), 1e-300)

    @property
    def n_patterns(self) -> int:
        return self.patterns.n_patterns

    def _cached_search(self, Z):
        """:meth:`_search`, reusing the last result for the same ``Z`` (a solver asks for
        the value and then for the candidates of one residual)."""
        if self._last is None or not np.array_equal(self._last[0], Z):
            self._last = (Z.copy(),) + self._search(Z)
        return self._last[1], self._last[2]

    def _search(self, Z):
        """Candidates (reduced coordinates) with their squared values, best first."""
        ev = self._ev
        Xr = ev.Xr
        n, r = Xr.shape
        starts = self._starts
        vals = _relu_values(Xr, Z, starts)
        S = starts[np.argsort(vals)[::-1][: self.n_starts]]
        extra = [starts[int(np.argmax(vals))]]
        P = self.patterns.patterns
        if P.shape[0] * n * Z.shape[1] * r <= self.cell_budget:
            # top eigenvector of each sampled cell's form, when it lies in the cell
            K = ev.kron(Z, ev.Xr)
            _, y, _ = _best_in_regions(ev, Z, K, P, None, DEFAULT_TIE_TOL, self.chunk,
                                    floor=float(vals.max()))
            if y is not None:
                u_cell = y / ev.s
                extra.append(u_cell / np.linalg.norm(u_cell))
        U = np.vstack([_ascent(Xr, Z, np.vstack([S] + extra), self.n_iter), np.array(extra)])
        uv = _relu_values(Xr, Z, U)
        order = np.argsort(uv)[::-1]
        return uv[order], U[order]

    def __call__(self, Z) -> OracleResult:
        t0 = time.perf_counter()
        ev = self._ev
        Z = ev.check_Z(Z)
        r = ev.Xr.shape[1]
        if r > 0:
            vals, U = self._cached_search(Z)
            val_best, u_best = float(vals[0]), U[0]
        else:
            val_best, u_best = 0.0, np.zeros(0)
        if not np.any(u_best):
            u = np.eye(ev.X.shape[1])[0]
        else:
            u = ev.to_original(u_best)
        value = float(np.sqrt(max(val_best, 0.0)))
        return OracleResult(value, u, value, "heuristic", self.patterns.scope, self.n_patterns,
                            time.perf_counter() - t0)

    def candidates(self, Z, threshold: float, kmax: int = 50):
        """Distinct ascent results with value above ``threshold`` (best first, at most ``kmax``)."""
        ev = self._ev
        Z = ev.check_Z(Z)
        if ev.Xr.shape[1] == 0:
            return np.zeros(0), np.zeros((0, ev.X.shape[1]))
        vals, U = self._cached_search(Z)
        out_v, out_u = [], []
        for v, u in zip(np.sqrt(np.maximum(vals, 0.0)), U):
            if v <= threshold or len(out_u) >= kmax:
                break
            un = u / np.linalg.norm(u)
            if any(float(un @ w) > 1.0 - 1e-9 for w in out_u):
                continue
            out_v.append(v)
            out_u.append(un)
        Uo = np.array([ev.to_original(u) for u in out_u]).reshape(len(out_u), ev.X.shape[1])
        return np.array(out_v), Uo


class SDPOracle:
    r"""Proven upper bound on :math:`\Omega(Z)` from a semidefinite relaxation (``kind="upper_bound"``).

    With ``w = (1, u, a)``, ``a = (X_r u)_+`` and the lifted matrix
    :math:`W \succeq 0` standing for :math:`w w^\top`, the relaxation is

    .. math::

        \max\ \langle Z Z^\top, W_{aa} \rangle \quad \text{s.t.}\quad
        W_{11} = 1,\ \operatorname{tr} W_{uu} \le 1,\ a \ge 0,\ a \ge X_r u,\
        (W_{aa})_{kk} = x_k^\top (W_{ua})_{\cdot k},

    plus the products of the linear constraints (``W_aa >= 0``,
    ``W_aa - X_r W_ua >= 0``, ``W_aa - X_r W_ua - W_au X_r^T + X_r W_uu X_r^T >= 0``,
    elementwise) and of them with the ball (second-order cones). Every
    ``(u, (Xu)_+)`` is feasible, so the relaxation's value bounds :math:`\Omega(Z)^2`
    from above for any ``d``.

    The value returned does **not** rest on the conic solver's accuracy: the solver's
    dual multipliers are projected onto their cones, the dual slack matrix is formed in
    floating point with a rounding bound, its smallest eigenvalue is bounded from below
    by a verified Cholesky factorisation, and the Jansson–Chaykin–Keil correction with
    the a-priori trace bound :math:`\operatorname{tr} W \le 2 + \|X_r\|_2^2` (after
    normalisation) turns any multipliers into a proven bound
    (:func:`convexrelu.sdp_bound.verified_sdp_bound`). ``margin`` in the result is what
    the verification added over the multipliers' dual objective, plus the rank
    reduction's truncation bound when ``X`` was truncated. Size ``(1 + r + n)``; meant
    for moderate ``n``; never chosen automatically (it is slow and often loose for
    ``c > 1``).

    Parameters
    ----------
    X : array of shape (n, d)
    solver : str, default "CLARABEL"
        A CVXPY solver that handles SDPs (``"CLARABEL"`` or ``"SCS"``).
    max_n : int, default 120
        Refuse larger problems (the SDP has ``O(n^2)`` constraints).
    """

    kind = "upper_bound"

    def __init__(self, X, *, solver: str = "CLARABEL", max_n: int = 120):
        X = check_X(X)
        check_choice(solver, ("CLARABEL", "SCS"), "solver")
        if X.shape[0] > max_n:
            raise ValueError(
                f"SDPOracle is meant for moderate n: X has n={X.shape[0]} rows, above "
                f"max_n={max_n} (the relaxation has O(n^2) constraints); raise max_n to try anyway"
            )
        basis, r = rank_reduce(X)
        self._ev = _Evaluator(X, basis)
        self.solver = solver
        self.fingerprint = self._ev.fingerprint

    n_patterns = None

    def __call__(self, Z) -> OracleResult:
        from .sdp_bound import verified_sdp_bound

        t0 = time.perf_counter()
        Z = self._ev.check_Z(Z)
        Xr = self._ev.Xr
        r = Xr.shape[1]
        if r == 0 or not np.any(Z) or not np.any(Xr):
            u = np.eye(self._ev.X.shape[1])[0]
            margin = self._ev.margin(Z)
            return OracleResult(margin, u, 0.0, "upper_bound", "exact", None,
                                time.perf_counter() - t0, margin)
        b = verified_sdp_bound(Xr, Z, solver=self.solver)  # RuntimeError on solver failure
        cands = _ascent(Xr, Z, b.candidates(), 100)
        vals = _relu_values(Xr, Z, cands)
        j = int(np.argmax(vals))
        u = self._ev.to_original(cands[j])
        attained = float(np.linalg.norm(Z.T @ np.maximum(self._ev.X @ u, 0.0)))
        trunc = self._ev.margin(Z)
        value = max(b.value + trunc, attained)
        margin = max(b.value - float(np.sqrt(max(b.dual_value_sq, 0.0))), 0.0) + trunc
        return OracleResult(value, u, attained, "upper_bound", "exact", None,
                            time.perf_counter() - t0, margin)


def make_oracle(X, oracle="auto", patterns="auto", *, max_patterns=DEFAULT_MAX_PATTERNS,
                n_samples: int = 2000, random_state=None):
    """Build an oracle for ``X``.

    Parameters
    ----------
    X : array of shape (n, d)
    oracle : {"auto", "exact", "upper_bound", "heuristic", "spike-free"} or an oracle object
        ``"auto"``: exact when the patterns are (or can be) enumerated (always for
        ``rank(X) <= 2``); otherwise heuristic (not a bound, logged as a warning). The
        SDP bound is never chosen automatically (slow, often loose for ``c > 1``); ask
        for it with ``oracle="upper_bound"``.
        ``"spike-free"``: :class:`~convexrelu.preprocessing.SpikeFreeOracle`, the single
        pattern ``D = I`` of spike-free data with orthogonal rows (paper eq. 15): exact
        for ``n <= 12`` whatever ``d``; raises when ``X`` is not of that kind.
    patterns : {"auto", "exact", "sampled"} or SignPatterns
        ``"auto"``: enumerate when the bound :math:`2r(e(n-1)/r)^r` is within
        ``max_patterns``, otherwise sample ``n_samples`` directions. ``"exact"``
        enumerates or raises :class:`TooManyPatternsError`.
    max_patterns : float, default 1e9
    n_samples : int, default 2000
        Directions drawn for sampled patterns.
    random_state : None, int or Generator
    """
    if not isinstance(oracle, str):
        if callable(oracle) and getattr(oracle, "kind", None) in ORACLE_KINDS:
            fp = getattr(oracle, "fingerprint", None)
            if fp is not None and fp != fingerprint(check_X(X)):
                raise ValueError(
                    "the oracle object was built for a different X (fingerprint mismatch); "
                    "build it with the X it is used on"
                )
            return oracle
        raise ValueError(
            f"oracle must be one of 'auto', 'exact', 'upper_bound', 'heuristic', 'spike-free' or an oracle "
            f"object; got {oracle!r}"
        )
    if oracle == "spike-free":
        from .preprocessing import SpikeFreeOracle

        return SpikeFreeOracle(X, random_state=0 if random_state is None else random_state)
    check_choice(oracle, ("auto", "spike-free") + ORACLE_KINDS, "oracle")
    X = check_X(X)
    max_patterns = check_max_patterns(max_patterns)
    if isinstance(patterns, SignPatterns):
        if patterns.scope == "exact" and oracle in ("auto", "exact"):
            return ExactOracle(X, patterns)
        if oracle == "exact":
            raise ValueError("oracle='exact' needs exhaustive patterns; got sampled patterns")
        if oracle == "upper_bound":
            return SDPOracle(X)
        return HeuristicOracle(X, patterns, n_samples=n_samples, random_state=random_state)
    check_choice(patterns, ("auto", "exact", "sampled"), "patterns")
    if patterns == "sampled":
        if oracle == "exact":
            raise ValueError("oracle='exact' needs exhaustive patterns; got patterns='sampled'")
        if oracle == "upper_bound":
            return SDPOracle(X)
        return HeuristicOracle(X, n_samples=n_samples, random_state=random_state)
    # patterns in ("auto", "exact")
    if oracle == "upper_bound":
        return SDPOracle(X)
    if oracle == "heuristic":
        return HeuristicOracle(X, n_samples=n_samples, random_state=random_state)
    _, r = rank_reduce(X)
    if r <= 2 or patterns == "exact" or pattern_bound(X.shape[0], r) <= max_patterns:
        return ExactOracle(X, max_patterns=max_patterns)  # raises if not enumerable
    if oracle == "exact":
        raise ValueError(
            f"oracle='exact' needs exhaustive patterns, but X (n={X.shape[0]}, rank {r}) may "
            f"have up to {pattern_bound(X.shape[0], r):.3g} > max_patterns={max_patterns:.3g}; "
            "raise max_patterns"
        )
    logger.warning(
        "no exact oracle for X (n=%d, rank %d): patterns cannot be enumerated within "
        "max_patterns=%.3g; using the heuristic oracle (results are estimates, not "
        "certificates; oracle='upper_bound' gives an SDP bound for moderate n)",
        X.shape[0], r, max_patterns)
    return HeuristicOracle(X, n_samples=n_samples, random_state=random_state)


def omega(X, Z, *, oracle="auto", patterns="auto", **kwargs) -> OracleResult:
    r"""One-shot :math:`\Omega(Z) = \max_{\|u\|\le1} \|Z^\top (Xu)_+\|` with the chosen oracle."""
    return make_oracle(X, oracle, patterns, **kwargs)(Z)
