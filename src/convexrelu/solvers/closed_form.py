r"""``solver="closed-form"``: Theorem 2's soft-thresholded SVD, and its linear counterpart.

For whitened data with ``n <= d`` (:math:`XX^\top = I`, hence spike-free; :math:`XX^\top
= sI` is reduced to it: training with ``X`` equals training with :math:`X/\sqrt s` and
:math:`\beta/\sqrt s`) and the SVD
:math:`X^\top Y = \sum_i \sigma_i a_i b_i^\top`, if :math:`X a_i \ge 0` (up to the sign
of the pair :math:`a_i b_i^\top`) for every :math:`\sigma_i > \beta`, then
:math:`V^* = \sum_i (\sigma_i - \beta)_+ a_i b_i^\top` solves eq. 15 and therefore
training. Neurons (Remark 5.1): :math:`u_i = \sqrt{\sigma_i - \beta}\, a_i`,
:math:`v_i = \sqrt{\sigma_i - \beta}\, b_i`; since :math:`X a_i \ge 0` the network
predicts :math:`X V^*` exactly.

The checks are made, and a failed one raises :class:`ClosedFormNotApplicable` naming the
check and its size; ``fallback="cg"`` asks for the general solver instead (logged, never
silent). Checking :math:`XX^\top = sI` exactly costs :math:`O(n^2 d)`, far more than the
closed form itself, so by default it is probed with random vectors
(``whiten_check="probe"``: :math:`\|X X^\top p - s p\| \le` ``whiten_rtol`` :math:`s\|p\|`
for 2 random ``p``, riding on the two passes over ``X`` the closed form needs anyway; a
non-whitened ``X`` passes only on a set of probability zero); ``"full"`` forms
:math:`XX^\top`. The certificate uses the spectral upper bound
:math:`\Omega(Z) \le \|Z\|_2 \|X\|_2` (rigorous for any ``X``), which is tight here: it
proves the closed form optimal with a zero gap (up to rounding).

The linear-activation network with weight decay is nuclear-norm regularised least
squares, :math:`\min_W \tfrac12\|XW - Y\|^2 + \beta\|W\|_*` (:func:`fit_linear`): the
same soft-thresholded SVD without the cone check when :math:`XX^\top = I`, proximal
gradient (singular value thresholding, duality-gap stop) otherwise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from .._validation import check_beta, check_choice, check_tol, check_XY
from ..network import TwoLayerReLU
from ..oracles.spectral import SpectralOracle
from ..problem import gram_error
from .base import IterationLog, Solver

__all__ = ["ClosedForm", "ClosedFormNotApplicable", "closed_form_solution", "fit_linear",
           "LinearResult"]

logger = logging.getLogger(__name__)


class ClosedFormNotApplicable(ValueError):
    """Theorem 2's assumptions fail for these data (the message names the check)."""


def _coordinate_basis_for_ties(M, A, sig, Bt, rtol=1e-9):
    """Within a cluster of equal singular values the SVD's basis is arbitrary; when the
    cluster's right subspace is spanned by coordinate vectors (one-hot targets with equal
    class counts), use those: ``b = e_j``, ``a = M e_j / |M e_j|`` (the basis in which
    Theorem 2's cone condition is stated for one-hot labels)."""
    if sig.size < 2:
        return A, Bt
    A, Bt = A.copy(), Bt.copy()
    top = max(float(sig[0]), np.finfo(float).tiny)
    i = 0
    while i < sig.size:
        j = i + 1
        while j < sig.size and abs(sig[j] - sig[i]) <= rtol * top:
            j += 1
        if j - i > 1 and sig[i] > rtol * top:
            Bc = Bt[i:j]
            P = Bc.T @ Bc
            dg = np.diag(P)
            off = P - np.diag(dg)
            on = np.flatnonzero(dg > 0.5)
            if (np.max(np.abs(off)) <= 1e-8 and np.all(np.minimum(np.abs(dg), np.abs(dg - 1)) <= 1e-8)
                    and on.size == j - i):
                for k, col in enumerate(on):
                    a = M[:, col]
                    A[:, i + k] = a / np.linalg.norm(a)
                    Bt[i + k] = np.eye(M.shape[1])[col]
        i = j
    return A, Bt


