"""What every solver shares: the :class:`Solver` contract (shared options, the losses and
oracles it supports, ``solve``), the result type, the history, stopping, progress, warnings."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import (
    check_beta,
    check_callback,
    check_positive_int,
    check_random_state,
    check_time_limit,
    check_tol,
    check_verbose,
)
from ..certificates import Certificate, certificate_from_oracle, scaled_dual
from ..losses import get_loss
from ..network import TwoLayerReLU
from ..oracles import ORACLE_KINDS, make_oracle
from ..problem import Problem, as_problem
from ..verify import check_omega

__all__ = ["Solver", "SolveResult", "STATUSES", "IterationLog", "COMMON_OPTIONS"]

#: The options every solver takes, with one meaning each (:meth:`Solver._set_common`).
#: ``max_iter`` when it is left out and a ``time_limit`` is given (the time is the budget).
UNLIMITED_ITER = 2**62

COMMON_OPTIONS = ("tol", "max_iter", "time_limit", "verbose", "callback", "random_state")

logger = logging.getLogger("convexrelu.solvers")

#: Status vocabulary of :class:`SolveResult`:
#:
#: - ``"optimal"``: the certificate proves global optimality (``certificate.is_global``);
#: - ``"estimate_converged"``: the gap *estimate* met tol; no proof (heuristic oracle or
#:   sampled patterns, or a certificate whose self-check failed: ``is_global`` is False);
#: - ``"max_iter"``, ``"time_limit"``: stopped on a budget before the gap met tol;
#: - ``"interrupted"``: Ctrl-C; the best network so far;
#: - ``"inaccurate"``: a conic solver did not report an optimal solution;
#: - ``"recovery_gap"``: a relaxation was solved but the recovered network is not certified;
#: - ``"stalled"``: the solver stopped by its own criterion (e.g. a non-convex optimiser at a
#:   stationary point) where the certificate's gap has not met tol.
STATUSES = ("optimal", "estimate_converged", "max_iter", "time_limit", "interrupted", "inaccurate",
            "recovery_gap", "stalled")


def converged_status(cert: Certificate) -> str:
    """The status of a solve whose gap met ``tol``: ``"optimal"`` only when the certificate
    is a proof (``is_global``), else ``"estimate_converged"`` (the estimate met tol)."""
    return "optimal" if cert.is_global else "estimate_converged"


class Solver:
    r"""The contract every solver honours.

    A solver is configured at construction and run by :meth:`solve`. The options below are
    shared, validated here once, and mean the same for every solver:

    ``tol``
        Target relative duality gap of the certificate (:math:`\ge 0`).
    ``max_iter``
        The solver's outer iterations: conditional-gradient iterations (``cg``),
        Frank–Wolfe steps (``frank-wolfe``), cutting planes, augmented-Lagrangian rounds
        (``copositive-fo``), epochs (``sgd``). ``None`` at construction means the
        solver's ``default_max_iter`` without a ``time_limit``, and no iteration limit
        with one (the time is then the budget: a fit given 60 s does not stop after 100
        iterations with time left). A solver without iterations (one conic solve:
        ``copositive``) has ``default_max_iter = None`` and refuses the option.
    ``time_limit``
        Wall-clock seconds for the whole solve, set-up included; None for no limit.
    ``verbose``
        0: quiet; 1 or more: one log line per iteration (``logging``, INFO).
    ``callback``
        Called with a dict after each iteration (``iter``, ``objective``, ``dual``,
        ``rel_gap``, ``network``, ``certificate``, ...).
    ``random_state``
        None, an int or a ``numpy.random.Generator``, for whatever the solver draws.

    What a solver supports is declared in two class attributes, the only place where
    compatibility is decided (:meth:`unsupported` reads them; ``fit`` and :meth:`solve`
    call it before any work):

    ``losses``
        ``"any"``; ``"smooth"`` (a loss with a finite ``smoothness``); ``"cvxpy"`` or
        ``"torch"`` (a loss that gives that form: ``cvxpy_value`` / ``torch_value``); or a
        tuple of loss names.
    ``oracle_kinds``
        The oracle kinds (:data:`~convexrelu.oracles.ORACLE_KINDS`) it can be driven by.

    A subclass sets ``name``, the declarations and ``default_max_iter``, calls
    :meth:`_set_common` in its ``__init__``, and implements
    ``_solve(problem, beta, oracle, init)``, which receives a validated
    :class:`~convexrelu.Problem`, ``beta``, a compatible oracle built for that problem and
    a checked initial network (or None), and returns a :class:`SolveResult` (normally
    through :class:`IterationLog`).
    """

    name: str = ""
    losses: str | tuple = ("squared",)
    oracle_kinds: tuple = ORACLE_KINDS
    default_max_iter: int | None = 100

    def _set_common(self, *, tol=1e-6, max_iter=None, time_limit=None, verbose=0,
                    callback=None, random_state=None) -> None:
        """Validate and store the shared options (see the class docstring)."""
        self.tol = check_tol(tol)
        if self.default_max_iter is None:
            if max_iter is not None:
                raise ValueError(f"solver={self.name!r} has no iteration limit (it is one "
                                 f"{self._no_iter_reason}); leave max_iter out")
            self.max_iter = None
        else:
            self.time_limit = check_time_limit(time_limit)
            if max_iter is None:
                max_iter = self.default_max_iter if self.time_limit is None else UNLIMITED_ITER
            self.max_iter = check_positive_int(max_iter, "max_iter")
        self.time_limit = check_time_limit(time_limit)
        self.verbose = check_verbose(verbose)
        self.callback = check_callback(callback)
        self.random_state = check_random_state(random_state)

    _no_iter_reason = "solve"

    # ------------------------------------------------------------------ compatibility
    def unsupported(self, loss=None, oracle=None) -> str | None:
        """Why this solver cannot run ``loss`` with ``oracle`` (None when it can); decided
        from the declarations ``losses`` and ``oracle_kinds`` only."""
        if loss is not None:
            decl, name = self.losses, getattr(loss, "name", repr(loss))
            if decl == "any":
                pass
            elif decl == "smooth":
                if not np.isfinite(getattr(loss, "smoothness", np.inf)):
                    return (f"solver={self.name!r} needs a smooth loss (it does not converge "
                            f"with subgradients); got loss={name!r}: use solver='cg'")
            elif decl in ("cvxpy", "torch"):
                if getattr(loss, f"{decl}_value", None) is None:
                    return (f"solver={self.name!r} needs the loss's "
                            f"{'CVXPY' if decl == 'cvxpy' else 'PyTorch'} form "
                            f"({decl}_value), which loss={name!r} does not give")
            elif name not in decl:
                if decl == ("squared",):
                    return (f"solver={self.name!r} supports the squared loss only; got "
                            f"loss={name!r}: other losses are supported by solver='cg' (and "
                            "'frank-wolfe' for smooth losses)")
                return (f"solver={self.name!r} supports loss={' or '.join(map(repr, decl))} "
                        f"only; got loss={name!r}")
        if oracle is not None and getattr(oracle, "kind", None) not in self.oracle_kinds:
            return (f"solver={self.name!r} cannot be driven by a {oracle.kind!r} oracle; it "
                    f"takes {', '.join(map(repr, self.oracle_kinds))}")
        return None

    def check_supported(self, loss=None, oracle=None) -> None:
        """Raise ``ValueError`` naming the reason when :meth:`unsupported` gives one."""
        why = self.unsupported(loss, oracle)
        if why is not None:
            raise ValueError(why)

    # ------------------------------------------------------------------ running
    _started = None  # perf_counter() at the start of the current solve (set by solve)
    #: Whether the oracle was chosen automatically (``fit(oracle="auto", patterns="auto")``,
    #: set by ``fit``): a solver may then add a proof step the user did not ask to skip.
    _auto_oracle = False

    def solve(self, X, Y=None, beta=None, oracle=None, loss=None, init=None, *, t0=None,
              **options) -> "SolveResult":
        """Solve for data ``X`` (an array or a :class:`~convexrelu.Problem`), targets ``Y``,
        weight decay ``beta``, with ``oracle`` (an oracle object built for ``X``, a name for
        :func:`~convexrelu.oracles.make_oracle`, or None for ``"auto"``), ``loss``
        (default: the problem's, else ``"squared"``) and an optional initial network
        ``init``. ``t0``: the ``time.perf_counter()`` at which the caller's clock started
        (``fit`` passes its own start, so that validation and the oracle's set-up count
        against ``time_limit``); default now. ``options``: solver-specific keywords of
        ``_solve``."""
        self._started = time.perf_counter() if t0 is None else float(t0)
        if loss is not None:  # refuse an unsupported loss before any work on the data
            self.check_supported(get_loss(loss) if isinstance(loss, str) else loss)
        prob = as_problem(X, Y, loss)
        if prob.Y is None:
            raise ValueError(f"solver={self.name!r}: solve needs the targets Y")
        self.check_supported(prob.loss)
        beta = check_beta(beta)
        orc = make_oracle(prob, "auto" if oracle is None else oracle)
        self.check_supported(oracle=orc)
        if init is not None:
            check_init(init, prob)
        before = orc.deadline
        if self.time_limit is not None:
            if 0.05 * self.time_limit < 2.0 and "sklearn.exceptions" not in sys.modules:
                # the ConvergenceWarning a budget stop raises lives in scikit-learn, whose
                # first import costs about a second: under a short limit the allowed
                # overrun (max(5 %, 1 s)) cannot absorb it at the end, so it is paid now,
                # inside the budget the solver plans with
                import sklearn.exceptions  # noqa: F401
            # a searching oracle stops within the overrun allowed past time_limit
            orc.deadline = self._started + self.time_limit + 0.5 * self.grace()
        try:
            return self._solve(prob, beta, orc, init, **options)
        finally:
            orc.deadline = before

    def grace(self) -> float:
        """The overrun allowed past ``time_limit``: 5 % of it or 1 s, whichever is larger
        (the last iteration's certificate is computed after the limit)."""
        return 0.0 if self.time_limit is None else max(0.05 * self.time_limit, 1.0)

    def _solve(self, problem: Problem, beta: float, oracle, init=None, **options):
        raise NotImplementedError  # pragma: no cover

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in COMMON_OPTIONS
                          if hasattr(self, k) and k != "callback")
        return f"{type(self).__name__}({shown})"


def check_init(init, problem: Problem) -> None:
    """``init`` must be a network with the problem's input and output sizes."""
    if not isinstance(init, TwoLayerReLU):
        raise ValueError(f"warm_start must be a TwoLayerReLU; got {type(init).__name__}")
    if init.n_features != problem.d or init.n_outputs != problem.c:
        raise ValueError(
            f"warm_start has shape (d={init.n_features}, c={init.n_outputs}) but the data "
            f"have d={problem.d}, c={problem.c}")


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
    status : {"optimal", "estimate_converged", "max_iter", "time_limit", "interrupted", "inaccurate", "recovery_gap", "stalled"}
        ``"optimal"``: global optimality is proven (``certificate.is_global`` is True,
        always together with this status). ``"estimate_converged"``: the gap *estimate*
        met ``tol``, but it is no proof (heuristic oracle or sampled patterns:
        ``certificate.is_rigorous`` is False, or the certificate's self-check failed);
        the network may not be optimal. ``"inaccurate"``: a conic
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
        if c.is_global:
            verdict = "certified global optimum"
        elif c.is_rigorous:
            verdict = "not certified: rel_gap is a bound on the distance from the optimum"
        else:
            verdict = (f"not certified: rel_gap is a proven but loose bound (spectral); the "
                       f"{c.oracle_kind} oracle on {c.pattern_scope} patterns gives only an "
                       "estimate")
        est = "" if c.is_rigorous else f", rel_gap_estimate={c.rel_gap_estimate:.2e}"
        return (
            f"SolveResult(solver={self.solver!r}, status={self.status!r}, objective={self.objective:.10g}, "
            f"dual={c.dual:.10g}, rel_gap={c.rel_gap:.2e}{est}, n_neurons={self.network.n_neurons}, "
            f"n_iter={self.n_iter}, time={self.time:.3f}s: {verdict})"
        )

    def to_dict(self) -> dict:
        c = self.certificate
        return {
            "solver": self.solver, "status": self.status, "objective": self.objective,
            "dual": c.dual, "gap": c.gap, "rel_gap": c.rel_gap, "is_global": c.is_global,
            "dual_estimate": c.dual_estimate, "gap_estimate": c.gap_estimate,
            "rel_gap_estimate": c.rel_gap_estimate,
            "is_rigorous": c.is_rigorous, "gap_is_estimate": False,
            "oracle_kind": c.oracle_kind,
            "pattern_scope": c.pattern_scope, "n_patterns": c.n_patterns,
            "n_neurons": self.network.n_neurons, "n_iter": self.n_iter, "time_s": self.time,
            **{k: v for k, v in self.info.items() if v is None or isinstance(v, (bool, int, float, str))},
        }


class IterationLog:
    """Collects the history, tracks the best network and best dual bound, logs progress."""

    def __init__(self, solver: str, X, Y, beta, loss, tol, verbose=0, callback=None,
                 time_limit=None, t0=None):
        self.solver = solver
        self.X, self.Y, self.beta, self.loss, self.tol = X, Y, beta, loss, tol
        self.verbose = int(verbose)
        self.callback = callback
        self.time_limit = time_limit
        # the clock starts when the fit started (set-up, e.g. the pattern build, counts)
        self.t0 = time.perf_counter() if t0 is None else float(t0)
        self.rows: list[dict] = []
        self.best_net: TwoLayerReLU | None = None
        self.best_primal = np.inf
        self.best_dual = -np.inf
        self.best_cert: Certificate | None = None
        self.last_res = None
        self._dual_src = None  # (Z the oracle saw, its result) behind best_dual
        self._dual_checked = False
        self._x_norm = None  # a bound on ||X||_2, for the spectral bound (computed once)
        self._bar = None  # the progress bar of verbose >= 1 (created on the first line)
        self._last_line = -np.inf  # perf_counter() of the last progress line
        self._between = None  # (objective, network, certificate, row): the lowest progress()

    def x_norm(self) -> float:
        r"""A proven upper bound on :math:`\|X\|_2` (computed on first use)."""
        if self._x_norm is None:
            from ..oracles.spectral import _spectral_norm

            self._x_norm = _spectral_norm(self.X)
        return self._x_norm

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def out_of_time(self) -> bool:
        return self.time_limit is not None and self.elapsed() >= self.time_limit

    def record(self, net: TwoLayerReLU, F, res, G=None, Zo=None, **extra) -> Certificate:
        """Certificate of ``net`` (predictions ``F``) from the oracle result ``res`` on the dual
        direction ``G`` (default: the loss gradient at ``F``; a solver may pass another
        subgradient, on which ``res`` must have been computed). ``Zo``: the matrix the
        oracle was actually called on, when it is not ``G`` (the convolutional fit calls it
        on ``B^T G`` over the patch matrix ``self.X``); the self-check runs on it.

        The best dual bound seen so far tightens later certificates, but a bound only
        decides ``is_global`` once the self-check has confirmed the oracle value it came
        from (checked lazily, when it would make a certificate global)."""
        primal = self._objective(net, F)
        if G is None:
            G = self.loss.gradient(F, self.Y)
        Zc = G if Zo is None else Zo
        cert = self._certificate(primal, G, Zc, res, "auto")
        own_dual = scaled_dual(G, self.Y, self.beta, self.loss, cert.omega_bound)[0] \
            if np.isfinite(cert.omega_bound) else -np.inf
        if own_dual > self.best_dual:
            self.best_dual = own_dual
            if cert.is_rigorous:  # the oracle's value: proven once the self-check passed
                self._dual_src = (Zc, res)
                self._dual_checked = cert.check_passed is True
            else:  # the spectral bound needs no check
                self._dual_src, self._dual_checked = None, True
        if primal < self.best_primal:
            # one assignment: an interrupt cannot pair a network with another's certificate
            self.best_primal, self.best_net, self.best_cert = primal, net, cert
        elif (primal == self.best_primal and self.best_cert is not None and not cert.is_rigorous
              and not self.best_cert.is_rigorous and cert.omega > self.best_cert.omega
              and cert.dual >= self.best_cert.dual):
            # the same network, a larger (better) lower estimate of Omega: its estimate of
            # the gap is the more truthful one
            self.best_net, self.best_cert = net, cert
        elif self.best_cert is not None and self.best_cert.dual < self.best_dual:
            # a better dual bound tightens the certificate of the best network
            dual = self._verified_best_dual(self.best_primal)
            if dual > self.best_cert.dual:
                src = self._dual_src[1] if self._dual_src is not None else None
                self.best_cert = _with_dual(
                    self.best_cert, dual, self.tol, self._dual_checked,
                    getattr(src, "source", "") or "bound proven at an earlier iterate")
        self.last_res = res
        it = len(self.rows)
        row = self._row(it, primal, cert, net, res, **extra)
        self.rows.append(row)
        if self.verbose:
            self._progress(it, primal, cert, net.n_neurons, row["time"], extra)
        if self.callback is not None:
            self.callback(dict(row, network=net, certificate=cert, stage="iteration"))
        return cert

    def progress(self, net: TwoLayerReLU, F, res, G=None, Zo=None,
                 stage: str = "local move") -> Certificate | None:
        """A network met between iterations (``stage``: ``"warm start"``, ``"local move"``,
        ``"escape"``), certified from ``res`` (arguments as for :meth:`record`; the solvers
        pass the spectral bound, which needs no oracle call, and no self-check runs: such a
        certificate is never global). When the network is below every network met so
        far, its objective reaches the callback (with ``stage``) and the terminal
        (``verbose >= 2``, or ``verbose`` 1 when the last line is a second old), so that
        long descents show progress; returns its certificate (else None).

        It does not enter the history, the best network or the stopping test (those follow
        the iterations' oracle calls), but an interrupt returns it when it is below every
        recorded network (see :meth:`result`)."""
        primal = self._objective(net, F)
        if not primal < min(self.best_primal,
                            np.inf if self._between is None else self._between[0]):
            return None
        if G is None:
            G = self.loss.gradient(F, self.Y)
        cert = self._certificate(primal, G, G if Zo is None else Zo, res, "never")
        row = self._row(len(self.rows), primal, cert, net, res)
        self._between = (primal, net, cert, row)  # one assignment (an interrupt may follow)
        if self.verbose >= 2 or (self.verbose and time.perf_counter() - self._last_line >= 1.0):
            self._progress(row["iter"], primal, cert, net.n_neurons, row["time"], {}, stage)
        if self.callback is not None:
            self.callback(dict(row, network=net, certificate=cert, stage=stage))
        return cert

    def _objective(self, net: TwoLayerReLU, F) -> float:
        """The training objective of ``net``, whose predictions are ``F``."""
        return self.loss.value(F, self.Y) + self.beta * net.weight_decay()

    def _certificate(self, primal, G, Zc, res, check) -> Certificate:
        """The certificate from ``res`` on ``Zc`` (``G`` on the dense map), tightened by the
        best dual bound proven so far (see :meth:`record`)."""
        return certificate_from_oracle(primal, G, self.Y, self.beta, self.loss, res, self.tol,
                                       self.t0, best_dual=self._verified_best_dual(primal),
                                       X=self.X, check=check, Zcheck=Zc,
                                       x_norm=None if res.is_upper_bound else self.x_norm())

    def _row(self, it, primal, cert, net, res, **extra) -> dict:
        """A history row (also the body of the callback's dict)."""
        return dict(iter=it, time=self.elapsed(), objective=primal, dual=cert.dual,
                    gap=cert.gap, rel_gap=cert.rel_gap, rel_gap_estimate=cert.rel_gap_estimate,
                    n_neurons=net.n_neurons, omega=res.value, **extra)

    def _progress(self, it, primal, cert, n_neurons, t, extra, label=None) -> None:
        # (label: a report between iterations, shown in the line, not counted by the bar)
        """``verbose >= 1``: one line per iteration on the terminal (stdout, as
        scikit-learn's estimators print), under a progress bar on stderr (tqdm, shown once
        the fit has run a second) with the objective, the gap and the neurons; the same
        line goes to the ``convexrelu.solvers`` logger at INFO."""
        est = "" if cert.is_rigorous else f"  rel_gap_est {cert.rel_gap_estimate:.2e}"
        extras = " ".join(f"{k}={v:.3g}" for k, v in extra.items() if np.isscalar(v))
        self._last_line = time.perf_counter()
        line = (f"{self.solver} it {it:4d}  " + (f"({label})  " if label else "")
                + f"obj {primal:.10g}  dual {cert.dual:.10g}  "
                f"rel_gap {cert.rel_gap:.2e}{est}  neurons {n_neurons}  {t:.2f}s"
                + (f"  {extras}" if extras else ""))
        logger.info(line)
        if self._bar is None:
            self._bar = False
            if getattr(sys.stderr, "isatty", lambda: False)():  # a bar only on a terminal
                try:
                    from tqdm import tqdm

                    self._bar = tqdm(desc=self.solver, unit="it", delay=1.0, leave=False,
                                     dynamic_ncols=True)
                except ImportError:  # pragma: no cover - tqdm is a dependency
                    pass
        if self._bar is not False:
            self._bar.set_postfix_str(f"obj={primal:.6g} gap={cert.rel_gap_estimate:.1e} "
                                      f"neurons={n_neurons}", refresh=False)
            self._bar.update(0 if label else 1)
            self._bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        """Close the progress bar, if any."""
        if self._bar is not None and self._bar is not False:
            self._bar.close()
        self._bar = None

    def record_step(self, objective: float, n_neurons: int, it: int | None = None,
                    **extra) -> dict:
        """A history row without an oracle call, for a solver whose inner steps are not
        certified one by one (``sgd``'s epochs): ``dual``, ``gap``, ``rel_gap`` and ``omega``
        are NaN until :meth:`certify_last` fills them in. ``it``: the row's ``iter``
        (default: its index). Neither logs nor calls the callback (the solver does, in its
        own terms). Returns the row."""
        row = dict(iter=len(self.rows) if it is None else it, time=self.elapsed(),
                   objective=objective, dual=np.nan, gap=np.nan, rel_gap=np.nan,
                   rel_gap_estimate=np.nan,
                   n_neurons=n_neurons, omega=np.nan, **extra)
        self.rows.append(row)
        return row

    def certify_last(self, net: TwoLayerReLU, F, res, G=None) -> Certificate:
        """Certificate of ``net`` (predictions ``F``) from the oracle result ``res`` on ``G``
        (default: the loss gradient at ``F``), written into the last row (from
        :meth:`record_step`), for a solver that chooses the network it returns (``sgd``: its
        best iterate).

        Unlike :meth:`record`, ``net`` and this certificate become the result's whatever
        their objective, and the certificate is ``net``'s own: no earlier dual bound
        tightens it, so :func:`~convexrelu.certify` recomputes it."""
        if not self.rows:
            raise RuntimeError(f"{self.solver}: certify_last needs a row (record_step) first")
        primal = self.loss.value(F, self.Y) + self.beta * net.weight_decay()
        if G is None:
            G = self.loss.gradient(F, self.Y)
        cert = certificate_from_oracle(primal, G, self.Y, self.beta, self.loss, res, self.tol,
                                       self.t0, X=self.X,
                                       x_norm=None if res.is_upper_bound else self.x_norm())
        # one assignment: an interrupt cannot pair a network with another's certificate
        self.best_primal, self.best_net, self.best_cert = primal, net, cert
        self.last_res = res
        self.rows[-1].update(dual=cert.dual, gap=cert.gap, rel_gap=cert.rel_gap,
                             rel_gap_estimate=cert.rel_gap_estimate, omega=res.value)
        return cert

    def _verified_best_dual(self, primal: float) -> float:
        """``best_dual`` when it may be used for ``primal``: if it would make the gap meet
        ``tol`` it must pass the self-check first (a refuted one is dropped)."""
        if self._dual_src is None or self._dual_checked:
            return self.best_dual
        rel = (primal - self.best_dual) / max(abs(primal), np.finfo(float).tiny)
        if rel > self.tol:
            return self.best_dual  # cannot decide is_global: no need to check yet
        Zc, res = self._dual_src
        chk = check_omega(self.X, Zc, res.value, res.u)
        if chk.passed:
            self._dual_checked = True
            return self.best_dual
        logger.warning("%s: an earlier dual bound is dropped: %s", self.solver, chk.reason)
        self.best_dual, self._dual_src = -np.inf, None
        return -np.inf

    def stop_status(self, k: int, max_iter: int) -> str | None:
        """``"optimal"`` (or ``"estimate_converged"``), ``"max_iter"`` or ``"time_limit"``
        when iteration ``k`` should be the last, else None (in that order of precedence).

        The solve stops when the gap met ``tol``, whether the gap is a bound or an estimate
        (nothing better can be measured); the status says which: ``"optimal"`` only when
        the certificate is a proof (``is_global``)."""
        if self.converged():
            return converged_status(self.best_cert)
        if k >= max_iter:
            return "max_iter"
        if self.out_of_time():
            return "time_limit"
        return None

    def converged(self) -> bool:
        """Whether the best network's gap met ``tol`` (its estimate: the proven gap when
        the oracle is a bound); see :meth:`converged_status` for what may be claimed."""
        c = self.best_cert
        return c is not None and (c.rel_gap <= self.tol or c.rel_gap_estimate <= self.tol)

    def converged_status(self) -> str | None:
        """``"optimal"`` (proven), ``"estimate_converged"`` (the estimate met tol, no proof)
        or None (the gap has not met tol)."""
        return converged_status(self.best_cert) if self.converged() else None

    def result(self, status: str, n_iter: int, info: dict | None = None, *,
               warn_budget: bool = True) -> SolveResult:
        """The :class:`SolveResult` of the best network. ``status`` ``"optimal"`` or
        ``"estimate_converged"`` is re-derived from the certificate (``"stalled"`` when the gap
        has not met ``tol``). ``warn_budget=False``: no ``ConvergenceWarning`` on
        ``"max_iter"``/``"time_limit"`` (``sgd``, a non-convex baseline that reports its
        gap instead)."""
        self.close()
        net, primal, cert, rows = self.best_net, self.best_primal, self.best_cert, self.rows
        if status == "interrupted" and self._between is not None and self._between[0] < primal:
            # interrupted between iterations (a warm start, a local move) on a network
            # below every recorded one: that network, with its own certificate (and the
            # best dual bound proven since, when larger), as the history's last row
            primal, net, cert, row = self._between
            dual = self._verified_best_dual(primal)
            if dual > cert.dual:
                cert = _with_dual(cert, dual, self.tol, self._dual_checked)
            rows = rows + [dict(row, iter=len(rows), dual=cert.dual, gap=cert.gap,
                                rel_gap=cert.rel_gap, rel_gap_estimate=cert.rel_gap_estimate)]
        if net is None:
            if status == "interrupted":
                raise KeyboardInterrupt  # nothing to return yet
            raise RuntimeError("solver finished without evaluating any network")
        if status in ("optimal", "estimate_converged"):
            # "optimal" is a claim: only a proof (is_global) may make it, whatever the solver
            # passed (and a dual bound found after the stop may have proven it); a solver
            # that stopped by its own criterion before the gap met tol has "stalled"
            status = converged_status(cert) if self.converged() else "stalled"
        if warn_budget and status in ("max_iter", "time_limit"):
            what = "rel_gap" if cert.is_rigorous else "rel_gap estimate"
            from sklearn.exceptions import ConvergenceWarning  # lazy: sklearn costs ~1 s to import

            warnings.warn(
                f"{self.solver}: stopped on {status} with {what} {cert.rel_gap_estimate:.3e} > "
                f"tol {self.tol:.1e} (gap{'' if cert.is_rigorous else ' estimate'} "
                f"{cert.gap_estimate:.3e}); the network may not be optimal. Increase max_iter "
                "or time_limit.", ConvergenceWarning, stacklevel=3)
        if status == "estimate_converged":
            logger.warning(
                "%s: status 'estimate_converged': the gap estimate reached tol, but %s does not "
                "prove optimality (is_global=False)", self.solver,
                f"the {cert.oracle_kind} oracle on {cert.pattern_scope} patterns"
                if not cert.is_rigorous else "the certificate")
        hist = {k: np.array([r[k] for r in rows]) for k in rows[0]}
        return SolveResult(net, float(primal), cert, status, n_iter,
                           self.elapsed(), hist, self.solver, dict(info or {}))


def _with_dual(cert: Certificate, dual: float, tol: float, checked: bool,
               source: str = "bound proven at an earlier iterate") -> Certificate:
    """``cert`` with a better (proven) dual bound; global only when that bound's oracle
    value passed the self-check. ``source``: where the bound comes from, in words."""
    from dataclasses import replace

    gap = cert.primal - dual
    rel = gap / max(abs(cert.primal), np.finfo(float).tiny)
    is_global = bool(rel <= tol and checked)
    est = max(cert.dual_estimate, dual)  # an estimate below a proven bound is stale
    gap_est = cert.primal - est
    return replace(cert, dual=float(dual), gap=float(gap), rel_gap=float(rel), is_global=is_global,
                   bound_source=source,
                   dual_estimate=float(est), gap_estimate=float(gap_est),
                   rel_gap_estimate=float(gap_est / max(abs(cert.primal), np.finfo(float).tiny)),
                   check="the self-check of the dual bound's oracle value" if checked else cert.check,
                   check_passed=True if checked else cert.check_passed,
                   reason="" if is_global or rel > tol else
                   "the dual bound's oracle value has not passed the self-check")
