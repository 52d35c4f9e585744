r"""``solver="copositive-fo"``: a first-order solver for the relaxations eq. 19/20.

Each lifted block of :func:`~convexrelu.solvers.copositive.solve_relaxation` is factored
(Burer–Monteiro), :math:`\Lambda_i = R_i R_i^\top` with :math:`R_i = [P_i; Q_i]`,
:math:`P_i \in \mathbb{R}^{r \times k}`, :math:`Q_i \in \mathbb{R}^{c \times k}`, so that
the PSD constraint holds by construction and the problem becomes

.. math::

    \min_{P, Q}\ \tfrac12 \Big\|\sum_i D_i X P_i Q_i^\top - Y\Big\|^2
      + \tfrac\beta2 \sum_i (\|P_i\|^2 + \|Q_i\|^2)
    \quad\text{s.t.}\quad g_i = N_i P_i P_i^\top N_i^\top \ge 0 \ \text{(elementwise)},

with :math:`N_i` the row-normalised :math:`(2D_i - I) X` (in whitened coordinates). The
elementwise constraints are handled by an **augmented Lagrangian** (multipliers
:math:`M_i \ge 0`, penalty :math:`\rho` raised when the violation stalls), not by a hinge
penalty: the violation goes to zero, and the result reports it. The inner problems are
smooth and solved by scipy's L-BFGS-B, warm-started.

What it returns: the relaxation objective at the final point and its largest constraint
violation (an approximate value: not a bound), a network recovered from the factors (the
columns of :math:`P_i` signed into the cone, outputs by the group-lasso restricted
solve) with its certificate, and a rigorous lower bound on ``p*``: the certificate's
dual value when its oracle is exact, else the network's residual scaled by
:math:`\beta / (\sigma_{\max}(Z)\sigma_{\max}(X))` (dual feasible because
:math:`\|Z^\top (Xu)_+\| \le \|Z\|_2 \|X\|_2 \|u\|`; valid for any data, but loose).
"""

from __future__ import annotations

import logging
import time

import numpy as np
from scipy.optimize import minimize

from .._validation import check_choice, check_positive_int, check_tol
from .base import IterationLog, Solver
from .copositive import FORMS, _cone_rows, _whiten, is_whitened_spike_free
from .engine import _deadline_callback

class _OutOfTime(Exception):
    """Raised inside an objective evaluation once the deadline has passed."""


#: Most directions the network recovery keeps (the heaviest columns of the factors).
MAX_RECOVERED = 1000

__all__ = ["CopositiveFO"]

logger = logging.getLogger(__name__)


