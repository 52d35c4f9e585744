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


def _solve(prob, solver, solver_options):
    """Solve with the default tight tolerances (overridable); no solution is an error."""
    opts = dict(_DEFAULT_OPTIONS[solver])
    opts.update(solver_options)
    prob.solve(solver=solver, **opts)
    if prob.value is None or not np.isfinite(prob.value):
        raise RuntimeError(f"CVXPY ({solver}) returned no solution: status {prob.status!r}")


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
    _solve(prob, solver, solver_options)
    net = network_from_scalar_solution(np.asarray(W.value), np.asarray(V.value), patterns.patterns)
    return ScalarReferenceResult(net, float(prob.value), str(prob.status), solver,
                                 patterns.scope, P, time.perf_counter() - t0)


@dataclass(frozen=True)
class CopositiveReferenceResult:
    """Result of :func:`solve_copositive_cvxpy` (the value of relaxation eq. 19)."""

    objective: float
    status: str
    solver: str
    U: tuple  # the PSD blocks U_i (d x d)
    n_patterns: int
    time: float


def solve_copositive_cvxpy(X, Y, beta, patterns: SignPatterns | None = None, *,
                           solver: str = "CLARABEL", **solver_options) -> CopositiveReferenceResult:
    r"""Relaxation eq. 19 of the copositive program, in a lifted Schur-complement form.

    .. math::

        \min_{U_i \succeq 0,\ T}\ \tfrac12 \operatorname{tr} T + \beta^2 \sum_i \operatorname{tr} U_i
        \quad\text{s.t.}\quad
        \begin{bmatrix} I + 2\sum_i D_i X U_i X^\top D_i & Y \\ Y^\top & T \end{bmatrix}
        \succeq 0,\quad (2D_i - I) X U_i X^\top (2D_i - I) \ge 0 .

    The block constraint is equivalent to :math:`T \succeq Y^\top M^{-1} Y`, so the
    optimum is that of eq. 19 (CVXPY's ``matrix_frac`` form is inaccurate with Clarabel
    and SCS at these sizes). It is a lower bound on the training optimum, equal to it
    when every cone is simplicial (always for ``rank(X) <= 2``). A thin wrapper of
    :func:`convexrelu.solvers.copositive.solve_relaxation` (``formulation="schur"``) with
    the reference's tight tolerances; meant as a reference on small problems.
    """
    from .copositive import solve_relaxation

    X, Y = check_XY(X, Y)
    beta = check_beta(beta)
    check_choice(solver, ("CLARABEL", "SCS"), "solver")
    opts = dict(_DEFAULT_OPTIONS[solver])
    opts.update(solver_options)
    rel = solve_relaxation(X, Y, beta, form="eq19", patterns=patterns, formulation="schur",
                           solver=solver, **opts)
    return CopositiveReferenceResult(rel.value, rel.status, solver, rel.blocks,
                                     len(rel.blocks), rel.time)
