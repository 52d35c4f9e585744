r"""CVXPY reference solver for the scalar-output convex program (paper eq. 9).

.. math::

    \min_{(2D_i - I) X w_i \ge 0,\ (2D_i - I) X v_i \ge 0}
    \tfrac12 \Big\|\sum_i D_i X (w_i - v_i) - y\Big\|_2^2 + \beta \sum_i (\|w_i\|_2 + \|v_i\|_2)

With every sign pattern enumerated its optimum equals the training optimum ``p*`` of
the scalar-output network (Pilanci & Ergen, 2020). It is meant as an independent
reference on small problems (the conic program has ``2 d P`` variables), not as a fast
solver.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._validation import check_beta, check_choice, check_XY
from ..network import TwoLayerReLU
from ..patterns import SignPatterns
from ..reconstruction import ConvexSolution

#: Tight default tolerances: the reference must be accurate enough to certify at 1e-6.
_DEFAULT_OPTIONS = {
    "CLARABEL": dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10),
    "SCS": dict(eps=1e-9, max_iters=100000),
}

__all__ = ["ScalarReferenceResult", "solve_scalar_cvxpy", "network_from_scalar_solution"]


@dataclass(frozen=True)
class ScalarReferenceResult:
    """Result of :func:`solve_scalar_cvxpy`."""

    network: TwoLayerReLU
    objective: float  # the conic program's optimal value
    status: str  # CVXPY status
    solver: str
    pattern_scope: str
    n_patterns: int
    time: float


def network_from_scalar_solution(W: np.ndarray, V: np.ndarray, patterns: np.ndarray) -> TwoLayerReLU:
    r"""Neurons from a solution of eq. 9 (Remark 5.1 with ``c = 1``).

    The solution is the convex model with atoms :math:`w_i \cdot (+1)` and
    :math:`v_i \cdot (-1)` on pattern :math:`D_i`; :class:`ConvexSolution` maps each to
    :math:`u = w_i/\sqrt{\|w_i\|}`, :math:`v = \pm\sqrt{\|w_i\|}`.
    """
    P = W.shape[0]
    sol = ConvexSolution(
        H=np.hstack([W.T, V.T]),
        G=np.concatenate([np.ones(P), -np.ones(P)])[:, None],
        patterns=np.vstack([patterns, patterns]),
    )
    return sol.to_network()


def solve_scalar_cvxpy(X, y, beta, patterns: SignPatterns | None = None, *,
                       solver: str = "CLARABEL", **solver_options) -> ScalarReferenceResult:
    """Solve paper eq. 9 with CVXPY and map the solution to a network.

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, 1)
    beta : float > 0
    patterns : SignPatterns, optional
        Default: every pattern (``SignPatterns.enumerate(X)``).
    solver : {"CLARABEL", "SCS"}
    **solver_options
        Passed to ``cvxpy.Problem.solve`` (defaults: tolerances 1e-10 for Clarabel).
    """
    import cvxpy as cp

    X, Y = check_XY(X, y, y_name="y")
    if Y.shape[1] != 1:
        raise ValueError(f"solve_scalar_cvxpy needs a single output; y has {Y.shape[1]} columns")
    beta = check_beta(beta)
    check_choice(solver, ("CLARABEL", "SCS"), "solver")
    t0 = time.perf_counter()
    if patterns is None:
        patterns = SignPatterns.enumerate(X)
    Dm = patterns.patterns.astype(float)  # (P, n)
    P, (n, d) = Dm.shape[0], X.shape
    W = cp.Variable((P, d))
    V = cp.Variable((P, d))
    # sum_i D_i X (w_i - v_i): row k is sum_i D_ik x_k^T (w_i - v_i)
    pred = cp.sum(cp.multiply(Dm.T, X @ (W - V).T), axis=1)
    S = 2.0 * Dm - 1.0  # (P, n)
    cons = [cp.multiply(S, W @ X.T) >= 0, cp.multiply(S, V @ X.T) >= 0]
    obj = 0.5 * cp.sum_squares(pred - Y[:, 0]) + beta * (cp.sum(cp.norm(W, 2, axis=1)) + cp.sum(cp.norm(V, 2, axis=1)))
    prob = cp.Problem(cp.Minimize(obj), cons)
    opts = dict(_DEFAULT_OPTIONS[solver])
    opts.update(solver_options)
    prob.solve(solver=solver, **opts)
    if W.value is None:
        raise RuntimeError(f"CVXPY ({solver}) returned no solution: status {prob.status!r}")
    net = network_from_scalar_solution(np.asarray(W.value), np.asarray(V.value), patterns.patterns)
    return ScalarReferenceResult(net, float(prob.value), str(prob.status), solver,
                                 patterns.scope, P, time.perf_counter() - t0)