@dataclass(frozen=True)
class ClosedFormResult:
    network: TwoLayerReLU
    V: np.ndarray  # (d, c) V*
    sigma: np.ndarray  # singular values of X^T Y
    n_active: int  # sigma_i > beta
    whiten_error: float
    cone_margin: float  # min over active i of min(X a_i) / |X a_i| (>= -cone_tol)
    time: float


def closed_form_solution(X, Y, beta, *, whiten_check="probe", whiten_rtol=1e-8, cone_tol=1e-10,
                         random_state=0, n_probes=2) -> ClosedFormResult:
    r"""Theorem 2 (see the module notes). Raises :class:`ClosedFormNotApplicable`.

    Two passes over ``X``: :math:`X^\top [Y, P]` (``P`` random probes), then
    :math:`X [X^\top Y, X^\top P]`, which gives both the whitening check
    (:math:`XX^\top P = sP`) and every :math:`X a_i` (:math:`a_i = X^\top Y b_i / \sigma_i`);
    the rest works on ``d x c`` and ``n x c`` matrices.
    """
    t0 = time.perf_counter()
    check_choice(whiten_check, ("probe", "full", "none"), "whiten_check")
    n, d = X.shape
    c = Y.shape[1]
    if n > d:
        raise ClosedFormNotApplicable(
            f"closed form needs whitened X with n <= d (X X^T = s I); X has n={n} > d={d}")
    rng = np.random.default_rng(random_state)
    P = rng.standard_normal((n, n_probes)) if whiten_check == "probe" else np.zeros((n, 0))
    XtYP = X.T @ np.hstack([Y, P])  # pass 1
    M0 = XtYP[:, :c]
    XX = X @ XtYP  # pass 2: [X X^T Y, X X^T P]
    if whiten_check == "probe":
        XXP = XX[:, c:]
        scale = float(np.vdot(P, XXP) / np.vdot(P, P))
        werr = float(np.max(np.linalg.norm(XXP - scale * P, axis=0) / np.linalg.norm(P, axis=0))
                     / max(scale, np.finfo(float).tiny))
        what = f"|X X^T p - s p| / (s |p|) over {n_probes} random p"
    elif whiten_check == "full":
        scale, werr = gram_error(X)
        what = "max |X X^T / s - I|"
    else:
        scale, werr, what = float(np.vdot(X, X)) / n, 0.0, ""
    if not scale > 0:
        raise ClosedFormNotApplicable("closed form needs whitened X; X is zero")
    if not werr <= whiten_rtol:
        raise ClosedFormNotApplicable(
            f"closed form needs whitened X (X X^T = s I, s = {scale:.6g}): {what} = {werr:.3g} > "
            f"whiten_rtol={whiten_rtol:g}. Whiten the rows' span (e.g. ZCAWhitener(center=False) "
            "with n <= d) or use solver='cg' (or fallback='cg').")
    # X X^T = s I: training with X equals training with X / sqrt(s) and beta / sqrt(s)
    # (neurons u = u~ / sqrt(s)); Theorem 2 is applied to the latter
    rs = np.sqrt(scale)
    beta_t = beta / rs
    M = M0 / rs  # (X / sqrt(s))^T Y
    XM = XX[:, :c] / rs  # X M, so X a = X M b / sigma for a = M b / sigma
    A, sig, Bt = np.linalg.svd(M, full_matrices=False)
    A, Bt = _coordinate_basis_for_ties(M, A, sig, Bt)
    act = np.flatnonzero(sig > beta_t)
    margin = np.inf
    U, V = [], []
    for i in act:
        xa = XM @ Bt[i] / sig[i]
        nx = max(float(np.linalg.norm(xa)), np.finfo(float).tiny)
        lo, hi = float(xa.min()) / nx, float(xa.max()) / nx
        if lo >= -cone_tol:
            a, b, m = A[:, i], Bt[i], lo
        elif -hi >= -cone_tol:  # the pair (-a_i)(-b_i)^T is the same term
            a, b, m = -A[:, i], -Bt[i], -hi
        else:
            raise ClosedFormNotApplicable(
                f"closed form needs X a_i >= 0 for every sigma_i > beta; singular vector {i} "
                f"(sigma = {sig[i]:.6g} > beta = {beta_t:.6g}, for X / sqrt(s)) has "
                f"min(X a_i)/|X a_i| = {lo:.3g} "
                f"and max = {hi:.3g} (both signs fail, cone_tol={cone_tol:g}). "
                "Use solver='cg' (or fallback='cg').")
        margin = min(margin, m)
        w = np.sqrt(sig[i] - beta_t)
        U.append(w * a / rs)
        V.append(w * b)
    if U:
        net = TwoLayerReLU(np.array(U).T, np.array(V)).rebalance()
        Vstar = np.array(U).T @ np.array(V)
    else:
        net = TwoLayerReLU.zeros(d, c)
        Vstar = np.zeros((d, c))
    return ClosedFormResult(net, Vstar, sig, int(act.size), werr,
                            float(margin if np.isfinite(margin) else 0.0), time.perf_counter() - t0)


