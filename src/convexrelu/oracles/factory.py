r"""Choosing an oracle for ``X``: :func:`make_oracle`, and the one-shot :func:`omega`."""

from __future__ import annotations

import logging
import math

from .._validation import check_choice, check_max_patterns
from ..patterns import DEFAULT_MAX_PATTERNS, SignPatterns, pattern_bound
from ..problem import as_problem
from .base import ORACLE_KINDS, OracleBase, OracleResult, _Wrapped
from .bnb import BranchAndBoundOracle
from .exact import ExactOracle
from .stream import StreamingExactOracle
from .heuristic import HeuristicOracle
from .sdp import SDPOracle
from .spike_free import SpikeFreeOracle

__all__ = ["make_oracle", "omega", "exact_cost", "DEFAULT_EXACT_BUDGET_S", "DEFAULT_EXACT_MEMORY"]

#: Seconds of estimated exact-oracle work (enumeration, set-up and 20 calls) above which
#: ``oracle="auto"`` takes the heuristic path (a quarter of ``time_limit`` when less).
DEFAULT_EXACT_BUDGET_S = 30.0
#: Bytes of estimated pattern storage above which ``oracle="auto"`` takes the heuristic path.
DEFAULT_EXACT_MEMORY = 2 << 30


def _comb(n: int, k: int) -> float:
    """``C(n, k)`` as a float, ``inf`` past the float range (d = 784 at n = 10^5)."""
    try:
        return float(math.comb(n, k))
    except OverflowError:
        return math.inf


def exact_cost(n: int, r: int, c: int = 1) -> dict:
    r"""Estimated cost of the exact oracle for ``n`` rows of rank ``r`` and ``c`` outputs:
    ``patterns`` (the general-position count :math:`2\sum_{k<r}\binom{n-1}{k}`, the
    largest possible), ``memory`` (bytes of pattern storage) and ``seconds`` (enumeration,
    set-up and 20 oracle calls, from a cost model fitted on a 2-core x86 machine; a rough
    guide, within a factor of a few). Rank <= 2 is always cheap (a sweep)."""
    if r <= 2:
        return dict(patterns=float(2 * max(n, 1)), memory=float(16 * n), seconds=1e-6 * n * (c + 2))
    P = 2.0 * sum(_comb(max(n - 1, 0), k) for k in range(r))
    rays = _comb(n, r - 1)
    face = 2.0 ** (r - 3)  # the faces of every flat multiply the work with the rank
    seconds = 3e-7 * rays * n * r + 1e-7 * face * P * n * r + 20 * 5e-8 * face * P * n * (c + r)
    return dict(patterns=P, memory=P * n * (1 + 8 * min(1.0, (256 << 20) / max(P * n * 8, 1))),
                seconds=seconds)

logger = logging.getLogger(__name__)


