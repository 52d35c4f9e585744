"""The top-level functions: ``fit``, ``regularization_path`` (and re-exports of ``certify``,
``lambda_max``)."""

from __future__ import annotations

import contextlib
import logging
import numbers
import time

import numpy as np

from ._validation import check_beta, check_choice, check_device, check_tol
from .certificates import certify, lambda_max
from .kernels import make_backend, use_backend
from .losses import get_loss
from .network import TwoLayerReLU
from .oracles import DEFAULT_MAX_PATTERNS, SpectralOracle, make_oracle
from .oracles.factory import DEFAULT_EXACT_BUDGET_S
from .problem import Problem, make_problem
from .solvers import SOLVER_CLASSES
from .solvers.base import Solver, SolveResult, check_init

__all__ = ["fit", "regularization_path", "certify", "lambda_max", "SOLVERS", "make_solver"]

logger = logging.getLogger(__name__)

#: Solver names accepted by ``fit(solver=...)``.
SOLVERS = ("auto",) + tuple(SOLVER_CLASSES)


def _refuse_conflicts(solver, options: dict) -> None:
    """A solver object keeps its own settings: an option also given to ``fit`` must agree
    with the object's, or ``fit`` refuses (it never drops an option silently)."""
    name = type(solver).__name__
    for key, value in options.items():
        if value is None:
            continue  # not given: the object's own setting applies
        current = getattr(solver, key)
        same = current is value or (isinstance(current, str) and current == value) or (
            isinstance(current, numbers.Number) and isinstance(value, numbers.Number)
            and not isinstance(value, bool) and float(current) == float(value))
        if not same:
            raise ValueError(
                f"fit(solver={name}(...), {key}={value!r}) conflicts with the solver object's "
                f"{key}={current!r}: set it on the object ({name}({key}={value!r}, ...)) or "
                f"pass the solver by name (solver={solver.name!r})")


def make_solver(solver="auto", *, tol=None, max_iter=None, time_limit=None, verbose=None,
                callback=None, random_state=None) -> Solver:
    """A solver object from its name (``"auto"`` is ``"cg"``), or a solver object passed
    through. The options are the shared ones of :class:`~convexrelu.solvers.Solver`, with
    one meaning for every solver; ``None`` means the solver's default (a name) or the
    object's own setting (an object), and an option given with an object must agree with
    it (else ``ValueError``). A solver that has no use for an option refuses it (e.g.
    ``max_iter`` for ``"copositive"``, one conic solve)."""
    options = dict(tol=tol, max_iter=max_iter, time_limit=time_limit, verbose=verbose,
                   callback=callback, random_state=random_state)
    if not isinstance(solver, str):
        if isinstance(solver, Solver):
            _refuse_conflicts(solver, options)
            return solver
        raise ValueError(f"solver must be one of {', '.join(map(repr, SOLVERS))} or a solver "
                         f"object (a convexrelu.solvers.Solver); got {solver!r}")
    check_choice(solver, SOLVERS, "solver")
    cls = SOLVER_CLASSES["cg" if solver == "auto" else solver]
    return cls(**{k: v for k, v in options.items() if v is not None})


