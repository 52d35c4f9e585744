r"""Duality-gap certificates for any two-layer ReLU network.

For a network with predictions :math:`F = f(X)` let :math:`G = \nabla_F L(F, Y)` (the
residual :math:`F - Y` for the squared loss, i.e. :math:`Z = -G = Y - F`). For any
:math:`s \ge \Omega(G)` the scaled point :math:`G' = G \min(1, \beta / s)` satisfies the
dual constraint :math:`\Omega(G') \le \beta` of paper eq. 11 (App. A.6 for general
losses), so by weak duality

.. math::

    d(G') = -L^*(G'; Y) \;\le\; p^* \;\le\; p(W_1, W_2).

The certificate reports ``gap = p(W1, W2) - d(G')``: the network is at most ``gap`` above
the best network that exists. ``dual`` is **always a proven lower bound** on
:math:`p^*`: from the oracle's value when the oracle is a bound (the exact oracle over
exhaustively enumerated patterns, the SDP relaxation, the spectral bound; then
``is_rigorous``), otherwise from the spectral bound :math:`\Omega(G) \le
\|G\|_2\|X\|_2`, valid for every ``X`` but often loose. A heuristic oracle's value is a
lower *estimate* of :math:`\Omega(G)`; the dual and gap it gives are reported
separately, as ``dual_estimate``, ``gap_estimate`` and ``rel_gap_estimate`` (equal to
``dual``, ``gap``, ``rel_gap`` when the oracle is a bound). ``is_global`` needs the
proven ``rel_gap`` to meet ``tol``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np

from ._validation import check_beta, check_tol
from .losses import get_loss
from .kernels import forward
from .network import TwoLayerReLU
from .oracles import DEFAULT_MAX_PATTERNS, make_oracle
from .oracles.spectral import spectral_bound  # noqa: F401  (re-exported: its old home)
from .problem import as_problem, prepare_data

__all__ = ["Certificate", "certify", "lambda_max", "dual_point", "certificate_from_oracle",
           "DEFAULT_BNB_BUDGET_S", "BNB_AUTO_MAX_RANK"]

#: Seconds the branch-and-bound oracle gets in ``certify(oracle="auto")`` (and by default
#: in ``oracle="bnb"``) when no exact oracle is affordable for ``X``.
DEFAULT_BNB_BUDGET_S = 20.0
#: ``certify(oracle="auto")`` and ``fit``'s proof step use branch and bound up to this rank
#: (measured: rank 4 proves in seconds, rank 6 gets within a few per cent in a minute,
#: rank 10 to 30 improves the spectral bound's gap by less than a factor of two in a
#: minute); above it, the heuristic oracle's estimate beside the spectral bound.
BNB_AUTO_MAX_RANK = 8

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Certificate:
    r"""A duality-gap certificate.

    Attributes
    ----------
    primal : float
        Objective of the network, paper eq. 5 (``L + beta/2 (|W1|^2 + |W2|^2)``).
    dual : float
        :math:`-L^*(G')`, a proven lower bound on the optimum :math:`p^*`: from the
        oracle's value when the oracle is a bound (``is_rigorous``), else from the
        spectral bound ``omega_bound`` (valid, possibly loose); ``-inf`` only when no
        bound could be computed (no data passed).
    gap : float
        ``primal - dual``: a proven bound on the distance from the optimum.
    rel_gap : float
        ``gap / max(|primal|, tiny)``.
    is_global : bool
        True only if ``rel_gap <= tol`` with a proven ``dual`` whose oracle value passed
        the self-check.
    pattern_scope : {"exact", "sampled"}
    oracle_kind : {"exact", "upper_bound", "heuristic"}
    n_patterns : int or None
        Sign patterns searched by the oracle (None for the SDP bound).
    time : float
        Seconds spent certifying (oracle set-up included when built here).
    omega : float
        Oracle value :math:`s` for the unscaled dual point.
    beta : float
    scale : float
        ``min(1, beta / omega)``, the factor applied to the dual point.
    tol : float
    loss : str
    check : str
        What the self-check (:func:`convexrelu.verify.check_omega`) ran before
        ``is_global`` was set, or ``"not run"`` (it runs in :func:`certify` for every
        bounding oracle, and in the solvers whenever ``rel_gap <= tol`` would make the
        certificate global).
    check_passed : bool or None
        None when the check did not run; False when it found a direction beating the
        oracle's value: then ``is_global`` is False, ``dual`` is recomputed from the
        larger value and is only an estimate (``is_rigorous`` False).
    reason : str
        Why the certificate is not global although ``rel_gap_estimate <= tol`` (empty
        otherwise).
    dual_estimate, gap_estimate, rel_gap_estimate : float
        The dual and gaps from the oracle's value: an *estimate* when the oracle is
        heuristic (its value is a lower estimate of :math:`\Omega`, so the dual is an
        upper estimate), equal to ``dual``, ``gap``, ``rel_gap`` when it is a bound. The
        solvers stop when ``rel_gap_estimate <= tol``.
    omega_bound : float
        The proven upper bound on :math:`\Omega(G)` behind ``dual``: ``omega`` when the
        oracle is a bound, else the spectral bound (``inf`` when none was computed).
    bound_source : str
        Where ``dual`` comes from, in words: the oracle (``"exact oracle"``, ``"SDP or
        spectral bound"``, ``"branch and bound"``), ``"spectral bound"`` beside a
        heuristic oracle, or a bound proven by another call (``fit``'s final branch and
        bound beside its heuristic iterations).
    """

    primal: float
    dual: float
    gap: float
    rel_gap: float
    is_global: bool
    pattern_scope: str
    oracle_kind: str
    n_patterns: int | None
    time: float
    omega: float
    beta: float
    scale: float
    tol: float
    loss: str
    check: str = "not run"
    check_passed: bool | None = None
    reason: str = ""
    dual_estimate: float = float("nan")
    gap_estimate: float = float("nan")
    rel_gap_estimate: float = float("nan")
    omega_bound: float = float("inf")
    bound_source: str = ""

    @property
    def is_rigorous(self) -> bool:
        """True when the oracle itself is a bound (a bounding oracle on every pattern, not
        contradicted by the self-check), so that ``dual`` is the oracle's dual and the
        estimates equal the proven values. When False, ``dual`` is still a proven lower
        bound (from the spectral bound), and ``*_estimate`` are the oracle's estimates."""
        return (self.oracle_kind in ("exact", "upper_bound") and self.pattern_scope == "exact"
                and self.check_passed is not False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["is_rigorous"] = self.is_rigorous
        return d

    def __str__(self) -> str:
        if self.is_global:
            verdict = f"GLOBAL OPTIMUM (certified to rel_gap <= {self.tol:.1e})"
        elif self.check_passed is False:
            verdict = "not certified: " + self.reason
        elif self.is_rigorous:
            verdict = "not certified: the network is at most `gap` above the global optimum"
        else:
            verdict = (
                f"not certified: the {self.oracle_kind} oracle on {self.pattern_scope} patterns "
                "gives an estimate, not a bound"
            )
        npat = "n/a" if self.n_patterns is None else str(self.n_patterns)
        lines = [
            "Certificate",
            f"  primal objective   {self.primal:.10g}",
            f"  dual bound         {self.dual:.10g}"
            + (f"   (proven, from the {self.bound_source})" if self.bound_source else ""),
            f"  gap bound          {self.gap:.3e}   (relative {self.rel_gap:.3e})",
        ]
        if not self.is_rigorous:
            lines += [
                f"  dual estimate      {self.dual_estimate:.10g}   (not a bound)",
                f"  gap estimate       {self.gap_estimate:.3e}   (relative "
                f"{self.rel_gap_estimate:.3e}, not a bound)",
            ]
        lines += [
            f"  oracle             {self.oracle_kind} on {self.pattern_scope} patterns ({npat})",
            f"  Omega(Z) / beta    {self.omega:.6g} / {self.beta:.6g}",
            f"  self-check         "
            + ("not run" if self.check_passed is None else
               ("passed" if self.check_passed else "FAILED") + f" ({self.check})"),
            f"  time               {self.time:.3f} s",
            f"  verdict            {verdict}",
        ]
        return "\n".join(lines)


def dual_point(network: TwoLayerReLU, X, Y, loss="squared") -> np.ndarray:
    r"""Unscaled dual point :math:`G = \nabla_F L(f(X), Y)` (``F - Y`` for the squared loss)."""
    loss = get_loss(loss)
    F = forward(X, network.W1, network.W2)  # on the data's back end (Dask: the workers)
    return loss.gradient(F, np.asarray(Y, dtype=float).reshape(F.shape[0], -1))


def certify(network, X, Y, beta, *, loss="squared", patterns="auto", oracle="auto",
            tol: float = 1e-6, max_patterns: float = DEFAULT_MAX_PATTERNS,
            random_state=None, verbose: int = 0) -> Certificate:
    r"""Certificate of global optimality (or the distance from it) for any network.

    Parameters
    ----------
    network : TwoLayerReLU
    X : array of shape (n, d)
    Y : array of shape (n, c) or (n,)
    beta : float > 0
    loss : str or Loss, default "squared"
    patterns : {"auto", "exact", "sampled"} or SignPatterns
        ``"auto"`` enumerates when :math:`2r(e(n-1)/r)^r \le` ``max_patterns``.
    oracle : {"auto", "exact", "upper_bound", "heuristic", "bnb"} or an oracle object
        ``"auto"``: the exact oracle when its patterns are affordable; otherwise, up to
        rank :data:`BNB_AUTO_MAX_RANK`, branch and bound
        (:class:`~convexrelu.oracles.BranchAndBoundOracle`) for at most
        :data:`DEFAULT_BNB_BUDGET_S` seconds, which proves optimality when its search
        closes below ``beta`` and otherwise gives the best proven bound it reached; above
        that rank the heuristic estimate beside the spectral bound. ``"bnb"``: branch and
        bound whatever the rank. An oracle object built once for ``X`` can be reused
        across calls (a :class:`~convexrelu.oracles.BranchAndBoundOracle` without a
        ``target`` is given ``beta`` for the call).
    tol : float, default 1e-6
        ``is_global`` requires ``rel_gap <= tol``.
    max_patterns : float, default 1e9
    random_state : None, int or Generator
        For sampled patterns.
    verbose : int, default 0
        If > 0, log the oracle choice and the result at INFO level (``logging`` only).

    Returns
    -------
    Certificate
    """
    t0 = time.perf_counter()
    if not isinstance(network, TwoLayerReLU):
        raise ValueError(f"network must be a TwoLayerReLU; got {type(network).__name__}")
    prob = as_problem(X, Y, loss)
    X, Y, loss = prob.X, prob.Y, prob.loss
    beta = check_beta(beta)
    tol = check_tol(tol)
    if X.shape[1] != network.n_features:
        raise ValueError(
            f"X has {X.shape[1]} features but the network expects {network.n_features}"
        )
    if Y.shape[1] != network.n_outputs:
        raise ValueError(
            f"Y has {Y.shape[1]} output columns but the network has {network.n_outputs} outputs"
        )
    from .oracles import BranchAndBoundOracle

    if isinstance(oracle, str) and oracle == "bnb":
        orc = BranchAndBoundOracle(prob, time_limit=DEFAULT_BNB_BUDGET_S, verbose=verbose)
    else:
        orc = make_oracle(prob, oracle, patterns, max_patterns=max_patterns,
                          random_state=random_state)
        if (isinstance(oracle, str) and oracle == "auto" and orc.kind == "heuristic"
                and isinstance(patterns, str) and patterns == "auto"
                and prob.in_memory and prob.rank <= BNB_AUTO_MAX_RANK):
            orc = BranchAndBoundOracle(prob, time_limit=DEFAULT_BNB_BUDGET_S, verbose=verbose)
    F = forward(X, network.W1, network.W2)  # on the data's back end (Dask: the workers)
    primal = loss.value(F, Y) + beta * network.weight_decay()
    G = loss.gradient(F, Y)
    if isinstance(orc, BranchAndBoundOracle) and orc.target is None:
        # the question is whether the gap is <= tol: regions below the Omega that still
        # certifies at tol (slightly above beta) need no refinement
        rtol = orc.rtol
        orc.target = omega_for_tol(primal, G, Y, beta, loss, tol)
        orc.rtol = min(rtol, max(tol / 10.0, 1e-9))
        orc.hint(network.W1)
        try:
            res = orc(G)
        finally:
            orc.target, orc.rtol = None, rtol
    else:
        res = orc(G)
    cert = certificate_from_oracle(primal, G, Y, beta, loss, res, tol, t0, X=X, check="always")
    logger.log(logging.INFO if verbose > 0 else logging.DEBUG,
               "certify: %s oracle on %s patterns (%s), Omega=%.6g, beta=%.6g, primal=%.10g, "
               "dual=%.10g, rel_gap=%.3e, is_global=%s", cert.oracle_kind, cert.pattern_scope,
               cert.n_patterns, cert.omega, beta, cert.primal, cert.dual, cert.rel_gap,
               cert.is_global)
    return cert


def _check_XY_for(loss, X, Y):
    """Validated ``X`` and the loss's targets (kept for older callers; see
    :func:`convexrelu.problem.prepare_data`)."""
    return prepare_data(loss, X, Y)


def scaled_dual(G, Y, beta, loss, omega_value):
    """Dual value ``-L*(G')`` and scale of ``G' = G min(1, beta / omega_value)``.

    ``G`` is a (sub)gradient, so it lies in the conjugate's domain; the domain is convex
    and contains 0 for every loss bounded below (``L*(0) = -inf L``), so the scaled point
    stays in it. The value is checked anyway: a point outside would give ``-inf``, which
    is reported as a (useless but valid) bound rather than hidden.
    """
    scale = 1.0 if omega_value <= beta else beta / omega_value
    return -loss.conjugate(scale * G, Y), scale


def omega_for_tol(primal, G, Y, beta, loss, tol, *, share: float = 0.9) -> float:
    r"""How large a proven bound on :math:`\Omega(G)` may be and still certify at ``tol``.

    The certificate's dual is :func:`scaled_dual` at the bound, so a bound a little above
    ``beta`` already proves a relative gap ``<= tol`` when the network's gap at a bound of
    ``beta`` is smaller than ``tol``. Returns ``beta + share * (w - beta)``, with ``w``
    the largest bound whose relative gap is ``<= tol`` (bisection: the dual is concave
    in the scale ``beta / bound``, so above ``beta`` the gap falls, if at all, then rises,
    and the bounds that certify form one interval), or ``beta`` when a bound of ``beta``
    does not certify. A search for a proof (branch and bound) can stop once every region
    is below this level instead of below ``beta``; ``share < 1`` leaves room for the
    margins added to its value. It is only a level: when :math:`\Omega(G)` is above it,
    the search finds a direction that says so.
    """
    tiny = np.finfo(float).tiny
    scale = max(abs(float(primal)), tiny)

    def ok(om):
        d = scaled_dual(G, Y, beta, loss, om)[0]
        return bool(np.isfinite(d) and (primal - d) / scale <= tol)

    if not (beta > 0 and np.isfinite(beta)) or not ok(beta):
        return float(beta)
    lo, hi = float(beta), 2.0 * float(beta)
    while ok(hi) and hi < 1e6 * beta:
        lo, hi = hi, 2.0 * hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return float(beta + share * (lo - beta))


def certificate_from_oracle(primal, G, Y, beta, loss, res, tol, t0, best_dual=-np.inf, *,
                            X=None, check="auto", Zcheck=None, x_norm=None) -> Certificate:
    r"""Assemble a :class:`Certificate` from a primal value and an oracle result on ``G``.

    Used by :func:`certify` and by the solvers, which call the oracle once per iteration
    and use the result twice: for the next atom and for the certificate. ``best_dual``
    (a dual value proven earlier for the same problem) is used when it is larger: every
    dual-feasible point gives a lower bound on ``p*``.

    ``dual`` is always proven: from the oracle's value when the oracle is a bound, else
    from :func:`spectral_bound` with ``x_norm`` (a bound on :math:`\|X\|_2`; computed
    from ``X`` when not given; without either, ``dual`` is ``-inf``). The oracle's own
    dual is ``dual_estimate`` (the same number when the oracle is a bound).

    ``is_global`` needs more than a small gap: a bounding oracle's value must pass the
    self-check (:func:`convexrelu.verify.check_omega`, an independent search for a
    direction that beats it) on the data ``X``. ``check="auto"`` runs it only when the
    certificate would otherwise be global (the solvers' per-iteration use), ``"always"``
    whenever the oracle is a bound (:func:`certify`), ``"never"`` not at all (the
    certificate is then never global: the solvers' reports between iterations, whose
    spectral bound needs no check and decides nothing). Without ``X`` no check can run
    and a certificate from the oracle's value is never global. ``Zcheck``: the matrix the
    oracle was called on when it is not ``G`` (a feature map such as the convolutional
    patch matrix; ``x_norm`` must then bound that map's norm).
    """
    from .verify import check_omega

    tiny = np.finfo(float).tiny
    dual_est, scale = scaled_dual(G, Y, beta, loss, res.value)
    omega = float(res.value)
    rigorous = res.is_upper_bound
    method, passed, reason = "not run", None, ""
    rel_est = (primal - dual_est) / max(abs(primal), tiny)
    if check not in ("auto", "always", "never"):
        raise ValueError(f"check must be 'auto', 'always' or 'never', got {check!r}")
    if rigorous and X is not None and check != "never" and (
            rel_est <= tol or max(best_dual, dual_est) >= primal - tol * abs(primal)
            or check == "always"):
        chk = check_omega(X, G if Zcheck is None else Zcheck, res.value, res.u)
        method, passed = chk.method, chk.passed
        if not passed:
            # the oracle's value is refuted: recompute the estimate from the larger value,
            # which is itself only a lower estimate of Omega
            reason = chk.reason
            rigorous = False
            omega = max(omega, chk.reference)
            dual_est, scale = scaled_dual(G, Y, beta, loss, omega)
            logger.warning("certificate: %s; is_global=False", reason)
    elif rigorous and check == "never" and rel_est <= tol:
        reason = "the bound was not self-checked (check='never'), so it proves nothing"
    elif rigorous and X is None and rel_est <= tol:
        reason = "no self-check could run (the data X was not passed to the certificate)"
    if rigorous:
        omega_bound, dual = omega, dual_est
        source = getattr(res, "source", "") or \
            {"exact": "exact oracle", "upper_bound": "oracle's bound"}.get(res.kind, res.kind)
    else:
        source = "spectral bound"
        if x_norm is None and X is not None:
            from .oracles.spectral import _spectral_norm

            x_norm = _spectral_norm(X)
        # the bound is on the point the oracle was called on (Zcheck on a feature map)
        omega_bound = spectral_bound(G if Zcheck is None else Zcheck, x_norm) \
            if x_norm is not None else float("inf")
        dual = scaled_dual(G, Y, beta, loss, omega_bound)[0] if np.isfinite(omega_bound) \
            else -np.inf
        scale = min(1.0, beta / omega_bound) if np.isfinite(omega_bound) and omega_bound > 0 \
            else (1.0 if omega_bound == 0 else 0.0)
    if best_dual > dual:
        dual, source = best_dual, "bound proven at an earlier iterate"
    dual_est = max(dual_est, dual)  # an estimate below a proven bound is stale
    gap, gap_est = primal - dual, primal - dual_est
    rel_gap = gap / max(abs(primal), tiny)
    rel_est = gap_est / max(abs(primal), tiny)
    # proven: a bounding oracle's value that passed the self-check, or the spectral bound
    is_global = bool(rel_gap <= tol and (passed is True if rigorous else dual > -np.inf))
    if rel_est <= tol and not is_global and not reason:
        reason = ("only the estimate met tol: the heuristic oracle's value is not a bound, and "
                  f"the proven gap (spectral bound) is {rel_gap:.2e} relative"
                  if not rigorous else reason)
    return Certificate(
        primal=float(primal), dual=float(dual), gap=float(gap), rel_gap=float(rel_gap),
        is_global=is_global, pattern_scope=res.pattern_scope, oracle_kind=res.kind,
        n_patterns=res.n_patterns, time=time.perf_counter() - t0, omega=float(omega),
        beta=float(beta), scale=float(scale), tol=float(tol), loss=loss.name,
        check=method, check_passed=passed, reason=reason, dual_estimate=float(dual_est),
        gap_estimate=float(gap_est), rel_gap_estimate=float(rel_est),
        omega_bound=float(omega_bound), bound_source=source if np.isfinite(dual) else "",
    )


class LambdaMax(float):
    r"""The value of :func:`lambda_max`, a ``float`` that also says what it is.

    Attributes
    ----------
    kind : {"exact", "upper_bound", "estimate"}
        ``"exact"``: :math:`\lambda_{\max}` itself (exact oracle; its outward rounding
        margin only); ``"upper_bound"``: at least :math:`\lambda_{\max}` (SDP or spectral
        bound: the zero network is certified optimal for every ``beta`` above it);
        ``"estimate"``: a *lower* estimate from the heuristic oracle (the zero network may
        not be optimal at this ``beta``).
    upper_bound : float
        A proven upper bound on :math:`\lambda_{\max}` (the value itself unless the kind is
        ``"estimate"``, then the spectral bound :math:`\|\nabla L(0, Y)\|_2\|X\|_2`).
    """

    kind: str
    upper_bound: float

    def __new__(cls, value, kind, upper_bound):
        obj = super().__new__(cls, value)
        obj.kind, obj.upper_bound = kind, float(upper_bound)
        return obj

    def __repr__(self) -> str:
        return f"LambdaMax({float(self)!r}, kind={self.kind!r}, upper_bound={self.upper_bound!r})"


def lambda_max(X, Y, *, loss="squared", oracle="auto", patterns="auto",
               max_patterns: float = DEFAULT_MAX_PATTERNS) -> LambdaMax:
    r"""Smallest ``beta`` whose optimum is the zero network: :math:`\Omega(\nabla L(0, Y))`.

    The zero network is optimal iff the dual point at ``F = 0`` is feasible, i.e.
    :math:`\Omega(\nabla_F L(0, Y)) \le \beta` (for the squared loss
    :math:`\Omega(Y)`). Available at any ``d``: the result is a ``float`` whose ``kind``
    says what it is (:class:`LambdaMax`): ``"exact"`` with the exact oracle, or with
    branch and bound when its search closes (``oracle="auto"`` uses it up to rank
    :data:`BNB_AUTO_MAX_RANK` when no exact oracle is affordable, for at most
    :data:`DEFAULT_BNB_BUDGET_S` seconds; ``oracle="bnb"`` at any rank),
    ``"upper_bound"`` with the SDP or spectral bound, ``"estimate"`` (a lower estimate,
    beside a proven ``upper_bound``: branch and bound's when it ran, else the spectral
    bound) otherwise.
    """
    prob = as_problem(X, Y, loss)
    X, Y, loss = prob.X, prob.Y, prob.loss
    from .oracles import BranchAndBoundOracle

    if isinstance(oracle, str) and oracle == "bnb":
        orc = BranchAndBoundOracle(prob, time_limit=DEFAULT_BNB_BUDGET_S)
    else:
        orc = make_oracle(prob, oracle, patterns, max_patterns=max_patterns)
        if (isinstance(oracle, str) and oracle == "auto" and orc.kind == "heuristic"
                and isinstance(patterns, str) and patterns == "auto"
                and prob.in_memory and prob.rank <= BNB_AUTO_MAX_RANK):
            orc = BranchAndBoundOracle(prob, time_limit=DEFAULT_BNB_BUDGET_S)
    G = loss.gradient(np.zeros_like(Y), Y)
    res = orc(G)
    if isinstance(orc, BranchAndBoundOracle) and res.kind != "exact":
        # the search did not close in its budget: the attained value is the estimate,
        # beside the (tighter than spectral) proven bound
        return LambdaMax(res.attained, "estimate", max(res.value, res.attained))
    if res.kind == "heuristic" or not res.is_upper_bound:
        from .oracles.spectral import _spectral_norm

        bound = spectral_bound(G, _spectral_norm(X))
        return LambdaMax(res.attained, "estimate", max(bound, res.attained))
    kind = "exact" if res.kind == "exact" else "upper_bound"
    return LambdaMax(res.value, kind, res.value)
