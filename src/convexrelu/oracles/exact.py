r"""The exact oracle: :math:`\Omega(Z)` over every cell, face and ray of the arrangement.

Per sign pattern :math:`D_i`, :math:`\Omega` is the cone-constrained PCA problem

.. math::

    \max_{\|u\| \le 1,\ (2D_i - I) X u \ge 0} u^\top X^\top D_i Z Z^\top D_i X u .

The maximiser lies in the relative interior of some face of some cell; there it is the
top eigenvector of the quadratic form restricted to the face's span. The faces of all
cells are the cells of the arrangement restricted to every flat (intersection of
hyperplanes), so :class:`ExactOracle` enumerates the cells of every flat of dimension
``r, r-1, ..., 3``, sweeps every 2-D flat by angle (:class:`_Sweep2D`, which also gives
the rays), takes the top eigenvector of each cell's restricted form, keeps it if it lies
in the cell, and evaluates every ray. The largest value found is :math:`\Omega(Z)` (each
candidate's value is recomputed from :math:`(Xu)_+`, so the value returned is attained by
the ``u`` returned).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..patterns import (
    DEFAULT_MAX_PATTERNS,
    DEFAULT_TIE_TOL,
    SignPatterns,
    _arrangement_cells,
    _null_vector,
    _unique_hyperplanes,
)
from ._common import (
    _best_in_regions,
    _Evaluator,
    _region_candidates,
    _whitened_values,
    contribution_scale,
    unscale_result,
)
from .base import OracleBase, OracleResult, in_memory_problem

__all__ = ["ExactOracle"]

logger = logging.getLogger(__name__)

#: Pattern matrices up to this size are cached as floats by ExactOracle (larger ones are
#: kept as bits and unpacked one chunk at a time).
_FLOAT_CACHE_BYTES = 32 << 20


class _PackedRows:
    """0/1 rows kept as bits (:func:`numpy.packbits`, 1/64 of a float matrix); slicing
    returns the rows as floats. Lets the exact oracle hold millions of regions' patterns
    in bounded memory (iris, rank 4: 10.8M regions)."""

    def __init__(self, bits: np.ndarray, n: int):
        self.bits, self.n = bits, int(n)
        self.shape = (bits.shape[0], self.n)
        self.dtype = np.dtype(float)

    @classmethod
    def pack(cls, P: np.ndarray) -> "_PackedRows":
        return cls(np.packbits(np.asarray(P, dtype=bool), axis=1), P.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)

    def __getitem__(self, sl) -> np.ndarray:
        return np.unpackbits(self.bits[sl], axis=1, count=self.n).astype(float)


class _SharedBases:
    """Per-region orthonormal bases stored once per flat: ``unique[index[q]]`` is region
    ``q``'s basis (every cell of a flat shares the flat's basis)."""

    def __init__(self, unique: np.ndarray, index: np.ndarray):
        self.unique, self.index = unique, index

    @property
    def nbytes(self) -> int:
        return int(self.unique.nbytes + self.index.nbytes)

    def __getitem__(self, sl) -> np.ndarray:
        return self.unique[self.index[sl]]


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
        self._last = None  # (Z, estimates, directions) of the last call

    def _estimates(self, Z: np.ndarray):
        """Estimated values (cells: top eigenvalue if its vector is inside; rays) and
        directions ``t`` (unit). The last ``Z``'s are kept: a solver's oracle call and its
        ``candidates`` on the same point sweep once (the arrays returned are read only)."""
        last = self._last
        if last is not None and last[0].shape == Z.shape and np.array_equal(last[0], Z):
            return last[1], last[2]
        est, dirs = self._sweep(Z)
        est.flags.writeable = dirs.flags.writeable = False
        self._last = (np.array(Z, copy=True), est, dirs)
        return est, dirs

    def _sweep(self, Z: np.ndarray):
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


class ExactOracle(OracleBase):
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
        t0 = time.perf_counter()
        self.problem = prob = in_memory_problem(X, "the exact oracle (pattern enumeration)")
        X, fp = prob.X, prob.fingerprint
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
            # the patterns' own rank reduction (they may have been enumerated with another
            # rank_tol) is the one their cells live in
            prob = prob.with_basis(patterns.basis, patterns.rank)
            r = patterns.rank
        else:
            r = prob.rank
            if r >= 3:
                patterns = prob.patterns(max_patterns=max_patterns, tol=tol)
        self.patterns = patterns
        self.tol = float(tol)
        self.chunk = int(chunk)
        self._ev = _Evaluator(prob)
        self._last = None
        self.rank = r
        ev = self._ev
        self._groups: list = []  # (bases or None, patterns): arrays, or bits and shared bases
        self._sweeps: list[_Sweep2D] = []
        if r == 1:
            self._n_patterns = 2
        elif r == 2:
            sweep = _Sweep2D(ev, None, ev.zero, self.tol)
            self._sweeps.append(sweep)
            self._n_patterns = sweep.n_cells
        elif r >= 3:
            P0 = patterns.patterns
            # 0/1 float copies when small enough (saves a cast per call), else bits
            self._groups.append((None, P0.astype(float) if P0.size * 8 <= _FLOAT_CACHE_BYTES
                                 else _PackedRows.pack(P0)))
            self._n_patterns = patterns.n_patterns
            face_groups: dict[int, tuple[list, list, list]] = {}
            self._collect_faces(np.eye(r), face_groups)
            for k in sorted(face_groups, reverse=True):
                Bs, counts, Ps = face_groups[k]
                bases = _SharedBases(np.stack(Bs), np.repeat(np.arange(len(Bs)), counts))
                bits = _PackedRows(np.concatenate(Ps), ev.X.shape[0])
                if bits.shape[0] * bits.n * 8 <= _FLOAT_CACHE_BYTES:
                    self._groups.append((bases[:], bits[:]))
                else:
                    self._groups.append((bases, bits))
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
            Bs, counts, Ps = face_groups.setdefault(k - 1, ([], [], []))
            Bs.append(Bn)  # one basis per flat, shared by its cells
            counts.append(pats.shape[0])
            Ps.append(np.packbits(pats, axis=1))
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
        vals, ys = vals[order], ys[order]
        ys = ys / np.linalg.norm(ys, axis=1, keepdims=True)
        # near-duplicates (the same direction found in two regions): the best is kept
        sel = []
        for i in range(vals.size):
            if len(sel) >= kmax:
                break
            if sel and np.any(ys[sel] @ ys[i] > 1.0 - 1e-13):
                continue
            sel.append(i)
        keep = np.array(sel, dtype=np.intp)
        U = ev.basis @ (ys[keep] / ev.s).T  # (d, k)
        nrm = np.linalg.norm(U, axis=0)
        U = np.where(nrm > 0, U / np.where(nrm > 0, nrm, 1.0), U)
        return np.sqrt(vals[keep]), U.T.reshape(-1, d)

    def __call__(self, Z) -> OracleResult:
        Z = self._ev.check_Z(Z)
        # scaled by a power of two (exact) so that the rows that add to Omega are of order
        # one: squared values neither overflow nor underflow (contribution_scale)
        e, Zs = contribution_scale(Z, self._ev.X)
        res = unscale_result(self._call(Zs), e)
        self._last = (Z.copy(), res)
        return res

    def _call(self, Z) -> OracleResult:
        t0 = time.perf_counter()
        ev = self._ev
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
        return OracleResult(value, u, attained, "exact", "exact", self.n_patterns,
                            time.perf_counter() - t0, margin)