def fit(X, Y, beta, *, solver="auto", patterns="auto", oracle="auto", loss="squared",
        tol: float | None = None, max_iter: int | None = None, time_limit: float | None = None,
        max_patterns: float = DEFAULT_MAX_PATTERNS, init: TwoLayerReLU | None = None,
        warm_start: TwoLayerReLU | None = None, random_state=None, verbose: int | None = None,
        callback=None, device=None, dtype: str | None = None) -> SolveResult:
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
        the result can be certified. Otherwise the heuristic oracle drives the solver;
        with ``oracle="auto"`` and ``rank(X) <= 8``, ``cg`` then runs branch and bound on
        the final residual (:class:`~convexrelu.oracles.BranchAndBoundOracle`), which
        proves the result optimal or finds the directions the estimate missed (they are
        added and the solve continues); without a proof the certificate's ``dual`` is the
        best proven bound and the estimate says it is one (``is_global = False``).
    loss : str or Loss, default "squared"
        ``"squared"``, ``"cross_entropy"``, ``"logistic"``, ``"multiclass_hinge"``,
        ``"huber"``, ``"absolute"`` or a :class:`~convexrelu.losses.Loss`; the other losses
        are solved by ``cg`` (master through CVXPY/Clarabel) and take labels or one-hot
        targets where they are classification losses.
    tol : float, optional
        Target relative duality gap (default 1e-6).
    max_iter : int, optional
        Iterations (default: 100 for ``cg``, 20000 Frank–Wolfe steps for ``frank-wolfe``,
        20000 epochs for ``sgd``; no limit when ``time_limit`` is given).
    time_limit : float, optional
        Seconds; the solve stops with status ``"time_limit"``.
    max_patterns : float, default 1e9
    init : TwoLayerReLU, optional
        Start from this network, of any width (e.g. one trained in PyTorch and converted
        with ``TwoLayerReLU.from_torch``): ``cg`` and ``sgd`` start there, and the result's
        objective is never above the start's (the start is the first network recorded).
    warm_start : TwoLayerReLU, optional
        Another name for ``init`` (kept for older code).
    random_state : None, int or Generator
        For sampled patterns.
    verbose : int, optional
        1: one line per iteration on the terminal (stdout; also the ``convexrelu.solvers``
        logger at INFO) under a progress bar for long fits (``cg`` with a heuristic
        oracle: also its reports between iterations, a second apart); 2: every report;
        default 0.
    callback : callable, optional
        Called with a dict after each iteration (``cg`` with a heuristic oracle: also
        with the lower networks its descents meet between iterations, each certified by
        the spectral bound, with ``stage``; see
        :class:`~convexrelu.solvers.ConditionalGradient`).
    device : None, str or torch.device, optional
        ``cg`` (the default) and ``sgd`` only. For ``cg``: None (default) runs on NumPy;
        a PyTorch device (``"cuda"``, ``"cuda:1"``, ``"cpu"``) runs the dense work there,
        the data moved once (:class:`~convexrelu.solvers.ConditionalGradient`'s
        ``device``; needs the ``torch`` extra; a CUDA device PyTorch cannot see is an
        error, never a silent move to the CPU). For ``sgd``: its PyTorch device.
    dtype : {"float64", "float32"}, optional
        With ``device``: float32 for the searches only (``cg``: local moves and the
        heuristic oracle; the certificate stays float64 and proven), or ``sgd``'s dtype.

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
    t_start = time.perf_counter()  # time_limit counts from here: validation and set-up included
    if init is not None and warm_start is not None:
        raise ValueError("give init or warm_start (another name for it), not both")
    warm_start = init if init is not None else warm_start
    loss = get_loss(loss)
    tol = None if tol is None else check_tol(tol)
    slv = make_solver(solver, tol=tol, max_iter=max_iter, time_limit=time_limit,
                      verbose=verbose, callback=callback, random_state=random_state)
    slv.check_supported(loss)  # before any work on the data
    _set_device(slv, solver, device, dtype)
    prob = make_problem(X, Y, loss)
    beta = check_beta(beta)
    return _fit(prob, beta, slv, oracle, patterns, max_patterns, warm_start, random_state,
                t_start)


def _set_device(slv: Solver, solver, device, dtype) -> None:
    """Give ``device``/``dtype`` to a solver made by name, or check that a solver object
    has them already; a solver without a device refuses them."""
    opts = {k: v for k, v in dict(device=device, dtype=dtype).items() if v is not None}
    if not opts:
        return
    if not hasattr(slv, "device"):
        raise ValueError(f"device= and dtype= are options of solver='cg' (the default) and "
                         f"'sgd'; solver={slv.name!r} runs on NumPy")
    if not isinstance(solver, str):
        _refuse_conflicts(slv, opts)
        return
    new_device = opts.get("device", slv.device)
    new_dtype = opts.get("dtype", slv.dtype)
    if slv.name == "cg":
        check_device(new_device, new_dtype, slv.max_memory)
    elif new_dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {new_dtype!r}")
    slv.device, slv.dtype = new_device, new_dtype


