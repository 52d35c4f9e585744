r"""The oracle as a mixed-integer programme, solved by SCIP (``pyscipopt``, an optional
extra): a second, independent route to a proven bound on :math:`\Omega(Z)`, for comparison
with :class:`~convexrelu.oracles.BranchAndBoundOracle`.

The formulation, in the rank-reduced directions :math:`u \in \mathbb{R}^r`: one binary
:math:`s_i` per row for its activation, :math:`a_i = (x_i^\top u)_+` through the big-M
constraints :math:`a_i \ge x_i^\top u`, :math:`a_i \le x_i^\top u + M_i (1 - s_i)`,
:math:`0 \le a_i \le M_i s_i` with :math:`M_i = \|x_i\|` (valid since
:math:`\|u\| \le 1`), :math:`\|u\|^2 \le 1`, :math:`y = Z^\top a` and the non-convex
:math:`t \le \|y\|^2`; maximise :math:`t`. SCIP's spatial branch and bound gives a dual
bound on :math:`t`.

What we check before using it: SCIP works in floating point with a feasibility tolerance
(``feastol``, 1e-6 by default), so its dual bound is its claim, not a verified one. The
oracle (1) re-evaluates SCIP's best direction itself (SCIP's own primal value may exceed
:math:`\Omega` within its tolerances), (2) adds an explicit margin to the dual bound: every
:math:`a_i` may be off by ``feastol`` times its constraint's scale, which moves
:math:`\|Z^\top a\|` by at most ``feastol * sum_i |z_i| max(1, M_i)``, and (3) refuses the
bound (falls back to the spectral bound, and says so in ``source``) when it is below a
value we attain. The result is ``kind="upper_bound"``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..kernels import spectral_norm
from ._common import _ascent, _Evaluator, _relu_values, contribution_scale
from .base import OracleBase, OracleResult, in_memory_problem
from .spectral import spectral_bound

__all__ = ["SCIPOracle"]


class SCIPOracle(OracleBase):
    r"""SCIP on the mixed-integer formulation of the oracle (``kind="upper_bound"``).

    Parameters
    ----------
    X : array of shape (n, d) or Problem
    time_limit : float, default 60
        SCIP's time limit per call, in seconds.
    feastol : float, default 1e-6
        SCIP's feasibility tolerance (``numerics/feastol``); it sets the margin added to
        the dual bound.

    Attributes
    ----------
    last_stats : dict
        Of the last call: ``nodes``, ``status`` (SCIP's), ``dual`` (SCIP's bound on
        :math:`\Omega`, before the margin), ``primal`` (SCIP's own value, before our
        re-evaluation), ``refused`` (bool).
    """

    kind = "upper_bound"

    def __init__(self, X, *, time_limit: float = 60.0, feastol: float = 1e-6):
        try:
            import pyscipopt  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the SCIP oracle needs pyscipopt: pip install 'convexrelu[scip]' (or "
                "pip install pyscipopt)") from exc
        if not (np.isfinite(time_limit) and time_limit > 0):
            raise ValueError(f"time_limit must be a positive number of seconds; got {time_limit!r}")
        if not (np.isfinite(feastol) and 0 < feastol < 1e-2):
            raise ValueError(f"feastol must be in (0, 1e-2); got {feastol!r}")
        self.problem = in_memory_problem(X, "the SCIP oracle")
        self.time_limit, self.feastol = float(time_limit), float(feastol)
        self._ev = _Evaluator(self.problem)
        self._xnorm = spectral_norm(self._ev.Xr) if self._ev.Xr.size else 0.0
        self.last_stats: dict = {}

    def __call__(self, Z) -> OracleResult:
        t0 = time.perf_counter()
        ev = self._ev
        Z = ev.check_Z(Z)
        # X_r and Z scaled by powers of two (exact; Omega scales with both) so that the
        # rows that add to Omega have coefficients of order one (contribution_scale)
        kx = -int(np.frexp(float(np.max(np.abs(ev.Xr))))[1]) if ev.Xr.size and np.any(ev.Xr) else 0
        Xr = np.ldexp(ev.Xr, kx)
        ez, Z_s = contribution_scale(Z, Xr)
        unscale = ez - kx  # values on the scaled data times 2**unscale
        r = Xr.shape[1]
        Mi = np.linalg.norm(Xr, axis=1)
        spec = spectral_bound(Z_s, float(np.ldexp(self._xnorm, kx))) if r else 0.0
        try:
            return self._solve(t0, ev, Z, Z_s, Xr, Mi, spec, unscale)
        except Exception as exc:  # SCIP refused the model (its numerics): say so, bound anyway
            if "SCIP" not in f"{type(exc).__name__}: {exc}":
                raise
            margin = float(np.ldexp(4.0 * ev.rounding(Z_s), unscale)) + ev.margin(Z)
            self.last_stats = dict(nodes=0, status="error", dual=float("nan"),
                                   primal=float("nan"), refused=True)
            U0 = _ascent(Xr, Z_s, np.eye(r)[:1], 30) if r else np.zeros((1, 0))
            best = U0[0] / np.linalg.norm(U0[0]) if r else np.zeros(0)
            attained = float(np.ldexp(np.sqrt(_relu_values(Xr, Z_s, best[None, :])[0]), unscale)) \
                if r else 0.0
            return OracleResult(float(np.ldexp(spec, unscale)) + margin,
                                ev.to_original(best) if r else np.eye(self.problem.d)[0],
                                attained, "upper_bound", "exact", None,
                                time.perf_counter() - t0, margin,
                                source=f"spectral bound (SCIP refused the model: {exc})")

    def _solve(self, t0, ev, Z_in, Z, Xr, Mi, spec, unscale):
        from pyscipopt import Model, quicksum

        n, r = Xr.shape
        c = Z.shape[1]
        m = Model("omega")
        m.hideOutput()
        m.setParam("limits/time", max(self.time_limit - (time.perf_counter() - t0), 0.1))
        m.setParam("numerics/feastol", self.feastol)
        m.setParam("parallel/maxnthreads", 1)
        u = [m.addVar(lb=-1.0, ub=1.0, name=f"u{j}") for j in range(r)]
        a = [m.addVar(lb=0.0, ub=float(Mi[i]), name=f"a{i}") for i in range(n)]
        s = [m.addVar(vtype="B", name=f"s{i}") for i in range(n)]
        for i in range(n):
            if Mi[i] == 0:
                continue
            lin = quicksum(float(Xr[i, j]) * u[j] for j in range(r) if Xr[i, j] != 0)
            m.addCons(a[i] >= lin)
            m.addCons(a[i] <= lin + float(Mi[i]) * (1 - s[i]))
            m.addCons(a[i] <= float(Mi[i]) * s[i])
        m.addCons(quicksum(uj * uj for uj in u) <= 1.0)
        ybound = float(np.max(np.abs(Z).T @ Mi)) if n else 0.0  # |y_k| <= sum |z_ik| M_i
        y = [m.addVar(lb=-ybound - 1.0, ub=ybound + 1.0, name=f"y{k}") for k in range(c)]
        for k in range(c):
            m.addCons(y[k] == quicksum(float(Z[i, k]) * a[i] for i in range(n) if Z[i, k] != 0))
        t = m.addVar(lb=0.0, ub=spec ** 2 * (1 + 1e-9) + 1e-12, name="t")
        m.addCons(t <= quicksum(yk * yk for yk in y))
        m.setObjective(t, "maximize")
        m.optimize()
        dual_t = float(m.getDualbound())
        status = str(m.getStatus())
        nodes = int(m.getNNodes())
        # our own lower bound: SCIP's direction (if any), polished by ascent, re-evaluated
        starts = [np.eye(r)[0]]
        primal = float("nan")
        if m.getNSols() > 0:
            sol = m.getBestSol()
            starts.insert(0, np.array([m.getSolVal(sol, uj) for uj in u]))
            primal = math.sqrt(max(float(m.getSolObjVal(sol)), 0.0))
        U0 = np.array([w if np.linalg.norm(w) > 0 else np.eye(r)[0] for w in starts])
        U0 = _ascent(Xr, Z, U0, 30)
        vals = np.sqrt(_relu_values(Xr, Z, U0))
        jb = int(np.argmax(vals))
        attained, best = float(vals[jb]), U0[jb] / np.linalg.norm(U0[jb])
        margin = self.feastol * float(np.linalg.norm(Z, axis=1) @ np.maximum(1.0, Mi)) \
            + 4.0 * ev.rounding(Z)
        bound = math.sqrt(max(dual_t, 0.0)) * (1 + 1e-9) + margin
        refused = not np.isfinite(bound) or bound < attained
        source = "SCIP (MIQCP, dual bound plus feastol margin)"
        if refused or bound > spec + margin:
            bound = spec + margin
            source = "spectral bound" + (" (SCIP's bound refused: below an attained value)"
                                         if refused else " (SCIP's bound was looser)")
        # back to the data's scale; the rank truncation's margin on the original Z
        rank_margin = ev.margin(Z_in)
        bound = float(np.ldexp(bound, unscale)) + rank_margin
        margin = float(np.ldexp(margin, unscale)) + rank_margin
        attained = float(np.ldexp(attained, unscale))
        self.last_stats = dict(nodes=nodes, status=status,
                               dual=float(np.ldexp(math.sqrt(max(dual_t, 0.0)), unscale)),
                               primal=float(np.ldexp(primal, unscale)), refused=bool(refused))
        return OracleResult(float(bound), ev.to_original(best), attained, "upper_bound",
                            "exact", None, time.perf_counter() - t0, float(margin),
                            source=source)
