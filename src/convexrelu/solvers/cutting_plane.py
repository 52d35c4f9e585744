r"""``solver="cutting-plane"``: the analytic-center cutting-plane method on the dual (App. A.5).

The dual of training (paper eq. 73) is

.. math::

    d^* = \max_Z\ -\tfrac12\|Z - Y\|_F^2 + \tfrac12\|Y\|_F^2
    \quad\text{s.t.}\quad \|Z^\top (Xu)_+\| \le \beta \ \ \forall \|u\| \le 1 ,

a convex problem with infinitely many constraints whose separation oracle is the
cone-constrained PCA (the exact oracle). ACCPM keeps the localization set

.. math::

    \mathcal{L}_k = \{Z : \|Z^\top h_j\| < \beta \ (j \le m_k),\ d(Z) > \ell_k\},
    \qquad h_j = (X u_j)_+ ,

where the ``u_j`` are the directions of the cuts found so far and :math:`\ell_k` is (just
below) the best dual value proven so far, and queries the oracle at its analytic center
(the maximiser of the log-barrier, by damped Newton). At the center :math:`Z_c`:

* the oracle gives :math:`\Omega(Z_c)`; the scaled point
  :math:`Z_c \min(1, \beta / \Omega(Z_c))` is dual feasible, so its value is a **lower
  bound** on ``p*`` (the best one is kept: the history of ``lower_bound`` is monotone);
* every violated cell's best direction becomes a new cut (the second-order-cone
  constraint itself, which is tighter than its linearisation).

The primal network comes from the multipliers of the cuts: the problem restricted to the
cuts found, :math:`\max d(Z)` s.t. :math:`\|Z^\top h_j\| \le \beta`, is the dual of the
group lasso over the atoms :math:`h_j`, whose solution ``V`` (the multipliers) gives the
network :math:`\sum_j (X u_j)_+ v_j^\top`; its objective is the **upper bound**, and its
certificate (exact oracle on its residual) another lower bound. It stops when
``(upper - lower) / upper <= tol``.

Each Newton step factors an ``nc x nc`` matrix: meant for small problems (``n c`` up to
a few thousand), as in the paper's complexity analysis (poly(nc) per cut).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.linalg as sla

from .._validation import check_positive_int
from .base import IterationLog, Solver
from .engine import has_direction, network_from_atoms

__all__ = ["CuttingPlane"]

logger = logging.getLogger(__name__)

#: Largest ``n * c`` accepted (a dense Newton system of that size per step).
MAX_DUAL_SIZE = 6000


def _dual_value(Z, Y):
    return 0.5 * float(np.vdot(Y, Y)) - 0.5 * float(np.sum((Z - Y) ** 2))


class CuttingPlane(Solver):
    """Analytic-center cutting-plane method on the dual (``solver="cutting-plane"``).

    Parameters
    ----------
    tol : float, default 1e-6
        Stop when ``(upper - lower) / upper <= tol``.
    max_iter : int, default 500 (no limit when ``time_limit`` is given)
        Analytic centers (one oracle call each).
    max_add : int, default 20
        Cuts added per center: the most violated direction and the best direction of other
        violated cells.
    newton_iter : int, default 60
        Newton steps per centering.
    time_limit : float, optional
    verbose : int, default 0
    callback : callable, optional
    """

    name = "cutting-plane"

    losses = ("squared",)
    default_max_iter = 500

    def __init__(self, *, tol=1e-6, max_iter=None, max_add=20, newton_iter=60, time_limit=None,
                 verbose=0, callback=None, random_state=None):
        self._set_common(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                         callback=callback, random_state=random_state)
        self.max_add = check_positive_int(max_add, "max_add")
        self.newton_iter = check_positive_int(newton_iter, "newton_iter")

    def _solve(self, problem, beta, oracle, init=None):
        X, Y, loss = problem.X, problem.Y, problem.loss
        n, c = Y.shape
        if n * c > MAX_DUAL_SIZE:
            raise ValueError(f"cutting-plane factors an (n c) x (n c) Newton system; n * c = "
                             f"{n * c} exceeds {MAX_DUAL_SIZE}. Use solver='cg'.")
        log = IterationLog(self.name, X, Y, beta, loss, self.tol, self.verbose, self.callback,
                           self.time_limit, t0=self._started)
        rigorous = oracle.kind in ("exact", "upper_bound")
        d = X.shape[1]
        Ucut = np.zeros((d, 0))
        # a strictly feasible start: Y scaled well inside the dual feasible set
        res0 = oracle(-Y)
        s0 = min(1.0, beta / res0.value) if res0.value > 0 else 1.0
        Zf = s0 * Y
        lower = _dual_value(Zf, Y)
        status, k = "max_iter", 0
        # time_limit: the inner Newton steps stop early enough (as long as the last one
        # took) for the next master and oracle calls; none starts past the deadline
        self._deadline = None if self.time_limit is None else log.t0 + float(self.time_limit)
        try:
            for k in range(self.max_iter + 1):
                # primal from the multipliers of the cuts (the restricted master)
                net = network_from_atoms(X, Y, beta, Ucut, tol=1e-10, deadline=self._deadline)
                F = net.predict(X)
                if rigorous:
                    log.best_dual = max(log.best_dual, lower)
                res_net = oracle(loss.gradient(F, Y))
                cert = log.record(net, F, res_net, lower_bound=lower, n_cuts=Ucut.shape[1])
                stop = log.stop_status(k, self.max_iter)
                if stop is not None:
                    status = stop
                    break
                # the network's scaled residual is a dual-feasible point too
                sn = min(1.0, beta / res_net.value) if res_net.value > 0 else 1.0
                ln = _dual_value(sn * (Y - F), Y)
                if rigorous and ln > lower:
                    lower, Zf = ln, sn * (Y - F)
                upper = cert.primal
                Zc = self._center(X, Y, beta, Ucut, Zf, lower, upper)
                res = oracle(-Zc)  # the oracle takes the loss gradient, -Z
                sc = min(1.0, beta / res.value) if res.value > 0 else 1.0
                lc = _dual_value(sc * Zc, Y)
                if rigorous and lc > lower:
                    lower, Zf = lc, sc * Zc
                if res.value > beta:
                    _, new = oracle.candidates(-Zc, beta, self.max_add)
                    if new.shape[0] == 0:
                        new = res.u[None, :]
                    Ucut = _add_cuts(X, Ucut, new)
        except KeyboardInterrupt:
            status = "interrupted"
            logger.warning("cutting-plane: interrupted at iteration %d", k)
        best = log.best_cert.dual if log.best_cert is not None else -np.inf
        info = dict(lower_bound=float(max(lower, best)) if rigorous else None,
                    n_cuts=int(Ucut.shape[1]))
        return log.result(status, k, info=info)

    def _center(self, X, Y, beta, Ucut, Zf, lower, upper):
        """Analytic center of the localization set, by damped Newton from inside it."""
        n, c = Y.shape
        H = np.maximum(X @ Ucut, 0.0)  # (n, m)
        b2 = beta * beta
        # objective cut just below the best lower bound, so that Zf is strictly inside
        delta = max(1e-3 * (upper - lower), 1e-12 * max(abs(upper), 1.0))
        ell = lower - delta
        alpha = 1.0 - 1e-3
        while _dual_value(alpha * Zf, Y) <= ell and alpha < 1.0 - 1e-15:
            alpha = 1.0 - (1.0 - alpha) / 10.0
        Z = alpha * Zf
        m = H.shape[1]
        w = float(max(m, 1))

        def phi(Z):
            G = H.T @ Z  # (m, c)
            sl = b2 - np.einsum("mc,mc->m", G, G)
            e = _dual_value(Z, Y) - ell
            if np.any(sl <= 0) or e <= 0:
                return -np.inf, G, sl, e
            return float(np.sum(np.log(sl)) + w * np.log(e)), G, sl, e

        f, G, sl, e = phi(Z)
        if not np.isfinite(f):
            return Z
        t_step = 0.0
        for _ in range(self.newton_iter):
            t_start = time.perf_counter()
            if self._deadline is not None and t_start + 2.0 * t_step >= self._deadline:
                break  # the current point is strictly inside: a valid (less central) centre
            R = Y - Z
            grad = -2.0 * (H / sl) @ G + (w / e) * R  # (n, c)
            # negative Hessian (positive definite)
            Hm = np.kron((H * (2.0 / sl)) @ H.T, np.eye(c))
            B = (H[:, None, :] * G.T[None, :, :]).reshape(n * c, m) * (2.0 / sl)
            Hm += B @ B.T
            r = R.ravel()
            Hm += (w / e) * np.eye(n * c) + (w / e**2) * np.outer(r, r)
            try:
                step = sla.solve(Hm, grad.ravel(), assume_a="pos").reshape(n, c)
            except (sla.LinAlgError, ValueError):
                break
            dec = float(np.vdot(grad, step))
            if dec <= 1e-10:
                break
            t = 1.0
            while t > 1e-12:
                fn, Gn, sln, en = phi(Z + t * step)
                if np.isfinite(fn) and fn >= f + 0.25 * t * dec:
                    break
                t *= 0.5
            else:
                break
            Z, f, G, sl, e = Z + t * step, fn, Gn, sln, en
            t_step = time.perf_counter() - t_start
        return Z


def _add_cuts(X, U, new):
    """Append the unit directions ``new`` (k, d) not already present (same direction and pattern)."""
    for u in new:
        u = u / np.linalg.norm(u)
        if not has_direction(U, u, X):
            U = np.hstack([U, u[:, None]])
    return U