def _fit(prob: Problem, beta: float, slv: Solver, oracle, patterns, max_patterns, warm_start,
         random_state, t_start=None) -> SolveResult:
    """``fit`` on a prepared problem with a solver object (shared with the path)."""
    if warm_start is not None:
        check_init(warm_start, prob)
    if slv.name == "closed-form" and isinstance(oracle, str) and oracle == "auto" \
            and slv.fallback is None:
        # Theorem 2 is certified by the spectral bound; building patterns would cost more
        orc = SpectralOracle(prob)
    else:
        budget = None if slv.time_limit is None else min(0.25 * slv.time_limit,
                                                         DEFAULT_EXACT_BUDGET_S)
        with _setup_backend(slv):
            orc = make_oracle(prob, oracle, patterns, max_patterns=max_patterns,
                              random_state=random_state, exact_budget=budget)
    slv._auto_oracle = (isinstance(oracle, str) and oracle == "auto"
                        and isinstance(patterns, str) and patterns == "auto")
    return slv.solve(prob, beta=beta, oracle=orc, init=warm_start, t0=t_start)


def _setup_backend(slv: Solver):
    """The back end of the set-up (the rank reduction's SVD, the oracle's construction):
    the solver's device for ``cg`` with a ``device``, else NumPy."""
    if slv.name == "cg" and getattr(slv, "device", None) is not None:
        return use_backend(make_backend(slv.device, "float64", slv.max_memory))
    return contextlib.nullcontext()


def regularization_path(X, Y, betas, *, solver="auto", patterns="auto", oracle="auto",
                        tol: float | None = None, max_iter: int | None = None,
                        max_patterns: float = DEFAULT_MAX_PATTERNS, random_state=None,
                        verbose: int | None = None, n_jobs: int | None = None) -> list[SolveResult]:
    """Fit a sequence of ``beta`` values, largest first, each warm-started from the last.

    The oracle (and its sign patterns) is built once and shared. Returns the results in
    the order of ``betas`` as given.

    ``n_jobs`` (default None: one after another, warm-started): fit the ``beta`` values
    in parallel through joblib (``-1``: all cores), each from no neuron (no warm start:
    the fits are independent), with the oracle built once and sent to the workers.
    joblib's active back end runs them: its processes by default, a Dask or Ray cluster
    inside ``joblib.parallel_backend("dask")`` / ``("ray")`` (see the README).
    """
    prob = make_problem(X, Y)
    betas = np.asarray(betas, dtype=float).ravel()
    if betas.size == 0:
        raise ValueError("betas must contain at least one value")
    for b in betas:
        check_beta(b, "betas")
    slv = make_solver(solver, tol=None if tol is None else check_tol(tol), max_iter=max_iter,
                      verbose=verbose)
    orc = make_oracle(prob, oracle, patterns, max_patterns=max_patterns, random_state=random_state)
    if n_jobs not in (None, 1):
        from joblib import Parallel, delayed

        if not prob.in_memory:
            raise ValueError("n_jobs with Dask input: a data-parallel fit already runs on the "
                             "cluster; fit the betas one after another (n_jobs=None)")
        return Parallel(n_jobs=n_jobs)(
            delayed(_fit)(prob, float(b), slv, orc, patterns, max_patterns, None, random_state)
            for b in betas)
    order = np.argsort(-betas, kind="stable")
    results: dict[int, SolveResult] = {}
    prev = None
    for i in order:
        res = _fit(prob, float(betas[i]), slv, orc, patterns, max_patterns, prev, random_state)
        results[int(i)] = res
        prev = res.network if res.network.n_neurons else None
    return [results[i] for i in range(betas.size)]
