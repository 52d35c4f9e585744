r"""Choosing an oracle for ``X``: :func:`make_oracle`, and the one-shot :func:`omega`."""

from __future__ import annotations

import logging

from .._validation import check_choice, check_max_patterns
from ..patterns import DEFAULT_MAX_PATTERNS, SignPatterns, pattern_bound
from ..problem import as_problem
from .base import ORACLE_KINDS, OracleBase, OracleResult, _Wrapped
from .exact import ExactOracle
from .heuristic import HeuristicOracle
from .sdp import SDPOracle
from .spike_free import SpikeFreeOracle

__all__ = ["make_oracle", "omega"]

logger = logging.getLogger(__name__)


def make_oracle(X, oracle="auto", patterns="auto", *, max_patterns=DEFAULT_MAX_PATTERNS,
                n_samples: int = 2000, random_state=None):
    """Build an oracle for ``X``.

    Parameters
    ----------
    X : array of shape (n, d) or Problem
        A :class:`~convexrelu.Problem` shares its rank reduction, fingerprint and
        patterns with the oracle (``fit`` and ``certify`` pass theirs).
    oracle : {"auto", "exact", "upper_bound", "heuristic", "spike-free"} or an oracle object
        ``"auto"``: exact when the patterns are (or can be) enumerated (always for
        ``rank(X) <= 2``); otherwise heuristic (not a bound, logged as a warning). The
        SDP bound is never chosen automatically (slow, often loose for ``c > 1``); ask
        for it with ``oracle="upper_bound"``.
        ``"spike-free"``: :class:`~convexrelu.oracles.SpikeFreeOracle`, the single
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
            fp = getattr(oracle, "fingerprint", None)
            if own is not prob and fp is not None and fp != prob.fingerprint:
                raise ValueError(
                    "the oracle object was built for a different X (fingerprint mismatch); "
                    "build it with the X it is used on"
                )
            return oracle if isinstance(oracle, OracleBase) else _Wrapped(oracle, prob)
        raise ValueError(
            f"oracle must be one of 'auto', 'exact', 'upper_bound', 'heuristic', 'spike-free' or an oracle "
            f"object; got {oracle!r}"
        )
    if oracle == "spike-free":
        return SpikeFreeOracle(prob, random_state=0 if random_state is None else random_state)
    check_choice(oracle, ("auto", "spike-free") + ORACLE_KINDS, "oracle")
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
    if r <= 2 or patterns == "exact" or pattern_bound(X.shape[0], r) <= max_patterns:
        return ExactOracle(prob, max_patterns=max_patterns)  # raises if not enumerable
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