class ClosedForm(Solver):
    """Theorem 2 as a solver (``solver="closed-form"``).

    Parameters
    ----------
    fallback : {None, "cg"}, default None
        When the assumptions fail: raise (None) or run ``cg`` (logged at WARNING).
    whiten_check, whiten_rtol, cone_tol : see :func:`closed_form_solution`
    tol : float, default 1e-6
    """

    name = "closed-form"

    losses = ("squared",)
    default_max_iter = 100  # the fallback's (cg) iterations; the closed form has none

    def __init__(self, *, fallback=None, whiten_check="probe", whiten_rtol=1e-8, cone_tol=1e-10,
                 tol=1e-6, time_limit=None, verbose=0, callback=None, max_iter=None,
                 random_state=None):
        self._set_common(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                         callback=callback, random_state=random_state)
        if fallback not in (None, "cg"):
            raise ValueError(f"fallback must be None or 'cg'; got {fallback!r}")
        self.fallback = fallback
        self.whiten_check = check_choice(whiten_check, ("probe", "full", "none"), "whiten_check")
        self.whiten_rtol = check_tol(whiten_rtol, "whiten_rtol")
        self.cone_tol = float(cone_tol)

    def _solve(self, problem, beta, oracle, init=None):
        X, Y, loss = problem.X, problem.Y, problem.loss
        try:
            cf = closed_form_solution(X, Y, beta, whiten_check=self.whiten_check,
                                      whiten_rtol=self.whiten_rtol, cone_tol=self.cone_tol)
        except ClosedFormNotApplicable as exc:
            if self.fallback != "cg":
                raise
            from .cg import ConditionalGradient

            logger.warning("closed-form: %s -- running cg instead (fallback='cg')", exc)
            cg = ConditionalGradient(tol=self.tol, max_iter=self.max_iter,
                                     time_limit=self.time_limit, verbose=self.verbose,
                                     callback=self.callback)
            cg._started = self._started  # one clock for the whole solve
            res = cg._solve(problem, beta, oracle, init)
            from dataclasses import replace

            return replace(res, info=dict(res.info, closed_form="not applicable",
                                          closed_form_reason=str(exc), fallback="cg"))
        log = IterationLog(self.name, X, Y, beta, loss, self.tol, self.verbose, self.callback,
                           self.time_limit, t0=self._started)
        net = cf.network
        F = net.predict(X)
        # the spectral bound is rigorous for any X and tight at this solution
        orc = oracle if oracle.kind in ("exact", "upper_bound") else SpectralOracle(problem)
        log.record(net, F, orc(loss.gradient(F, Y)))
        info = dict(closed_form="applied", n_active=cf.n_active, whiten_error=cf.whiten_error,
                    cone_margin=cf.cone_margin, closed_form_time=cf.time,
                    sigma_max=float(cf.sigma[0]) if cf.sigma.size else 0.0)
        status = log.converged_status() or "recovery_gap"
        return log.result(status, 1, info=info)


