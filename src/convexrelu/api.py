"""The top-level functions: ``fit``, ``regularization_path`` (and re-exports of ``certify``,
``lambda_max``)."""

from __future__ import annotations

import logging
import numbers

import numpy as np

from ._validation import check_beta, check_choice, check_tol, check_X, check_XY
from .certificates import certify, lambda_max
from .losses import get_loss
from .network import TwoLayerReLU
from .oracles import DEFAULT_MAX_PATTERNS, SpectralOracle, make_oracle
from .solvers.base import SolveResult

__all__ = ["fit", "regularization_path", "certify", "lambda_max", "SOLVERS", "make_solver"]

logger = logging.getLogger(__name__)

#: Solver names accepted by ``fit(solver=...)``.
SOLVERS = ("auto", "cg", "frank-wolfe", "copositive", "copositive-fo", "cutting-plane",
           "closed-form", "sgd")


#: The option names a solver object may carry under another name.
_OPTION_ALIASES = {"max_iter": ("max_iter", "max_epochs", "max_outer")}


def _refuse_conflicts(solver, options: dict) -> None:
    """A solver object keeps its own settings: an option also given to ``fit`` must agree
    with the object's, or ``fit`` refuses (it never drops an option silently)."""
    name = type(solver).__name__
    for key, value in options.items():
        if value is None:
            continue  # not given: the object's own setting applies
        attrs = _OPTION_ALIASES.get(key, (key,))
        have = next((a for a in attrs if hasattr(solver, a)), None)
        if have is None:
            raise ValueError(
                f"fit(solver={name}(...), {key}={value!r}): this solver object has no {key!r} "
                f"setting; leave {key} out of fit")
        current = getattr(solver, have)
        same = current is value or (
            isinstance(current, numbers.Number) and isinstance(value, numbers.Number)
            and not isinstance(value, bool) and float(current) == float(value))
        if not same:
            raise ValueError(
                f"fit(solver={name}(...), {key}={value!r}) conflicts with the solver object's "
                f"{have}={current!r}: set it on the object ({name}({have}={value!r}, ...)) or "
                f"pass the solver by name (solver={getattr(solver, 'name', name)!r})")


def make_solver(solver="auto", *, tol=None, max_iter=None, time_limit=None, verbose=None,
                callback=None):
    """A solver object from its name (``"auto"`` is ``"cg"``), or a solver object passed
    through; ``None`` options mean the defaults (a name) or the object's own settings
    (an object), and an option given with an object must agree with it (else
    ``ValueError``)."""
    if not isinstance(solver, str):
        if hasattr(solver, "solve") and hasattr(solver, "name"):
            _refuse_conflicts(solver, dict(tol=tol, max_iter=max_iter, time_limit=time_limit,
                                           verbose=verbose, callback=callback))
            return solver
        raise ValueError(f"solver must be one of {', '.join(map(repr, SOLVERS))} or a solver "
                         f"object; got {solver!r}")
    check_choice(solver, SOLVERS, "solver")
    tol = 1e-6 if tol is None else tol
    verbose = 0 if verbose is None else verbose
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral)
                                 or max_iter < 1):
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
    if time_limit is not None:
        try:
            time_limit = float(time_limit)
        except (TypeError, ValueError):
            raise ValueError(f"time_limit must be a positive number of seconds; got {time_limit!r}") from None
        if not time_limit > 0:
            raise ValueError(f"time_limit must be a positive number of seconds; got {time_limit!r}")
    common = dict(tol=tol, time_limit=time_limit, verbose=verbose, callback=callback)
    if solver in ("auto", "cg"):
        from .solvers.cg import ConditionalGradient

        return ConditionalGradient(max_iter=max_iter or 100, **common)
    if solver == "copositive":
        from .solvers.copositive import CopositiveRelaxation

        return CopositiveRelaxation(**common)
    if solver == "closed-form":
        from .solvers.closed_form import ClosedForm

        return ClosedForm(max_iter=max_iter, **common)
    if solver == "copositive-fo":
        from .solvers.copositive_fo import CopositiveFO

        return CopositiveFO(max_iter=max_iter, **common)
    if solver == "cutting-plane":
        from .solvers.cutting_plane import CuttingPlane

        return CuttingPlane(max_iter=max_iter or 500, **common)
    if solver == "sgd":
        from .solvers.sgd import SGD

        return SGD(max_epochs=max_iter or 20000, **common)
    from .solvers.frank_wolfe import FrankWolfe

    return FrankWolfe(max_iter=max_iter or 20000, **common)


