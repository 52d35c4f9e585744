r"""The engine shared by the atom-based solvers: the restricted master and the atom bookkeeping.

The convex program (paper eq. 12) is a sparse combination of atoms
:math:`(X u)_+ v^\top` with unit directions ``u``. The column-generation solvers
(:class:`~convexrelu.solvers.cg.ConditionalGradient`, the cutting-plane method, the
network recovery of the copositive solvers, the convolutional fit) all keep the same
state: unit directions ``U`` (``d x m``, one atom per column) and output rows ``V``
(``m x c``, path-norm form: the network's ``|u_j| |v_j|`` is ``|v_j|``). This module is
what they share:

* **the restricted master** (:func:`group_lasso` for the squared loss,
  :func:`group_lasso_general` for any convex loss): with the directions fixed, the
  outputs solve a group lasso over the atoms' columns ``H``;
* **atoms and networks**: :func:`balanced_network` (state -> network with
  ``|u_j| = |v_j|``), :func:`split_network` (network -> state),
  :func:`network_from_atoms` (directions -> outputs by the master -> network);
* **the bookkeeping** of the active set: :func:`has_direction` (is a new direction
  already active, with the same sign pattern?), :func:`initial_outputs` (a descent step
  for new atoms before the master), :func:`prune` (drop negligible atoms) and
  :func:`merge_cells` (atoms sharing a sign pattern replaced by the SVD of their sum);
* **the local moves** on the training objective: :func:`refine` (L-BFGS on all weights)
  and :func:`slide_2d` (rank 2: every atom slides inside its cell);
* **feature maps**: how the atoms' columns are formed from the directions, how the
  oracle's dual point is pulled back, how predictions are formed.
  :class:`DenseFeatures` (:math:`H = (XU)_+`) is the default; the convolutional fit
  passes its patch map (:class:`convexrelu.conv.ConvFeatures`) to the same solver.

Conventions: ``X`` is ``n x d`` (the rows whose sign patterns define the atoms), ``Y``
is ``n x c``, ``H`` is ``n x m``; every function here is pure (no state, no logging of
progress) and returns new arrays.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from scipy.optimize import minimize

from ..kernels import (AtomSystem, activation, atom_system, cone_signs, forward,
                       objective_and_gradient, pattern_groups, relu_correlations, take_rows)
from ..network import TwoLayerReLU

__all__ = [
    "IPM_MAX_NNZ", "IPM_MAX_ROWS", "group_lasso", "group_lasso_general",
    "balanced_network", "split_network", "network_from_atoms",
    "has_direction", "known_directions", "initial_outputs", "step_outputs", "prune", "merge_cells",
    "refine", "adam_moves", "escape", "slide_2d", "DenseFeatures",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# the restricted master
# --------------------------------------------------------------------------------------
#: Largest ``n * m * c`` (non-zeros of the residual constraint) for the interior-point master.
IPM_MAX_NNZ = 4_000_000
#: Largest ``n * c`` (residual variables) for the interior-point master.
IPM_MAX_ROWS = 20_000


def group_lasso(H, Y, beta, V0=None, tol=1e-12, max_iter=50000, method="auto", deadline=None,
                max_ipm_time=None, working_set=False, probe=True):
    r"""Solve :math:`\min_V \tfrac12\|H V - Y\|_F^2 + \beta \sum_j \|v_j\|_2` (rows ``v_j``).

    ``H`` is the atoms' columns (``n x m``), or their :class:`~convexrelu.kernels.AtomSystem`
    (its Gram matrices and residual form, computed where the data live; ``Y`` is then
    not read).

    This is scikit-learn's ``MultiTaskLasso`` problem with ``alpha = beta / n`` (the tests
    check that they agree). Two methods:

    ``"ipm"``
        The second-order-cone program in residual form,
        :math:`\min \tfrac12\|r\|^2 + \beta \sum_j t_j` s.t. :math:`r = H V - Y`,
        :math:`\|v_j\| \le t_j`, solved by Clarabel's interior-point method. The masters
        of column generation are badly conditioned (many nearly parallel atoms, ``m > n``,
        a singular Gram matrix), where first-order methods stall; the residual form keeps
        the Hessian the identity and reaches a maximal dual violation
        :math:`\max_j\|h_j^\top r\| / \beta - 1` of about 1e-10 in 15–20 iterations.
        Rows below ``1e-9`` of the largest (the interior point never returns exact zeros)
        are set to zero. When ``n > m`` the thin QR factorisation ``H = QR`` reduces it
        exactly to :math:`\min \tfrac12\|RV - Q^\top Y\|^2 + \dots` with ``m`` residual
        rows instead of ``n`` (``R`` has the singular values of ``H``).
    ``"fista"``
        Accelerated proximal gradient (FISTA with adaptive restart) on the Gram matrices
        :math:`H^\top H` and :math:`H^\top Y`, so an iteration costs :math:`O(m^2 c)`
        whatever ``n``; the proximal step is the group soft-threshold; warm-started from
        ``V0``.
    ``"auto"`` (default)
        chosen by a cost model measured on this package's masters
        (:func:`_master_costs`): FISTA needs at most about
        :math:`2\sqrt{\kappa}\ln(1/\text{tol})` iterations of :math:`O(m^2 c)`
        (:math:`\kappa` the condition number of :math:`H^\top H`), far fewer from a warm
        start; the interior point about 18 factorisations of a KKT system whose output
        block is dense, :math:`O((kc)^3)` with ``k = min(n, m)``. When :math:`H^\top H`
        is singular and the interior point is cheap (estimated <= 50 ms) the interior
        point runs (after a probe of 11 FISTA steps from ``V0``, which ends the solve
        when the warm start is already within ``tol``); otherwise FISTA runs first, for
        at most three times its estimate and a quarter of the interior point's estimated
        time, and the interior point (if it fits, below) takes over when it has not met
        ``tol``. On the heuristic path of ``cg`` (planted 2000 x 20, c = 10, about 130
        atoms) this is the difference between 1.4–1.9 s and
        a few milliseconds per master; on the small exact masters (``m > n`` or nearly
        parallel atoms, :math:`\kappa \approx 10^{18}`) it keeps the interior point.
        The interior point is used only while ``k m c <= IPM_MAX_NNZ`` and
        ``k c <= IPM_MAX_ROWS``.

    Whatever the method, the result is then checked by the duality gap (dual point: the
    residual scaled so that :math:`\max_j \|h_j^\top \theta\| \le \beta`); when the gap is
    above ``tol`` times the objective, FISTA continues from it (at most ``min(max_iter,
    2000)`` iterations after the interior point), so its answer is never accepted unchecked.

    ``max_ipm_time`` (seconds, ``"auto"`` only): the interior point runs only when its
    estimated time is at most this; otherwise FISTA runs for at most about that time and
    its answer is returned with whatever gap it reached. ``cg`` sets it on the heuristic
    path, where no certificate can be proven and the L-BFGS moves that follow re-optimise
    the outputs anyway (planted 2000 x 20, c = 10: interior-point fallbacks of 2–7 s each).

    ``working_set``: the interior point runs on a working set of the atoms, grown until
    no atom outside it violates optimality (:func:`_ipm_working_set`), for masters that
    hold many more atoms than their optimum keeps (``cg``'s first master after a wide warm
    start). Not the default: on masters whose optimum keeps most atoms (the exact rank-2
    masters of planted 1000 x 2, c = 10) its rounds only add to the interior point on
    all atoms (a fit with it reached gap 2.3e-3 in 40 s instead of a proof in 38 s).

    ``probe``: whether ``"auto"`` starts with the 11-step FISTA probe from ``V0`` (below).
    Callers pass False where ``V0`` cannot be within ``tol``: ``cg``'s master right after
    it added violating atoms (their outputs are a first step only), where the probe met
    ``tol`` on none of 108 masters (the rank-2 exact path and iris, diabetes, wine and
    linnerud on the heuristic path), against 16 of 27 for the masters after a local move.

    ``deadline`` (a ``time.perf_counter()`` value): the interior point gets the time left
    as its limit and FISTA stops there (the best iterate so far is returned; the
    certificate measures whatever it is).
    """
    system = H if isinstance(H, AtomSystem) else AtomSystem.from_features(H, Y)
    n, m = system.n, system.m
    c = system.B.shape[1]
    if method not in ("auto", "ipm", "fista"):
        raise ValueError(f"method must be 'auto', 'ipm' or 'fista', got {method!r}")
    if m == 0:
        return np.zeros((0, c))
    G, B, yy = system.G, system.B, system.yy
    eig = np.linalg.eigvalsh(G)
    L = float(eig[-1])
    if L <= 0:
        return np.zeros((m, c))
    V = np.zeros((m, c)) if V0 is None else np.array(V0, dtype=float)
    k = min(n, m)  # rows of the interior point's residual after the QR reduction below
    ipm_fits = k * m * c <= IPM_MAX_NNZ and k * c <= IPM_MAX_ROWS
    if method == "auto" and V0 is not None and probe:
        # a probe of 11 FISTA steps from the warm start (two gap checks): between
        # consecutive solves of a column-generation loop the previous answer is often
        # already within tol (measured: wine at tol 1e-3, where the interior point took
        # 150-230 ms)
        V = _fista(G, B, yy, L, beta, V, tol, 11, deadline)
        if _gl_met(G, B, yy, V, beta, tol):
            return V
    if method == "auto":
        fista_iter, fista_step_s, ipm_s = _master_costs(eig, k, m, c, tol)
        capped = max_ipm_time is not None and ipm_s > max_ipm_time
        ipm_ok = ipm_fits and not capped
        if ipm_ok and not np.isfinite(fista_iter) and ipm_s <= 0.05:
            # singular Gram matrix, small master: FISTA stalls, the interior point does not
            method = "ipm"
        else:
            # FISTA first (warm-started it usually needs far fewer iterations than its
            # worst-case estimate); when it has not converged within three times that
            # estimate or a quarter of the interior point's estimated time, the interior
            # point (when allowed) takes over from there. Without an allowed interior
            # point: all of max_iter, or the time the cap allows
            if ipm_ok:
                budget = min(max_iter, 3 * fista_iter + 100, max(50, 0.25 * ipm_s / fista_step_s))
            elif capped:
                budget = min(max_iter, 3 * fista_iter + 100, max(50, max_ipm_time / fista_step_s))
            else:
                budget = max_iter
            V = _fista(G, B, yy, L, beta, V, tol, int(budget), deadline)
            if _gl_met(G, B, yy, V, beta, tol) or not ipm_ok or (
                    deadline is not None and time.perf_counter() >= deadline):
                return V
            method = "ipm"
    if method == "ipm":
        # when n > m, H = QR (thin): ||HV - Y||^2 = ||RV - Q^T Y||^2 + const, the same
        # problem with m instead of n residual rows and R as well conditioned as H (no
        # Gram matrix); else H and Y themselves
        Vi = _ipm_working_set(system, beta, V, tol, deadline) if working_set else \
            _group_lasso_ipm(*system.residual_form(), beta, deadline)
        if Vi is not None:
            gi, pi = _gl_gap(G, B, yy, Vi, beta)
            if V0 is None or pi <= _gl_gap(G, B, yy, V, beta)[1]:
                V = Vi
            if gi <= tol * max(pi, np.finfo(float).tiny):
                return V
            # a short first-order polish: from the interior point's answer FISTA cannot
            # go much further on these badly conditioned problems
            max_iter = min(max_iter, 2000)
    return _fista(G, B, yy, L, beta, V, tol, max_iter, deadline)


def _master_costs(eig, k, m, c, tol):
    r"""Estimated costs of the two master methods: ``(fista_iterations,
    seconds_per_fista_iteration, ipm_seconds)``; ``eig`` are the eigenvalues of
    :math:`H^\top H`; ``fista_iterations`` is infinite when it is singular.

    Constants measured on this package's masters (one core): an interior-point
    iteration costs about 0.5 ms plus :math:`(kc)^3 / (4\cdot10^9)` s (spiral
    ``kc = 147``: 1 ms; wine ``kc = 324``: 10 ms; an over-estimate at ``kc > 1000``)
    and there are about 18; a FISTA iteration (two Gram products and the gap check every 10)
    about :math:`2 m^2 c / 10^9` s plus 20 us of interpreter overhead."""
    L, mu = float(eig[-1]), float(max(eig[0], 0.0))
    if mu <= 1e-12 * L:
        fista_iter = np.inf
    else:
        fista_iter = 2.0 * np.sqrt(L / mu) * np.log(1.0 / max(tol, 1e-16)) + 50.0
    step_s = 2.0 * m * m * c / 1e9 + 2e-5
    return fista_iter, step_s, _ipm_seconds(k, c)


def _ipm_seconds(k, c):
    """Estimated seconds of the interior point on a master with ``k`` residual rows and
    ``c`` outputs (see :func:`_master_costs`)."""
    return 18.0 * (5e-4 + (k * c) ** 3 / 4e9)


#: Clarabel statuses whose point :func:`_group_lasso_ipm` still returns (the problem is
#: always feasible, so they mean stopped before its 1e-12 tolerances, not failure); the
#: callers measure the point's duality gap and go on with FISTA from it when above tol.
#: A ``NumericalError`` on a 25-atom master of ``planted()`` (``max_add=25``) whose
#: objectives agreed to 1e-15 used to send the master to 50,000 FISTA steps (256 ms).
IPM_STOPPED_EARLY = ("NumericalError", "InsufficientProgress", "MaxIterations", "MaxTime")

#: Threads of Clarabel's factorisation in the masters. Clarabel 0.11's default (its
#: ``faer`` solver on every core) made the masters 4x slower on a 2-core machine: 12 exact
#: rank-2 masters of planted 1000 x 2, c = 10 (26-66 atoms) took 4.4 s together, 1.1 s
#: with one thread (the same 18 iterations each; threads that ``threadpoolctl`` does not
#: limit, so a "single-threaded" benchmark was not).
CLARABEL_THREADS = 1

#: The interior point works on a working set of atoms once the master has more than this
#: many (see :func:`_ipm_working_set`).
IPM_WS_MIN = 40
#: ... and when the interior point on all of them is estimated (:func:`_ipm_seconds`) to
#: take more than this many seconds (below it the working set's rounds cost more than
#: they save: the spiral's exact masters, 3-20 ms each, made its fit 10 % slower).
IPM_WS_MIN_S = 0.05


def _ipm_working_set(system, beta, V, tol, deadline=None):
    r"""The interior point (:func:`_group_lasso_ipm`) on a working set of the atoms of
    ``system``, grown until no atom outside it violates optimality; ``None`` when the
    solver does not succeed.

    The group lasso restricted to a set ``W`` of atoms, its answer extended by zero rows,
    is optimal for all atoms exactly when every atom ``j`` outside ``W`` has
    :math:`\|h_j^\top r\| \le \beta` at its residual ``r`` (a zero row then satisfies
    the optimality condition). The masters of column generation hold many more atoms than
    the optimum keeps (iris, beta = 0.01 lambda_max, after the warm start: 147 atoms, about
    20 kept; diabetes: 338 and about 80), many of them nearly parallel, and the interior
    point's cost grows as the cube of the atoms. So it starts from the atoms that carry
    half of ``V``'s weight (``V`` is the caller's estimate; FISTA spreads weight over
    nearly parallel atoms, so a higher share takes in most of them) and the atoms most
    correlated with ``V``'s residual (enough to make ``IPM_WS_MIN / 2``, at least
    ``IPM_WS_MIN / 4``), and each round
    adds the atoms that violate the condition by more than ``max(1e-9, tol / 10)``
    (relative), the worst first, at most ``max(10, |W| / 4)`` of them. Measured on those
    two first masters: 0.41 s and 0.32 s for the interior point on all atoms, 0.04 s with
    the working set (3 to 6 rounds). With at most :data:`IPM_WS_MIN` atoms, when the
    interior point on all atoms is cheap (:data:`IPM_WS_MIN_S`), or once the set holds
    more than 60 % of them, it is the interior point on all atoms. Either way the
    caller checks the answer's duality gap on all atoms, as for the plain interior point.
    """
    m = system.m
    c = system.B.shape[1]
    if m <= IPM_WS_MIN or _ipm_seconds(min(system.n, m), c) <= IPM_WS_MIN_S:
        return _group_lasso_ipm(*system.residual_form(), beta, deadline)
    G, B = system.G, system.B
    nv = np.linalg.norm(V, axis=1)
    order = np.argsort(nv)[::-1]
    cum = np.cumsum(nv[order])
    k = int(np.searchsorted(cum, 0.5 * cum[-1])) + 1 if cum[-1] > 0 else 0
    inside = np.zeros(m, dtype=bool)
    inside[order[:k]] = True
    score = np.where(inside, -np.inf, np.linalg.norm(B - G @ V, axis=1))
    inside[np.argsort(score)[::-1][:max(IPM_WS_MIN // 2 - k, IPM_WS_MIN // 4)]] = True
    slack = max(1e-9, 0.1 * tol)
    while np.count_nonzero(inside) <= 0.6 * m:
        idx = np.flatnonzero(inside)
        Vw = _group_lasso_ipm(*system.subset(idx).residual_form(), beta, deadline)
        if Vw is None:
            return None
        Vf = np.zeros((m, c))
        Vf[idx] = Vw
        viol = np.linalg.norm(B - G @ Vf, axis=1) / beta - 1.0
        viol[inside] = -np.inf
        bad = np.flatnonzero(viol > slack)
        if bad.size == 0 or (deadline is not None and time.perf_counter() >= deadline):
            return Vf
        inside[bad[np.argsort(viol[bad])[::-1][:max(10, idx.size // 4)]]] = True
    return _group_lasso_ipm(*system.residual_form(), beta, deadline)


def _group_lasso_ipm(H, Y, beta, deadline=None):
    """Clarabel on the residual-form SOCP; ``None`` when it fails (a status neither solved
    nor in :data:`IPM_STOPPED_EARLY`, or a non-finite point)."""
    import clarabel
    import scipy.sparse as sp

    n, m = H.shape
    c = Y.shape[1]
    nv = m * c + m + n * c  # x = [vec V (row-major), t, vec r (row-major)]
    P = sp.csc_matrix((np.ones(n * c), (np.arange(m * c + m, nv), np.arange(m * c + m, nv))),
                      shape=(nv, nv))
    q = np.concatenate([np.zeros(m * c), np.full(m, float(beta)), np.zeros(n * c)])
    # built in one pass as coordinates (a sparse kron/hstack/vstack costs more than the
    # interior point itself on small masters):
    # rows 0..nc-1:  r - (H kron I_c) vec V = -vec Y   (zero cone)
    I, J = np.nonzero(H)
    a = np.arange(c)
    rows_v, cols_v = (I[:, None] * c + a).ravel(), (J[:, None] * c + a).ravel()
    rows_r = np.arange(n * c)
    # rows nc..: (t_j, v_j) in the second-order cone, s = -x selected
    j = np.repeat(np.arange(m), c + 1)
    k = np.tile(np.arange(c + 1), m)
    rows_s = n * c + np.arange(m * (c + 1))
    cols_s = np.where(k == 0, m * c + j, j * c + k - 1)
    A = sp.csc_matrix(
        (np.concatenate([-np.repeat(H[I, J], c), np.ones(n * c), -np.ones(m * (c + 1))]),
         (np.concatenate([rows_v, rows_r, rows_s]),
          np.concatenate([cols_v, m * c + m + rows_r, cols_s]))),
        shape=(n * c + m * (c + 1), nv))
    b = np.concatenate([-np.asarray(Y, dtype=float).ravel(), np.zeros(m * (c + 1))])
    cones = [clarabel.ZeroConeT(n * c)] + [clarabel.SecondOrderConeT(c + 1)] * m
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = 1e-12
    settings.tol_ktratio = 1e-10
    settings.max_threads = CLARABEL_THREADS
    if deadline is not None:
        settings.time_limit = max(deadline - time.perf_counter(), 1e-3)
    sol = clarabel.DefaultSolver(P, q, A, b, cones, settings).solve()
    status = str(sol.status)
    if status not in ("Solved", "AlmostSolved") + IPM_STOPPED_EARLY:
        logger.debug("group_lasso: Clarabel returned %s; continuing with FISTA", status)
        return None
    if status in IPM_STOPPED_EARLY:
        # often as good as solved (planted(): NumericalError after 15 iterations with
        # the primal and dual objectives equal to 1e-15); the caller measures its gap
        logger.debug("group_lasso: Clarabel returned %s after %d iterations; its point is "
                     "kept if its duality gap is the best", status, sol.iterations)
    V = np.array(sol.x[: m * c]).reshape(m, c)
    if not np.all(np.isfinite(V)):
        return None
    nv_rows = np.linalg.norm(V, axis=1)
    V[nv_rows <= 1e-9 * nv_rows.max()] = 0.0
    return V


def _fista(G, B, yy, L, beta, V, tol, max_iter, deadline=None):
    """FISTA with adaptive restart on the Gram matrices, stopped by the duality gap (or at
    ``deadline``)."""
    Zk, tk, thr = V.copy(), 1.0, beta / L
    for it in range(max_iter):
        W = Zk - (G @ Zk - B) / L
        nw = np.linalg.norm(W, axis=1, keepdims=True)
        Vn = W * np.maximum(0.0, 1.0 - thr / np.maximum(nw, 1e-300))
        tn = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * tk * tk))
        if np.vdot(Zk - Vn, Vn - V) > 0:  # adaptive restart
            tn, Zk = 1.0, Vn.copy()
        else:
            Zk = Vn + ((tk - 1.0) / tn) * (Vn - V)
        V, tk = Vn, tn
        if it % 10 == 0:
            if _gl_met(G, B, yy, V, beta, tol):
                break
            if deadline is not None and time.perf_counter() >= deadline:
                break
    return V


def group_lasso_general(H, Y, beta, loss):
    r"""The restricted master for any convex loss: :math:`\min_V L(HV, Y) + \beta\sum_j\|v_j\|`.

    Solved through CVXPY with Clarabel (tolerance 1e-11 for smooth losses, then 1e-9 if
    that is not reached; 1e-9 for piecewise-linear ones; exponential cones for the
    cross-entropy and logistic losses, linear programs for hinge and absolute losses);
    rows below ``1e-9`` of the largest are set to zero. A solver failure is an error,
    never a silent change of the problem. Returns ``(V, G)``: ``G`` is the multiplier of
    :math:`F = HV`, an element of :math:`\partial L(F)` chosen by the master (for non-smooth
    losses the arbitrary subgradient of ``loss.gradient`` can have a large
    :math:`\Omega`; this one satisfies :math:`\|h_j^\top G\| \le \beta` on the atoms).
    """
    import cvxpy as cp

    from ..losses import cvxpy_loss

    m, c = H.shape[1], Y.shape[1]
    if m == 0:
        return np.zeros((0, c)), None
    V = cp.Variable((m, c))
    Fv = cp.Variable(Y.shape)
    con = Fv == H @ V
    obj = cvxpy_loss(loss, Fv, Y) + beta * cp.sum(cp.norm(V, 2, axis=1))
    prob = cp.Problem(cp.Minimize(obj), [con])
    status = None
    # smooth losses: tight (the certificate is first order in the master's error);
    # piecewise-linear ones: 1e-9, where the interior point's dual (the centre of a
    # degenerate optimal face) certifies; tighter, it drifts to duals with a larger Omega
    tols = (1e-11, 1e-9) if np.isfinite(getattr(loss, "smoothness", 1.0)) else (1e-9,)
    for tol in tols:
        try:
            prob.solve(solver="CLARABEL", tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol,
                       max_threads=CLARABEL_THREADS)
            status = prob.status
        except cp.error.SolverError:
            status = "solver_error"
        if status == "optimal":
            break
    if status != "optimal" and V.value is None:
        prob.solve(solver="SCS", eps=1e-9, max_iters=100000)
    if V.value is None:
        raise RuntimeError(f"the restricted master ({loss.name} loss) failed: {prob.status}")
    Vv = np.array(V.value)
    nr = np.linalg.norm(Vv, axis=1)
    Vv[nr <= 1e-9 * max(nr.max(), np.finfo(float).tiny)] = 0.0
    G = None if con.dual_value is None else -np.asarray(con.dual_value)
    return Vv, G


def _gl_met(G, B, yy, V, beta, tol):
    """Whether the duality gap of ``V`` is at most ``tol`` times its objective."""
    gap, primal = _gl_gap(G, B, yy, V, beta)
    return gap <= tol * max(primal, np.finfo(float).tiny)


def _gl_gap(G, B, yy, V, beta):
    """Duality gap of the group lasso from the Gram matrices."""
    GV = G @ V
    rr = max(yy - 2.0 * np.vdot(B, V) + np.vdot(V, GV), 0.0)  # ||Y - HV||^2
    primal = 0.5 * rr + beta * float(np.sum(np.linalg.norm(V, axis=1)))
    corr = np.max(np.linalg.norm(B - GV, axis=1))  # max_j ||h_j^T R||
    s = min(1.0, beta / corr) if corr > 0 else 1.0
    dual = s * (yy - np.vdot(B, V)) - 0.5 * s * s * rr
    return primal - dual, primal


# --------------------------------------------------------------------------------------
# atoms and networks
# --------------------------------------------------------------------------------------
def balanced_network(U, V):
    """Network with unit directions ``U`` and output rows ``V`` rebalanced: |u| = |v|."""
    a = np.sqrt(np.linalg.norm(V, axis=1))
    keep = a > 0
    return TwoLayerReLU(U[:, keep] * a[keep], V[keep] / a[keep, None])


def split_network(net: TwoLayerReLU):
    """Unit directions and path-norm output rows of a network (neurons with u = 0 dropped)."""
    nu = np.linalg.norm(net.W1, axis=0)
    keep = (nu > 0) & (np.linalg.norm(net.W2, axis=1) > 0)
    return net.W1[:, keep] / nu[keep], net.W2[keep] * nu[keep, None]


def network_from_atoms(X, Y, beta, U, **group_lasso_options) -> TwoLayerReLU:
    """The network over the unit directions ``U`` (d, m): outputs by the group lasso over
    :math:`(XU)_+`, atoms with ``v_j = 0`` dropped, neurons balanced."""
    if U.shape[1] == 0:
        return TwoLayerReLU.zeros(X.shape[1], Y.shape[1])
    V = group_lasso(atom_system(X, U, Y), Y, beta, **group_lasso_options)
    return balanced_network(U, V)


# --------------------------------------------------------------------------------------
# bookkeeping of the active set
# --------------------------------------------------------------------------------------
#: Directions closer than this (``|u^T w - 1|``, unit vectors) are compared by pattern in
#: :func:`has_direction`.
HAS_DIRECTION_TOL = 1e-12


def has_direction(U, u, X, tol=HAS_DIRECTION_TOL):
    """Whether the unit direction ``u`` is (numerically) one of the columns of ``U`` with the
    same activation pattern on the rows of ``X``.

    Near a cell boundary the oracle's maximiser can lie within 1e-6 rad of an active atom
    but on the other side of a hyperplane, where it activates another point: that is a new
    atom (its column differs), so the patterns are compared as well as the directions.
    """
    return bool(known_directions(U, np.asarray(u, dtype=float)[None, :], X, tol)[0])


def known_directions(U, C, X, tol=HAS_DIRECTION_TOL):
    """:func:`has_direction` for every row of ``C`` (candidate unit directions, shape
    ``(k, d)``) at once: a boolean array of length ``k``, with one activation call for
    all the pairs of candidates and columns of ``U`` whose directions agree within ``tol``."""
    known = np.zeros(C.shape[0], dtype=bool)
    if U.shape[1] == 0 or C.shape[0] == 0:
        return known
    ci, aj = np.nonzero(np.abs(C @ U - 1.0) <= tol)
    if ci.size == 0:
        return known
    cu, c_at = np.unique(ci, return_inverse=True)
    au, a_at = np.unique(aj, return_inverse=True)
    act = np.asarray(activation(X, np.column_stack([C[cu].T, U[:, au]])))
    same = np.all(act[:, c_at] == act[:, cu.size + a_at], axis=0)  # per close pair
    known[ci[same]] = True
    return known


def initial_outputs(A, Y, F, beta):
    r"""Output rows for new atoms with columns ``A`` (n, k): the best single-atom step for
    each, the others fixed.

    For an atom's column :math:`a` (:math:`(X u)_+` on the dense map) and residual
    :math:`R = Y - F` (``Y`` is passed as :math:`F - \nabla L(F)`, so that ``R`` is the
    negative loss gradient for any loss), :math:`\min_v \tfrac12\|R - a v^\top\|^2 +
    \beta\|v\|` is solved by :math:`v = (\|R^\top a\| - \beta)_+ / \|a\|^2 \cdot
    R^\top a / \|R^\top a\|` (shared by all new atoms, so scaled down by their number to
    stay a descent step). Returns ``(k, c)``.
    """
    RA = (Y - F).T @ A  # (c, k)
    return step_outputs(RA, np.einsum("nk,nk->k", A, A), beta)


def step_outputs(RA, na, beta):
    r""":func:`initial_outputs` from :math:`R^\top A` (``(c, k)``) and the columns' squared
    norms ``na`` (as :func:`convexrelu.kernels.relu_correlations` gives them)."""
    nr = np.linalg.norm(RA, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = np.where((na > 0) & (nr > 0), np.maximum(nr - beta, 0.0) / (na * nr), 0.0)
    return (RA * coef).T / max(RA.shape[1], 1)


def prune(U, V, rel=1e-13):
    """Drop atoms whose contribution |v_j| is at most ``rel`` times the path norm (|u_j| = 1)."""
    nv = np.linalg.norm(V, axis=1)
    keep = nv > rel * max(nv.sum(), 1e-300)
    return U[:, keep], V[keep]


def merge_cells(X, U, V, tol=1e-12):
    r"""Replace atoms sharing a sign pattern by the SVD of their sum when it stays in the cone.

    Atoms with the same pattern ``D`` on the rows of ``X`` add up to :math:`D X W` with
    :math:`W = \sum_j u_j v_j^\top`; when every singular direction of ``W`` (sign
    adjusted) keeps the pattern (up to ``tol`` times the row norms), the SVD's rank-one
    terms give the same predictions with penalty :math:`\sum_k \sigma_k \le \sum_j \|v_j\|`.
    The merge is kept only when that penalty is strictly smaller. Returns ``(U, V)``.
    """
    if U.shape[1] < 2:
        return U, V
    inv = pattern_groups(X, U)
    if np.unique(inv).size == inv.size:
        return U, V
    newU, newV = [], []
    for g in np.unique(inv):
        idx = np.flatnonzero(inv == g)
        if idx.size == 1:
            newU.append(U[:, idx])
            newV.append(V[idx])
            continue
        Wg = U[:, idx] @ V[idx]  # (d, c)
        A, sig, Bt = np.linalg.svd(Wg, full_matrices=False)
        keep = sig > 1e-14 * max(sig[0], 1e-300)
        A, sig, Bt = A[:, keep], sig[keep], Bt[keep]
        # each singular direction (or its negative) must keep the group's pattern
        side = cone_signs(X, U[:, idx[0]], A, tol)
        ok = bool(np.all(side != 0))
        if ok:
            flip = side < 0
            A[:, flip], Bt[flip] = -A[:, flip], -Bt[flip]
        if ok and np.sum(sig) < np.sum(np.linalg.norm(V[idx], axis=1)):
            newU.append(A)
            newV.append(sig[:, None] * Bt)
        else:
            newU.append(U[:, idx])
            newV.append(V[idx])
    return np.hstack(newU), np.vstack(newV)


# --------------------------------------------------------------------------------------
# local moves on the training objective
# --------------------------------------------------------------------------------------
#: :func:`refine` with ``progress`` reports its iterate at these L-BFGS iterations and at
#: every doubling after the last (10, 20, 40, 80, ...): few reports, so that their cost
#: (a forward pass each) stays a small part of a long descent.
PROGRESS_FIRST_ITER = 10


def _deadline_callback(deadline, progress=None, shape=None):
    """An L-BFGS callback that stops the optimiser at ``deadline`` (``perf_counter`` seconds)
    and, with ``progress``, passes it the iterate ``(U, V)`` (rebalanced; ``shape`` is
    ``(d, m, c)``) at iterations :data:`PROGRESS_FIRST_ITER` ``* 2^j``."""
    if deadline is None and progress is None:
        return None
    it, due = [0], [PROGRESS_FIRST_ITER]

    def cb(intermediate_result):
        if progress is not None:
            it[0] += 1
            if it[0] >= due[0]:
                due[0] *= 2
                d, m, c = shape
                # SciPy < 1.11 passes the iterate itself
                x = getattr(intermediate_result, "x", intermediate_result)
                net = TwoLayerReLU(x[: d * m].reshape(d, m), x[d * m:].reshape(m, c)).rebalance()
                progress(*split_network(net))
        if deadline is not None and time.perf_counter() >= deadline:
            raise StopIteration

    return cb


class _PastDeadline(Exception):
    """Raised inside an objective evaluation that starts past the deadline."""


def refine(X, Y, beta, U, V, max_iter, deadline=None, loss=None, progress=None):
    """L-BFGS on eq. 5 (eq. 76 for another ``loss``) over all weights, from the balanced
    network; returns (U, V, improved). ``progress``: called with the iterate ``(U, V)`` now
    and then (see :data:`PROGRESS_FIRST_ITER`)."""
    net0 = balanced_network(U, V)
    d, m = net0.W1.shape
    c = Y.shape[1]
    if m == 0:
        return U, V, False

    best = [np.inf, None]  # the lowest objective evaluated, and where

    def fun(x):
        if deadline is not None and best[1] is not None and time.perf_counter() >= deadline:
            # past the deadline inside an iteration (a line search's evaluations can take
            # long on large or distributed data): stop with the best point evaluated
            raise _PastDeadline
        val, gW1, gW2 = objective_and_gradient(X, Y, beta, x[: d * m].reshape(d, m),
                                               x[d * m :].reshape(m, c), loss)
        if val < best[0]:
            best[0], best[1] = val, x.copy()
        return val, np.concatenate([gW1.ravel(), gW2.ravel()])

    x0 = np.concatenate([net0.W1.ravel(), net0.W2.ravel()])
    f0 = fun(x0)[0]
    try:
        res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                       callback=_deadline_callback(deadline, progress, (d, m, c)),
                       options=dict(maxiter=max_iter, maxcor=30, gtol=1e-14, ftol=1e-16))
        x_end, f_end = res.x, res.fun
    except _PastDeadline:
        x_end, f_end = best[1], best[0]
    if not f_end < f0:
        return U, V, False
    net = TwoLayerReLU(x_end[: d * m].reshape(d, m), x_end[d * m :].reshape(m, c)).rebalance()
    Un, Vn = split_network(net)
    return Un, Vn, True


#: Adam's step in :func:`adam_moves`, relative to the root mean square of the weights
#: (measured on the heuristic path of ``cg``, seeds 0..5, wine at beta = 0.01 lambda_max:
#: 0.01, 0.015, 0.03 of it gave median times to the best Adam objective of 5.7, 3.8 and
#: 4.3 s). Relative, so that the step follows the scale of the data and of the targets.
ADAM_RELATIVE_LR = 0.015


def adam_moves(X, Y, beta, U, V, steps, deadline=None, loss=None, lr=None, progress=None):
    r"""A local move by full-batch Adam on eq. 5 (eq. 76 for another ``loss``) over all
    weights of the balanced network ``(U, V)``, for ``steps`` steps or until ``deadline``.

    L-BFGS (:func:`refine`) levels off on networks with many neurons, where the objective
    has many kinks (hyperplanes through data points; a plausible cause: curvature pairs
    taken across kinks mislead the quasi-Newton model). Wine, beta = 0.01 lambda_max:
    L-BFGS from 416 or 1000 random neurons levels off at 7.058-7.085; from the network
    ``cg`` has at 3 s, the loop gains 0.014 in the next 8 s, while full-batch Adam from
    that network gains 0.018 in 4 s. ``lr`` defaults to :data:`ADAM_RELATIVE_LR` times
    the root mean square of the weights. Returns ``(U, V, improved)``: the best iterate
    evaluated, rebalanced and split, and whether it is below the start. ``progress``:
    called with the best iterate so far ``(U, V)`` at steps :data:`PROGRESS_FIRST_ITER`
    ``* 2^j`` when it is below the start and lower than at the last call.
    """
    net0 = balanced_network(U, V)
    W1, W2 = net0.W1.copy(), net0.W2.copy()
    if W1.shape[1] == 0 or steps <= 0:
        return U, V, False
    if lr is None:
        rms = np.sqrt((float(np.vdot(W1, W1)) + float(np.vdot(W2, W2))) / (W1.size + W2.size))
        lr = ADAM_RELATIVE_LR * rms
    b1, b2, eps = 0.9, 0.999, 1e-8
    m1, m2 = [np.zeros_like(W1), np.zeros_like(W2)], [np.zeros_like(W1), np.zeros_like(W2)]
    f0, best = None, (np.inf, None)
    due, reported = PROGRESS_FIRST_ITER, np.inf
    for k in range(1, int(steps) + 1):
        val, g1, g2 = objective_and_gradient(X, Y, beta, W1, W2, loss)
        if f0 is None:
            f0 = val
        if val < best[0]:
            best = (val, (W1.copy(), W2.copy()))
        if progress is not None and k >= due:
            due *= 2
            if best[0] < min(f0, reported):
                reported = best[0]
                progress(*split_network(TwoLayerReLU(*best[1]).rebalance()))
        if not np.isfinite(val) or (deadline is not None and time.perf_counter() >= deadline):
            break
        for i, (W, g) in enumerate(((W1, np.asarray(g1)), (W2, np.asarray(g2)))):
            m1[i] *= b1
            m1[i] += (1.0 - b1) * g
            m2[i] *= b2
            m2[i] += (1.0 - b2) * (g * g)
            W -= lr * (m1[i] / (1.0 - b1 ** k)) / (np.sqrt(m2[i] / (1.0 - b2 ** k)) + eps)
    if best[1] is None or not best[0] < f0:
        return U, V, False
    Un, Vn = split_network(TwoLayerReLU(*best[1]).rebalance())
    return Un, Vn, True


def escape(X, Y, beta, U, V, rng, deadline=None, loss=None, n_new=None, max_iter=300,
           progress=None):
    r"""A short non-convex descent from the network ``(U, V)`` widened by ``n_new`` neurons.

    Used when a heuristic oracle says that no direction violates the dual constraint: if a
    wider network descends below the current objective, the estimate was wrong. The new
    neurons start at the unit directions of the rows with the largest residual (half) and
    at random directions (half), with the single-atom output step of
    :func:`initial_outputs` (a direction without a useful step gets an output of norm
    1e-6 in a random direction, so that its penalty barely moves the start); L-BFGS on eq. 5 (eq. 76 for another
    ``loss``) runs over all weights for at most ``max_iter`` iterations or until
    ``deadline``. Returns ``(U, V, objective)`` of the result (pruned, balanced).
    ``progress``: passed to :func:`refine`.
    """
    d, m = U.shape
    n, c = Y.shape
    k = int(n_new if n_new is not None else min(max(20, m), 200))
    net0 = balanced_network(U, V)
    F = forward(X, net0.W1, net0.W2) if m else np.zeros_like(Y)
    Rt = (Y - F) if loss is None else -loss.gradient(F, Y)
    top = np.argsort(np.linalg.norm(Rt, axis=1))[::-1][: k // 2]
    rows = take_rows(X, top)
    rows = rows[np.linalg.norm(rows, axis=1) > 0]
    Unew = np.vstack([rows, rng.standard_normal((k - rows.shape[0], d))]).T
    Unew /= np.maximum(np.linalg.norm(Unew, axis=0), 1e-300)
    Vnew = step_outputs(*relu_correlations(X, Unew, Rt), beta)
    vn = np.linalg.norm(Vnew, axis=1)
    # directions without a useful step get a small random output so that L-BFGS can turn them
    small = vn == 0
    if np.any(small):
        Vr = rng.standard_normal((int(small.sum()), c))
        Vnew[small] = Vr / np.linalg.norm(Vr, axis=1, keepdims=True) * 1e-6
    Uw, Vw = np.hstack([U, Unew]), np.vstack([V, Vnew])
    Un, Vn, _ = refine(X, Y, beta, Uw, Vw, max_iter, deadline, loss, progress)
    Un, Vn = prune(Un, Vn, rel=1e-9)
    net = balanced_network(Un, Vn)
    Fn = forward(X, net.W1, net.W2)
    obj = (0.5 * float(np.vdot(Fn - Y, Fn - Y)) if loss is None else loss.value(Fn, Y)) \
        + beta * net.weight_decay()
    return Un, Vn, obj


def slide_2d(arr, X, Y, beta, U, V, max_iter, deadline=None):
    r"""Slide every atom inside its cell (rank-2 data), jointly with the output weights.

    ``arr`` is the exact oracle's ``arrangement_2d()``: whitened rows ``W``, scales ``s``,
    the basis of the row space, and the cells' start angles and widths. Returns
    ``(U, V, moved)``.

    In whitened coordinates (``X u = W y``, ``u = basis (y / s)``) each cell is an arc
    of angles ``[lo, hi]`` on which :math:`(W y)_+ = D W y` is linear. Each neuron is
    parametrised as :math:`y_j = \rho_j (\cos\theta_j, \sin\theta_j)` with
    :math:`\theta_j \in [lo_j, hi_j]` and :math:`\rho_j \ge 0` (box constraints) and
    output :math:`v_j`; the objective

    .. math:: \tfrac12\|\textstyle\sum_j D_j W y_j v_j^\top - Y\|^2
              + \tfrac\beta2 \sum_j (\|y_j / s\|^2 + \|v_j\|^2)

    is smooth on the box (the pattern of each atom is fixed to its closed cell, so atoms
    may rest on a cell's boundary ray, where the optimum often lies) and is minimised
    with L-BFGS-B. Every point of the box is a genuine network with the same objective.
    """
    Wm, s, basis, angles, widths = arr
    m, c = U.shape[1], Y.shape[1]
    if m == 0:
        return U, V, False
    two_pi = 2.0 * np.pi
    Yw = (U.T @ basis) * s[None, :]  # whitened directions of the atoms
    phi = np.mod(np.arctan2(Yw[:, 1], Yw[:, 0]), two_pi)
    cell = np.searchsorted(angles, phi, side="right") - 1
    cell = np.where(cell < 0, angles.size - 1, cell)
    lo = angles[cell]
    phi = np.where(phi < lo, phi + two_pi, phi)
    hi = lo + widths[cell]
    phi = np.clip(phi, lo, hi)
    mid = lo + 0.5 * widths[cell]
    D = (Wm @ np.vstack([np.cos(mid), np.sin(mid)])) > 0  # (n, m) closed-cell patterns
    D |= (np.linalg.norm(Wm, axis=1) == 0)[:, None]
    nv = np.linalg.norm(V, axis=1)
    # balanced start: |u_j| = |v_j| = sqrt(path norm); |u| = rho |e(theta)/s|
    e = np.column_stack([np.cos(phi), np.sin(phi)])
    unorm = np.linalg.norm(e / s, axis=1)
    rho0 = np.sqrt(nv) / unorm
    v0 = V / np.maximum(np.sqrt(nv), 1e-300)[:, None]
    inv_s2 = 1.0 / s**2

    def fun(x):
        th, rho, Vm = x[:m], x[m : 2 * m], x[2 * m :].reshape(m, c)
        ct, st = np.cos(th), np.sin(th)
        Yv = np.column_stack([ct, st]) * rho[:, None]  # (m, 2)
        H = (Wm @ Yv.T) * D  # (n, m)
        R = H @ Vm - Y
        val = 0.5 * np.vdot(R, R) + 0.5 * beta * (np.sum(Yv**2 * inv_s2) + np.vdot(Vm, Vm))
        gV = H.T @ R + beta * Vm
        gH = (R @ Vm.T) * D  # (n, m)
        gY = gH.T @ Wm + beta * Yv * inv_s2  # (m, 2)
        grho = gY[:, 0] * ct + gY[:, 1] * st
        gth = rho * (-gY[:, 0] * st + gY[:, 1] * ct)
        return val, np.concatenate([gth, grho, gV.ravel()])

    x0 = np.concatenate([phi, rho0, v0.ravel()])
    f0 = fun(x0)[0]
    bounds = list(zip(lo, hi)) + [(0.0, None)] * m + [(None, None)] * (m * c)
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   callback=_deadline_callback(deadline),
                   options=dict(maxiter=max_iter, maxcor=30, gtol=1e-13, ftol=1e-16))
    if not res.fun < f0:
        return U, V, False
    th, rho, Vm = res.x[:m], res.x[m : 2 * m], res.x[2 * m :].reshape(m, c)
    Yv = np.column_stack([np.cos(th), np.sin(th)])
    Un = basis @ (Yv / s).T  # (d, m) directions
    un = np.linalg.norm(Un, axis=0)
    Un = Un / un
    Vn = Vm * (rho * un)[:, None]  # path-norm output rows for unit directions
    keep = np.linalg.norm(Vn, axis=1) > 0
    return Un[:, keep], Vn[keep], True


# --------------------------------------------------------------------------------------
# feature maps
# --------------------------------------------------------------------------------------
class DenseFeatures:
    r"""The feature map of the plain two-layer network: atoms :math:`(X U)_+`.

    A feature map tells :class:`~convexrelu.solvers.cg.ConditionalGradient` how the
    problem's atoms are built; any object with these members can replace it (the
    convolutional fit passes :class:`convexrelu.conv.ConvFeatures`):

    ``rows``
        The matrix (``n' x d``) whose sign patterns define the atoms: the oracle was built
        on it, the self-check and :func:`has_direction` read it.
    ``atoms(U)``
        The atoms' columns ``H`` (``n x m``, one per unit direction in ``U``).
    ``system(U, Y)``, ``correlations(U, R)`` (optional)
        The master's :class:`~convexrelu.kernels.AtomSystem` and the new atoms'
        correlations with a residual, computed without forming ``H`` on the host (a map
        without them gets both from ``atoms``).
    ``pull_back(G)``
        The matrix the oracle is called on for the dual direction ``G`` (``n x c``), so
        that :math:`\|G^\top h(u)\| = \|\text{pull\_back}(G)^\top (\text{rows}\, u)_+\|`.
    ``network(U, V)``
        The network of the state (balanced: :math:`|u_j| = |v_j|`).
    ``predict(net)``
        Its predictions on the training inputs (``n x c``).
    ``local_moves``
        Whether merging, L-BFGS refinement and sliding apply (they assume dense atoms).
    ``name``
        Appended to the solver's name in results (``"cg-conv"``); None here.
    """

    name = None
    local_moves = True

    def __init__(self, X):
        self.rows = X

    def atoms(self, U):
        return np.maximum(self.rows @ U, 0.0)

    def system(self, U, Y) -> AtomSystem:
        """The master's data for the atoms ``U`` (:func:`convexrelu.kernels.atom_system`:
        on the active back end's device, without forming ``H`` on the host)."""
        return atom_system(self.rows, U, Y)

    def correlations(self, U, R):
        """``(R^T H, column norms squared)`` of the atoms ``U`` (for :func:`step_outputs`)."""
        return relu_correlations(self.rows, U, R)

    def pull_back(self, G):
        return G

    def network(self, U, V) -> TwoLayerReLU:
        return balanced_network(U, V)

    def predict(self, net):
        return forward(self.rows, net.W1, net.W2)
