r"""``solver="frank-wolfe"``: the paper's Algorithm 1, as written (§3.2, App. A.4).

Epigraph form (eq. 14):

.. math::

    p^* = \min_{t \ge 0}\ \Big[\min_{V_i \in \mathcal K_i,\ \sum_i \|V_i\|_* \le t}
          \tfrac12\Big\|\sum_i D_i X V_i - Y\Big\|_F^2\Big] + \beta t .

The bracket plus :math:`\beta t` is convex in ``t``; the outer search brackets its
minimiser by doubling ``t`` (never beyond :math:`p/\beta` for the best objective ``p``
found, since :math:`\beta t^* \le p^*`) and then runs a golden-section search. The inner problem is solved by
Frank–Wolfe with step :math:`\alpha_k = 2/(2+k)`: the linear minimisation oracle (eq. 71)
is the exact cone-constrained PCA oracle, which returns the atom :math:`t\,u g^\top`
with :math:`g = R^\top (Xu)_+ / \|R^\top (Xu)_+\|`, and the update is
:math:`V \leftarrow (1-\alpha) V + \alpha t\, u g^\top`. The Frank–Wolfe gap
:math:`t\,\Omega(R) - \langle R, F\rangle` (``R`` the residual) is recorded at every step.
The same oracle value certifies the current network (one call, two uses); the solve
stops when the certificate's relative gap reaches ``tol``, and the best dual bound seen
at any step is kept (every one is a valid lower bound on :math:`p^*`).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .._validation import check_positive_float, check_positive_int, check_tol
from ..network import TwoLayerReLU
from .base import IterationLog, SolveResult, Solver

__all__ = ["FrankWolfe"]

logger = logging.getLogger(__name__)

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


class _Atoms:
    """The iterate :math:`\\sum_j w_j (X u_j)_+ g_j^\\top` with unit ``u_j``, ``g_j``."""

    def __init__(self, d, c):
        self.U = np.zeros((d, 0))
        self.G = np.zeros((0, c))
        self.w = np.zeros(0)

    def step(self, alpha, t, u, g):
        self.w *= 1.0 - alpha
        if self.U.shape[1]:
            j = int(np.argmax(self.U.T @ u))
            if abs(float(self.U[:, j] @ u) - 1.0) <= 1e-12:  # same direction: merge outputs
                v = self.w[j] * self.G[j] + alpha * t * g
                nv = float(np.linalg.norm(v))
                self.w[j] = nv
                self.G[j] = v / nv if nv > 0 else self.G[j]
                return
        self.U = np.hstack([self.U, u[:, None]])
        self.G = np.vstack([self.G, g[None, :]])
        self.w = np.append(self.w, alpha * t)

    def network(self):
        keep = self.w > 0
        r = np.sqrt(self.w[keep])
        return TwoLayerReLU(self.U[:, keep] * r, self.G[keep] * r[:, None])


class FrankWolfe(Solver):
    r"""The paper's Algorithm 1 (``solver="frank-wolfe"``).

    Parameters
    ----------
    tol : float, default 1e-6
        Stop when the certificate's relative gap is at most ``tol``.
    max_iter : int, default 20000 (no limit when ``time_limit`` is given)
        Total Frank–Wolfe steps over all values of ``t``.
    inner_tol : float, default 1e-4
        An inner solve stops when its Frank–Wolfe gap is at most ``inner_tol`` times its
        objective.
    inner_max_iter : int, default 500
        Frank–Wolfe steps per value of ``t`` in the first round of the search over
        ``t``; each later round (a new bracket and golden-section search) allows 4x more.
    n_outer : int, default 40
        Golden-section steps over ``t`` per round.
    t : float, optional
        A fixed bound :math:`t` on :math:`\sum_i \|V_i\|_*` instead of the search: the
        paper's protocol (App. A.1.3, A.1.5 take ``t`` from an SGD solution's penalty
        :math:`\tfrac12\sum_j \|u_j\|^2 + \|v_j\|^2`). One Frank–Wolfe run of up to
        ``max_iter`` steps; it stops early when the Frank–Wolfe gap is at most
        ``inner_tol`` times the objective or the certificate reaches ``tol``. The result is
        optimal for eq. 5 only if ``t`` is the optimal ``t*``; the certificate says how far.
    time_limit, verbose, callback
        As for :class:`~convexrelu.solvers.cg.ConditionalGradient`.
    """

    name = "frank-wolfe"
    losses = "smooth"
    default_max_iter = 20000

    def __init__(self, *, tol=1e-6, max_iter=None, inner_tol=1e-4, inner_max_iter=500,
                 n_outer=40, t=None, time_limit=None, verbose=0, callback=None,
                 random_state=None):
        self._set_common(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                         callback=callback, random_state=random_state)
        if t is not None:
            t = check_positive_float(t, "t", "None or a positive number")
        self.t = t
        self.inner_tol = check_tol(inner_tol, "inner_tol")
        self.inner_max_iter = check_positive_int(inner_max_iter, "inner_max_iter")
        self.n_outer = check_positive_int(n_outer, "n_outer")

    def _solve(self, problem, beta, oracle, init=None) -> SolveResult:
        X, Y, loss = problem.X, problem.Y, problem.loss
        self._loss = loss
        log = IterationLog(self.name, X, Y, beta, loss, self.tol, self.verbose, self.callback,
                           self.time_limit, t0=self._started)
        self._log, self._steps = log, 0
        d, c = X.shape[1], Y.shape[1]
        status = "max_iter"
        try:
            # t = 0 is the zero network: certify it (it may already be optimal)
            self._inner(X, Y, beta, oracle, 0.0)
            if self.t is not None:  # the paper's protocol: one run at a given t
                self._inner_steps = self.max_iter
                if not self._stop():
                    self._inner(X, Y, beta, oracle, self.t)
            # rounds of (bracket, golden section); each round gives the inner Frank-Wolfe
            # solves 4x more steps, until the certificate, max_iter or the time limit
            self._inner_steps = self.inner_max_iter
            while self.t is None and not self._stop():
                self._search_t(X, Y, beta, oracle)
                self._inner_steps *= 4
            if log.converged():
                status = log.converged_status()  # "optimal" only when proven
            elif log.out_of_time():
                status = "time_limit"
        except KeyboardInterrupt:
            status = "interrupted"
            logger.warning("frank-wolfe: interrupted; returning the best network so far")
        return log.result(status, self._steps)

    def _search_t(self, X, Y, beta, oracle):
        """Bracket the minimiser of phi(t), then golden-section search inside the bracket."""
        a, b = self._bracket(X, Y, beta, oracle)
        c_, d_ = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        fc = self._inner(X, Y, beta, oracle, c_)
        fd = self._inner(X, Y, beta, oracle, d_)
        for _ in range(self.n_outer):
            if self._stop():
                return
            if fc <= fd:  # the minimum lies in [a, d]
                b, d_, fd = d_, c_, fc
                c_ = b - _GOLDEN * (b - a)
                fc = self._inner(X, Y, beta, oracle, c_)
            else:  # in [c, b]
                a, c_, fc = c_, d_, fd
                d_ = a + _GOLDEN * (b - a)
                fd = self._inner(X, Y, beta, oracle, d_)

    def _bracket(self, X, Y, beta, oracle):
        r"""An interval ``[a, b]`` around the minimiser of the convex ``phi(t)``.

        Doubling from :math:`t_0 = \|Y\|_F / (4\|X\|_2)` (a path norm whose network can
        reach the scale of ``Y``) until ``phi`` increases, never beyond
        :math:`p / \beta` for the best objective ``p`` seen so far (since
        :math:`\beta t^* \le p^*`).
        """
        cap = lambda: self._log.best_primal / beta  # noqa: E731
        t = min(float(np.linalg.norm(Y)) / (4.0 * max(np.linalg.norm(X, 2), 1e-300)), cap())
        ts, phis = [0.0], [self._loss.value(np.zeros_like(Y), Y)]
        while not self._stop():
            ts.append(t)
            phis.append(self._inner(X, Y, beta, oracle, t))
            if phis[-1] >= phis[-2] or t >= cap():
                break
            t = min(2.0 * t, cap())
        lo = ts[-3] if len(ts) >= 3 else 0.0
        return lo, ts[-1]

    def _stop(self):
        return self._log.converged() or self._steps >= self.max_iter or self._log.out_of_time()

    def _inner(self, X, Y, beta, oracle, t):
        r"""Algorithm 1 for this ``t``: Frank–Wolfe from ``V = 0`` with step ``2/(2+k)``.

        Returns :math:`L(F, Y) + \beta t` at the last iterate (any smooth loss: the
        oracle is called on the loss gradient, App. A.6).
        """
        log = self._log
        atoms = _Atoms(X.shape[1], Y.shape[1])
        net = atoms.network()
        F = np.zeros_like(Y)
        loss = self._loss
        phi = loss.value(F, Y) + beta * t
        for k in range(getattr(self, "_inner_steps", self.inner_max_iter)):
            R = -loss.gradient(F, Y)  # the residual Y - F for the squared loss
            res = oracle(-R)
            fw_gap = t * res.value - float(np.vdot(R, F))
            phi = loss.value(F, Y) + beta * t
            log.record(net, F, res, fw_gap=fw_gap, t=t)
            self._steps += 1
            if self._stop() or t == 0.0 or fw_gap <= self.inner_tol * phi:
                break
            a = np.maximum(X @ res.u, 0.0)
            ra = R.T @ a
            nra = float(np.linalg.norm(ra))
            if nra == 0.0:
                break
            g = ra / nra
            alpha = 2.0 / (2.0 + k)
            atoms.step(alpha, t, res.u, g)
            F = (1.0 - alpha) * F + alpha * t * np.outer(a, g)
            net = atoms.network()
        return phi
