r"""The oracle contract: the result every oracle returns and the :class:`Oracle` protocol.

Every oracle of :mod:`convexrelu.oracles` evaluates (or bounds, or estimates)
:math:`\Omega(Z) = \max_{\|u\| \le 1} \|Z^\top (X u)_+\|_2` for the ``X`` it was built
for and returns an :class:`OracleResult` tagged with its ``kind``. This module depends on
nothing else in the package, so every oracle module, solver and certificate can import
it without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["OracleResult", "Oracle", "OracleBase", "CandidateOracle", "ORACLE_KINDS"]

#: The values ``kind`` takes, on an oracle and on its results: ``"exact"`` (an upper
#: bound within ``margin`` of :math:`\Omega(Z)`), ``"upper_bound"`` (a proven upper
#: bound, possibly loose) and ``"heuristic"`` (a lower estimate, never a bound).
ORACLE_KINDS = ("exact", "upper_bound", "heuristic")


@dataclass(frozen=True)
class OracleResult:
    r"""Result of an oracle call.

    Attributes
    ----------
    value : float
        For ``kind="exact"``: the largest value of any cell, face or ray computed from
        that region's own active set, plus ``margin`` (rounding and rank truncation): an
        upper bound on :math:`\Omega(Z)`, within ``margin`` of it. An upper bound for
        ``kind="upper_bound"``; a lower estimate for ``kind="heuristic"``.
    u : ndarray of shape (d,)
        A unit direction with :math:`\|Z^\top (Xu)_+\| =` ``attained``.
    attained : float
        The value reached by ``u`` (always a lower bound on :math:`\Omega(Z)`).
    kind : {"exact", "upper_bound", "heuristic"}
    pattern_scope : {"exact", "sampled"}
        Whether the search covered every sign pattern (the SDP covers every ``u`` by
        construction and reports ``"exact"``).
    n_patterns : int or None
        Number of top-level sign patterns searched (None for the SDP).
    time : float
        Seconds spent in the call.
    margin : float
        What was added to make ``value`` a bound: for the exact oracle, the outward
        rounding :math:`2(n + r + 4)\epsilon \sum_k \|z_k\|\|x_k\|` plus
        :math:`\|Z\|_2 \|X - X V_r V_r^\top\|_2` when the rank reduction truncated
        ``X``; for the SDP bound, the verification's correction (plus the truncation).
    """

    value: float
    u: np.ndarray
    attained: float
    kind: str
    pattern_scope: str
    n_patterns: int | None
    time: float
    margin: float = 0.0
    #: The method behind ``value`` in words, when the kind does not say it (the
    #: branch-and-bound oracle: ``"branch and bound"``); shown by certificates.
    source: str = ""

    @property
    def is_upper_bound(self) -> bool:
        """True when ``value`` is a proven upper bound on :math:`\\Omega(Z)`."""
        return self.kind in ("exact", "upper_bound") and self.pattern_scope == "exact"


@runtime_checkable
class Oracle(Protocol):
    r"""What every oracle provides; structural (no oracle inherits from it).

    Implemented by :class:`~convexrelu.oracles.ExactOracle`,
    :class:`~convexrelu.oracles.HeuristicOracle`, :class:`~convexrelu.oracles.SDPOracle`,
    :class:`~convexrelu.oracles.SpectralOracle` and
    :class:`~convexrelu.oracles.SpikeFreeOracle`; any object with these members can be
    passed as ``oracle=`` to :func:`~convexrelu.oracles.make_oracle`, ``fit`` and
    ``certify``.

    Attributes
    ----------
    kind : {"exact", "upper_bound", "heuristic"}
        What the oracle's ``value`` is (see :data:`ORACLE_KINDS`). The ``kind`` of each
        :class:`OracleResult` is what counts: ``SpikeFreeOracle`` may return an
        ``"exact"`` result from a ``"heuristic"`` oracle when the spectral bound is met.
    fingerprint : str
        :func:`~convexrelu.patterns.fingerprint` of the ``X`` the oracle was built for;
        :func:`~convexrelu.oracles.make_oracle` refuses an oracle object whose
        fingerprint is not that of the ``X`` it is given.
    n_patterns : int or None
        Number of top-level sign patterns searched; None when the oracle does not search
        sign patterns (SDP and spectral bounds).

    Methods
    -------
    __call__(Z) -> OracleResult
        :math:`\Omega(Z)` for ``Z`` of shape ``(n,)`` or ``(n, c)``.

    Notes
    -----
    The package's oracles inherit from :class:`OracleBase`, which also gives the members
    the solvers use beyond these (``candidates``, ``arrangement_2d``, ``patterns``) with
    defaults, so that no solver probes an oracle with ``hasattr``;
    :func:`~convexrelu.oracles.make_oracle` wraps any other object that has the members
    above in an :class:`OracleBase`.
    """

    kind: str
    fingerprint: str

    @property
    def n_patterns(self) -> int | None: ...

    def __call__(self, Z) -> OracleResult: ...


@runtime_checkable
class CandidateOracle(Oracle, Protocol):
    """An :class:`Oracle` that also returns several good directions per call."""

    def candidates(self, Z, threshold: float, kmax: int = 50) -> tuple[np.ndarray, np.ndarray]: ...


def in_memory_problem(X, what: str):
    """``as_problem(X)``, refusing Dask data: ``what`` needs all rows in one place."""
    from ..problem import as_problem

    prob = as_problem(X)
    if not prob.in_memory:
        raise ValueError(f"{what} needs all rows in one place, and X is a Dask array: pass "
                         f"X.compute() (a NumPy array), or use the heuristic oracle "
                         f"(oracle='auto'), which works by sums over rows")
    return prob


class OracleBase:
    r"""Base class of the package's oracles: the full contract the solvers rely on.

    A subclass sets ``kind`` and ``problem`` (the :class:`~convexrelu.Problem` it was built
    for) and implements ``__call__``; the other members have defaults that it overrides
    when it can do better.

    Attributes
    ----------
    kind : {"exact", "upper_bound", "heuristic"}
    problem : Problem
    patterns : SignPatterns or None
        The sign patterns searched, when there are any (default None).
    """

    kind: str = "heuristic"
    patterns = None
    #: A ``time.perf_counter()`` value a searching oracle stops searching at (its value is
    #: then a weaker estimate); set by the solvers for their ``time_limit``. Exhaustive and
    #: bounding oracles ignore it (a cut-short search would be no bound).
    deadline: float | None = None

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the ``X`` the oracle was built for."""
        return self.problem.fingerprint

    @property
    def n_patterns(self) -> int | None:
        """Number of top-level sign patterns searched (None: no patterns are searched)."""
        return None if self.patterns is None else self.patterns.n_patterns

    def __call__(self, Z) -> OracleResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def candidates(self, Z, threshold: float, kmax: int = 50) -> tuple[np.ndarray, np.ndarray]:
        r"""Unit directions ``U`` (shape ``(k, d)``, best first, at most ``kmax``) with
        :math:`\|Z^\top (Xu)_+\| >` ``threshold``, so that column generation and cutting
        planes can add several atoms per oracle call. Default: the one direction of
        ``self(Z)``, when it clears the threshold."""
        res = self(Z)
        if res.attained > threshold and kmax >= 1:
            return np.array([res.attained]), np.asarray(res.u, dtype=float)[None, :]
        return np.zeros(0), np.zeros((0, self.problem.d))

    def hint(self, U) -> None:
        """Directions (columns of ``U``, shape ``(d, m)``: a solver's current neurons) a
        searching oracle may start from next; ignored by default (exhaustive oracles need
        no hints)."""

    def intensify(self) -> bool:
        """Search harder from now on; False when the oracle cannot (the default: an exact
        or bounding oracle already searches everything)."""
        return False

    def arrangement_2d(self):
        """The angular sweep of rank-2 ``X`` (:meth:`ExactOracle.arrangement_2d
        <convexrelu.oracles.ExactOracle.arrangement_2d>`), which lets the solvers slide
        atoms inside their cells; None when the oracle has none (the default)."""
        return None


class _Wrapped(OracleBase):
    """An oracle object from outside the package (it has ``kind``, ``__call__`` and
    perhaps ``fingerprint``) given the full :class:`OracleBase` contract."""

    def __init__(self, inner, problem):
        self.inner, self.problem, self.kind = inner, problem, inner.kind
        self.patterns = getattr(inner, "patterns", None)

    def __call__(self, Z) -> OracleResult:
        return self.inner(Z)

    def candidates(self, Z, threshold: float, kmax: int = 50):
        own = getattr(self.inner, "candidates", None)  # the one place an oracle is probed
        return own(Z, threshold, kmax) if own is not None else super().candidates(Z, threshold, kmax)

    def arrangement_2d(self):
        own = getattr(self.inner, "arrangement_2d", None)
        return own() if own is not None else None

    def hint(self, U) -> None:
        own = getattr(self.inner, "hint", None)
        if own is not None:
            own(U)

    def intensify(self) -> bool:
        own = getattr(self.inner, "intensify", None)
        return bool(own()) if own is not None else False

    def __getattr__(self, name):
        return getattr(self.inner, name)
