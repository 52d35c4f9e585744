r"""Branch and bound on the oracle: a proven upper bound on :math:`\Omega(Z)` at any rank
(``kind="upper_bound"``), exact to a relative tolerance when it closes.

The unit sphere of the rank-reduced directions :math:`u \in \mathbb{R}^r` is the radial
image of the surface of the cube :math:`[-1, 1]^r`. A *region* is an axis-aligned box on
one of its :math:`2r` faces: points :math:`p = c + \delta`, :math:`|\delta_j| \le h_j`
(:math:`h = 0` on the face's axis, so :math:`\|p\| \ge 1`), directions
:math:`u = p / \|p\|`. Over a region the oracle bounds

.. math::

    f(u) = \|Z^\top (X_r u)_+\|

from above as follows.

* **Rows of fixed sign.** The range of :math:`x_i^\top p` over the box is exact interval
  arithmetic, :math:`x_i^\top c \pm |x_i|^\top h`; rows positive on the whole box
  contribute :math:`z_i x_i^\top u` exactly, rows negative on it contribute nothing.
* **Rows that change sign, relaxed.** With :math:`t = x_i^\top u \in [l, h]`,
  :math:`l < 0 < h`, :math:`(t)_+ = \alpha t + e` with :math:`\alpha = h / (h - l)` and
  :math:`0 \le e \le \alpha |l|` (the chord and its parallel through 0). The relaxed
  rows enter the linear part with weight :math:`\alpha` and add at most
  :math:`\sum \|z_i\| \alpha_i |l_i|` to the norm.
* **Rows that change sign, split.** The ``split`` rows with the largest relaxation error
  are not relaxed: every sign assignment :math:`\sigma` of them is a case in which the
  region's value is :math:`\|M_\sigma u\|` exactly, on the part of the region where
  :math:`\sigma_i x_i^\top u \ge 0`.
* **The quadratic over a cap.** The region lies in the cap of angle :math:`\theta` around
  :math:`u_0 = c / \|c\|`. Writing :math:`u = \cos\varphi\, u_0 + \sin\varphi\, e`
  (:math:`e \perp u_0` unit, :math:`\varphi \le \theta`), for :math:`Q = M^\top M` and any
  multipliers :math:`\nu \ge 0` of the split rows' sign constraints (valid because
  :math:`\sigma_i x_i^\top u \ge 0` in the case, :math:`\ell = \sum \nu_i \sigma_i x_i`),

  .. math::

      u^\top Q u \le u^\top Q u + \ell^\top u \le a + (\lambda - a)_+ \sin^2\theta
      + S \sin\theta + \ell_0^{\pm} + 2\|g\| (1 - \cos\theta) \sin\theta,

  with :math:`a = u_0^\top Q u_0`, :math:`g = (I - u_0 u_0^\top) Q u_0`,
  :math:`S = \|2g + (I - u_0u_0^\top)\ell\|`, :math:`\lambda = \lambda_{\max}(Q)`,
  :math:`\ell_0 = \ell^\top u_0` (times :math:`\cos\theta` when negative). The
  multipliers are chosen (non-negative least squares) to cancel the tangent gradient:
  at a maximiser on a kink (the sign boundary of a row, where the maximum of the convex
  programme's oracle often lies) they are its KKT multipliers, so the bound is exact to
  second order in :math:`\theta` there too, and regions shrink geometrically around the
  maximisers instead of linearly.

* **The corners** (ranks up to :data:`CORNER_MAX_RANK`, on regions whose bound above is
  within :data:`CORNER_RATIO` of being dropped): for a unit ``v`` in output space,
  :math:`v^\top Z^\top (X_r p)_+` is at most a convex, positively homogeneous function of
  ``p`` (sign-changing rows with :math:`z_i^\top v \ge 0` kept exactly, the others
  linearised by :math:`(t)_+ \ge \lambda t`), whose maximum over the region's slice is at
  a corner; one more row is taken exactly by cutting the slice along its hyperplane. With
  an orthonormal basis of the output space, :math:`\|y\|^2` is at most the sum of the
  squared bounds of its coordinates (:meth:`BranchAndBoundOracle._corner_bound`). Unlike
  the chord relaxation, it does not assume every sign-changing row at its worst at once.
  The smaller of the two bounds is used.

* **Exact leaves.** A region crossed by few rows (``2**k`` sign cases times the face
  spans of its cone at most ``exact_leaves``) is not bounded but solved: for every case
  the maximum of :math:`\|M_\sigma u\|` over the case's polyhedral cone, face by face
  (:meth:`BranchAndBoundOracle._exact_regions`). A solved region whose maximiser attains
  its value leaves the search, its value counted like a dropped region's bound. Near an
  optimum, where the maximisers sit on kinks and the bounds above fall only
  geometrically with the regions' width, this is what lets the search close to a tight
  ``rtol``, down to the 1e-9 to which a solved region's maximiser is accepted (iris at
  0.01 lambda_max, rtol 1e-9: about a second with it; at rtol 1e-10 the search without
  it was still open after a million regions).

Regions are refined best first (largest bound first, in batches), each split in two
across the side with the largest :math:`h_j \|X_r e_j\|`; a region is dropped once its
bound is at most ``max(lower * (1 + rtol), target)``. The lower bound is the best value
attained: at every region's centre, by ascent on the sphere from the most promising
centres, and from the directions given by :meth:`hint` (a solver's neurons). The value
returned is the largest bound of any region dropped or left open, plus an explicit
margin for rounding (reported in ``margin``), never less than the attained value; it is
a proven upper bound whether or not the search closed, and within ``rtol`` of
:math:`\Omega(Z)` (``kind="exact"`` on the result) when it did.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from ..kernels import spectral_norm
from ._common import _ascent, _Evaluator, _relu_values, contribution_scale
from .base import OracleBase, OracleResult, in_memory_problem
from .spectral import spectral_bound

__all__ = ["BranchAndBoundOracle"]

#: The corner bound (see :meth:`BranchAndBoundOracle._corner_bound`) is used up to this
#: rank: it evaluates each region at its ``2**(r-1)`` corners.
CORNER_MAX_RANK = 10
#: The corner bound is tried on regions whose chord bound is at most this times the level
#: below which regions are dropped.
CORNER_RATIO = 1.1
#: Entries (sign-changing rows x corners) evaluated at once by the corner bound.
_CORNER_CHUNK = 1 << 22


def _pow2_exponent(A) -> int:
    """``k`` with ``2**k * max|A|`` in [0.5, 1) (0 for a zero or empty ``A``)."""
    m = float(np.max(np.abs(A))) if A.size else 0.0
    return 0 if m == 0.0 or not np.isfinite(m) else -int(np.frexp(m)[1])


def _csr(data, rows, cols, Q, n):
    """A CSR matrix from entries whose ``rows`` are sorted (no COO conversion)."""
    from scipy.sparse import csr_matrix

    indptr = np.zeros(Q + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=Q), out=indptr[1:])
    return csr_matrix((data, cols, indptr), shape=(Q, n))


#: Default work allowed per region solved exactly (``exact_leaves``): sign cases times the
#: face spans of its cone. A solve costs about 3 us per unit at rank 4 and 10 us at rank 6
#: against 30-60 us for a region's bound, so only the cheapest regions are solved: up to
#: 5 crossing rows at rank 2, 3 at rank 3, 2 at rank 4, none at rank 5 (only regions no
#: row crosses) and no region above rank 5.
EXACT_LEAF_WORK = 400
#: Entries (pairs of a region's case and a face span) handled at once by the exact solve.
_EXACT_CHUNK = 1 << 16


def _box_sides(r: int) -> int:
    """Constraints of a region's cone from its box: two per axis other than the face's
    (one, the face's sign, at rank 1)."""
    return 2 * (r - 1) if r > 1 else 1


def _spans(L: int, r: int) -> int:
    """Face spans of a cone of ``L`` constraints in R^r: subsets of at most r - 1."""
    return sum(math.comb(L, j) for j in range(min(L, r - 1) + 1))


class BranchAndBoundOracle(OracleBase):
    r"""Branch and bound over regions of directions: a proven upper bound on
    :math:`\Omega(Z)` at any rank, within ``rtol`` of it when the search closes.

    Parameters
    ----------
    X : array of shape (n, d) or Problem
    rtol : float, default 1e-6
        The search stops when the largest bound is within ``rtol`` (relative) of the
        best value attained; the result's ``kind`` is then ``"exact"``.
    time_limit : float, default 60
        Seconds per call; at the limit the best proven bound so far is returned
        (``kind="upper_bound"``).
    max_regions : int, default 20_000_000
        Regions evaluated per call (another budget).
    max_open : int, default 2_000_000
        Regions kept open at once; beyond it (or beyond ``max_memory``) the search stops
        with the bound reached.
    split : int, default 2
        Rows that change sign in a region handled by cases (``2**split`` cases per
        region) instead of by the linear relaxation.
    batch : int, default 4096
        Regions refined per step.
    target : float, optional
        Regions whose bound is at most ``target`` need no refinement: a caller that only
        needs to know whether :math:`\Omega(Z) \le` ``target`` (a certificate at
        ``beta``) sets it, and the search stops as soon as every region is below it (the
        value returned is then a proven bound at most ``target``, not necessarily within
        ``rtol`` of :math:`\Omega`). Also settable between calls as an attribute.
    stop_above : float, optional
        With ``target`` set, stop as soon as a direction attaining more than
        ``target * (1 + stop_above)`` is found (a solver's column generation needs only
        that direction, and such a network cannot be certified at ``target``; the value
        is still a proven, looser, bound). Default: never.

    max_memory : float, default 1e9
        Bytes the open regions may hold (each keeps its box, its rows' partial sum
        :math:`Z^\top D X_r` and a bit per row: ``8 (2r + cr + 2) + n/8`` bytes).
    coarse_rtol : float, default 1e-3
        Once a direction attaining more than ``target * (1 + coarse_rtol)`` is found (the
        network cannot be certified at ``target``), :math:`\Omega` is needed only to this
        relative accuracy (how far from optimal the network stands), not to ``rtol``.
    corners : int, optional
        The corner bound is used when the rank is at most ``corners`` (it evaluates
        :math:`2^{r-1}` corners per region). Default :data:`CORNER_MAX_RANK`; 0 switches
        it off.
    exact_leaves : int, default :data:`EXACT_LEAF_WORK`
        A region crossed by few rows is solved exactly instead of being split further
        (:meth:`BranchAndBoundOracle._exact_regions`) when its ``2**k`` sign cases times
        the face spans of its cone are at most this; 0 switches it off.
    verbose : int, default 0
        Above 0, a progress line every 2 s on the terminal.

    Attributes
    ----------
    last_stats : dict
        Of the last call: ``regions`` (evaluated), ``open`` (left open), ``rounds``,
        ``closed`` (bool), ``stopped`` (why), ``lower``, ``upper``, ``exact`` (regions
        solved exactly).
    """

    kind = "upper_bound"

    def __init__(self, X, *, rtol: float = 1e-6, time_limit: float = 60.0,
                 max_regions: int = 20_000_000, max_open: int = 2_000_000, split: int = 2,
                 batch: int = 4096, target: float | None = None,
                 stop_above: float | None = None, coarse_rtol: float = 1e-3,
                 max_memory: float = 1e9, corners: int | None = None,
                 exact_leaves: int = EXACT_LEAF_WORK, verbose: int = 0):
        self.problem = prob = in_memory_problem(X, "branch and bound")
        if not (np.isfinite(rtol) and rtol >= 0):
            raise ValueError(f"rtol must be a finite number >= 0; got {rtol!r}")
        if not (np.isfinite(time_limit) and time_limit > 0):
            raise ValueError(f"time_limit must be a positive number of seconds; got {time_limit!r}")
        for name, v, lo in (("max_regions", max_regions, 1), ("max_open", max_open, 1),
                            ("split", split, 0), ("batch", batch, 1)):
            if not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}; got {v!r}")
        if split > 6:
            raise ValueError(f"split must be at most 6 (2**split cases per region); got {split}")
        self.rtol, self.time_limit = float(rtol), float(time_limit)
        self.max_regions, self.max_open = int(max_regions), int(max_open)
        self.split, self.batch = int(split), int(batch)
        if stop_above is not None and not (np.isfinite(stop_above) and stop_above >= 0):
            raise ValueError(f"stop_above must be None or a finite number >= 0; got {stop_above!r}")
        if not (np.isfinite(coarse_rtol) and coarse_rtol >= 0):
            raise ValueError(f"coarse_rtol must be a finite number >= 0; got {coarse_rtol!r}")
        self.target, self.stop_above, self.verbose = target, stop_above, int(verbose)
        self.coarse_rtol = float(coarse_rtol)
        if not (np.isfinite(max_memory) and max_memory > 0):
            raise ValueError(f"max_memory must be a positive number of bytes; got {max_memory!r}")
        self.max_memory = float(max_memory)
        if corners is not None and (not isinstance(corners, (int, np.integer)) or corners < 0):
            raise ValueError(f"corners must be None or an integer >= 0; got {corners!r}")
        if not isinstance(exact_leaves, (int, np.integer)) or exact_leaves < 0:
            raise ValueError(f"exact_leaves must be an integer >= 0; got {exact_leaves!r}")
        self.exact_leaves = int(exact_leaves)
        self._ev = _Evaluator(prob)
        Xr = self._ev.Xr
        # the search runs on X_r and Z scaled by powers of two (exact; Omega scales with
        # both) to entries of order one: squares of products then neither underflow nor
        # overflow, whatever the data's scale
        self._kx = _pow2_exponent(Xr)
        Xr = np.ldexp(Xr, self._kx)
        self._Xr, self._absX = Xr, np.abs(Xr)
        self._xn = np.linalg.norm(Xr, axis=1)  # row norms of the (scaled) X_r
        self._colw = np.linalg.norm(Xr, axis=0)
        self._xnorm = spectral_norm(Xr) if Xr.size else 0.0
        self._hints = np.zeros((0, Xr.shape[1]))
        r = Xr.shape[1]
        if corners is None:
            corners = CORNER_MAX_RANK
        #: the corner bound runs when the rank is at most ``corners`` (2**(r-1) corners)
        self.corners = int(corners)
        self._use_corners = 1 <= r <= self.corners
        self._corner_floor = -np.inf  # set by the search: regions below it are dropped
        if self._use_corners:
            self._signs = 1.0 - 2.0 * ((np.arange(2 ** (r - 1))[:, None]
                                        >> np.arange(r - 1)[None, :]) & 1)  # (K, r-1)
            # per face axis a: the corner signs as an (r, K) matrix, a row of ones at a
            sba = np.zeros((r, r, 2 ** (r - 1)))
            for a in range(r):
                sba[a, np.arange(r) != a] = self._signs.T
                sba[a, a] = 1.0  # the axis coordinate carries x_i^T c
            self._signs_by_axis = sba
            ks = np.arange(2 ** (r - 1))
            ea = np.concatenate([ks[(ks >> j) & 1 == 0] for j in range(r - 1)] or [ks[:0]])
            eb = np.concatenate([ks[(ks >> j) & 1 == 0] | (1 << j) for j in range(r - 1)]
                                or [ks[:0]])
            self._edges = (ea, eb)  # the corners at the two ends of each edge of the box
        self._cands = None
        self.n_candidates = 20
        self.last_stats: dict = {}

    # -- the solver-facing members -------------------------------------------------------
    def hint(self, U) -> None:
        """Directions (columns of ``U``, shape ``(d, m)``) to start the lower bound from."""
        U = np.asarray(U, dtype=float)
        if U.ndim != 2 or U.shape[0] != self.problem.d or U.shape[1] == 0:
            self._hints = np.zeros((0, self._Xr.shape[1]))
            return
        self._hints = (self._ev.basis.T @ U).T

    def candidates(self, Z, threshold: float, kmax: int = 50):
        """Violating directions of the last call on this ``Z`` (best first, pairwise apart,
        each attaining more than ``threshold``); for another ``Z``, those of a new call."""
        Z2 = self._ev.check_Z(Z)
        if self._cands is None or self._cands[0].shape != Z2.shape or \
                not np.array_equal(self._cands[0], Z2):
            self(Z2)
        _, vals, Uc = self._cands
        keep_v, keep_u = [], []
        for v, u in zip(vals, Uc):
            if v <= threshold or len(keep_u) >= kmax:
                break
            if all(float(u @ w) < 1.0 - 1e-6 for w in keep_u):
                keep_v.append(v)
                keep_u.append(u)
        if not keep_u:
            return np.zeros(0), np.zeros((0, self.problem.d))
        U = np.array([self._ev.to_original(u) for u in keep_u])
        return np.array(keep_v), U

    # -- bounds on a batch of regions ------------------------------------------------------
    def _bound(self, Z, K, zn, C, H, Ma, Ub):
        """Upper bounds on :math:`f` over the regions ``(C, H)`` and the value at each
        centre, from their parents' state: ``Ma`` (Q, c, r), :math:`Z^\top D X_r` over the
        rows positive on the whole parent, and ``Ub`` (Q, ceil(n/8)), the packed mask of
        the rows whose sign changes on the parent (rows of fixed sign on a region keep it
        on its children, so only these are looked at). Returns ``(ub, val, Ma, Ub)``: the
        bounds and centre values, shape ``(Q,)``, and the regions' own state."""
        Xr, absX = self._Xr, self._absX
        n, r = Xr.shape
        c = Z.shape[1]
        Q = C.shape[0]
        cn = np.linalg.norm(C, axis=1)
        hn = np.linalg.norm(H, axis=1)
        aC = np.abs(C)
        p_low = np.sqrt(np.sum(np.maximum(aC - H, 0.0) ** 2, axis=1))
        p_high = np.sqrt(np.sum((aC + H) ** 2, axis=1))
        # the cap: cos of the largest angle between a point of the box and its centre
        cos1 = np.where(hn < cn, np.sqrt(np.maximum(1.0 - (hn / cn) ** 2, 0.0)), -1.0)
        a_low = cn ** 2 - np.sum(aC * H, axis=1)
        cos2 = np.where(a_low > 0, a_low / (p_high * cn), -1.0)
        cos_t = np.maximum(cos1, cos2) * (1 - 1e-12) - 1e-15  # outward
        wide = cos_t <= 0.0
        cos_t = np.clip(cos_t, 0.0, 1.0)
        sin_t = np.sqrt(1.0 - cos_t ** 2)
        u0 = C / cn[:, None]
        # the parent's sign-changing rows, as (region, row) pairs sorted by region
        qi, ii = np.nonzero(np.unpackbits(Ub, axis=1, count=n))
        if qi.size > 0.05 * Q * n:  # many rows: two dense products, then the pairs
            mC = (C @ Xr.T)[qi, ii]  # x_i^T c
            wH = (H @ absX.T)[qi, ii]  # |x_i|^T h
        else:
            mC = np.einsum("kr,kr->k", C[qi], Xr[ii])
            wH = np.einsum("kr,kr->k", H[qi], absX[ii])
        lo, hi = mC - wH, mC + wH
        act = lo >= 0
        und = ~act & (hi > 0)
        if np.any(act):
            Ma = Ma + (_csr(np.ones(int(act.sum())), qi[act], ii[act], Q, n) @ K).reshape(Q, c, r)
        # value at the centre (a lower bound on Omega)
        pos = mC > 0
        G0 = np.einsum("qcr,qr->qc", Ma, C)
        if np.any(pos & ~act):
            m = pos & ~act
            G0 = G0 + _csr(mC[m], qi[m], ii[m], Q, n) @ Z
        val = np.sqrt(np.einsum("qc,qc->q", G0, G0)) / cn
        qi, ii, lo, hi, mC, wH = qi[und], ii[und], lo[und], hi[und], mC[und], wH[und]
        Um = np.zeros((Q, n), dtype=np.uint8)
        Um[qi, ii] = 1
        Ub = np.packbits(Um, axis=1)
        # rows that change sign: t = x_i^T u in [l, h], (t)_+ = alpha t + eps/2 + e',
        # |e'| <= eps/2, eps = alpha |l| (the chord and its parallel through 0)
        pl = p_low[qi]
        xn = self._xn[ii]
        l = np.maximum(lo / pl, -xn)
        h = np.maximum(np.minimum(hi / pl, xn), 1e-300)
        alpha = h / (h - l)
        eps = alpha * (-l)
        err = eps * zn[ii]
        # the rows to split: the `split` largest errors of each region
        k = min(self.split, n) if qi.size else 0
        rel = np.ones(qi.size, dtype=bool)  # relaxed (not split)
        if k:
            # the k largest of each region's segment (qi is sorted): k passes of a
            # segment maximum, O(k nnz) instead of a sort
            bound_ = np.r_[True, qi[1:] != qi[:-1]]
            starts = np.flatnonzero(bound_)
            segid = np.cumsum(bound_) - 1
            e = err.copy()
            S = np.zeros((Q, k), dtype=np.int64)
            sok = np.zeros((Q, k), dtype=bool)
            for j in range(k):
                mx = np.maximum.reduceat(e, starts)
                cand = np.flatnonzero((e == mx[segid]) & (e > 0))
                if cand.size == 0:
                    break
                firsts = cand[np.r_[True, segid[cand][1:] != segid[cand][:-1]]]
                rel[firsts] = False
                S[qi[firsts], j] = ii[firsts]
                sok[qi[firsts], j] = True
                e[firsts] = -1.0
            if not sok.any():
                k = 0
        qr, ir = qi[rel], ii[rel]
        Mb = Ma
        if qr.size:
            Mb = Ma + (_csr(alpha[rel], qr, ir, Q, n) @ K).reshape(Q, c, r)
        er = eps[rel]
        b = 0.5 * (_csr(er, qr, ir, Q, n) @ Z)  # the relaxation's centre
        bn = np.linalg.norm(b, axis=1)
        # what is left: ||sum z_i e'_i|| <= min(sum |z_i| eps_i, sigma_max(Z_U) |eps|) / 2
        E = 0.5 * np.bincount(qr, weights=er * zn[ir], minlength=Q)
        if c > 1 and qr.size:
            ZZ = (Z[:, :, None] * Z[:, None, :]).reshape(n, c * c)
            gram = (_csr(np.ones(qr.size), qr, ir, Q, n) @ ZZ).reshape(Q, c, c)
            smax = np.sqrt(np.maximum(np.linalg.eigvalsh(gram)[:, -1], 0.0) * (1 + 1e-12))
            E = np.minimum(E, 0.5 * smax * np.sqrt(np.bincount(qr, weights=er * er, minlength=Q)))
        E = E * (1 + 1e-12)
        ub = np.full(Q, -np.inf)
        if k:
            Zs = Z[S] * sok[:, :, None]  # (Q, k, c)
            Xs = Xr[S] * sok[:, :, None]  # (Q, k, r)
            xu0 = np.einsum("qkr,qr->qk", Xs, u0)  # x_i^T u0
            Pxs = Xs - xu0[:, :, None] * u0[:, None, :]  # tangent parts
        for case in range(2 ** k):
            on = np.array([(case >> j) & 1 for j in range(k)], dtype=bool)
            M = Mb
            if k and on.any():
                M = Mb + np.einsum("qkc,qkr->qcr", Zs[:, on], Xs[:, on])
            # ||M u + b||^2 = u^T Q u + lin^T u + |b|^2, Q = M^T M, lin = 2 M^T b
            Mu = np.einsum("qcr,qr->qc", M, u0)
            a = np.einsum("qc,qc->q", Mu, Mu)
            Qu = np.einsum("qcr,qc->qr", M, Mu)
            g = Qu - a[:, None] * u0
            lin = 2.0 * np.einsum("qcr,qc->qr", M, b)
            lin0 = np.einsum("qr,qr->q", lin, u0)
            if c == 1:
                lam = np.einsum("qcr,qcr->q", M, M)
            elif c <= r:
                lam = np.linalg.eigvalsh(np.einsum("qcr,qdr->qcd", M, M))[:, -1]
            else:
                lam = np.linalg.eigvalsh(np.einsum("qcr,qcs->qrs", M, M))[:, -1]
            lam = np.maximum(lam, 0.0) * (1 + 1e-12)
            # multipliers of the split rows' sign constraints (projected coordinate
            # descent on min ||2g + P lin + sum nu_j sigma_j P x_j||, nu >= 0)
            resid = 2.0 * g + lin - lin0[:, None] * u0
            ell0 = lin0.copy()
            if k:
                sig = np.where(on, 1.0, -1.0)
                Acols = Pxs * sig[None, :, None]  # (Q, k, r)
                an2 = np.einsum("qkr,qkr->qk", Acols, Acols)
                nu = np.zeros((Q, k))
                okc = an2 > 0
                inv = 1.0 / np.where(okc, an2, 1.0)
                for _ in range(2 * k + 1):
                    for j in range(k):
                        step = -np.einsum("qr,qr->q", resid, Acols[:, j]) * inv[:, j]
                        new = np.where(okc[:, j] & ~wide, np.maximum(nu[:, j] + step, 0.0), 0.0)
                        resid += (new - nu[:, j])[:, None] * Acols[:, j]
                        nu[:, j] = new
                ell0 += np.einsum("qk,qk->q", nu, sig[None, :] * xu0)
            Sn = np.linalg.norm(resid, axis=1)
            b2 = (a + np.maximum(lam - a, 0.0) * sin_t ** 2 + Sn * sin_t
                  + np.where(ell0 >= 0, ell0, ell0 * cos_t)
                  + 2.0 * np.linalg.norm(g, axis=1) * (1.0 - cos_t) * sin_t + bn ** 2)
            whole = (np.sqrt(lam) + bn) ** 2  # ||Mu + b|| <= sigma_max(M) + |b|, any u
            b2 = np.where(wide, whole, np.minimum(b2, whole))
            ub = np.maximum(ub, np.sqrt(np.maximum(b2, 0.0)) * (1 + 1e-12))
        ub = ub + E
        if self._use_corners:
            # only where the chord bound does not already drop the region, and is within
            # CORNER_RATIO of doing so (far above it, the corners rarely drop it either)
            # (and within 60 degrees of their centre, as _corner_bound requires)
            sel = (ub > self._corner_floor) & (ub <= CORNER_RATIO * self._corner_floor) \
                & (cos_t >= 0.5)
            if np.all(sel):
                ub = np.minimum(ub, self._corner_bound(Z, C, H, cn, cos_t, Ma, G0, qi, ii, mC))
            elif np.any(sel):
                qs = np.flatnonzero(sel)
                pm = sel[qi]
                remap = np.cumsum(sel) - 1
                ub[qs] = np.minimum(ub[qs], self._corner_bound(
                    Z, C[qs], H[qs], cn[qs], cos_t[qs], Ma[qs], G0[qs], remap[qi[pm]], ii[pm],
                    mC[pm]))
        return ub, val, Ma, Ub

    def _corner_bound(self, Z, C, H, cn, cos_t, Ma, G0, qi, ii, mC):
        r"""A second upper bound on :math:`f` over each region, from the region's corners
        (``np.inf`` where it does not apply).

        For a unit vector :math:`v \in \mathbb{R}^c` put :math:`s = Z v`. Over the cone of
        region ``q``, :math:`v^\top Z^\top (X_r p)_+ = \sum_i s_i (x_i^\top p)_+ \le F(p)`
        with

        * rows of fixed sign on the region: their exact (linear) term, through ``Ma``;
        * rows that change sign and :math:`s_i \ge 0`: :math:`s_i (x_i^\top p)_+`, kept
          exactly (it is convex);
        * rows that change sign and :math:`s_i < 0`: :math:`s_i \lambda_i x_i^\top p`,
          any :math:`\lambda_i \in [0, 1]` (as :math:`(t)_+ \ge \lambda t`).

        :math:`F` is convex and positively homogeneous, so over the slice of the cone at
        :math:`a^\top p = 1` (``a`` the unit centre, a polytope whose vertices are the box
        corners :math:`q_k` scaled by :math:`1 / a^\top q_k`) its maximum is at a vertex;
        and for a unit ``u`` of the cone, :math:`u = (a^\top u) p` with :math:`p` in the
        slice and :math:`a^\top u \le 1`. Hence
        :math:`\max_u v^\top Z^\top (X_r u)_+ \le \max(0, \max_k F(q_k) / a^\top q_k)`.
        Unlike the chord relaxation, the rows that change sign are not all assumed to be
        at their worst at once: a corner is one point. The sign-changing rows with
        :math:`s_i < 0` take :math:`\lambda_i = 1` where the row is positive at the
        centre (else 0), then, for the leading direction, also the signs at the maximising
        corner (the smaller bound is kept). With an orthonormal basis
        :math:`b_1, \dots, b_c` whose first vector is the direction of
        :math:`Z^\top (X_r c)_+` at the centre, :math:`\|Z^\top (X_r u)_+\|^2 \le
        \sum_k \max(B_k^+, B_k^-)^2` from the bounds :math:`B_k^\pm` for :math:`\pm b_k`.

        Applied to regions within 60 degrees of their centre, at ranks up to
        ``corners`` (cost :math:`2^{r-1}` times the sign-changing rows per direction).
        """
        Xr = self._Xr
        Q, r = C.shape
        c = Z.shape[1]
        out = np.full(Q, np.inf)
        ok = cos_t >= 0.5
        if not np.any(ok):
            return out
        S = self._signs
        K = S.shape[0]
        ax = np.argmax(np.abs(C) - H, axis=1)
        nd = np.ones((Q, r), dtype=bool)
        nd[np.arange(Q), ax] = False
        nd_idx = np.nonzero(nd)[1].reshape(Q, r - 1)  # each region's non-axis dimensions
        Hn = np.take_along_axis(H, nd_idx, axis=1)
        Cn = np.take_along_axis(C, nd_idx, axis=1)
        den = cn[:, None] ** 2 + (Hn * Cn) @ S.T  # ||c|| a^T q_k, (Q, K)
        ok &= np.all(den > 0, axis=1)
        scale = cn[:, None] / np.where(den > 0, den, 1.0)
        # orthonormal bases, first vector along the centre's output (a Householder map);
        # the 2c directions +b_1..+b_c, -b_1..-b_c as columns of V
        gn = np.linalg.norm(G0, axis=1)
        e1 = np.zeros(c)
        e1[0] = 1.0
        g = np.where(gn[:, None] > 0, G0 / np.where(gn > 0, gn, 1.0)[:, None], e1)
        w = e1[None, :] - g
        wn2 = np.einsum("qc,qc->q", w, w)
        Bs = np.broadcast_to(np.eye(c), (Q, c, c)).copy()
        big = wn2 > 1e-20
        Bs[big] -= 2.0 * w[big, :, None] * w[big, None, :] / wn2[big, None, None]
        V = np.concatenate([Bs, -Bs], axis=2)  # (Q, c, 2c)
        # the rows of fixed sign: linear, v^T Ma q_k at every corner, (Q, 2c, K)
        m = np.einsum("qcr,qcd->qdr", Ma, V)
        m_nd = np.take_along_axis(m, nd_idx[:, None, :], axis=2)
        lin = np.einsum("qdr,qr->qd", m, C)[:, :, None] + (m_nd * Hn[:, None, :]) @ S.T
        # the sign-changing rows, padded per region (regions sorted by their count, in
        # chunks of at most _CORNER_CHUNK rows x corners)
        cnt = np.bincount(qi, minlength=Q)
        start = np.cumsum(cnt) - cnt
        order = np.argsort(cnt, kind="stable")
        comps = np.zeros((Q, c))
        i0 = 0
        while i0 < Q:
            i1 = i0 + 1
            step = 1
            while i1 < Q:  # grow the chunk while (regions x widest) x K stays in budget
                nxt = min(Q, i1 + step)
                if (nxt - i0) * max(int(cnt[order[nxt - 1]]), 1) * K > _CORNER_CHUNK:
                    break
                i1, step = nxt, 2 * step
            qs = order[i0:i1]
            i0 = i1
            nq = qs.size
            P = int(cnt[qs].max())
            F = lin[qs]
            sc = scale[qs]
            if P == 0:
                best = np.max(F * sc[:, None, :], axis=2)
                comps[qs] = np.maximum(np.maximum(best[:, :c], best[:, c:]), 0.0)
                continue
            tt = np.arange(P)
            valid = tt[None, :] < cnt[qs][:, None]
            pidx = np.where(valid, start[qs][:, None] + tt[None, :], 0)
            rows = ii[pidx]
            mCp = np.where(valid, mC[pidx], 0.0)
            # x_i^T q_k, (nq, P, K): the rows times the box's half-widths (0 on the face's
            # axis, where x_i^T c goes instead), times each region's corner signs (a row
            # of ones on its axis); padding rows are 0
            HX = Xr[rows] * H[qs][:, None, :]
            HX[np.arange(nq)[:, None], tt[None, :], ax[qs][:, None]] = mCp
            HX[~valid] = 0.0
            T = np.matmul(HX, self._signs_by_axis[ax[qs]])
            Tp = np.maximum(T, 0.0)
            SV = np.matmul(Z[rows], V[qs])  # s_i per direction, (nq, P, 2c)
            SV[~valid] = 0.0
            on_c = mCp > 0  # lambda: the row's sign at the centre
            # s_i >= 0: s_i (T)_+; s_i < 0: s_i lambda T (lambda = 1 or 0)
            Ap = np.maximum(SV, 0.0).transpose(0, 2, 1)
            An = (np.minimum(SV, 0.0) * on_c[:, :, None]).transpose(0, 2, 1)
            F = F + Ap @ Tp + An @ T
            Fn = F * sc[:, None, :]
            best = np.max(Fn, axis=2)  # (nq, 2c)
            # the leading direction again, lambda: the signs at its maximising corner,
            # then with one row taken exactly
            sv = SV[:, :, 0]
            neg = sv < 0
            if np.any(neg):
                ar = np.arange(nq)
                kb = np.argmax(Fn[:, 0, :], axis=1)
                on2 = T[ar, :, kb] > 0  # (nq, P)
                # F's first direction with lambda = on2 instead of on_c
                dl = np.minimum(sv, 0.0) * (on2.astype(float) - on_c)
                F0 = F[:, 0, :] + (dl[:, None, :] @ T)[:, 0, :]
                F0n = F0 * sc
                best[:, 0] = np.minimum(best[:, 0], np.max(F0n, axis=1))
                best[:, 0] = np.minimum(best[:, 0], self._split_one(F0, F0n, sc, T, sv, neg, on2))
            comps[qs] = np.maximum(np.maximum(best[:, :c], best[:, c:]), 0.0)
        out = np.sqrt(np.einsum("qc,qc->q", comps, comps)) * (1 + 1e-10)
        out[~ok] = np.inf
        return out

    def _exact_regions(self, Z, C, H, Ma, Ub):
        r"""The maximum of :math:`f` over each region ``(C, H)``, exactly up to rounding,
        from its rows of fixed sign (``Ma``) and the few rows whose sign changes on it
        (``Ub``).

        For a choice of sides :math:`\sigma` of the ``k`` rows that change sign, on the
        part of the region where :math:`\sigma_j x_j^\top u \ge 0`,
        :math:`f(u) = \|M_\sigma u\|` with :math:`M_\sigma = M_a + \sum_{\sigma_j = +}
        z_j x_j^\top`. That part is a polyhedral cone :math:`\{u : a_l^\top u \ge 0\}`
        (the box's ``2(r - 1)`` sides and the ``k`` rows), and the maximum of
        :math:`\|M u\|` over its unit vectors lies in the relative interior of one of its
        faces, where it is the top eigenvector of the form restricted to that face's span.
        So every set of at most ``r - 1`` constraints with independent normals (its null
        space: the span of a face, when there is one) is solved, and its top eigenvector, or
        its negative, is counted when it satisfies every constraint (to 1e-9 of the unit
        normals); a span whose top eigenvalue is not simple (relative gap 1e-9) is counted
        at that eigenvalue whatever its vector, which keeps the value an upper bound. The
        spans depend on the region only, not on :math:`\sigma`.

        Returns ``(value, U, attained, f)``: per region the maximum (norm, not squared;
        ``-inf`` where no case holds a direction), a maximiser (u_r, unit), whether that
        maximum was met by a vector inside its cone (False where only a span with a
        multiple top eigenvalue gave it), and the maximiser's own value.
        """
        Xr = self._Xr
        n, r = Xr.shape
        Q = C.shape[0]
        tol = 1e-9
        qi, ii = np.nonzero(np.unpackbits(Ub, axis=1, count=n))
        cnt = np.bincount(qi, minlength=Q)
        start = np.cumsum(cnt) - cnt
        value = np.full(Q, -np.inf)
        U = np.zeros((Q, r))
        U[:, 0] = 1.0
        attained = np.zeros(Q, dtype=bool)
        ax = np.argmax(np.abs(C) - H, axis=1)
        for k in np.unique(cnt):
            k = int(k)
            qs_all = np.flatnonzero(cnt == k)
            bits = ((np.arange(2 ** k)[:, None] >> np.arange(k)[None, :]) & 1).astype(float)
            nb = bits.shape[0]
            # the box's sides as constraints a^T u >= 0 (t = s u_a, s the face's sign):
            # u_j >= (c_j - h_j) t and u_j <= (c_j + h_j) t for the other axes j
            Lr = _box_sides(r)
            L = Lr + k
            subsets = [np.array(list(itertools.combinations(range(L), j)), dtype=np.int64)
                       .reshape(math.comb(L, j), j) for j in range(min(L, r - 1) + 1)]
            ns_all = sum(sb.shape[0] for sb in subsets)
            per = max(1, _EXACT_CHUNK // max(nb * ns_all, 1))
            sig = np.concatenate([np.ones((nb, Lr)), 2.0 * bits - 1.0], axis=1)  # (nb, L)
            for i0 in range(0, qs_all.size, per):
                qs = qs_all[i0:i0 + per]
                nq = qs.size
                ar = np.arange(nq)
                a = ax[qs]
                s = np.sign(C[qs, a])
                if r > 1:
                    nd = np.ones((nq, r), dtype=bool)
                    nd[ar, a] = False
                    nd_idx = np.nonzero(nd)[1].reshape(nq, r - 1)
                    Cn = np.take_along_axis(C[qs], nd_idx, axis=1)
                    Hn = np.take_along_axis(H[qs], nd_idx, axis=1)
                    NR = np.zeros((nq, Lr, r))
                    jj = np.arange(r - 1)
                    NR[ar[:, None], jj[None, :], nd_idx] = 1.0
                    NR[ar[:, None], jj[None, :], a[:, None]] = -(Cn - Hn) * s[:, None]
                    NR[ar[:, None], (r - 1 + jj)[None, :], nd_idx] = -1.0
                    NR[ar[:, None], (r - 1 + jj)[None, :], a[:, None]] = (Cn + Hn) * s[:, None]
                else:
                    NR = s[:, None, None] * np.ones((nq, 1, 1))
                rows = ii[start[qs][:, None] + np.arange(k)[None, :]] if k else \
                    np.zeros((nq, 0), dtype=np.int64)
                A = np.concatenate([NR, Xr[rows]], axis=1)  # (nq, L, r)
                A = A / np.linalg.norm(A, axis=2, keepdims=True)
                # the forms of the cases, (nq, nb, c, r)
                M = Ma[qs][:, None] + np.einsum("bk,qkc,qkr->qbcr", bits, Z[rows], Xr[rows])
                best = np.full((nq, nb), -np.inf)
                best_att = np.zeros((nq, nb), dtype=bool)
                best_u = np.zeros((nq, nb, r))
                for sb in subsets:
                    j = sb.shape[1]
                    ns = sb.shape[0]
                    if j == 0:
                        B = np.broadcast_to(np.eye(r), (nq, 1, r, r))
                        ok = np.ones((nq, 1), dtype=bool)
                    else:
                        Ns = A[:, sb]  # (nq, ns, j, r)
                        _, sv, Vt = np.linalg.svd(Ns)
                        ok = sv[..., -1] > 1e-12 * sv[..., 0]
                        B = np.swapaxes(Vt[..., j:, :], -1, -2)  # (nq, ns, r, r - j)
                    GB = np.einsum("qbcr,qsrk->qbsck", M, B)  # (nq, nb, ns, c, r - j)
                    if r - j == 1:
                        lam = np.einsum("qbsc,qbsc->qbs", GB[..., 0], GB[..., 0])
                        u = np.broadcast_to(B[:, None, :, :, 0], (nq, nb, ns, r))
                        amb = np.zeros(lam.shape, dtype=bool)
                    else:
                        W = np.einsum("qbsck,qbscl->qbskl", GB, GB)
                        ev, vec = np.linalg.eigh(W)
                        lam = ev[..., -1]
                        amb = (lam - ev[..., -2]) <= 1e-9 * np.maximum(lam, 1e-300)
                        u = np.einsum("qsrk,qbsk->qbsr", B, vec[..., -1])
                    proj = np.einsum("qlr,qbsr->qbsl", A, u) * sig[None, :, None, :]
                    fp = np.all(proj >= -tol, axis=3)
                    fm = np.all(proj <= tol, axis=3)
                    okb = ok[:, None, :]
                    att = (fp | fm) & okb
                    cnt_ = (att | amb) & okb
                    v = np.where(cnt_, lam, -np.inf)
                    jb = np.argmax(v, axis=2)  # (nq, nb)
                    vb = np.take_along_axis(v, jb[..., None], axis=2)[..., 0]
                    ab = np.take_along_axis(att, jb[..., None], axis=2)[..., 0]
                    # a tie goes to a vector met inside its cone
                    better = (vb > best) | ((vb == best) & ab & ~best_att)
                    ub_ = np.take_along_axis(u, jb[..., None, None], axis=2)[:, :, 0]
                    fpb = np.take_along_axis(fp, jb[..., None], axis=2)[..., 0]
                    ub_ = np.where(fpb[..., None], ub_, -ub_)
                    best = np.where(better, vb, best)
                    best_att = np.where(better, ab, best_att)
                    best_u = np.where(better[..., None], ub_, best_u)
                jq = np.argmax(best, axis=1)
                vq = best[ar, jq]
                value[qs] = np.where(np.isfinite(vq), np.sqrt(np.maximum(vq, 0.0) * (1 + 1e-12)),
                                     -np.inf)
                uq = best_u[ar, jq]
                nu = np.linalg.norm(uq, axis=1)
                U[qs] = np.where(nu[:, None] > 0, uq / np.where(nu > 0, nu, 1.0)[:, None], U[qs])
                attained[qs] = best_att[ar, jq] & np.isfinite(vq)
        # "attained" only where the direction's own value says so: the membership test's
        # tolerance can admit the top vector of a very thin cone (red-teaming: rows 1e-9
        # apart) whose value is not the region's
        f = np.sqrt(_relu_values(Xr, Z, U))
        attained &= f >= value * (1.0 - 1e-9)
        return value, U, attained, f

    def _split_one(self, F, Fn, scale, T, sv, neg, lam):
        r"""The corner bound with one row taken exactly instead of linearised: per region
        the row with :math:`s_i < 0` whose linearisation costs most at the maximising
        corner. With :math:`F_-` the bound without that row's term (convex on the slice),
        the maximum of :math:`F_- + s_i (x_i^\top p)_+` over the slice is attained at a
        vertex of one of the two pieces cut by the row's hyperplane: a corner (where the
        row's exact term is added) or a point where the hyperplane crosses an edge of
        the slice (the row's term is 0 there and, :math:`F_-` being convex, its value is
        at most the interpolation of the edge's end values). Removes the first-order
        excess of a maximiser on a kink (where :math:`x_i^\top u = 0`). ``F``, ``Fn``,
        ``scale``: (regions, K); ``T``: (regions, rows, K); ``sv``, ``neg``, ``lam``:
        (regions, rows). ``np.inf`` where no row is linearised."""
        nq = F.shape[0]
        out = np.full(nq, np.inf)
        ar = np.arange(nq)
        kb = np.argmax(Fn, axis=1)
        Tk = T[ar, :, kb]
        e = np.where(neg, sv * (np.where(lam, Tk, 0.0) - np.maximum(Tk, 0.0)), -1.0)
        ps = np.argmax(e, axis=1)
        has = e[ar, ps] > 0
        if not np.any(has):
            return out
        q, ps = ar[has], ps[has]
        Ti = T[q, ps]  # the split rows at every corner, (regions, K)
        s_i = sv[q, ps]
        Fr = F[q] - np.where(lam[q, ps], s_i, 0.0)[:, None] * Ti  # F without the row
        sc = scale[q]
        A = np.max((Fr + s_i[:, None] * np.maximum(Ti, 0.0)) * sc, axis=1)
        tn, Rn = Ti * sc, Fr * sc
        ea, eb = self._edges
        if ea.size:
            ta, tb = tn[:, ea], tn[:, eb]
            cross = ta * tb < 0
            th = np.where(cross, tb / np.where(cross, tb - ta, 1.0), 0.0)
            val = np.where(cross, th * Rn[:, ea] + (1.0 - th) * Rn[:, eb], -np.inf)
            # interpolation rounding: a convex combination of two values, relative 1e-15
            Bv = np.max(val, axis=1) + 1e-12 * np.max(np.abs(Rn), axis=1)
            A = np.maximum(A, Bv)
        out[q] = A
        return out

    # -- the search ------------------------------------------------------------------------
    def __call__(self, Z) -> OracleResult:
        t0 = time.perf_counter()
        ev = self._ev
        Z = ev.check_Z(Z)
        Xr = self._Xr
        n, r = Xr.shape
        deadline = t0 + self.time_limit
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        Z_in = Z
        # the rows that add to Omega brought to order one (contribution_scale: scaling by
        # max|Z| let their squares underflow when a large row of Z or X added nothing)
        e, _ = contribution_scale(Z, Xr)
        kz = -e
        # rows zero in X add nothing (the rank truncation's residual is counted below)
        Z = np.ldexp(np.where(np.any(ev.X != 0, axis=1)[:, None], Z, 0.0), kz)
        unscale = -(kz + self._kx)  # values found on the scaled data times 2**unscale
        # the margin, computed on the scaled data (no overflow) and scaled back: outward
        # rounding 4 sqrt(r) * 2(n + r + 4) eps sum_k |z_k||x_k|, and the rank truncation
        rounding = 2.0 * (n + r + 4) * np.finfo(float).eps * float(
            np.dot(np.linalg.norm(Z, axis=1), self._xn))
        margin = float(np.ldexp(4.0 * math.sqrt(max(r, 1)) * rounding, unscale))
        if ev.residual:
            margin += float(np.ldexp(float(np.linalg.norm(Z, 2)) * ev.residual * (1 + 1e-12), -kz))
        zn = np.linalg.norm(Z, axis=1)
        stats = dict(regions=0, open=0, rounds=0, closed=False, stopped="", lower=0.0, upper=0.0,
                     exact=0)
        if r == 0 or not np.any(Z) or not np.any(Xr):
            # Omega is 0 up to the rank truncation, which the margin bounds
            u = np.zeros(self.problem.d)
            if self.problem.d:
                u[0] = 1.0
            stats.update(closed=True, stopped="zero")
            self.last_stats = stats
            self._cands = (Z_in.copy(), np.zeros(0), np.zeros((0, r)))
            return OracleResult(margin, u, 0.0, "exact" if ev.residual == 0.0 else "upper_bound",
                                "exact", None, time.perf_counter() - t0, margin,
                                source="branch and bound")
        K = ev.kron(Z, Xr)
        # lower bound: ascent from the hints, the rows with the largest residual, and a few
        # random directions
        starts = [self._hints, np.eye(r), -np.eye(r)]
        top = np.argsort(-zn * self._xn)[: min(n, 20)]
        starts += [Xr[top], -Xr[top]]
        rng = np.random.default_rng(0)
        starts.append(rng.standard_normal((20, r)))
        U0 = np.concatenate([s for s in starts if s.size])
        U0 = U0[np.linalg.norm(U0, axis=1) > 0]
        U0 = _ascent(Xr, Z, U0, 60, deadline=deadline)
        vals = np.sqrt(_relu_values(Xr, Z, U0))
        j = int(np.argmax(vals))
        lower, best_u = float(vals[j]), U0[j]
        # roots: the 2r faces of the cube
        C = np.concatenate([np.eye(r), -np.eye(r)])
        H = np.concatenate([1.0 - np.eye(r), 1.0 - np.eye(r)])
        if r == 1:
            H = np.zeros_like(C)
        c = Z.shape[1]
        Ma = np.zeros((C.shape[0], c, r))
        Ub = np.packbits(np.ones((C.shape[0], n), dtype=np.uint8), axis=1)
        ub, vc, Ma, Ub = self._bound(Z, K, zn, C, H, Ma, Ub)
        ub = np.where(np.isnan(ub), np.inf, ub)  # a NaN bound bounds nothing: never dropped
        stats["regions"] += C.shape[0]
        # open regions kept within about a gigabyte (state: C, H, Ma, the mask, ub, vc)
        per_region = 8 * (2 * r + c * r + 2) + Ub.shape[1]
        max_open = min(self.max_open, int(self.max_memory // per_region))
        dropped = -np.inf
        target = None if self.target is None else float(np.ldexp(float(self.target), -unscale))

        def floor():
            if target is None:
                return lower * (1.0 + self.rtol)
            rt = self.rtol
            if lower > float(target) * (1.0 + self.coarse_rtol):
                rt = max(rt, self.coarse_rtol)  # not certifiable: how far, to coarse_rtol
            return max(lower * (1.0 + rt), float(target))

        stopped = ""
        last_print = t0
        per_region = 1e-6  # seconds per region evaluated (the slowest round so far)
        # the exact solve's work per region by its count k of sign-changing rows (2**k cases
        # times the face spans of its cone), up to where it exceeds any budget
        work_of = np.array([2.0 ** k * _spans(_box_sides(r) + k, r)
                            for k in range(min(n, 24) + 1)] + [np.inf])
        exact_u: list = []
        try:  # Ctrl-C ends the search with the bound so far (still a proven bound)
            while True:
                jc = int(np.argmax(vc)) if vc.size else 0
                if vc.size and vc[jc] > lower:
                    lower, best_u = float(vc[jc]), C[jc] / np.linalg.norm(C[jc])
                keep = ~(ub <= floor())
                if not np.all(keep):
                    dropped = max(dropped, float(ub[~keep].max()))
                    C, H, ub, vc, Ma, Ub = C[keep], H[keep], ub[keep], vc[keep], Ma[keep], Ub[keep]
                if C.shape[0] == 0:
                    stopped = "closed"
                    break
                if self.stop_above is not None and target is not None and \
                        lower > float(target) * (1.0 + self.stop_above):
                    stopped = "violated"
                    break
                now = time.perf_counter()
                if now >= deadline:
                    stopped = "time_limit"
                    break
                if stats["regions"] >= self.max_regions:
                    stopped = "max_regions"
                    break
                if C.shape[0] > max_open:
                    stopped = "max_open"
                    break
                if self.verbose and now - last_print > 2.0:
                    last_print = now
                    print(f"  bnb: {stats['regions']:>10d} regions, {C.shape[0]:>9d} open, "
                          f"lower {np.ldexp(lower, unscale):.8g}, "
                          f"upper {np.ldexp(max(dropped, ub.max()), unscale):.8g}, "
                          f"{now - t0:.1f} s", flush=True)
                # refine the regions with the largest bounds; a round takes at most about a
                # quarter of the time left (the deadline is checked between rounds)
                B = min(self.batch, C.shape[0],
                        max(8, int(0.25 * (deadline - now) / (2.0 * per_region))))
                if B < C.shape[0]:
                    sel = np.argpartition(-ub, B - 1)[:B]
                else:
                    sel = np.arange(C.shape[0])
                rest = np.ones(C.shape[0], dtype=bool)
                rest[sel] = False
                Cs, Hs = C[sel], H[sel]
                splittable = np.max(Hs, axis=1) > 1e-12
                if not np.any(splittable):
                    stopped = "resolution"
                    break
                Cs, Hs, ubs = Cs[splittable], Hs[splittable], ub[sel][splittable]
                Mas, Ubs = Ma[sel][splittable], Ub[sel][splittable]
                stuck = sel[~splittable]
                rest[stuck] = True
                jdim = np.argmax(Hs * self._colw[None, :], axis=1)
                q = np.arange(Cs.shape[0])
                Hn = Hs.copy()
                Hn[q, jdim] *= 0.5
                Cl, Cr = Cs.copy(), Cs.copy()
                Cl[q, jdim] -= Hn[q, jdim]
                Cr[q, jdim] += Hn[q, jdim]
                Cc = np.concatenate([Cl, Cr])
                Hc = np.concatenate([Hn, Hn])
                # evaluated in chunks of at most 2048 regions: the (regions x rows) arrays
                # then stay in cache (about 25 % faster per region than 8192 at once)
                Mac = np.concatenate([Mas, Mas])
                Ubc = np.concatenate([Ubs, Ubs])
                self._corner_floor = floor()
                t_round = time.perf_counter()
                parts = [self._bound(Z, K, zn, Cc[i:i + 2048], Hc[i:i + 2048], Mac[i:i + 2048],
                                     Ubc[i:i + 2048]) for i in range(0, Cc.shape[0], 2048)]
                ubc = np.concatenate([p[0] for p in parts])
                ubc = np.where(np.isnan(ubc), np.inf, ubc)
                vcc = np.concatenate([p[1] for p in parts])
                Mac = np.concatenate([p[2] for p in parts])
                Ubc = np.concatenate([p[3] for p in parts])
                ubc = np.minimum(ubc, np.concatenate([ubs, ubs]))  # a child is in its parent
                stats["regions"] += Cc.shape[0]
                stats["rounds"] += 1
                per_region = max(per_region, (time.perf_counter() - t_round) / Cc.shape[0])
                if self.exact_leaves:
                    # children crossed by few rows: solved exactly, and dropped once their
                    # maximum is attained (it is then counted in `dropped`)
                    fl = floor()
                    se = np.flatnonzero(ubc > fl)  # rows counted only where it can matter
                    kc = np.unpackbits(Ubc[se], axis=1).sum(axis=1)
                    se = se[work_of[np.minimum(kc, work_of.size - 1)] <= self.exact_leaves]
                    if se.size:
                        ve, Ue, att, fu = self._exact_regions(Z, Cc[se], Hc[se], Mac[se],
                                                              Ubc[se])
                        stats["exact"] += se.size
                        ja = int(np.argmax(fu))
                        if fu[ja] > lower:
                            lower, best_u = float(fu[ja]), Ue[ja]
                        ubc[se] = np.minimum(ubc[se], ve)
                        solved = att & (ve <= fu * (1.0 + 1e-9))
                        if np.any(solved):
                            dropped = max(dropped, float(ve[solved].max()))
                            top = np.argsort(-fu[solved])[: 4 * self.n_candidates]
                            exact_u.append(Ue[solved][top])
                            keepc = np.ones(Cc.shape[0], dtype=bool)
                            keepc[se[solved]] = False
                            Cc, Hc, ubc, vcc = Cc[keepc], Hc[keepc], ubc[keepc], vcc[keepc]
                            Mac, Ubc = Mac[keepc], Ubc[keepc]
                # ascent from the most promising new centres
                if stats["rounds"] % 4 == 1 and Cc.shape[0]:
                    top = np.argsort(-ubc)[:8]
                    Ua = _ascent(Xr, Z, Cc[top], 30, deadline=deadline)
                    va = np.sqrt(_relu_values(Xr, Z, Ua))
                    ja = int(np.argmax(va))
                    if va[ja] > lower:
                        lower, best_u = float(va[ja]), Ua[ja] / np.linalg.norm(Ua[ja])
                C = np.concatenate([C[rest], Cc])
                H = np.concatenate([H[rest], Hc])
                ub = np.concatenate([ub[rest], ubc])
                vc = np.concatenate([vc[rest], vcc])
                Ma = np.concatenate([Ma[rest], Mac])
                Ub = np.concatenate([Ub[rest], Ubc])
        except KeyboardInterrupt:
            stopped = "interrupted"
        open_max = float(ub.max()) if ub.size else -np.inf
        upper = max(dropped, open_max, lower)
        # never worse than the spectral bound ||Z||_2 ||X_r||_2 (outward-rounded)
        spec = spectral_bound(Z, self._xnorm)
        if spec < upper:
            upper, stopped = spec, stopped + " (spectral bound)"
        closed = stopped == "closed"
        within = upper <= lower * (1.0 + self.rtol)
        best_u = best_u / np.linalg.norm(best_u)
        attained = float(np.ldexp(np.sqrt(_relu_values(Xr, Z, best_u[None, :])[0]), unscale))
        lower, upper = float(np.ldexp(lower, unscale)), float(np.ldexp(upper, unscale))
        value = upper + margin
        within = within and np.isfinite(value)
        stats.update(open=int(C.shape[0]), closed=closed, stopped=stopped, lower=lower,
                     upper=upper)
        # the best directions met (the open regions' best centres, polished), for
        # candidates(): a solver adds several violating directions per call
        cand = [best_u[None, :]] + exact_u[-8:]
        if vc.size:
            top = np.argsort(-vc)[: 4 * self.n_candidates]
            cand.append(_ascent(Xr, Z, C[top], 30))
        Uc = np.concatenate(cand)
        Uc /= np.linalg.norm(Uc, axis=1, keepdims=True)
        vals_c = np.ldexp(np.sqrt(_relu_values(Xr, Z, Uc)), unscale)
        order = np.argsort(-vals_c)
        self._cands = (Z_in.copy(), vals_c[order], Uc[order])
        self.last_stats = stats
        kind = "exact" if within else "upper_bound"
        return OracleResult(float(value), ev.to_original(best_u), attained, kind, "exact",
                            None, time.perf_counter() - t0, float(margin),
                            source="branch and bound" + ("" if closed else f" (stopped: {stopped})"))
