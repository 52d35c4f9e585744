r"""Exact :math:`\Omega(Z)` by streaming the cells of the arrangement (ranks 3 to 5).

:class:`ExactOracle` stores every cell, face and ray of the arrangement once and then
evaluates them at each call: on iris (rank 4) that is 10.8M regions, 47 s and 4.4 GB to
build. :class:`StreamingExactOracle` stores nothing that grows with the number of cells.
At each call it visits the cells block by block, from their extreme rays, and keeps only
a running maximum and the few cells that need more work.

**Cells from rays.** After the rank reduction and whitening (as in
:func:`~convexrelu.patterns._arrangement_cells`) the ``m`` distinct hyperplanes
:math:`h_j^\top w = 0` span :math:`\mathbb{R}^k`, so every cell is a pointed cone and
has an extreme ray, the line through ``r - 1`` independent hyperplanes. The oracle walks
through every set ``S`` of ``k - 1`` hyperplanes (in blocks, vectorised); where their
normals are independent, their common line ``v`` is a candidate ray.

- **Simple rays.** Exactly the ``k - 1`` hyperplanes of ``S`` pass through ``v`` (within
  the tie tolerance). The cells at ``+v`` and at ``-v`` are all ``2^(k-1)`` choices of
  side for the hyperplanes of ``S``, with every other hyperplane on its side at ``+v``
  (or ``-v``).
- **Degenerate rays.** More hyperplanes pass through ``v``. Such rays are collected once
  each. Their cells are every choice of side for up to 6 hyperplanes (a choice that is no
  cell is an empty set, found so when it needs work), and beyond that the cells of the
  local arrangement in :math:`v^\perp` (:func:`~convexrelu.patterns._arrangement_cells`).

**Each cell once.** In the chart :math:`a^\top u = 1` (``a`` a fixed generic vector) a
cell whose rays all have :math:`a^\top v > 0` is a bounded polytope, and it has one lowest
vertex in a fixed generic direction ``g``. At a simple ray, exactly one choice of sides
makes every edge rise in ``g``. That cell is visited there, with its mirror image at
``-v``. A ray within 1e-9 of a tie takes every choice. The cells that cross
:math:`a^\top u = 0` are the cells of the arrangement restricted to :math:`a^\perp`; they are
enumerated once, at set-up, and visited at each call.

**Per cell.** On the closure of a cell, :math:`(X_r u)_+ = D X_r u`, so its maximum is
at most the top singular value of :math:`G = Z^\top D X_r`. :math:`G` comes from one
product per ray (the ``m`` hyperplanes' row sums :math:`K^\pm_j = \sum z_i x_i^\top`
per side) plus the ``2^(k-1)`` choices for the hyperplanes through the ray. Then:

- a cell whose :math:`\|G\|_F` or top singular value is at most the best value attained
  so far (the *floor*) cannot hold the maximum;
- a cell whose top singular vector (or its negative) lies in the cell is solved: that
  value is its maximum;
- the others are bounded with their constraints. First the *wedge bound*: the cell lies
  in the wedge of the constraint its top vector violates most and the one its negative
  violates most, and the maximum over a wedge lies on one of its two hyperplanes, below
  the top eigenvalue restricted there. Then *cutting planes* (:meth:`~StreamingExactOracle._cut`):
  the exact maximum over the cone of a few of the cell's constraints (over that cone's
  faces), adding the constraint its maximiser violates most, until the cell is below
  the floor, its maximiser lies in the cell (solved), or 7 constraints are used. The few
  left are *hot*: kept with a point inside each, and solved in batches.

**Hot cells.** A hot cell's facets are the vertices of its polar: qhull is run on the
constraint normals, seen from the point inside. The maximiser lies in the relative
interior of some face, an intersection of facets, and there it is a top eigenvector of
the form restricted to the face's span. So for each set ``A`` of at most ``k - 1``
independent facets:

- the restricted top eigenvector, or its negative, is a candidate if it lies in the cell;
- a span whose top eigenvalue is not simple (relative gap 1e-9) is counted at that
  eigenvalue, an upper bound on the face;
- a span is refined (one more facet) only while its value is above the floor and its
  vector lies outside the cell.

The value returned is the largest of all of these, plus the same outward margin as
:class:`ExactOracle` (rounding of the row sums and the rank truncation). ``attained`` is
recomputed from :math:`(Xu)_+` at the ``u`` returned.

Cost: :math:`\binom{m}{k-1}` rays, one ``m x 2cr`` product each, and two cells per
simple ray. Measured on iris (150 x 4, c = 3, 1.17M cells): 5.6 s per call at
beta = 0.1 lambda_max and 32 s at 0.01 lambda_max, where the cutting planes settle
818,000 cells. Memory: a block of rays, at most 20,000 hot cells, and the equator's cells
(as bits, with a point inside each). The equator is an arrangement of rank ``r - 1``,
enumerated and stored once at set-up by :func:`~convexrelu.patterns._arrangement_cells`:
cheap at rank 4 (iris: 22,000 cells), but at rank 5 with a few hundred rows it is as
large as a stored rank-4 enumeration (a limit of this version: it could be streamed the
same way). The network's neurons, given by
:meth:`StreamingExactOracle.hint` and refined by a short ascent, set the first floor.
"""

from __future__ import annotations

import itertools
import logging
import math
import sys
import time

import numpy as np

from ..patterns import (
    DEFAULT_TIE_TOL,
    _arrangement_cells,
    _null_vector,
    _ray_epsilon,
    _unique_hyperplanes,
)
from ._common import _ascent, _Evaluator, _relu_values, contribution_scale, unscale_result
from .base import OracleBase, OracleResult, in_memory_problem
from ..kernels import spectral_norm
from .spectral import spectral_bound

__all__ = ["StreamingExactOracle"]