@dataclass(frozen=True)
class LinearResult:
    """Linear-activation network :math:`f(X) = XW` with :math:`\\beta\\|W\\|_*` (weight decay)."""

    W: np.ndarray  # (d, c)
    objective: float
    method: str
    n_iter: int
    time: float

    def predict(self, X):
        return np.asarray(X, dtype=float) @ self.W

    def factors(self):
        """Balanced two-layer linear factors ``W1 (d, k), W2 (k, c)`` with ``W1 W2 = W``."""
        A, s, Bt = np.linalg.svd(self.W, full_matrices=False)
        k = int(np.sum(s > 1e-14 * max(s[0] if s.size else 0, 1e-300)))
        r = np.sqrt(s[:k])
        return A[:, :k] * r, r[:, None] * Bt[:k]


def _svt(M, t):
    A, s, Bt = np.linalg.svd(M, full_matrices=False)
    s = np.maximum(s - t, 0.0)
    return (A * s) @ Bt, float(np.sum(s))


def fit_linear(X, Y, beta, *, tol=1e-10, max_iter=20000) -> LinearResult:
    r"""Linear two-layer network with weight decay: :math:`\min_W \tfrac12\|XW - Y\|^2 + \beta\|W\|_*`.

    Closed form when :math:`XX^\top = I` (soft-thresholded SVD of :math:`X^\top Y`) or
    :math:`X^\top X = I` (the same formula); otherwise FISTA with singular value
    thresholding, stopped when the duality gap (dual point: the residual scaled so that
    :math:`\|X^\top \theta\|_2 \le \beta`) is at most ``tol`` times the objective.
    """
    X, Y = check_XY(X, Y)
    beta = check_beta(beta)
    t0 = time.perf_counter()
    n, d = X.shape

    def obj(W):
        return 0.5 * float(np.sum((X @ W - Y) ** 2)) + beta * float(np.sum(np.linalg.svd(W, compute_uv=False)))

    if gram_error(X if n <= d else X.T, scale=1.0)[1] <= 1e-10:  # X X^T = I or X^T X = I
        W, _ = _svt(X.T @ Y, beta)
        return LinearResult(W, obj(W), "closed form", 0, time.perf_counter() - t0)
    L = float(np.linalg.norm(X, 2)) ** 2
    W = np.zeros((d, Y.shape[1]))
    Zk, tk = W.copy(), 1.0
    it = 0
    for it in range(1, max_iter + 1):
        G = X.T @ (X @ Zk - Y)
        Wn, _ = _svt(Zk - G / L, beta / L)
        tn = 0.5 * (1 + np.sqrt(1 + 4 * tk * tk))
        Zk = Wn + ((tk - 1) / tn) * (Wn - W)
        W, tk = Wn, tn
        if it % 10 == 0:
            R = Y - X @ W
            s = float(np.linalg.norm(X.T @ R, 2))
            th = R * min(1.0, beta / s) if s > 0 else R
            dual = float(np.vdot(Y, th)) - 0.5 * float(np.vdot(th, th))
            p = obj(W)
            if p - dual <= tol * max(p, np.finfo(float).tiny):
                break
    return LinearResult(W, obj(W), "fista", it, time.perf_counter() - t0)
