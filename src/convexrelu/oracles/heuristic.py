r"""The heuristic oracle: sampled patterns and multi-start ascent, a lower estimate of
:math:`\Omega(Z)`, never a bound (``kind="heuristic"``)."""

from __future__ import annotations

import time

import numpy as np

from .._validation import check_positive_int
from ..kernels import take_rows
from ..patterns import DEFAULT_TIE_TOL, SignPatterns, sample_directions
from ._common import _ascent, _best_in_regions, _Evaluator, _relu_values
from ..problem import as_problem
from .base import OracleBase, OracleResult

__all__ = ["HeuristicOracle"]


class HeuristicOracle(OracleBase):
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

    Notes
    -----
    Each call draws its starts from four pools, scored by their value and the best
    ``n_starts`` of each pool refined by ascent: the sampled patterns' directions (fixed),
    ``n_starts`` *fresh* random directions (new at every call, so that a solver cannot
    settle where one fixed sample happens to see nothing), the rows ``+-x_i`` with the
    largest residual ``|z_i|`` (violating directions are correlated with the residual),
    and the directions given by :meth:`hint` (a solver's current neurons). When a search
    finds nothing, :meth:`intensify` multiplies the number of starts (up to 64 times) and
    a solver asks again before it stops on an estimate.
    """

    kind = "heuristic"

    def __init__(self, X, patterns: SignPatterns | None = None, *, n_samples: int = 2000,
                 n_starts: int = 20, n_iter: int = 100, random_state=None, chunk: int = 4096,
                 cell_budget: float = 2e8):
        self.problem = prob = as_problem(X)
        X = prob.X
        n_samples = check_positive_int(n_samples, "n_samples")
        self.n_starts = check_positive_int(n_starts, "n_starts")
        self.n_iter = check_positive_int(n_iter, "n_iter", minimum=0)
        self.cell_budget = float(cell_budget)
        self._directions = None
        dask = type(X).__module__.split(".")[0] == "dask"
        if patterns is None and (dask or n_samples * X.shape[0] * max(prob.rank, 1)
                                 > self.cell_budget):
            # the per-cell check costs P n c r >= P n r flops: at this size it never runs,
            # so the sample's patterns (a P x n product, 16 GB of float64 at n = 10^6) are
            # not formed; the directions are the starts, and :attr:`patterns` forms their
            # patterns only if asked
            self._directions = sample_directions(X.shape[1], n_samples, random_state)
            self._patterns = None
            basis, rank = prob.basis, prob.rank
            st = self._directions @ basis
        else:
            if patterns is None:
                patterns = prob.sample_patterns(n_samples, random_state=random_state)
            basis, rank, st = self._check_patterns(patterns, prob)
        self.chunk = chunk
        self._ev = _Evaluator(prob.with_basis(basis, rank))
        self._last = None
        self._rng = np.random.default_rng(random_state)
        self._level = 1  # multiplier of the starts (intensify)
        self._hints = np.zeros((0, self._ev.Xr.shape[1]))
        self._starts = st / np.maximum(np.linalg.norm(st, axis=1, keepdims=True), 1e-300)

    def _check_patterns(self, patterns, prob):
        X = prob.X
        if not isinstance(patterns, SignPatterns):
            raise ValueError(f"patterns must be a SignPatterns object or None; got {type(patterns).__name__}")
        if patterns.n_samples != X.shape[0]:
            raise ValueError(
                f"patterns were computed for {patterns.n_samples} rows but X has {X.shape[0]}"
            )
        if patterns.fingerprint and patterns.fingerprint != prob.fingerprint:
            raise ValueError("patterns were computed for a different X (fingerprint mismatch)")
        self._patterns = patterns
        return patterns.basis, patterns.rank, patterns.directions @ patterns.basis  # (P, r)

    @property
    def patterns(self) -> SignPatterns:
        """The sampled patterns searched (formed on first use when the oracle was built
        on data too large for its per-cell check)."""
        if self._patterns is None:
            prob = self.problem
            self._patterns = SignPatterns.of_directions(
                prob.X, self._directions, reduction=prob.reduction, x_fingerprint=prob.fingerprint)
        return self._patterns

    @property
    def n_patterns(self) -> int:
        """Patterns searched: the distinct sampled patterns, or (when they were not formed)
        the sampled directions, whose patterns on that much data are almost surely
        distinct."""
        if self._patterns is None:
            return int(self._directions.shape[0])
        return self._patterns.n_patterns

    def _cached_search(self, Z):
        """:meth:`_search`, reusing the last result for the same ``Z`` (a solver asks for
        the value and then for the candidates of one residual)."""
        if self._last is None or not np.array_equal(self._last[0], Z):
            self._last = (Z.copy(),) + self._search(Z)
        return self._last[1], self._last[2]

    def hint(self, U) -> None:
        """Directions (columns of ``U``, shape ``(d, m)``, e.g. a solver's current neurons)
        to start the next searches from, besides the oracle's own starts."""
        U = np.asarray(U, dtype=float)
        if U.ndim != 2 or U.shape[0] != self._ev.X.shape[1] or U.shape[1] == 0:
            self._hints = np.zeros((0, self._ev.Xr.shape[1]))
            return
        H = (self._ev.basis.T @ U).T  # (m, r) in reduced coordinates
        nrm = np.linalg.norm(H, axis=1, keepdims=True)
        self._hints = H[nrm[:, 0] > 0] / nrm[nrm[:, 0] > 0]

    def intensify(self) -> bool:
        """Search harder from now on: four times the starts (up to 64 times the
        original). Returns False when already at the limit."""
        if self._level >= 64:
            return False
        self._level *= 4
        self._last = None
        return True

    def _pools(self, Z):
        """The start pools of one call (reduced coordinates, unit rows)."""
        ev = self._ev
        Xr = ev.Xr
        r = Xr.shape[1]
        k = self.n_starts * self._level
        fresh = self._rng.standard_normal((k, r))
        zn = np.linalg.norm(Z, axis=1)
        top = np.argsort(zn)[::-1][:k]
        rows = take_rows(Xr, top)
        rows = rows[np.linalg.norm(rows, axis=1) > 0]
        pools = [self._starts, fresh, np.vstack([rows, -rows]), self._hints]
        out = []
        for p in pools:
            if p.shape[0]:
                out.append(p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-300))
        return out, k

    def _search(self, Z):
        """Candidates (reduced coordinates) with their squared values, best first."""
        ev = self._ev
        Xr = ev.Xr
        n, r = Xr.shape
        pools, k = self._pools(Z)
        S, extra, floor = [], [], 0.0
        # on large data, score at most cell_budget / (n (r + c)) starts per pool (a random
        # subset) and cap the ascent's iterations likewise, so that one call stays cheap
        cap = max(k, int(self.cell_budget / max(n * (r + Z.shape[1]), 1)))
        for starts in pools:
            if starts.shape[0] > cap:
                starts = starts[self._rng.choice(starts.shape[0], cap, replace=False)]
            vals = _relu_values(Xr, Z, starts)
            order = np.argsort(vals)[::-1]
            S.append(starts[order[:k]])
            extra.append(starts[order[0]])
            floor = max(floor, float(vals[order[0]]))
        S = np.vstack(S)
        if self._patterns is not None and \
                self._patterns.n_patterns * n * Z.shape[1] * r <= self.cell_budget:
            P = self._patterns.patterns
            # top eigenvector of each sampled cell's form, when it lies in the cell
            K = ev.kron(Z, ev.Xr)
            _, y, _ = _best_in_regions(ev, Z, K, P, None, DEFAULT_TIE_TOL, self.chunk,
                                    floor=floor)
            if y is not None:
                u_cell = y / ev.s
                extra.append(u_cell / np.linalg.norm(u_cell))
        U0 = np.vstack([S] + extra)
        n_iter = min(self.n_iter, max(5, int(20 * self.cell_budget
                                             / max(U0.shape[0] * n * (r + Z.shape[1]), 1))))
        U = np.vstack([_ascent(Xr, Z, U0, n_iter, self.deadline), np.array(extra)])
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
        scope = "sampled" if self._patterns is None else self._patterns.scope
        return OracleResult(value, u, value, "heuristic", scope, self.n_patterns,
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