class CopositiveFO(Solver):
    """Burer–Monteiro + augmented Lagrangian for eq. 19/20 (``solver="copositive-fo"``).

    Parameters
    ----------
    form : {"auto", "eq19", "eq20"}, default "auto"
        As for :class:`~convexrelu.solvers.copositive.CopositiveRelaxation`; eq. 19 uses the
        oracle's patterns (sampled ones when they are not enumerable, which is flagged).
    rank : int, optional
        Columns ``k`` of each factor (default ``r + c``, enough for any PSD block).
    tol : float, default 1e-6
        Relative stationarity target of the inner solves and of the certificate.
    feas_tol : float, default 1e-6
        Stop when the largest constraint violation (relative to the blocks' trace) is below.
    max_outer : int, default 30
        Augmented-Lagrangian (multiplier) updates.
    inner_iter : int, default 500
        L-BFGS-B iterations per inner solve.
    random_state : int or None, default 0
        Initial factors.
    time_limit : float, optional
    verbose : int, default 0
    callback : callable, optional
    """

    name = "copositive-fo"

    losses = ("squared",)
    default_max_iter = 30

    def __init__(self, *, form="auto", rank=None, tol=1e-6, feas_tol=1e-6, max_outer=None,
                 inner_iter=500, random_state=0, time_limit=None, verbose=0, callback=None,
                 max_iter=None):
        if max_outer is not None and max_iter is not None and max_outer != max_iter:
            raise ValueError(f"max_outer is another name for max_iter; got max_iter={max_iter!r} "
                             f"and max_outer={max_outer!r}")
        self._set_common(tol=tol, max_iter=max_iter if max_iter is not None else max_outer,
                         time_limit=time_limit, verbose=verbose, callback=callback,
                         random_state=random_state)
        self.form = check_choice(form, FORMS, "form")
        self.rank = None if rank is None else check_positive_int(rank, "rank")
        self.feas_tol = check_tol(feas_tol, "feas_tol")
        self.inner_iter = check_positive_int(inner_iter, "inner_iter")

    @property
    def max_outer(self) -> int:
        """Augmented-Lagrangian rounds: the same as ``max_iter``."""
        return self.max_iter

    def _solve(self, problem, beta, oracle, init=None):
        from .engine import network_from_atoms

        X, Y, loss = problem.X, problem.Y, problem.loss
        log = IterationLog(self.name, X, Y, beta, loss, self.tol, self.verbose, self.callback,
                           self.time_limit, t0=self._started)
        # time_limit is wall time from the call: the inner L-BFGS stops at the deadline too,
        # leaving a tenth of the limit (at least 1 s) for the network's recovery and
        # certificate
        deadline = None if self.time_limit is None else \
            log.t0 + float(self.time_limit) - max(0.1 * float(self.time_limit), 1.0)
        spike_free = is_whitened_spike_free(problem)
        form = self.form if self.form != "auto" else ("eq20" if spike_free else "eq19")
        W, s, A = _whiten(problem)
        Wsc = W * s[None, :]
        n, r = Wsc.shape
        c = Y.shape[1]
        if form == "eq20":
            pats, scope = np.ones((1, n), dtype=bool), "exact"
        else:
            P_obj = oracle.patterns
            if P_obj is None:  # rank <= 2 exact oracle sweeps instead of storing them
                P_obj = problem.patterns()
            pats, scope = P_obj.patterns, P_obj.scope
        nb = pats.shape[0]
        k = self.rank or (r + c)
        Ns = [_cone_rows(Wsc, p) for p in pats]
        DX = [Wsc * p[:, None] for p in pats]
        rng = np.random.default_rng(self.random_state)
        scale = np.sqrt(np.linalg.norm(Y) / max(np.linalg.norm(Wsc, 2), 1e-300) / (nb * k))
        x = scale * rng.standard_normal(nb * (r + c) * k)
        # start with the factors' P columns inside the cones: |N P| has no sign issue then
        Ms = [np.zeros((n, n)) for _ in range(nb)]
        rho = 1.0 / max(float(np.max(np.linalg.norm(Wsc, axis=1))) ** 2, 1e-300)
        rho *= beta

        def unpack(x):
            Z = x.reshape(nb, r + c, k)
            return Z[:, :r, :], Z[:, r:, :]

        signs = [np.where(p, 1.0, -1.0) / np.maximum(np.linalg.norm(Wsc, axis=1), 1e-300)
                 for p in pats]  # N_i = diag(signs_i) Wsc
        pf = [p.astype(float) for p in pats]
        WscT = Wsc.T

        def fun(x, rho):
            P, Q = unpack(x)
            WP = [Wsc @ P[i] for i in range(nb)]  # (n, k) each
            F = sum((pf[i][:, None] * WP[i]) @ Q[i].T for i in range(nb))
            R = F - Y
            val = 0.5 * np.vdot(R, R) + 0.5 * beta * float(np.vdot(x, x))
            gP, gQ = np.empty_like(P), np.empty_like(Q)
            for i in range(nb):
                G = signs[i][:, None] * WP[i]  # N_i P_i
                Mi = np.maximum(0.0, Ms[i] - rho * (G @ G.T))
                np.fill_diagonal(Mi, 0.0)
                val += (0.5 / rho) * (np.vdot(Mi, Mi) - np.vdot(Ms[i], Ms[i]))
                PR = pf[i][:, None] * R  # D_i R
                gQ[i] = PR.T @ WP[i] + beta * Q[i]
                gP[i] = WscT @ (PR @ Q[i] - 2.0 * signs[i][:, None] * (Mi @ G)) + beta * P[i]
            return val, np.concatenate([gP, gQ], axis=1).ravel()

        def violation(x):
            P, _ = unpack(x)
            tr = sum(float(np.vdot(P[i], P[i])) for i in range(nb))
            v = max(max(0.0, -float(np.min((Ns[i] @ P[i]) @ (Ns[i] @ P[i]).T))) for i in range(nb))
            return v / max(tr, 1e-300)

        status, viol, it, prev = "max_iter", np.inf, 0, np.inf
        eval_s = [0.0]  # duration of the last objective evaluation
        try:
            for it in range(1, self.max_outer + 1):
                if deadline is not None and time.perf_counter() >= deadline:
                    status = "time_limit"
                    break
                # one evaluation costs O(blocks n^2): the deadline is checked at every
                # evaluation, and the best point evaluated so far is kept
                best = [np.inf, x]

                def timed(x_, rho_, best=best):
                    now = time.perf_counter()
                    if deadline is not None and now + eval_s[0] >= deadline:
                        raise _OutOfTime  # this evaluation would end past the deadline
                    out = fun(x_, rho_)
                    eval_s[0] = time.perf_counter() - now
                    if out[0] < best[0]:
                        best[0], best[1] = out[0], x_.copy()
                    return out

                try:
                    res = minimize(timed, x, args=(rho,), jac=True, method="L-BFGS-B",
                                   callback=_deadline_callback(deadline),
                                   options=dict(maxiter=self.inner_iter, gtol=1e-10, ftol=1e-15))
                    x = res.x
                except _OutOfTime:
                    x = best[1]
                    status = "time_limit"
                    break

                P, _ = unpack(x)
                for i in range(nb):
                    G = Ns[i] @ P[i]
                    Ms[i] = np.maximum(0.0, Ms[i] - rho * (G @ G.T))
                    np.fill_diagonal(Ms[i], 0.0)
                viol = violation(x)
                logger.info("copositive-fo: outer %d  violation %.2e  rho %.2e", it, viol, rho)
                if viol <= self.feas_tol:
                    status = "feasible"  # the relaxation's stop; the certificate decides below
                    break
                if viol > 0.25 * prev:
                    rho *= 5.0
                prev = viol
                if deadline is not None and time.perf_counter() >= deadline:
                    status = "time_limit"
                    break
        except KeyboardInterrupt:
            status = "interrupted"
        P, Q = unpack(x)
        F = sum(DX[i] @ P[i] @ Q[i].T for i in range(nb))
        rel_obj = 0.5 * float(np.sum((F - Y) ** 2)) + 0.5 * beta * float(np.vdot(x, x))
        # network: columns of P signed into their cones, outputs re-solved
        zmap = A * s[None, :]
        dirs, weights = [], []
        for i in range(nb):
            for j in range(k):
                z = P[i][:, j]
                nz = np.linalg.norm(z)
                if nz <= 1e-8 * max(np.linalg.norm(P[i]), 1e-300):
                    continue
                g = Ns[i] @ z
                if np.min(g) < np.min(-g):
                    z = -z
                u = zmap @ z
                dirs.append(u / np.linalg.norm(u))
                weights.append(nz * float(np.linalg.norm(Q[i][:, j])))
        if len(dirs) > MAX_RECOVERED:
            # the heaviest columns (|p| |q|, their share of the path norm): a master over
            # thousands of atoms costs more than the relaxation itself
            top = np.argsort(weights)[::-1][:MAX_RECOVERED]
            logger.info("copositive-fo: %d directions recovered; the %d heaviest are kept",
                        len(dirs), MAX_RECOVERED)
            dirs = [dirs[t] for t in np.sort(top)]
        U = np.array(dirs).T if dirs else np.zeros((X.shape[1], 0))
        # first order here too: the interior point costs O((n c)^1.5+) at these sizes
        net = network_from_atoms(X, Y, beta, U, tol=1e-8, max_iter=5000, method="fista",
                                 deadline=None if deadline is None else deadline + 0.5 * (
                                     log.t0 + float(self.time_limit) - deadline))
        Fn = net.predict(X)
        cert = log.record(net, Fn, oracle(loss.gradient(Fn, Y)))
        Zd = Y - Fn
        sz = float(np.linalg.norm(Zd, 2)) * float(np.linalg.norm(X, 2))
        sc = min(1.0, beta / sz) if sz > 0 else 1.0
        spectral_lb = 0.5 * float(np.vdot(Y, Y)) - 0.5 * float(np.sum((sc * Zd - Y) ** 2))
        lb, lb_reason = spectral_lb, "spectral: residual scaled by beta / (|Z|_2 |X|_2)"
        if cert.is_rigorous and cert.dual > lb:
            lb, lb_reason = cert.dual, f"certificate ({cert.oracle_kind} oracle)"
        info = dict(relaxation_value=rel_obj, max_violation=viol, form=form, rank=k,
                    n_blocks=nb, pattern_scope=scope, outer_iterations=it,
                    lower_bound=lb, lower_bound_reason=lb_reason,
                    relaxation_value_is_bound=False,
                    recovery_gap=(cert.primal - rel_obj) / max(abs(cert.primal), 1e-300),
                    relaxation_feasible=bool(viol <= self.feas_tol))
        # the status is about the network returned: its certificate decides "optimal" (a
        # proof) or "estimate_converged"; a feasible relaxation alone proves nothing
        if status != "interrupted" and log.converged():
            status = log.converged_status()
        elif status == "feasible":
            status = "recovery_gap"
        return log.result(status, it, info=info)
