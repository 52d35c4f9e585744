r"""A rigorous upper bound on :math:`\Omega(Z)^2` from the Shor/RLT relaxation, by dual verification.

:class:`~convexrelu.oracles.SDPOracle` solves a semidefinite relaxation of

.. math::

    \Omega(Z)^2 = \max_{\|u\| \le 1} \|Z^\top (X_r u)_+\|^2

and used to report the conic solver's optimal value, inflated by a fixed margin, as
"the bound". That number is only as good as the solver's tolerance: on badly
conditioned data the solver's "optimal" value has been seen *below* the true maximum.
This module turns any multipliers the solver returns into a bound that does not rest on
the solver at all: weak duality with an explicit dual, a verified lower bound on the
smallest eigenvalue of the dual slack matrix, and outward rounding of every scalar.

The relaxation (normalised data)
--------------------------------
Write :math:`X = X_r / \|X_r\|_2` (rows :math:`x_k^\top`) and :math:`Z_n = Z / \|Z\|_F`
(homogeneity: :math:`\Omega(Z; X_r) = \|Z\|_F \|X_r\|_2\, \Omega(Z_n; X)`). With
:math:`w = (1, u, a)`, :math:`a = (Xu)_+`, the lifted matrix :math:`W \succeq 0`
(size :math:`N = 1 + r + n`, blocks :math:`W_{00}, W_{u0}, W_{a0}, W_{uu}, W_{au},
W_{aa}`) stands for :math:`w w^\top`. The relaxation is

.. math::

    \max_{W \succeq 0}\ \langle Z_n Z_n^\top, W_{aa}\rangle \quad\text{s.t.}\quad
    \begin{aligned}[t]
    &W_{00} = 1 &&(y_0)\\
    &1 - \operatorname{tr} W_{uu} \ge 0 &&(z_{tr})\\
    &W_{a0} \ge 0,\quad W_{a0} - X W_{u0} \ge 0 &&(z_a,\ z_{ax})\\
    &(W_{aa})_{kk} - x_k^\top (W_{au})_{k\cdot}^\top = 0 &&(y_{diag})\\
    &W_{aa} \ge 0,\quad W_{aa} - X W_{ua} \ge 0 \ \ \text{(elementwise)} &&(Z_{aa},\ Z_{aax})\\
    &W_{aa} - X W_{ua} - W_{au} X^\top + X W_{uu} X^\top \ge 0 &&(Z_{prod})\\
    &\|(W_{au})_{k\cdot}\| \le (W_{a0})_k &&(t_1, S_1)\\
    &\|(W_{au})_{k\cdot} - X_{k\cdot} W_{uu}\| \le (W_{a0})_k - x_k^\top W_{u0} &&(t_2, S_2)
    \end{aligned}

the same as ``SDPOracle``'s. Every lift :math:`w w^\top` of a unit-ball ``u`` satisfies all
of it (``a_k (a_k - x_k^T u) = 0``; products of non-negative factors are non-negative;
``a_k \|u\| \le a_k``), and its objective is :math:`\|Z_n^\top (Xu)_+\|^2`.

The dual and the verification
-----------------------------
Write every constraint as a linear functional of ``W``: equalities
:math:`\langle A_i, W\rangle = b_i`, inequalities :math:`\langle G_j, W\rangle \ge h_j`,
and for each second-order cone :math:`v_k(W) \in \mathcal{K}` the functional
:math:`f_k(W) = \langle (t_k, s_k), v_k(W)\rangle = \langle F_k, W\rangle`, which is
:math:`\ge 0` whenever :math:`\|s_k\| \le t_k` (the cone is self-dual). For *any*
multipliers :math:`y`, :math:`z \ge 0`, :math:`(t_k, s_k) \in \mathcal{K}` put

.. math::

    S = \sum_i y_i A_i - \sum_j z_j G_j - \sum_k F_k - C .

Then for every feasible ``W`` (in particular every lift of a unit ``u``)

.. math::

    \langle C, W\rangle = b^\top y - \sum_j z_j \langle G_j, W\rangle - \sum_k f_k(W)
    - \langle S, W\rangle \le \underbrace{b^\top y - h^\top z}_{= y_0 + z_{tr}}
    - \lambda_{\min}(S) \operatorname{tr} W ,

and :math:`\operatorname{tr} W \le T := 2 + \lambda_{\max}(X^\top X)` (``= 3`` up to
rounding), so :math:`\Omega(Z_n; X)^2 \le y_0 + z_{tr} + \max(0, -\lambda_{\min}(S))\,T`
(Jansson, Chaykin & Keil, *Rigorous error bounds for the optimal value in semidefinite
programming*, SIAM J. Numer. Anal. 46 (2007)). Proof of the trace bound for every
feasible ``W`` (not only lifts): :math:`W_{00} = 1`, :math:`\operatorname{tr} W_{uu} \le 1`;
the ``(k, k)`` entry of the :math:`Z_{prod}` constraint reads
:math:`(W_{aa})_{kk} - 2 x_k^\top (W_{au})_{k\cdot} + x_k^\top W_{uu} x_k \ge 0`, and the
:math:`y_{diag}` equality replaces the middle term by :math:`-2 (W_{aa})_{kk}`, so
:math:`(W_{aa})_{kk} \le x_k^\top W_{uu} x_k`; summing,
:math:`\operatorname{tr} W_{aa} \le \langle X^\top X, W_{uu}\rangle \le
\lambda_{\max}(X^\top X) \operatorname{tr} W_{uu}` (as :math:`W_{uu} \succeq 0`). For
a lift it is simply :math:`1 + \|u\|^2 + \|(Xu)_+\|^2 \le 2 + \|X\|_2^2`.

So the bound holds for *any* multipliers; the solver's only job is to make it tight.
The multipliers are taken from CVXPY (``constraint.dual_value``), projected onto their
cones (``z <- max(z, 0)``, ``t_k <- max(t_k, \|s_k\|)`` rounded up), and then:

* ``S`` is formed in float64 and, with the same code on absolute values, a matrix
  ``|S|`` bounding every term; the rounding error of ``S`` is at most
  :math:`\gamma_K \| |S| \|_F` in the 2-norm (:math:`\gamma_K = Ku/(1-Ku)`, ``K`` the
  longest chain of operations, :math:`u = 2^{-53}`).
* :math:`\lambda_{\min}` of the float matrix is bounded below without trusting the
  eigen-solver: with :math:`\tilde\lambda` from ``eigvalsh``, a shift
  :math:`\mu = \tilde\lambda - \tau` is *proved* by a Cholesky factorisation of
  ``B = fl(S - mu I)``: if it runs to completion, :math:`R^\top R = B + \Delta B`,
  :math:`|\Delta B| \le \gamma_{N+1} |R^\top||R|` (Higham, *Accuracy and Stability*,
  Thm 10.3), whence :math:`\|\Delta B\|_2 \le \frac{\gamma_{N+1}}{1-\gamma_{N+1}}
  \operatorname{tr} B` and :math:`\lambda_{\min}(S) \ge \mu - \frac{\gamma_{N+1}}
  {1-\gamma_{N+1}} \operatorname{tr} B - 2u \max_i B_{ii}`. ``tau`` grows until the
  factorisation succeeds; a Gershgorin bound is the last resort.
* Every scalar operation on the way to the bound is rounded outward
  (``math.nextafter``), and ``lambda_max(X^T X)`` in ``T`` is bounded the same way.

Assumptions: IEEE double arithmetic with rounding to nearest, and conventional
(non-Strassen) matrix products and Cholesky in BLAS/LAPACK, for which the bounds above
hold whatever the order of summation.

Back to the original scale: :math:`Z_n = \mathrm{fl}(Z / z_s)` and
:math:`X = \mathrm{fl}(X_r / x_s)` differ from the exact quotients by at most ``u``
relative per entry, and :math:`\Omega` is Lipschitz in the data
(:math:`|\Omega(Z; X) - \Omega(Z'; X')| \le \|Z - Z'\|_2 \|X\|_2 + \|Z'\|_2 \|X - X'\|_2`),
so :math:`\Omega(Z; X_r) \le z_s x_s \sqrt{v} + 4u\, z_s \|X_r\|_F`, ``v`` the verified
normalised bound. ``value_sq`` is the square of that, rounded up.

Trade-off: the second-order cones are kept (``soc=True``, default) because they cost
little and their duals are easy to project; ``soc=False`` drops them (a weaker but still
valid relaxation; on random data the optimal values agree to ~1e-8). The bound is for
the data ``Xr`` as given (rank reduction, if any, is the caller's business: a rank
reduction that drops a genuine direction is not covered).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "SDPBound",
    "SDPDuals",
    "DualCheck",
    "verified_sdp_bound",
    "verify_duals",
    "build_relaxation",
    "duals_from_cvxpy",
    "trace_bound",
    "lambda_min_lower",
]

_U = 2.0**-53  # unit roundoff of IEEE double
_TINY = 2.0**-1022  # smallest normal: covers underflow in absolute terms


def _gamma(k: int) -> float:
    """An upper bound on ``gamma_k = k u / (1 - k u)`` (``k u`` is exact)."""
    ku = k * _U
    return _up(ku / _down(1.0 - ku))


def _up(x: float) -> float:
    """``x`` rounded one ulp up: an upper bound of the exact result of the op that gave ``x``."""
    return math.nextafter(float(x), math.inf)


def _down(x: float) -> float:
    return math.nextafter(float(x), -math.inf)


def _add_up(*xs: float) -> float:
    """Upper bound on the exact sum (each partial sum rounded up)."""
    acc = 0.0
    for x in xs:
        acc = _up(acc + float(x))
    return acc


def _mul_up(a: float, b: float) -> float:
    """Upper bound on the exact product of two non-negative floats."""
    return _up(float(a) * float(b))


# ----------------------------------------------------------------------------------------
# Multipliers
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SDPDuals:
    r"""Multipliers of the relaxation, in the sign convention of the module's dual.

    ``y0`` (``W00 = 1``), ``z_tr`` (``1 - tr Wuu >= 0``), ``z_a`` and ``z_ax`` (n,),
    ``y_diag`` (n,), ``Z_aa``, ``Z_aax``, ``Z_prod`` (n, n), and for the cones ``t1, t2``
    (n,) and ``S1, S2`` (n, r), or None when the cones are not used. Inequality and cone
    multipliers must lie in their cones for the bound to hold; :meth:`projected` puts
    them there (``verify_duals`` always projects).
    """

    y0: float
    z_tr: float
    z_a: np.ndarray
    z_ax: np.ndarray
    y_diag: np.ndarray
    Z_aa: np.ndarray
    Z_aax: np.ndarray
    Z_prod: np.ndarray
    t1: np.ndarray | None = None
    S1: np.ndarray | None = None
    t2: np.ndarray | None = None
    S2: np.ndarray | None = None

    def arrays(self):
        """All multipliers as (name, array) pairs (None for absent cones)."""
        return [(k, getattr(self, k)) for k in ("y0", "z_tr", "z_a", "z_ax", "y_diag", "Z_aa",
                                                 "Z_aax", "Z_prod", "t1", "S1", "t2", "S2")]

    def is_finite(self) -> bool:
        return all(v is None or bool(np.all(np.isfinite(v))) for _, v in self.arrays())

    def scaled(self, factor: float) -> "SDPDuals":
        """Every multiplier times ``factor`` (used to test that bad multipliers stay safe)."""
        kw = {k: (None if v is None else (float(v) * factor if np.ndim(v) == 0 else np.asarray(v) * factor))
              for k, v in self.arrays()}
        return SDPDuals(**kw)

    def projected(self) -> "SDPDuals":
        """Inequality multipliers clipped at 0, cone multipliers pushed into the cone.

        ``t_k`` becomes ``max(t_k, |s_k|)`` with ``|s_k|`` rounded up (its relative error
        is at most ``gamma_{r+3}``), so ``(t_k, s_k)`` is in the second-order cone exactly.
        """
        def cone(t, S):
            if t is None or S is None:
                return None, None
            S = np.asarray(S, dtype=float)
            nrm = np.linalg.norm(S, axis=1) * (1.0 + _gamma(S.shape[1] + 4))
            nrm = np.nextafter(nrm, np.inf)
            return np.maximum(np.asarray(t, dtype=float), nrm), S

        t1, S1 = cone(self.t1, self.S1)
        t2, S2 = cone(self.t2, self.S2)
        pos = lambda v: np.maximum(np.asarray(v, dtype=float), 0.0)  # noqa: E731
        return SDPDuals(
            y0=float(self.y0), z_tr=max(float(self.z_tr), 0.0),
            z_a=pos(self.z_a), z_ax=pos(self.z_ax), y_diag=np.asarray(self.y_diag, dtype=float),
            Z_aa=pos(self.Z_aa), Z_aax=pos(self.Z_aax), Z_prod=pos(self.Z_prod),
            t1=t1, S1=S1, t2=t2, S2=S2,
        )


# ----------------------------------------------------------------------------------------
# Dual slack matrix and its verified smallest eigenvalue
# ----------------------------------------------------------------------------------------


def _assemble(X: np.ndarray, Zn: np.ndarray, d: SDPDuals, absval: bool = False) -> np.ndarray:
    r"""The dual slack :math:`S = \sum y_i A_i - \sum z_j G_j - \sum F_k - C` (or its bound ``|S|``).

    With ``absval=True`` the same expression is evaluated on absolute values with every
    subtraction turned into an addition: an entrywise upper bound on the sum of the
    absolute values of the terms, which bounds the rounding error of ``S``.
    """
    n, r = X.shape
    N = 1 + r + n
    f = np.abs if absval else (lambda v: v)
    sg = 1.0 if absval else -1.0
    Xa = f(X)
    Za = f(Zn)
    sym = lambda M: 0.5 * (M + M.T)  # noqa: E731
    Z6s = sym(f(d.Z_prod))
    S = np.zeros((N, N))
    ui = slice(1, 1 + r)
    ai = slice(1 + r, N)
    Suu = abs(d.z_tr) * np.eye(r) if absval else d.z_tr * np.eye(r)
    Suu = Suu + sg * (Xa.T @ (Z6s @ Xa))
    Su0 = 0.5 * (Xa.T @ f(d.z_ax))
    Sa0 = sg * 0.5 * (f(d.z_a) + f(d.z_ax))
    Sau = sg * 0.5 * (f(d.y_diag)[:, None] * Xa) + 0.5 * (f(d.Z_aax).T @ Xa) + Z6s @ Xa
    Saa = np.diag(f(d.y_diag)) + sg * (sym(f(d.Z_aa)) + sym(f(d.Z_aax)) + Z6s + Za @ Za.T)
    if d.t1 is not None:
        Sa0 = Sa0 + sg * 0.5 * f(d.t1)
        Sau = Sau + sg * 0.5 * f(d.S1)
    if d.t2 is not None:
        Sa0 = Sa0 + sg * 0.5 * f(d.t2)
        Su0 = Su0 + 0.5 * (Xa.T @ f(d.t2))
        Sau = Sau + sg * 0.5 * f(d.S2)
        Suu = Suu + sym(f(d.S2).T @ Xa)
    S[0, 0] = abs(d.y0) if absval else d.y0
    S[ui, 0] = Su0
    S[0, ui] = Su0
    S[ai, 0] = Sa0
    S[0, ai] = Sa0
    S[ui, ui] = sym(Suu)
    S[ai, ui] = Sau
    S[ui, ai] = Sau.T
    S[ai, ai] = sym(Saa)
    return S


def _gershgorin_lower(S: np.ndarray, err2: float) -> float:
    """Gershgorin lower bound on lambda_min, with its rounding (always valid, often loose)."""
    N = S.shape[0]
    A = np.abs(S)
    off = A.sum(axis=1) - np.diag(A)
    low = np.diag(S) - off
    slack = _gamma(N + 2) * 2.0 * A.sum(axis=1)
    return _down(_down(float(np.min(low - slack)) - err2) - N * _TINY)


def lambda_min_lower(S: np.ndarray, err2: float = 0.0, *, max_tries: int = 12) -> float:
    r"""A proven lower bound on :math:`\lambda_{\min}(S + E)` for every ``|E|_2 <= err2``.

    ``S`` is a symmetric float64 matrix. The eigen-solver only proposes a shift ``mu``;
    the bound comes from a successful Cholesky factorisation of ``fl(S - mu I)`` and the
    a-priori backward error of Cholesky (see the module docstring). Falls back on
    Gershgorin when no factorisation succeeds.
    """
    S = np.asarray(S, dtype=float)
    N = S.shape[0]
    if N == 0:
        return math.inf
    if not np.all(np.isfinite(S)):
        raise ValueError("lambda_min_lower: S has non-finite entries")
    S = 0.5 * (S + S.T)  # exact when S is symmetric (as the callers' are)
    try:
        lam = float(np.linalg.eigvalsh(S)[0])
    except np.linalg.LinAlgError:
        return _gershgorin_lower(S, err2)
    g = _gamma(N + 1)
    kappa = _up(g / _down(1.0 - g))
    scale = float(np.linalg.norm(S, "fro"))
    tau = max(4.0 * (N + 1) * _U * max(scale, abs(lam)), 16.0 * N * _TINY)
    best = -math.inf
    for _ in range(max_tries):
        mu = lam - tau
        B = S.copy()
        B[np.diag_indices(N)] -= mu
        try:
            np.linalg.cholesky(B)
        except np.linalg.LinAlgError:
            tau *= 8.0
            continue
        dB = np.diag(B)  # positive: the factorisation succeeded
        trB = _mul_up(float(np.sum(dB)), 1.0 + _gamma(N + 1))  # bounds the exact trace
        loss = _add_up(_mul_up(kappa, trB), _mul_up(2.0 * _U, float(np.max(dB))), err2, N * _TINY)
        best = _down(mu - loss)
        break
    if best == -math.inf:
        best = _gershgorin_lower(S, err2)
    return best


def trace_bound(Xn: np.ndarray) -> float:
    r"""Proven upper bound on :math:`2 + \lambda_{\max}(X_n^\top X_n)` (bounds ``tr W``)."""
    Xn = np.asarray(Xn, dtype=float)
    n, r = Xn.shape
    G = Xn.T @ Xn
    G = 0.5 * (G + G.T)
    Gabs = np.abs(Xn).T @ np.abs(Xn)
    err2 = _add_up(_mul_up(2.0 * _gamma(n + 2), float(np.linalg.norm(Gabs, "fro"))), r * _TINY)
    lam_max = -lambda_min_lower(-G, err2)
    return _up(2.0 + max(lam_max, 0.0))


@dataclass(frozen=True)
class DualCheck:
    """Outcome of :func:`verify_duals` (normalised scale).

    ``value``: proven upper bound on the relaxation (hence on ``Omega(Zn; Xn)^2``);
    ``dual_objective``: ``y0 + z_tr`` of the projected multipliers (rounded up);
    ``lambda_min``: proven lower bound on lambda_min of the dual slack ``S``;
    ``trace_bound``: ``T``; ``correction``: ``max(0, -lambda_min) * T``.
    """

    value: float
    dual_objective: float
    lambda_min: float
    trace_bound: float
    correction: float


def verify_duals(Xn: np.ndarray, Zn: np.ndarray, duals: SDPDuals, *,
                 trace_bound_value: float | None = None) -> DualCheck:
    r"""Proven upper bound on :math:`\max_{\|u\|\le 1} \|Z_n^\top (X_n u)_+\|^2` from any multipliers.

    The multipliers are projected onto their cones first, so any finite input gives a
    valid bound (poor multipliers give a poor, but still valid, bound). ``Xn`` need not
    be normalised (``T`` is computed from it). ``trace_bound_value``, if given, must be a
    proven bound on ``2 + lambda_max(Xn^T Xn)`` (as :func:`trace_bound` returns); it is
    trusted, not checked.
    """
    Xn = np.asarray(Xn, dtype=float)
    Zn = np.asarray(Zn, dtype=float)
    if not duals.is_finite():
        raise ValueError("verify_duals: the multipliers contain NaN or inf")
    n, r = Xn.shape
    c = Zn.shape[1]
    N = 1 + r + n
    d = duals.projected()
    S = _assemble(Xn, Zn, d)
    Sabs = _assemble(Xn, Zn, d, absval=True)
    K = 2 * n + c + r + 16
    err2 = _add_up(_mul_up(2.0 * _gamma(K), float(np.linalg.norm(Sabs, "fro"))), N * K * _TINY)
    lam = lambda_min_lower(S, err2)
    T = trace_bound(Xn) if trace_bound_value is None else float(trace_bound_value)
    dual_obj = _up(d.y0 + d.z_tr)
    corr = _mul_up(max(0.0, -lam), T)
    return DualCheck(value=_up(dual_obj + corr), dual_objective=dual_obj, lambda_min=lam,
                     trace_bound=T, correction=corr)


# ----------------------------------------------------------------------------------------
# The relaxation in CVXPY and its multipliers
# ----------------------------------------------------------------------------------------


def build_relaxation(Xn: np.ndarray, Zn: np.ndarray, *, soc: bool = True):
    """CVXPY problem, lifted variable ``W`` and constraint list, in the order of :class:`SDPDuals`."""
    import cvxpy as cp

    n, r = Xn.shape
    N = 1 + r + n
    W = cp.Variable((N, N), PSD=True)
    u = W[1 : 1 + r, 0]
    a = W[1 + r :, 0]
    Wuu = W[1 : 1 + r, 1 : 1 + r]
    Wau = W[1 + r :, 1 : 1 + r]
    Waa = W[1 + r :, 1 + r :]
    XWua = Xn @ Wau.T
    cons = [
        W[0, 0] == 1,
        1 - cp.trace(Wuu) >= 0,
        a >= 0,
        a - Xn @ u >= 0,
        cp.diag(Waa) - cp.sum(cp.multiply(Wau, Xn), axis=1) == 0,
        Waa >= 0,
        Waa - XWua >= 0,
        Waa - XWua - XWua.T + Xn @ Wuu @ Xn.T >= 0,
    ]
    if soc:
        cons += [cp.SOC(a, Wau, axis=1), cp.SOC(a - Xn @ u, Wau - Xn @ Wuu, axis=1)]
    prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(Zn @ Zn.T, Waa))), cons)
    return prob, W, cons


def duals_from_cvxpy(cons, n: int, r: int) -> SDPDuals:
    """Read the multipliers of :func:`build_relaxation`'s constraints into :class:`SDPDuals`.

    CVXPY reports non-negative multipliers for ``expr >= 0`` and for cones; for an
    equality of a maximisation its multiplier is the module's ``y`` (the one of
    ``b - <A, W>``) as is (checked: with it the dual slack ``S`` is PSD up to the solver's
    tolerance, with the opposite sign it is far from it). A wrong sign could only make
    the bound loose, never invalid: the verification holds for any multipliers.
    """

    def val(k, shape):
        v = cons[k].dual_value
        if v is None:
            raise RuntimeError(f"the solver returned no multiplier for constraint {k}")
        return np.asarray(v, dtype=float).reshape(shape)

    kw = dict(
        y0=float(val(0, ())),
        z_tr=float(val(1, ())),
        z_a=val(2, (n,)),
        z_ax=val(3, (n,)),
        y_diag=val(4, (n,)),
        Z_aa=val(5, (n, n)),
        Z_aax=val(6, (n, n)),
        Z_prod=val(7, (n, n)),
    )
    if len(cons) > 8:
        for j, (tn, sn) in enumerate((("t1", "S1"), ("t2", "S2"))):
            dv = cons[8 + j].dual_value
            if dv is None:
                raise RuntimeError(f"the solver returned no multiplier for cone {j + 1}")
            t, s = dv
            kw[tn] = np.asarray(t, dtype=float).reshape(n)
            kw[sn] = np.asarray(s, dtype=float).reshape(n, r)
    return SDPDuals(**kw)


# ----------------------------------------------------------------------------------------
# The verified bound
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SDPBound:
    r"""A proven upper bound on :math:`\Omega(Z)^2 = \max_{\|u\| \le 1} \|Z^\top (X_r u)_+\|^2`.

    Attributes
    ----------
    value_sq : float
        Proven upper bound on :math:`\Omega(Z)^2`, original scale (it does not depend on
        the solver's accuracy, only on IEEE arithmetic).
    value : float
        ``sqrt(value_sq)`` rounded up: a proven upper bound on :math:`\Omega(Z)`.
    primal_value_sq : float
        The solver's optimal value (original scale), for information only: not a bound.
    dual_value_sq : float
        The dual objective ``y0 + z_tr`` of the solver's multipliers after projection
        onto their cones (original scale): what the bound would be if ``S`` were exactly
        PSD.
    margin : float
        ``value_sq - dual_value_sq``: what the verification added (the correction
        ``max(0, -lambda_min(S)) * T`` plus rounding), original scale.
    lambda_min : float
        Proven lower bound on the smallest eigenvalue of the dual slack (normalised).
    trace_bound : float
        ``T``, the bound on ``tr W`` used (normalised; about 3).
    status : str
        The solver's status for the solve whose bound was kept (``"optimal"`` or
        ``"optimal_inaccurate"``, both fine: the bound is verified), or ``"trivial"``
        when ``Z = 0`` or ``Xr = 0`` (the bound is then exactly 0).
    solver : str
    n_solves : int
        Solver runs made (a second, tighter run is made when the first leaves a large
        margin; the smaller verified bound is kept).
    time : float
        Seconds spent.
    u : ndarray of shape (r,)
        ``W[u, 0]`` of the lifted solution (a rounding candidate, in ``Xr``'s coordinates).
    W_uu : ndarray of shape (r, r)
        The ``u``-block of the lifted solution (its top eigenvector is a rounding
        candidate).
    """

    value_sq: float
    value: float
    primal_value_sq: float
    dual_value_sq: float
    margin: float
    lambda_min: float
    trace_bound: float
    status: str
    solver: str
    n_solves: int
    time: float
    u: np.ndarray = field(repr=False)
    W_uu: np.ndarray = field(repr=False)

    @property
    def rel_margin(self) -> float:
        """``margin / primal_value_sq`` (0 when the primal value is 0)."""
        return self.margin / self.primal_value_sq if self.primal_value_sq > 0 else 0.0

    def candidates(self) -> np.ndarray:
        """Rounding candidates (rows, not normalised): ``W[u,0]`` and the top eigenvector of ``W_uu``, both signs."""
        r = self.W_uu.shape[0]
        if r == 0:
            return np.zeros((0, 0))
        _, vecs = np.linalg.eigh(self.W_uu)
        C = np.vstack([self.u, vecs[:, -1], -vecs[:, -1]])
        C = C[np.linalg.norm(C, axis=1) > 1e-12]
        return C if C.shape[0] else np.eye(r)


def _default_attempts(solver: str):
    if solver == "CLARABEL":
        return [dict(solver="CLARABEL"),
                dict(solver="CLARABEL", max_iter=400, tol_gap_abs=1e-10, tol_gap_rel=1e-10,
                     tol_feas=1e-10, tol_ktratio=1e-8)]
    if solver == "SCS":
        return [dict(solver="SCS", eps=1e-9, max_iters=200000)]
    return [dict(solver=solver)]


def verified_sdp_bound(Xr, Z, *, solver: str = "CLARABEL", soc: bool = True,
                       solver_options: list[dict] | None = None,
                       target_rel_margin: float = 1e-6) -> SDPBound:
    r"""Proven upper bound on :math:`\max_{\|u\|\le 1} \|Z^\top (X_r u)_+\|^2` (see the module docstring).

    Parameters
    ----------
    Xr : array of shape (n, r)
        The data (rank-reduced or not: the bound is for the matrix given).
    Z : array of shape (n, c) or (n,)
    solver : str, default "CLARABEL"
        A CVXPY solver handling SDPs and second-order cones.
    soc : bool, default True
        Keep the second-order-cone constraints (see the trade-off in the module docs).
    solver_options : list of dict, optional
        Keyword arguments of successive ``Problem.solve`` calls (each must name the
        solver). Default: the solver's defaults, then tighter tolerances if the first
        verified margin exceeds ``target_rel_margin``.
    target_rel_margin : float, default 1e-6
        Stop after the first solve whose verified margin is below this (relative to the
        bound); otherwise try the next options and keep the smallest verified bound.

    Returns
    -------
    SDPBound

    Raises
    ------
    RuntimeError
        When no solve produced usable multipliers (solver error, a status other than
        optimal / optimal_inaccurate, missing or non-finite multipliers); the message
        names the solver and the statuses seen.
    ValueError
        For malformed ``Xr`` / ``Z``.
    """
    import cvxpy as cp

    t0 = time.perf_counter()
    Xr = np.asarray(Xr, dtype=float)
    Z = np.asarray(Z, dtype=float)
    if Z.ndim == 1:
        Z = Z[:, None]
    if Xr.ndim != 2 or Z.ndim != 2 or Z.shape[0] != Xr.shape[0]:
        raise ValueError(f"verified_sdp_bound: Xr must be (n, r) and Z (n, c); got {Xr.shape} and {Z.shape}")
    if not (np.all(np.isfinite(Xr)) and np.all(np.isfinite(Z))):
        raise ValueError("verified_sdp_bound: Xr and Z must be finite")
    n, r = Xr.shape
    zs = float(np.linalg.norm(Z))
    xs = float(np.linalg.norm(Xr, 2)) if r > 0 and n > 0 else 0.0
    if r == 0 or n == 0 or zs == 0.0 or xs == 0.0:
        return SDPBound(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "trivial", solver, 0,
                        time.perf_counter() - t0, np.zeros(r), np.zeros((r, r)))
    Zn = Z / zs
    Xn = Xr / xs
    T = trace_bound(Xn)
    prob, W, cons = build_relaxation(Xn, Zn, soc=soc)
    attempts = solver_options if solver_options is not None else _default_attempts(solver)
    best = None
    seen = []
    n_solves = 0
    for opts in attempts:
        opts = dict(opts)
        name = opts.pop("solver", solver)
        n_solves += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=name, **opts)
        except (cp.error.SolverError, ValueError) as exc:
            seen.append(f"{name}: error ({exc})")
            continue
        status = prob.status
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            seen.append(f"{name}: status {status!r}")
            continue
        try:
            duals = duals_from_cvxpy(cons, n, r)
        except RuntimeError as exc:
            seen.append(f"{name}: {exc}")
            continue
        if not duals.is_finite():
            seen.append(f"{name}: non-finite multipliers")
            continue
        try:
            chk = verify_duals(Xn, Zn, duals, trace_bound_value=T)
        except ValueError as exc:  # e.g. multipliers so large that S overflows
            seen.append(f"{name}: {exc}")
            continue
        Wv = W.value
        cand = dict(chk=chk, status=status, primal=float(prob.value) if prob.value is not None else float("nan"),
                    u=None if Wv is None else np.array(Wv[1 : 1 + r, 0]),
                    Wuu=None if Wv is None else np.array(Wv[1 : 1 + r, 1 : 1 + r]))
        if best is None or chk.value < best["chk"].value:
            best = cand
        if chk.value - chk.dual_objective <= target_rel_margin * max(chk.value, 1e-300):
            break
    if best is None:
        raise RuntimeError(
            f"verified_sdp_bound: no solve of the SDP relaxation produced usable multipliers "
            f"({'; '.join(seen)}); no bound can be given"
        )
    chk = best["chk"]
    # back to the original scale (module docstring): Omega <= zs xs sqrt(v) + 4u zs |Xr|_F
    # (the factor 4 covers 2u (1 + u), the rounding of |Xr|_F and any underflow in Zn, Xn)
    xF = _mul_up(float(np.linalg.norm(Xr)), 1.0 + _gamma(n * r + 2))
    sv = _up(math.sqrt(max(chk.value, 0.0)))
    zx = _mul_up(zs, xs)
    om = _add_up(_mul_up(zx, sv), _mul_up(4.0 * _U, _mul_up(zs, xF)))
    value_sq = _mul_up(om, om)
    zx2 = zx * zx
    dual_sq = chk.dual_objective * zx2
    u = best["u"] if best["u"] is not None else np.zeros(r)
    Wuu = best["Wuu"] if best["Wuu"] is not None else np.zeros((r, r))
    return SDPBound(
        value_sq=value_sq,
        value=_up(math.sqrt(value_sq)),
        primal_value_sq=best["primal"] * zx2,
        dual_value_sq=dual_sq,
        margin=value_sq - dual_sq,
        lambda_min=chk.lambda_min,
        trace_bound=chk.trace_bound,
        status=best["status"],
        solver=solver,
        n_solves=n_solves,
        time=time.perf_counter() - t0,
        u=u,
        W_uu=Wuu,
    )
