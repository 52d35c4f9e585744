r"""The SDP oracle: a proven upper bound on :math:`\Omega(Z)` from a Shor/RLT semidefinite
relaxation over the lifting of ``(u, a = (Xu)_+)``; valid for any ``d``, practical for
moderate ``n`` (``kind="upper_bound"``). The verification of the bound is in
:mod:`convexrelu.sdp_bound`."""

from __future__ import annotations

import time

import numpy as np

from .._validation import check_choice
from ._common import _ascent, _Evaluator, _relu_values
from .base import OracleBase, OracleResult, in_memory_problem

__all__ = ["SDPOracle"]


class SDPOracle(OracleBase):
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
        self.problem = prob = in_memory_problem(X, "the SDP bound")
        X = prob.X
        check_choice(solver, ("CLARABEL", "SCS"), "solver")
        if X.shape[0] > max_n:
            raise ValueError(
                f"SDPOracle is meant for moderate n: X has n={X.shape[0]} rows, above "
                f"max_n={max_n} (the relaxation has O(n^2) constraints); raise max_n to try anyway"
            )
        self._ev = _Evaluator(prob)
        self.solver = solver

    n_patterns = None

    def __call__(self, Z) -> OracleResult:
        from ..sdp_bound import verified_sdp_bound  # loaded on first use, as before

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