logger = logging.getLogger(__name__)

#: Ties in the lowest-vertex rule (a ray this close to the chart's equator, or an edge this
#: close to level in ``g``, relative): such a ray takes every choice of side.
_CHART_TIE = 1e-9

#: Degenerate rays with at most this many hyperplanes take every choice of side for them
#: (vectorised); rays with more, the cells of their local arrangement.
_ALL_SIDES = 6

#: Hot cells kept before they are solved (memory stays bounded; the floor only rises, so
#: solving early is never wrong).
_HOT_BATCH = 20000

#: Constraints a cutting-plane bound on a cell may use before the cell is solved over
#: its facets (iris, beta = 0.01 lambda_max: 97.6 % of the cells the wedge leaves are
#: settled by 5, 99.6 % by 6).
_CUT_MAX = 7

#: Relative eigenvalue gap below which a face's top eigenvalue is counted as its bound
#: (its top eigenvector is then not unique, and the membership test would not be enough).
_EIGGAP = 1e-9


class _Stop(Exception):
    """The time limit was reached."""


def _top_value(G):
    """An upper estimate of the top eigenvalue of ``G^T G`` for each ``G`` (q, c, k), from
    the smaller Gram matrix, for pruning: in closed form up to 3 x 3 (Smith's
    trigonometric formula, whose error is a few units of rounding of the matrix's size;
    widened by 1e-9 relative), by LAPACK beyond."""
    if G.shape[1] < G.shape[2]:
        M = np.einsum("qck,qdk->qcd", G, G)
    else:
        M = np.einsum("qck,qcl->qkl", G, G)
    s = M.shape[1]
    if s == 1:
        top = M[:, 0, 0]
    elif s == 2:
        a, b, d = M[:, 0, 0], M[:, 0, 1], M[:, 1, 1]
        top = 0.5 * (a + d) + np.sqrt(0.25 * (a - d) ** 2 + b * b)
    elif s == 3:
        q = (M[:, 0, 0] + M[:, 1, 1] + M[:, 2, 2]) / 3.0
        p1 = M[:, 0, 1] ** 2 + M[:, 0, 2] ** 2 + M[:, 1, 2] ** 2
        p2 = (M[:, 0, 0] - q) ** 2 + (M[:, 1, 1] - q) ** 2 + (M[:, 2, 2] - q) ** 2 + 2.0 * p1
        p = np.sqrt(p2 / 6.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            B = (M - q[:, None, None] * np.eye(3)) / p[:, None, None]
            r = 0.5 * np.linalg.det(B)
        r = np.clip(np.nan_to_num(r, nan=1.0), -1.0, 1.0)
        top = q + 2.0 * p * np.cos(np.arccos(r) / 3.0)
    else:
        return np.linalg.eigvalsh(M)[:, -1]
    scale = np.einsum("qii->q", M)
    return top + 1e-9 * scale + 1e-300


def _complements(n):
    """Orthonormal bases (N, k, k - 1) of the complements of the rows of ``n`` (N, k)
    (Householder maps, as :func:`~convexrelu.patterns._null_vector`), and whether each row
    is nonzero."""
    N, k = n.shape
    nn = np.linalg.norm(n, axis=1)
    ok = nn > 0
    h = n / np.where(ok, nn, 1.0)[:, None]
    v = h.copy()
    v[:, 0] += np.where(h[:, 0] < 0, -1.0, 1.0)
    vv = np.einsum("nk,nk->n", v, v)
    H = np.eye(k)[None] - 2.0 * v[:, :, None] * v[:, None, :] / np.where(vv > 0, vv, 1.0)[:, None, None]
    return H[:, :, 1:], ok


def _null_vectors(H):
    """Unit normals ``v`` (N, k) of ``k - 1`` rows ``H`` (N, k - 1, k) each, and whether the
    rows are independent (smallest singular value above 1e-14; the generalised cross
    product, whose norm is the product of the singular values, at ranks 3 and 4)."""
    N, p, k = H.shape
    if k == 3:
        v = np.cross(H[:, 0], H[:, 1])
    elif k == 4:
        a, b, c = H[:, 0], H[:, 1], H[:, 2]

        def m3(i, j, l):
            return (a[:, i] * (b[:, j] * c[:, l] - b[:, l] * c[:, j])
                    - a[:, j] * (b[:, i] * c[:, l] - b[:, l] * c[:, i])
                    + a[:, l] * (b[:, i] * c[:, j] - b[:, j] * c[:, i]))

        v = np.column_stack([m3(1, 2, 3), -m3(0, 2, 3), m3(0, 1, 3), -m3(0, 1, 2)])
    else:
        _, sv, Vt = np.linalg.svd(H)
        return Vt[:, -1, :], sv[:, -1] > 1e-14
    nv = np.linalg.norm(v, axis=1)
    # unit rows: the product of the singular values is nv and the largest ones are at
    # most sqrt(k - 1), so the smallest is at least nv / (k - 1)
    indep = nv > (k - 1) * 1e-14
    return v / np.where(indep, nv, 1.0)[:, None], indep


def _subsets(m: int, p: int, chunk: int):
    """All ``p``-subsets of ``range(m)`` in lexicographic order, as int arrays of at most
    about ``chunk`` rows (the last two indices vectorised, the others in a loop)."""
    if p == 1:
        for s in range(0, m, chunk):
            yield np.arange(s, min(m, s + chunk))[:, None]
        return
    J, L = np.triu_indices(m, 1)  # sorted by J
    start_of = np.searchsorted(J, np.arange(m + 1))  # pairs with J >= a start here
    buf, size = [], 0
    for prefix in itertools.combinations(range(m), p - 2):
        lo = start_of[prefix[-1] + 1] if prefix else 0
        if lo >= J.size:
            continue
        tail = np.column_stack([J[lo:], L[lo:]])
        if prefix:
            head = np.broadcast_to(np.asarray(prefix), (tail.shape[0], p - 2))
            tail = np.hstack([head, tail])
        for piece in range(0, tail.shape[0], chunk):  # at most about chunk rows a block
            buf.append(tail[piece: piece + chunk])
            size += buf[-1].shape[0]
            if size >= chunk:
                yield np.concatenate(buf)
                buf, size = [], 0
    if buf:
        yield np.concatenate(buf)


class StreamingExactOracle(OracleBase):
    r"""Exact :math:`\Omega(Z)` for ranks 3 to 5, streaming the cells (``kind="exact"``).

    Same answer as :class:`~convexrelu.oracles.ExactOracle`, in memory that does not grow
    with the number of cells, and without a set-up that enumerates them (see the module
    docstring for the method).

    Parameters
    ----------
    X : array of shape (n, d)
    tol : float, default 1e-12
        Tie tolerance: a hyperplane within ``tol`` of a ray passes through it; also the
        relative slack of the test whether a vector lies in its cell.
    chunk : int, default 4096
        Rays per vectorised block.
    time_limit : float, optional
        Seconds per call. A call stopped by it (or by Ctrl-C) returns
        ``kind="upper_bound"`` with the spectral bound as its value (the cells not yet
        visited could hold anything up to it) and the best direction found so far;
        ``last_stats["stopped"]`` says why.
    verbose : int, default 0
        Above 0, a progress line every 2 s on the terminal (rays done, best value).

    Attributes
    ----------
    last_stats : dict
        Of the last call: ``rays`` (independent sets of ``k - 1`` hyperplanes),
        ``degenerate`` (rays with more hyperplanes through them), ``ambiguous`` (simple
        rays too near a tie of the lowest-vertex rule, visited with every choice),
        ``cells`` (cell visits), ``wedge_pruned`` and ``cut`` (cells settled by the wedge
        bound and by cutting planes), ``hot`` (cells solved over their faces), ``faces``
        (face spans solved for them), ``facets_max`` (the most facets of a hot cell),
        ``seconds``.
    """

    kind = "exact"

    def __init__(self, X, *, tol: float = DEFAULT_TIE_TOL, chunk: int = 4096,
                 time_limit: float | None = None, verbose: int = 0):
        t0 = time.perf_counter()
        self.problem = prob = in_memory_problem(X, "the streaming exact oracle")
        if not (np.isfinite(tol) and 0 < tol < 1e-3):
            raise ValueError(f"tol must be in (0, 1e-3); got {tol!r}")
        if int(chunk) < 1:
            raise ValueError(f"chunk must be a positive integer; got {chunk!r}")
        if time_limit is not None and not (np.isfinite(time_limit) and time_limit > 0):
            raise ValueError(f"time_limit must be a positive number of seconds or None; got {time_limit!r}")
        self.tol, self.chunk = float(tol), int(chunk)
        self.time_limit = None if time_limit is None else float(time_limit)
        self.verbose = int(verbose)
        self._ev = ev = _Evaluator(prob)
        self.rank = r = prob.rank
        if not 3 <= r <= 5:
            raise ValueError(
                f"StreamingExactOracle covers ranks 3 to 5; X has rank {r}. Use ExactOracle "
                "(rank <= 2 is one angular sweep) or BranchAndBoundOracle (rank > 5)")
        A = ev.Xr
        rn = np.linalg.norm(A, axis=1)
        zero = ev.zero | (rn == 0)
        live = ~zero
        An = A[live] / rn[live, None]
        col = np.linalg.norm(An, axis=0)
        col = np.where(col > 0, col, 1.0)
        U, S, Vt = np.linalg.svd(An / col, full_matrices=False)
        if S[-1] <= max(An.shape) * np.finfo(float).eps * S[0]:
            raise ValueError("the rows of X do not span its reduced rank numerically; "
                             "use ExactOracle")
        Aw = np.zeros_like(A)
        Aw[live] = U
        hp = _unique_hyperplanes(Aw, self.tol, zero)
        self._reps = hp.reps  # (m, r) unit normals, whitened coordinates w
        # w = M u_r; a hyperplane's normal in u_r is reps @ M
        self._M = (S[:, None] * Vt) * col[None, :]
        self._Nr = self._reps @ self._M
        self._labels, self._orient = hp.labels, hp.orient
        # an orthonormal basis (u_r) of each hyperplane
        self._Qh = _complements(self._Nr)[0]
        self._hint = None
        self.m = self._reps.shape[0]
        # the chart a^T u = 1 and the direction g in which each bounded cell is met only
        # at its lowest vertex: fixed pseudo-random unit vectors (generic for the data)
        rng = np.random.default_rng(20261201)
        self._a, self._g = (x / np.linalg.norm(x) for x in rng.standard_normal((2, r)))
        # the cells crossing a^T u = 0: the cells of the arrangement restricted to a^perp
        Qa = _null_vector(self._a)
        eq, weq = _arrangement_cells(self._reps @ Qa, self.tol)
        self._equator = np.packbits(eq, axis=1)
        self._equator_w = weq @ Qa.T  # a point inside each (whitened coordinates)
        self.last_stats: dict = {}
        self.setup_time = time.perf_counter() - t0

    # ------------------------------------------------------------------ helpers
    def hint(self, U) -> None:
        """Directions (columns of ``U``, shape ``(d, q)``: a network's neurons) whose values,
        after a short ascent, are the first floor of the next call."""
        U = np.asarray(U, dtype=float)
        if U.ndim != 2 or U.shape[0] != self.problem.d:
            raise ValueError(f"hint needs U of shape (d={self.problem.d}, q); got {U.shape}")
        self._hint = U.copy()

    def _row_sums(self, Z):
        """``Kp, Km`` (m, c r): per hyperplane, the sum of ``z_i x_i^T`` over its rows on
        its positive and negative side; ``K0``: the rows of no hyperplane (always active,
        as in ExactOracle's patterns)."""
        ev = self._ev
        K = ev.kron(Z, ev.Xr)
        m, cr = self.m, K.shape[1]
        Kp, Km = np.zeros((m, cr)), np.zeros((m, cr))
        lab, ori = self._labels, self._orient
        pos, neg = (lab >= 0) & (ori > 0), (lab >= 0) & (ori < 0)
        np.add.at(Kp, lab[pos], K[pos])
        np.add.at(Km, lab[neg], K[neg])
        K0 = K[lab < 0].sum(axis=0)
        return Kp, Km, K0

    def _start_floor(self, Z):
        """The best value (squared) and direction (u_r) among the hinted neurons after a
        short ascent, and a few coordinate directions."""
        ev = self._ev
        r = self.rank
        starts = [np.vstack([np.eye(r), -np.eye(r)])]
        if self._hint is not None:
            Ur = (ev.basis.T @ self._hint).T
            nrm = np.linalg.norm(Ur, axis=1)
            starts.append(Ur[nrm > 0] / nrm[nrm > 0, None])
        U0 = np.vstack(starts)
        U0 = _ascent(ev.Xr, Z, U0.copy(), 60)
        vals = _relu_values(ev.Xr, Z, U0)
        j = int(np.argmax(vals))
        return float(vals[j]), U0[j]

    def _top(self, G):
        """Top eigenvalue and unit eigenvector (u_r) of ``G^T G`` for each ``G`` (q, c, k),
        and the relative gap to the next eigenvalue."""
        M = np.einsum("qck,qcl->qkl", G, G)
        lam, vec = np.linalg.eigh(M)
        top = lam[:, -1]
        gap = (top - lam[:, -2]) / np.maximum(top, 1e-300) if lam.shape[1] > 1 else np.ones_like(top)
        return top, vec[:, :, -1], gap

    def _facets(self, sides, W0):
        """The facets (a superset: (q, m) bool) of the cells with sides ``sides`` and the
        interior points ``W0`` (whitened coordinates): in the section ``w0^T w = 1`` the
        cell is a polytope around ``w0``, whose facets are the vertices of its polar, the
        convex hull of the points ``-P_i / (a_i^T w0)`` (``a_i`` the constraint normals,
        ``P_i`` their part orthogonal to ``w0``). A cell whose point is not strictly inside, or
        that qhull cannot take, is given the deepest point an LP finds (none: the sides are
        no cell, and it gets no facets); one that still fails keeps every hyperplane as a
        candidate."""
        from scipy.spatial import ConvexHull, QhullError

        from scipy.optimize import linprog

        out = np.ones((sides.shape[0], self.m), dtype=bool)
        k = self.rank
        for q in range(sides.shape[0]):
            A = sides[q][:, None] * self._reps  # the cell is A w >= 0
            for attempt in range(2):
                if attempt == 1:
                    # the deepest point of the cell in the box |w| <= 1: max s, A w >= s
                    res = linprog(np.r_[np.zeros(k), -1.0],
                                  A_ub=np.hstack([-A, np.ones((self.m, 1))]),
                                  b_ub=np.zeros(self.m), bounds=[(-1, 1)] * k + [(None, 1)],
                                  method="highs")
                    if res.status == 0 and res.x[-1] <= 0:
                        out[q] = False  # no interior: not a cell, it holds nothing
                    if res.status != 0 or res.x[-1] <= 0:
                        break
                    W0 = W0.copy()
                    W0[q] = res.x[:k]
                w0 = W0[q] / np.linalg.norm(W0[q])
                aw = A @ w0
                if not np.all(aw > 0):
                    continue
                Q = _null_vector(w0)
                pts = -(A @ Q) / aw[:, None]
                try:
                    hull = ConvexHull(pts, qhull_options="Qc")
                except (QhullError, ValueError):
                    continue
                keep = np.zeros(self.m, dtype=bool)
                keep[hull.vertices] = True
                if hull.coplanar.size:
                    keep[hull.coplanar[:, 0]] = True
                out[q] = keep
                break
        return out

    def _local_direction(self, H, sv, v):
        """A direction ``d`` orthogonal to ``v`` with ``sv_j h_j^T d > 0`` for the rows of
        ``H`` (the hyperplanes through a degenerate ray), by a linear program, and whether
        one exists (if not, that choice of sides is no cell)."""
        from scipy.optimize import linprog

        k = H.shape[1]
        res = linprog(np.zeros(k), A_ub=-(sv[:, None] * H), b_ub=-np.ones(H.shape[0]),
                      A_eq=v[None, :], b_eq=[0.0], bounds=[(None, None)] * k, method="highs")
        if res.status != 0:
            return np.zeros(k), False
        d = res.x
        return d, bool(np.all((H @ d) * sv > 0))

    def _cut(self, G, side, q, floor, smax=None):
        """Cutting planes on cells whose top vector lies outside them (forms ``G``
        (h, c, r), sides ``side`` (h, m), top vectors ``q`` (h, r)).

        A cell ``C`` lies in the cone ``K(A)`` of any set ``A`` of its constraints, so the
        maximum over ``K(A)`` bounds the cell's. That maximum is found exactly over the
        faces of ``K(A)``: for each set of at most ``r - 1`` members of ``A`` with
        independent normals, the top eigenvector of the form restricted to their common
        null space, or its negative, when it lies in ``K(A)`` (a span whose top eigenvalue
        is not simple counts at that eigenvalue). ``A`` starts as the constraint ``q``
        violates most and the one ``-q`` violates most (so neither lies in ``K(A)``), and
        grows by the constraint its maximiser violates most, until the maximum is at most
        ``floor`` (the cell is pruned), its maximiser lies in ``C`` (the cell is solved: that
        value is its maximum), or ``A`` has ``smax`` members. Each new member adds the spans
        that contain it; earlier candidates are re-tested against it.

        Returns ``(bound, U, open, solved)``: the largest value of a solved cell (squared;
        ``-inf`` if none), the solved cells' maximisers (u_r), which cells are still open,
        and each solved cell's value (``-inf`` for the others).
        """
        smax = _CUT_MAX if smax is None else smax
        h, r = q.shape
        Nr, tol = self._Nr, self.tol
        rows = np.arange(h)
        st = side * (q @ Nr.T)
        A = [np.argmin(st, axis=1), np.argmax(st, axis=1)]  # (h,) constraint indices
        cu, cv, cf = [], [], []  # candidates: vectors, values, feasible in K(A)
        bound, found = -np.inf, []
        open_ = np.ones(h, dtype=bool)
        solved = np.full(h, -np.inf)
        for size_a in range(2, smax + 1):
            new = size_a - 1  # the member just added (for size 2: both are new)
            live = np.flatnonzero(open_)
            # the members' normals on the open cells, cell side included: (l, size_a, r)
            Aidx = np.stack([a[live] for a in A], axis=1)
            Nl = side[live[:, None], Aidx][:, :, None] * Nr[Aidx]
            if size_a > 2:  # earlier candidates: re-test against the new member
                nn = Nl[:, new]
                for k in range(len(cu)):
                    ul = cu[k][live]
                    cf[k][live] &= np.einsum("lr,lr->l", ul, nn) >= -tol * np.linalg.norm(ul, axis=1)
            subs = [sub for k in range(1, min(size_a, r - 1) + 1)
                    for sub in itertools.combinations(range(size_a), k)
                    if new in sub or size_a == 2]
            Gl = G[live]
            for sub in subs:
                k = len(sub)
                # an orthonormal basis of the span's null space: the last r - k columns of
                # the complete QR of the k normals
                if k == 1:
                    B, ok = _complements(Nl[:, sub[0]])
                elif k == r - 1:
                    v, ok = _null_vectors(Nl[:, list(sub)] / np.linalg.norm(
                        Nl[:, list(sub)], axis=2, keepdims=True))
                    B = v[:, :, None]
                else:
                    Qf, R = np.linalg.qr(np.transpose(Nl[:, list(sub)], (0, 2, 1)), mode="complete")
                    dg = np.abs(np.diagonal(R, axis1=1, axis2=2))
                    ok = dg.min(axis=1) > 1e-12 * dg.max(axis=1)
                    B = Qf[:, :, k:]  # (l, r, r - k)
                GB = np.einsum("lck,lkj->lcj", Gl, B)
                if r - k == 1:
                    top = np.einsum("lc,lc->l", GB[:, :, 0], GB[:, :, 0])
                    u = B[:, :, 0]
                    amb = np.zeros(live.size, dtype=bool)
                else:
                    top, e, gap = self._top(GB)
                    u = np.einsum("lkj,lj->lk", B, e)
                    amb = gap <= _EIGGAP
                val = np.full(h, -np.inf)
                val[live] = np.where(ok, top, -np.inf)
                proj = np.einsum("lsr,lr->ls", Nl, u)  # every member's normal at u
                thr = tol * np.linalg.norm(u, axis=1, keepdims=True)
                for sgn in (1.0, -1.0):
                    U = np.zeros((h, r))
                    U[live] = sgn * u
                    feas = np.zeros(h, dtype=bool)
                    feas[live] = np.all(sgn * proj >= -thr, axis=1) | amb
                    cu.append(U)
                    cv.append(val)
                    cf.append(feas)
            V = np.where(np.stack(cf), np.stack(cv), -np.inf)  # (ncand, h)
            best = np.argmax(V, axis=0)
            Bv = V[best, rows]
            Us = np.stack(cu)[best, rows]  # (h, r)
            open_ &= ~(Bv <= floor)
            if not np.any(open_):
                break
            li = np.flatnonzero(open_)
            t = side[li] * (Us[li] @ Nr.T)
            slack = tol * np.linalg.norm(Us[li] @ self._M.T, axis=1, keepdims=True)
            inside = np.all(t >= -slack, axis=1)
            if np.any(inside):
                bound = max(bound, float(Bv[li[inside]].max()))
                found.append(Us[li[inside]])
                open_[li[inside]] = False
                solved[li[inside]] = Bv[li[inside]]
            li = li[~inside]
            if li.size == 0 or size_a == smax:
                break
            nxt = A[0].copy()
            nxt[li] = np.argmin(t[~inside], axis=1)
            A.append(nxt)
        U = np.concatenate(found) if found else np.zeros((0, r))
        return bound, U, open_, solved

    def _wedge(self, G, q, side):
        """An upper bound (squared) on each cell's maximum from two of its constraints:
        one that its top eigenvector ``q`` violates most and one that ``-q`` violates
        most. The cell lies in the wedge of the two, whose maximum is on one of its two
        hyperplanes, where the top eigenvalue of the restricted form bounds it."""
        st = side * (q @ self._Nr.T)  # (h, m): q is inside where all are >= 0
        a = np.argmin(st, axis=1)
        b = np.argmax(st, axis=1)  # -q violates the constraint q satisfies most
        out = np.zeros(q.shape[0])
        for idx in (a, b):
            Q = self._Qh[idx]  # (h, r, r-1)
            out = np.maximum(out, _top_value(np.einsum("hck,hkj->hcj", G, Q)))
        return out

    def _inside(self, q, side):
        """Whether each row of ``q`` (u_r) lies (within ``tol``) in the closed cell with
        sides ``side`` (+1/-1 per hyperplane), and whether ``-q`` does."""
        t = q @ self._Nr.T  # (q, m)
        slack = self.tol * np.linalg.norm(q @ self._M.T, axis=1, keepdims=True)
        st = side * t
        return np.all(st >= -slack, axis=1), np.all(st <= slack, axis=1)

    # ------------------------------------------------------------------ the call
    def __call__(self, Z) -> OracleResult:
        Z = self._ev.check_Z(Z)
        # scaled by a power of two (exact) so that the rows that add to Omega are of order
        # one: squared values neither overflow nor underflow (contribution_scale)
        e, Zs = contribution_scale(Z, self._ev.X)
        return unscale_result(self._call(Zs), e)

    def _call(self, Z) -> OracleResult:
        t0 = time.perf_counter()
        ev = self._ev
        c, r, m = Z.shape[1], self.rank, self.m
        p = r - 1
        Kp, Km, K0 = self._row_sums(Z)
        Ksum = Kp + Km
        Kall = Ksum.sum(axis=0)
        KpKm = np.vstack([Kp, Km])
        deadline = None if self.time_limit is None else t0 + self.time_limit
        floor, best_u = self._start_floor(Z)
        bound = floor
        hot: list = []  # (top values, sides, interior points) of cells left for their faces
        degenerate: dict[bytes, np.ndarray] = {}
        sig = np.array(list(itertools.product([1.0, 0.0], repeat=p)))  # (2^p, p), 1: + side
        stats = dict(rays=0, degenerate=0, ambiguous=0, cells=0, hot=0, faces=0, wedge_pruned=0,
                     cut=0)
        reps, tol = self._reps, self.tol

        def forms(sides):
            """The forms ``Z^T D X_r`` (flattened) of cells given by their sides."""
            return (sides > 0).astype(float) @ Kp + (sides < 0).astype(float) @ Km + K0

        def raise_floor(U):
            """Evaluate candidate directions ``U`` (u_r) and raise the floor to the best."""
            nonlocal floor, best_u
            if U.shape[0]:
                vals = _relu_values(ev.Xr, Z, U)
                j = int(np.argmax(vals))
                if vals[j] > floor:
                    floor, best_u = float(vals[j]), U[j]

        def flush():
            """Solve the hot cells kept so far face by face (their facets from qhull)."""
            nonlocal bound
            if not hot:
                return
            top = np.concatenate([h[0] for h in hot])
            keep = top > floor
            sides = np.concatenate([h[1] for h in hot])[keep]
            W0 = np.concatenate([h[2] for h in hot])[keep]
            hot.clear()
            if sides.shape[0] == 0:
                return
            stats["hot"] += sides.shape[0]
            for st in range(0, sides.shape[0], 32):  # a few cells at a time: bounded memory
                sd = sides[st: st + 32]
                F = self._facets(sd, W0[st: st + 32])
                stats["facets_max"] = max(stats.get("facets_max", 0), int(F.sum(axis=1).max()))
                b, U, nf = self._faces(forms(sd).reshape(-1, c, r), sd, F, floor)
                stats["faces"] += nf
                bound = max(bound, b)
                raise_floor(U)

        def cells(G, side_of, point_of):
            """Process cell forms ``G`` (q, c r); ``side_of(idx)`` gives the sides (+-1,
            (len(idx), m)) of cells ``idx``, ``point_of(idx)`` a point inside each
            (whitened coordinates) and whether the cell is one (False: an empty choice of
            sides at a degenerate ray, which holds nothing)."""
            nonlocal bound
            stats["cells"] += G.shape[0]
            pre = np.flatnonzero(np.einsum("qk,qk->q", G, G) > floor)
            if pre.size == 0:
                return
            Gq = G[pre].reshape(-1, c, r)
            sel = np.flatnonzero(_top_value(Gq) > floor)
            if sel.size == 0:
                return
            top, vec, _ = self._top(Gq[sel])
            idx = pre[sel]
            side = side_of(idx)
            in_p, in_m = self._inside(vec, side)
            ok = in_p | in_m
            if np.any(ok):
                bound = max(bound, float(top[ok].max()))
                raise_floor(np.concatenate([vec[in_p], -vec[in_m]]))
            if np.any(~ok):
                hidx = np.flatnonzero(~ok)
                wb = self._wedge(Gq[sel][hidx], vec[hidx], side[hidx])
                stats["wedge_pruned"] += int(np.sum(wb <= floor))
                hidx = hidx[wb > floor]
                if hidx.size:
                    b, Uc, still, _ = self._cut(Gq[sel][hidx], side[hidx], vec[hidx], floor)
                    stats["cut"] += hidx.size - int(np.sum(still))
                    bound = max(bound, b)
                    raise_floor(Uc)
                    hidx = hidx[still]
                if hidx.size:
                    W0, real = point_of(idx[hidx])
                    hidx, W0 = hidx[real], W0[real]
                    hot.append((top[hidx], side[hidx], W0))
                    if sum(h[0].size for h in hot) >= _HOT_BATCH:
                        flush()

        def emit(S, t, tight, ray, sgn, bits, v):
            """The cells at rays ``v`` (rows of ``t = v @ reps.T``; ``S`` (N, s): the
            hyperplanes through each, ``tight`` their mask): cell ``q`` is at
            ``sgn[q] * v[ray[q]]`` with the hyperplanes of ``S`` on the sides ``bits[q]``
            (1: positive)."""
            Bp = (t > 0) & ~tight
            Bn = (t < 0) & ~tight
            Gp = np.hstack([Bp, Bn]).astype(float) @ KpKm  # at +v, S off
            Gm = Kall - Ksum[S].sum(axis=1) - Gp  # at -v, S off
            base = Km[S].sum(axis=1) + K0  # S all on the negative side
            D = Kp[S] - Km[S]  # (N, s, cr)
            G = np.where((sgn > 0)[:, None], Gp[ray], Gm[ray]) + base[ray] \
                + np.einsum("qs,qsk->qk", bits, D[ray])
            sides = np.where(t > 0, 1.0, -1.0)

            def side_of(idx):
                out = sides[ray[idx]] * sgn[idx, None]
                out[np.arange(idx.size)[:, None], S[ray[idx]]] = np.where(bits[idx] > 0, 1.0, -1.0)
                return out

            def point_of(idx):
                rr = ray[idx]
                sv = 2.0 * bits[idx] - 1.0  # (q, s): the sides wanted for S
                H = reps[S[rr]]  # (q, s, r)
                d = np.einsum("qks,qs->qk", np.linalg.pinv(H), sv)
                real = np.all(np.einsum("qsk,qk->qs", H, d) * sv > 0, axis=1)
                for q in np.flatnonzero(~real):  # more hyperplanes than k - 1: an LP
                    d[q], real[q] = self._local_direction(H[q], sv[q], v[rr[q]])
                base = sgn[idx, None] * v[rr]
                tt, hw = base @ reps.T, d @ reps.T
                ti = tight[rr]
                eps = _ray_epsilon(np.where(ti, np.inf, tt), np.where(ti, 0.0, hw))
                w = base + eps[:, None] * d
                return w / np.linalg.norm(w, axis=1, keepdims=True), real

            cells(G, side_of, point_of)

        stopped = None
        total = math.comb(m, p)
        # rays (and equator cells) per block: at most chunk, about 4M entries per (block, m)
        block = min(self.chunk, max(64, (4 << 20) // max(m, 1)))
        last_print = t0

        def tick():
            """The time limit, and a progress line every 2 s when ``verbose``."""
            nonlocal last_print
            now = time.perf_counter()
            if deadline is not None and now > deadline:
                raise _Stop
            if self.verbose and now - last_print > 2.0:
                last_print = now
                print(f"  stream: {stats['rays']:>11,d} of {total:,d} rays, "
                      f"{stats['cells']:>11,d} cells, Omega >= {np.sqrt(max(floor, 0.0)):.10g}, "
                      f"{now - t0:.1f} s", file=sys.stderr, flush=True)

        try:
            for S in _subsets(m, p, block):
                tick()
                v, indep = _null_vectors(reps[S])
                S, v = S[indep], v[indep]
                N = S.shape[0]
                if N == 0:
                    continue
                stats["rays"] += N
                t = v @ reps.T  # (N, m)
                rows = np.arange(N)[:, None]
                tight = np.abs(t) <= tol
                tight[rows, S] = True
                nt = tight.sum(axis=1)
                gen = nt == p
                for i in np.flatnonzero(~gen):
                    key = np.packbits(tight[i]).tobytes()
                    if key not in degenerate:
                        degenerate[key] = v[i]
                if not np.any(gen):
                    continue
                S, t, tight, v = S[gen], t[gen], tight[gen], v[gen]
                N = S.shape[0]
                # orient each ray into the chart's hemisphere a^T u > 0
                alpha = v @ self._a
                flip = alpha < 0
                v[flip], t[flip], alpha[flip] = -v[flip], -t[flip], -alpha[flip]
                # the edges of the chart a^T u = 1 at v: column l of inv([h_S; a]) leaves the
                # hyperplanes of S but l, on l's positive side
                E = np.linalg.inv(np.concatenate([reps[S], np.broadcast_to(self._a, (N, 1, r))],
                                                 axis=1))[:, :, :p]
                gE = np.einsum("k,nkp->np", self._g, E)
                amb = (alpha <= _CHART_TIE) | np.any(
                    np.abs(gE) <= _CHART_TIE * np.linalg.norm(E, axis=1), axis=1)
                # the cell whose lowest vertex (in g, in the chart) is v: every edge rises;
                # and its mirror image at -v. Rays too close to a tie take every choice.
                one = np.flatnonzero(~amb)
                low = (gE[one] > 0).astype(float)
                namb = int(np.sum(amb))
                stats["ambiguous"] += namb
                ray = np.concatenate([one, one, np.repeat(np.flatnonzero(amb), 2 * sig.shape[0])])
                bits = np.concatenate([low, 1.0 - low, np.tile(sig, (2 * namb, 1))])
                sgn = np.concatenate([np.ones(one.size), -np.ones(one.size),
                                      np.tile(np.repeat([1.0, -1.0], sig.shape[0]), namb)])
                emit(S, t, tight, ray, sgn, bits, v)

            # rays with more hyperplanes than k - 1: every choice of side for up to
            # _ALL_SIDES of them (choices that are no cell are empty sets: harmless), the
            # local arrangement's cells beyond that
            stats["degenerate"] = len(degenerate)
            by_size: dict[int, list] = {}
            for v in degenerate.values():
                t = reps @ v
                tmask = np.abs(t) <= tol
                T = np.flatnonzero(tmask)
                if T.size <= _ALL_SIDES:
                    by_size.setdefault(T.size, []).append((T, t, tmask, v))
                    continue
                Q = _null_vector(v)
                loc, lw = _arrangement_cells(reps[T] @ Q, tol)  # (L, |T|): True = + side
                L = loc.shape[0]
                sides = np.empty((2 * L, m))
                sides[:L] = np.where(t > 0, 1.0, -1.0)
                sides[L:] = -sides[:L]
                sides[:, T] = np.tile(np.where(loc, 1.0, -1.0), (2, 1))
                d = np.tile(lw @ Q.T, (2, 1))
                base = np.concatenate([np.tile(v, (L, 1)), np.tile(-v, (L, 1))])
                eps = _ray_epsilon(np.where(tmask, np.inf, base @ reps.T),
                                   np.where(tmask, 0.0, d @ reps.T))
                pts = base + eps[:, None] * d
                pts /= np.linalg.norm(pts, axis=1, keepdims=True)
                Gs = forms(sides)
                cells(Gs, lambda idx, sides=sides: sides[idx],
                      lambda idx, pts=pts: (pts[idx], np.ones(idx.size, dtype=bool)))
            for size, group in by_size.items():
                sig_s = np.array(list(itertools.product([1.0, 0.0], repeat=size)))
                per = max(1, self.chunk // (2 * sig_s.shape[0]))
                for st in range(0, len(group), per):
                    part = group[st: st + per]
                    T = np.stack([g[0] for g in part])
                    t = np.stack([g[1] for g in part])
                    tight = np.stack([g[2] for g in part])
                    N = T.shape[0]
                    ray = np.repeat(np.arange(N), 2 * sig_s.shape[0])
                    sgn = np.tile(np.repeat([1.0, -1.0], sig_s.shape[0]), N)
                    emit(T, t, tight, ray, sgn, np.tile(sig_s, (2 * N, 1)),
                         np.stack([g[3] for g in part]))

            # the cells that cross the chart's equator a^T u = 0 (unbounded in the chart)
            if self._equator.shape[0]:
                eq = np.unpackbits(self._equator, axis=1, count=m).astype(bool)
                for st in range(0, eq.shape[0], block):
                    tick()
                    sides = np.where(eq[st: st + block], 1.0, -1.0)
                    Gs = forms(sides)
                    W0 = self._equator_w[st: st + block]
                    cells(Gs, lambda idx, sides=sides: sides[idx],
                          lambda idx, W0=W0: (W0[idx], np.ones(idx.size, dtype=bool)))
            flush()
        except KeyboardInterrupt:
            stopped = "interrupted"
        except _Stop:
            stopped = "time limit"
        if best_u is None or floor <= 0:
            u = np.eye(ev.X.shape[1])[0]
        else:
            u = ev.to_original(best_u)
        attained = float(np.linalg.norm(Z.T @ np.maximum(ev.X @ u, 0.0)))
        margin = ev.rounding(Z) + ev.margin(Z)  # of the scaled Z: scaled back with the value
        stats["seconds"] = time.perf_counter() - t0
        stats["stopped"] = stopped or "complete"
        self.last_stats = stats
        logger.debug("StreamingExactOracle: %s", stats)
        if stopped is not None:
            # the cells not visited could hold anything up to the spectral bound
            value = max(spectral_bound(Z, spectral_norm(ev.X)), attained)
            return OracleResult(value, u, attained, "upper_bound", "exact", None,
                                time.perf_counter() - t0, 0.0,
                                source=f"streamed enumeration ({stopped}: the spectral bound)")
        value = max(float(np.sqrt(max(bound, floor, 0.0))) + margin, attained)
        return OracleResult(value, u, attained, "exact", "exact", None,
                            time.perf_counter() - t0, margin, source="streamed enumeration")

    def _faces(self, G, sides, F, floor):
        """Largest value over the faces of the hot cells (forms ``G`` (h, c, r), sides
        ``sides`` (h, m), candidate facets ``F`` (h, m) bool), level by level.

        A face span ``null(A)`` (``A`` a set of independent facets) is solved by its
        restricted top eigenvector; its sub-spans ``null(A + {j})`` (``j`` after the last
        of ``A``, so that each set is met once, from its prefix) are visited only when
        that value is above ``floor`` and its vector lies outside the cell: a sub-span's
        value is at most its span's, and a vector inside the cell is that span's maximum
        over the cell. Returns ``(bound, U, count)``: the largest value counted (squared),
        the candidates found inside their cells (u_r) and the number of spans solved.
        """
        r, m = self.rank, self.m
        Nr = self._Nr
        best, count, found = -np.inf, 0, []
        # frontier: (cell index, facet set as an (q, size) array)
        cell = np.arange(G.shape[0])
        A = np.zeros((cell.size, 0), dtype=np.int64)
        for size in range(1, r):
            # children: one more facet, after the last one of the set
            last = A[:, -1] if size > 1 else np.full(cell.size, -1)
            allowed = F[cell] & (np.arange(m)[None, :] > last[:, None])
            par, j = np.nonzero(allowed)
            if par.size == 0:
                break
            cell, A = cell[par], np.hstack([A[par], j[:, None]])
            H = Nr[A]  # (q, size, r)
            _, sv, Vt = np.linalg.svd(H)
            ok = sv[:, -1] > 1e-12 * sv[:, 0]
            cell, A, Vt = cell[ok], A[ok], Vt[ok]
            if cell.size == 0:
                break
            Q = np.transpose(Vt[:, size:, :], (0, 2, 1))  # (q, r, r - size): the span
            count += cell.size
            GQ = np.einsum("qck,qkj->qcj", G[cell], Q)
            if r - size == 1:
                top = np.einsum("qc,qc->q", GQ[:, :, 0], GQ[:, :, 0])
                vec = Q[:, :, 0]
                gap = np.ones_like(top)
            else:
                top, e, gap = self._top(GQ)
                vec = np.einsum("qkj,qj->qk", Q, e)
            in_p, in_m = self._inside(vec, sides[cell])
            amb = gap <= _EIGGAP
            counted = (in_p | in_m | amb) & (top > floor)
            if np.any(counted):
                best = max(best, float(top[counted].max()))
            found.append(np.concatenate([vec[in_p & (top > floor)], -vec[in_m & (top > floor)]]))
            go = (top > floor) & ~(in_p | in_m | amb)
            cell, A = cell[go], A[go]
            if cell.size == 0:
                break
        U = np.concatenate(found) if found else np.zeros((0, r))
        return best, U, count