def make_oracle(X, oracle="auto", patterns="auto", *, max_patterns=DEFAULT_MAX_PATTERNS,
                n_samples: int = 2000, random_state=None, exact_budget: float | None = None):
    """Build an oracle for ``X``.

    Parameters
    ----------
    X : array of shape (n, d) or Problem
        A :class:`~convexrelu.Problem` shares its rank reduction, fingerprint and
        patterns with the oracle (``fit`` and ``certify`` pass theirs).
    oracle : {"auto", "exact", "stream", "upper_bound", "heuristic", "bnb", "scip", "spike-free"} or an oracle object
        ``"auto"``: exact when the patterns are (or can be) enumerated (always for
        ``rank(X) <= 2``); otherwise heuristic (not a bound, logged as a warning). The
        SDP bound is never chosen automatically (slow, often loose for ``c > 1``); ask
        for it with ``oracle="upper_bound"``.
        ``"bnb"``: :class:`~convexrelu.oracles.BranchAndBoundOracle` with its defaults (a
        proven upper bound at any rank, exact to ``rtol`` when its search closes; build
        the object yourself to set its budget). ``"scip"``:
        :class:`~convexrelu.oracles.scip.SCIPOracle`, the mixed-integer formulation in
        SCIP (needs the optional ``pyscipopt``; a comparison route, slower than ``"bnb"``).
        ``"stream"``: :class:`~convexrelu.oracles.StreamingExactOracle`, the exact value
        for ranks 3 to 5 with no stored enumeration (memory bounded whatever the number
        of cells; iris, 150 x 4: about 6 s per call, against 75 s and 4.4 GB to build
        ``"exact"``). ``"spike-free"``: :class:`~convexrelu.oracles.SpikeFreeOracle`, the single
        pattern ``D = I`` of spike-free data with orthogonal rows (paper eq. 15): exact
        for ``n <= 12`` whatever ``d``; raises when ``X`` is not of that kind.
    patterns : {"auto", "exact", "sampled"} or SignPatterns
        ``"auto"``: enumerate when the bound :math:`2r(e(n-1)/r)^r` is within
        ``max_patterns``, otherwise sample ``n_samples`` directions. ``"exact"``
        enumerates or raises :class:`TooManyPatternsError`.
    max_patterns : float, default 1e9
    n_samples : int, default 2000
        Directions drawn for sampled patterns.
    random_state : None, int or Generator
    exact_budget : float, optional
        Seconds. With ``oracle="auto"`` and ``patterns="auto"``, the exact oracle is built
        for rank >= 3 only when its estimated cost (:func:`exact_cost`: enumeration,
        set-up and 20 calls) is within this budget (default
        :data:`DEFAULT_EXACT_BUDGET_S`) and its pattern storage within
        :data:`DEFAULT_EXACT_MEMORY`; otherwise the heuristic path is taken and a warning
        says so (``oracle="exact"`` or ``patterns="exact"`` enumerate regardless).

    Returns
    -------
    OracleBase
        An oracle object given as ``oracle`` is returned as it is when it is one of the
        package's (an :class:`~convexrelu.oracles.OracleBase`), else wrapped in one.
    """
    prob = as_problem(X)
    if not isinstance(oracle, str):
        if callable(oracle) and getattr(oracle, "kind", None) in ORACLE_KINDS:
            own = getattr(oracle, "problem", None)
            same = own is prob or (own is not None and getattr(own, "X", None) is prob.X)
            fp = None if same else getattr(oracle, "fingerprint", None)  # a pass over X
            if fp is not None and fp != prob.fingerprint:
                raise ValueError(
                    "the oracle object was built for a different X (fingerprint mismatch); "
                    "build it with the X it is used on"
                )
            return oracle if isinstance(oracle, OracleBase) else _Wrapped(oracle, prob)
        raise ValueError(
            f"oracle must be one of 'auto', 'exact', 'stream', 'upper_bound', 'heuristic', 'bnb', 'scip', 'spike-free' or an oracle "
            f"object; got {oracle!r}"
        )
    if type(prob.X).__module__.split(".")[0] == "dask":
        # data-parallel: only the searching oracle works by sums over rows
        if oracle not in ("auto", "heuristic") or not (
                isinstance(patterns, str) and patterns in ("auto", "sampled")):
            raise ValueError(
                f"oracle={oracle!r}, patterns={patterns!r}: with Dask input the oracle is the "
                "heuristic one (sums over rows; the proven bound is the spectral bound); "
                "exact enumeration, branch and bound, the SDP bound and SCIP need all rows in "
                "one place: pass X.compute() to use them")
        if oracle == "auto":
            logger.info("Dask input: the heuristic oracle (its value is an estimate; the "
                        "certificate's proven bound is the spectral bound)")
        return HeuristicOracle(prob, n_samples=n_samples, random_state=random_state)
    if oracle == "spike-free":
        return SpikeFreeOracle(prob, random_state=0 if random_state is None else random_state)
    check_choice(oracle, ("auto", "spike-free", "bnb", "scip", "stream") + ORACLE_KINDS, "oracle")
    if oracle == "stream":
        return StreamingExactOracle(prob)  # ranks 3 to 5; says so otherwise
    if oracle == "bnb":
        return BranchAndBoundOracle(prob)
    if oracle == "scip":
        from .scip import SCIPOracle  # pyscipopt is an optional extra

        return SCIPOracle(prob)
    X = prob.X
    max_patterns = check_max_patterns(max_patterns)
    if isinstance(patterns, SignPatterns):
        if patterns.scope == "exact" and oracle in ("auto", "exact"):
            return ExactOracle(prob, patterns)
        if oracle == "exact":
            raise ValueError("oracle='exact' needs exhaustive patterns; got sampled patterns")
        if oracle == "upper_bound":
            return SDPOracle(prob)
        return HeuristicOracle(prob, patterns, n_samples=n_samples, random_state=random_state)
    check_choice(patterns, ("auto", "exact", "sampled"), "patterns")
    if patterns == "sampled":
        if oracle == "exact":
            raise ValueError("oracle='exact' needs exhaustive patterns; got patterns='sampled'")
        if oracle == "upper_bound":
            return SDPOracle(prob)
        return HeuristicOracle(prob, n_samples=n_samples, random_state=random_state)
    # patterns in ("auto", "exact")
    if oracle == "upper_bound":
        return SDPOracle(prob)
    if oracle == "heuristic":
        return HeuristicOracle(prob, n_samples=n_samples, random_state=random_state)
    r = prob.rank
    n = X.shape[0]
    budget = DEFAULT_EXACT_BUDGET_S if exact_budget is None else float(exact_budget)
    cost = exact_cost(n, r, 1 if prob.Y is None else prob.c)
    affordable = cost["seconds"] <= budget and cost["memory"] <= DEFAULT_EXACT_MEMORY
    if r <= 2 or patterns == "exact" or (
            pattern_bound(n, r) <= max_patterns and (oracle == "exact" or affordable)):
        return ExactOracle(prob, max_patterns=max_patterns)  # raises if not enumerable
    if pattern_bound(n, r) <= max_patterns:
        logger.warning(
            "the exact oracle for X (n=%d, rank %d) would cost about %.3g s and %.3g GB "
            "(up to %.3g sign patterns), above the budget of %.3g s / %.3g GB: using the "
            "heuristic oracle (results are estimates, beside a proven but loose bound); "
            "oracle='exact' enumerates anyway", n, r, cost["seconds"], cost["memory"] / 2**30,
            cost["patterns"], budget, DEFAULT_EXACT_MEMORY / 2**30)
        return HeuristicOracle(prob, n_samples=n_samples, random_state=random_state)
    if oracle == "exact":
        raise ValueError(
            f"oracle='exact' needs exhaustive patterns, but X (n={X.shape[0]}, rank {r}) may "
            f"have up to {pattern_bound(X.shape[0], r):.3g} > max_patterns={max_patterns:.3g}; "
            "raise max_patterns"
        )
    logger.warning(
        "no exact oracle for X (n=%d, rank %d): patterns cannot be enumerated within "
        "max_patterns=%.3g; using the heuristic oracle (results are estimates, not "
        "certificates; oracle='upper_bound' gives an SDP bound for moderate n)",
        X.shape[0], r, max_patterns)
    return HeuristicOracle(prob, n_samples=n_samples, random_state=random_state)


def omega(X, Z, *, oracle="auto", patterns="auto", **kwargs) -> OracleResult:
    r"""One-shot :math:`\Omega(Z) = \max_{\|u\|\le1} \|Z^\top (Xu)_+\|` with the chosen oracle."""
    return make_oracle(X, oracle, patterns, **kwargs)(Z)