def fit(X, Y, beta, *, solver="auto", patterns="auto", oracle="auto", loss="squared",
        tol: float | None = None, max_iter: int | None = None, time_limit: float | None = None,
        max_patterns: float = DEFAULT_MAX_PATTERNS, warm_start: TwoLayerReLU | None = None,
        random_state=None, verbose: int | None = None, callback=None) -> SolveResult:
    r"""Train a two-layer ReLU network to its global optimum, with a certificate.

    Solves the convex program equivalent to training (paper eq. 12) and returns the
    network with a duality-gap certificate (:func:`convexrelu.certify`).

    Parameters
    ----------
    X : array of shape (n, d)
        Real, finite values below ~1e150 in absolute value (larger ones overflow when
        squared: rescale). A ``scipy.sparse`` matrix is densified when its dense form has
        at most 1e8 entries (the solvers work on dense arrays) and refused otherwise.
        Complex input is refused.
    Y : array of shape (n, c) or (n,)
        Real targets (same limits as ``X``), or class labels for the classification
        losses: finite, and not continuous (float labels must be integer-valued).
    beta : float > 0
        Weight decay (paper eq. 5).
    solver : {"auto", "cg", "frank-wolfe", "copositive", "copositive-fo", "cutting-plane", "closed-form", "sgd"} or a solver object
        ``"auto"`` is ``"cg"``, the fully-corrective conditional gradient;
        ``"frank-wolfe"`` is the paper's Algorithm 1; ``"copositive"`` solves the
        relaxation eq. 19/20 with CVXPY and recovers a network (its value and lower bound
        are in ``result.info``; pass a :class:`~convexrelu.solvers.CopositiveRelaxation`
        object to choose the form or SCS); ``"copositive-fo"`` is its first-order
        (Burer–Monteiro, augmented Lagrangian) counterpart for large problems;
        ``"closed-form"`` is Theorem 2's soft-thresholded SVD for whitened data with
        ``n <= d`` (it raises, naming the failed check, when its assumptions fail; pass a
        :class:`~convexrelu.solvers.ClosedForm` object with ``fallback="cg"`` to fall back);
        ``"cutting-plane"`` is the analytic-center
        cutting-plane method on the dual (App. A.5); ``"sgd"`` is the non-convex baseline
        (PyTorch, full-batch GD with momentum, paper App. A.1; pass a
        :class:`~convexrelu.solvers.SGD` object to set the width, optimiser or schedule),
        certified like the others.
    patterns, oracle : see :func:`convexrelu.make_oracle`
        With enumerable patterns (always for ``rank(X) <= 2``) the oracle is exact and
        the result can be certified. Otherwise the heuristic oracle drives the solver
        and the certificate is an estimate that says so (``is_global = False``).
    loss : str or Loss, default "squared"
        ``"squared"``, ``"cross_entropy"``, ``"logistic"``, ``"multiclass_hinge"``,
        ``"huber"``, ``"absolute"`` or a :class:`~convexrelu.losses.Loss`; the other losses
        are solved by ``cg`` (master through CVXPY/Clarabel) and take labels or one-hot
        targets where they are classification losses.
    tol : float, optional
        Target relative duality gap (default 1e-6).
    max_iter : int, optional
        Iterations (default: 100 for ``cg``, 20000 Frank–Wolfe steps for ``frank-wolfe``,
        20000 epochs for ``sgd``).
    time_limit : float, optional
        Seconds; the solve stops with status ``"time_limit"``.
    max_patterns : float, default 1e9
    warm_start : TwoLayerReLU, optional
        Start from this network (``cg``).
    random_state : None, int or Generator
        For sampled patterns.
    verbose : int, optional
        One log line per iteration (``logging``, INFO); default 0.
    callback : callable, optional
        Called with a dict after each iteration.

    With a solver *object*, ``tol``, ``max_iter``, ``time_limit``, ``verbose`` and
    ``callback`` are the object's own settings: leave them out of ``fit``, or give the same
    values; a different value raises ``ValueError`` (it is never dropped silently).

    Returns
    -------
    SolveResult
        ``network``, ``objective``, ``certificate``, ``status``, ``n_iter``, ``time``,
        ``history``, ``solver``. ``status`` is ``"optimal"`` only when the certificate
        proves global optimality (``certificate.is_global``); ``"estimate_converged"``
        when the gap is only an estimate (heuristic oracle, sampled patterns) and that
        estimate met ``tol``. Ctrl-C returns the best network so far (status
        ``"interrupted"``) with its certificate.
    """
    loss = get_loss(loss)
    if loss.name == "squared":
        X, Y = check_XY(X, Y)
    beta = check_beta(beta)
    tol = None if tol is None else check_tol(tol)
    if loss.name != "squared":
        name = solver if isinstance(solver, str) else getattr(solver, "name", "")
        if name not in ("auto", "cg", "frank-wolfe", "sgd"):
            raise ValueError(f"loss={loss.name!r} is supported by solver='cg' (and 'frank-wolfe' "
                             f"for smooth losses) only: the copositive and closed forms and the "
                             f"cutting plane are squared-loss methods; got solver={name!r}")
        from .certificates import _check_XY_for

        # X first (densified, checked), so that the targets' check sees a plain array
        X, Y = _check_XY_for(loss, check_X(X), Y)
    if warm_start is not None:
        if not isinstance(warm_start, TwoLayerReLU):
            raise ValueError(f"warm_start must be a TwoLayerReLU; got {type(warm_start).__name__}")
        if warm_start.n_features != X.shape[1] or warm_start.n_outputs != Y.shape[1]:
            raise ValueError(
                f"warm_start has shape (d={warm_start.n_features}, c={warm_start.n_outputs}) but "
                f"the data have d={X.shape[1]}, c={Y.shape[1]}"
            )
    slv = make_solver(solver, tol=tol, max_iter=max_iter, time_limit=time_limit,
                      verbose=verbose, callback=callback)
    if getattr(slv, "name", None) == "closed-form" and isinstance(oracle, str) and oracle == "auto" \
            and getattr(slv, "fallback", None) is None:
        # Theorem 2 is certified by the spectral bound; building patterns would cost more
        orc = SpectralOracle(X)
    else:
        orc = make_oracle(X, oracle, patterns, max_patterns=max_patterns,
                          random_state=random_state)
    return slv.solve(X, Y, beta, orc, loss, init=warm_start)


def regularization_path(X, Y, betas, *, solver="auto", patterns="auto", oracle="auto",
                        tol: float | None = None, max_iter: int | None = None,
                        max_patterns: float = DEFAULT_MAX_PATTERNS, random_state=None,
                        verbose: int | None = None) -> list[SolveResult]:
    """Fit a sequence of ``beta`` values, largest first, each warm-started from the last.

    The oracle (and its sign patterns) is built once and shared. Returns the results in
    the order of ``betas`` as given.
    """
    X, Y = check_XY(X, Y)
    betas = np.asarray(betas, dtype=float).ravel()
    if betas.size == 0:
        raise ValueError("betas must contain at least one value")
    for b in betas:
        check_beta(b, "betas")
    orc = make_oracle(X, oracle, patterns, max_patterns=max_patterns, random_state=random_state)
    order = np.argsort(-betas, kind="stable")
    results: dict[int, SolveResult] = {}
    prev = None
    for i in order:
        res = fit(X, Y, float(betas[i]), solver=solver, oracle=orc, tol=tol, max_iter=max_iter,
                  warm_start=prev, verbose=verbose)
        results[int(i)] = res
        prev = res.network if res.network.n_neurons else None
    return [results[i] for i in range(betas.size)]
