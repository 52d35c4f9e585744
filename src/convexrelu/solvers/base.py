"""What every solver shares: the result type, the history, stopping, progress, warnings."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..certificates import Certificate, certificate_from_oracle
from ..network import TwoLayerReLU

__all__ = ["SolveResult", "STATUSES", "IterationLog"]

logger = logging.getLogger("convexrelu.solvers")

#: Status vocabulary of :class:`SolveResult`.
STATUSES = ("optimal", "max_iter", "time_limit", "interrupted", "inaccurate", "recovery_gap",
            "stalled")


@dataclass(frozen=True)
class SolveResult:
    """Result of :func:`convexrelu.fit`.

    Attributes
    ----------
    network : TwoLayerReLU
        The best network found (balanced: ``|u_j| = |v_j|``).
    objective : float
        Its training objective (paper eq. 5).
    certificate : Certificate
        Duality-gap certificate of ``network``; ``certificate.is_global`` says whether
        global optimality is proven.
    status : {"optimal", "max_iter", "time_limit", "interrupted", "inaccurate", "recovery_gap", "stalled"}
        ``"optimal"``: the gap (a bound, or an estimate with a heuristic oracle) reached
        ``tol``; check ``certificate.is_global`` for a proof. ``"inaccurate"``: a conic
        solver did not report an optimal solution (relaxation solvers);
        ``"recovery_gap"``: the relaxation was solved but the network recovered from it
        is not certified to ``tol``; ``"stalled"``: a non-convex optimiser (``"sgd"``)
        converged to a point the certificate does not prove optimal.
    n_iter : int
    time : float
        Seconds.
    history : dict of ndarray
        Per iteration: ``iter``, ``time``, ``objective``, ``dual``, ``gap``, ``rel_gap``,
        ``n_neurons`` (and solver-specific keys, e.g. ``fw_gap``, ``t``).
    solver : str
    info : dict
        Solver-specific results, e.g. the relaxation's value and lower bound for
        ``"copositive"``, the bounds of ``"cutting-plane"``.
    """

    network: TwoLayerReLU
    objective: float
    certificate: Certificate
    status: str
    n_iter: int
    time: float
    history: dict = field(repr=False)
    solver: str
    info: dict = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        c = self.certificate
        verdict = "certified global optimum" if c.is_global else (
            "not certified (bound)" if c.is_rigorous else "not certified (estimate only)")
        return (
            f"SolveResult(solver={self.solver!r}, status={self.status!r}, objective={self.objective:.10g}, "
            f"dual={c.dual:.10g}, rel_gap={c.rel_gap:.2e}, n_neurons={self.network.n_neurons}, "
            f"n_iter={self.n_iter}, time={self.time:.3f}s: {verdict})"
        )

    def to_dict(self) -> dict:
        c = self.certificate
        return {
            "solver": self.solver, "status": self.status, "objective": self.objective,
            "dual": c.dual, "gap": c.gap, "rel_gap": c.rel_gap, "is_global": c.is_global,
            "is_rigorous": c.is_rigorous, "oracle_kind": c.oracle_kind,
            "pattern_scope": c.pattern_scope, "n_patterns": c.n_patterns,
            "n_neurons": self.network.n_neurons, "n_iter": self.n_iter, "time_s": self.time,
            **{k: v for k, v in self.info.items() if v is None or isinstance(v, (bool, int, float, str))},
        }


class IterationLog:
    """Collects the history, tracks the best network and best dual bound, logs progress."""

    def __init__(self, solver: str, X, Y, beta, loss, tol, verbose=0, callback=None,
                 time_limit=None):
        self.solver = solver
        self.X, self.Y, self.beta, self.loss, self.tol = X, Y, beta, loss, tol
        self.verbose = int(verbose)
        self.callback = callback
        self.time_limit = time_limit
        self.t0 = time.perf_counter()
        self.rows: list[dict] = []
        self.best_net: TwoLayerReLU | None = None
        self.best_primal = np.inf
        self.best_dual = -np.inf
        self.best_cert: Certificate | None = None
        self.last_res = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def out_of_time(self) -> bool:
        return self.time_limit is not None and self.elapsed() >= self.time_limit

    def record(self, net: TwoLayerReLU, F, res, G=None, **extra) -> Certificate:
        """Certificate of ``net`` (predictions ``F``) from the oracle result ``res`` on the dual
        direction ``G`` (default: the loss gradient at ``F``; a solver may pass another
        subgradient, on which ``res`` must have been computed)."""
        primal = self.loss.value(F, self.Y) + self.beta * net.weight_decay()
        if G is None:
            G = self.loss.gradient(F, self.Y)
        cert = certificate_from_oracle(primal, G, self.Y, self.beta, self.loss, res, self.tol,
                                       self.t0, best_dual=self.best_dual)
        if res.is_upper_bound:
            self.best_dual = max(self.best_dual, cert.dual)
        if primal < self.best_primal:
            # one assignment: an interrupt cannot pair a network with another's certificate
            self.best_primal, self.best_net, self.best_cert = primal, net, cert
        elif self.best_cert is not None and self.best_cert.dual < self.best_dual:
            # a better dual bound tightens the certificate of the best network
            b = self.best_cert
            self.best_cert = _with_dual(b, self.best_dual, self.tol)
        self.last_res = res
        it = len(self.rows)
        row = dict(iter=it, time=self.elapsed(), objective=primal, dual=cert.dual, gap=cert.gap,
                   rel_gap=cert.rel_gap, n_neurons=net.n_neurons, omega=res.value, **extra)
        self.rows.append(row)
        if self.verbose:
            extras = " ".join(f"{k}={v:.3g}" for k, v in extra.items() if np.isscalar(v))
            logger.info("%s it %4d  obj %.10g  dual %.10g  rel_gap %.2e  neurons %d  %.3fs %s",
                        self.solver, it, primal, cert.dual, cert.rel_gap, net.n_neurons,
                        row["time"], extras)
        if self.callback is not None:
            self.callback(dict(row, network=net, certificate=cert))
        return cert

    def stop_status(self, k: int, max_iter: int) -> str | None:
        """``"optimal"``, ``"max_iter"`` or ``"time_limit"`` when iteration ``k`` should be
        the last, else None (in that order of precedence)."""
        if self.converged():
            return "optimal"
        if k >= max_iter:
            return "max_iter"
        if self.out_of_time():
            return "time_limit"
        return None

    def converged(self) -> bool:
        c = self.best_cert
        return c is not None and c.rel_gap <= self.tol

    def result(self, status: str, n_iter: int, info: dict | None = None) -> SolveResult:
        if self.best_net is None:
            if status == "interrupted":
                raise KeyboardInterrupt  # nothing to return yet
            raise RuntimeError("solver finished without evaluating any network")
        cert = self.best_cert
        if status in ("max_iter", "time_limit"):
            warnings.warn(
                f"{self.solver}: stopped on {status} with rel_gap {cert.rel_gap:.3e} > tol "
                f"{self.tol:.1e} (gap {cert.gap:.3e}); the network may not be optimal. "
                "Increase max_iter or time_limit.", ConvergenceWarning, stacklevel=3)
        if status == "optimal" and not cert.is_rigorous:
            logger.warning(
                "%s: the gap estimate reached tol, but the %s oracle on %s patterns does not "
                "prove optimality (is_global=False)", self.solver, cert.oracle_kind, cert.pattern_scope)
        hist = {k: np.array([r[k] for r in self.rows]) for k in self.rows[0]}
        return SolveResult(self.best_net, float(self.best_primal), cert, status, n_iter,
                           self.elapsed(), hist, self.solver, dict(info or {}))


def _with_dual(cert: Certificate, dual: float, tol: float) -> Certificate:
    from dataclasses import replace

    gap = cert.primal - dual
    rel = gap / max(abs(cert.primal), np.finfo(float).tiny)
    return replace(cert, dual=float(dual), gap=float(gap), rel_gap=float(rel),
                   is_global=bool(cert.is_rigorous and rel <= tol))
