r"""The cone-constrained PCA oracle :math:`\Omega(Z) = \max_{\|u\| \le 1} \|Z^\top (X u)_+\|_2`.

One oracle, three uses: the Frank–Wolfe linear minimisation oracle (paper eq. 72), the
cutting-plane separation oracle (eq. 75) and the dual-feasibility test of the
certificate (eq. 11). Per sign pattern :math:`D_i` it is the cone-constrained PCA problem

.. math::

    \max_{\|u\| \le 1,\ (2D_i - I) X u \ge 0} u^\top X^\top D_i Z Z^\top D_i X u .

Every oracle honours the :class:`Oracle` protocol and tags its :class:`OracleResult`
with its ``kind``:

``ExactOracle`` (``kind="exact"``, :mod:`.exact`)
    Exhaustive: the maximiser lies in the relative interior of some face of some cell;
    there it is the top eigenvector of the quadratic form restricted to the face's span.
    The faces of all cells are the cells of the arrangement restricted to every flat
    (intersection of hyperplanes), so the oracle enumerates the cells of every flat of
    dimension ``r, r-1, ..., 2`` and the rays (dimension 1), takes the top eigenvector
    of each cell's restricted form, keeps it if it lies in the cell, and evaluates every
    ray. The largest value found is :math:`\Omega(Z)` (each candidate's value is
    recomputed from :math:`(Xu)_+`, so the value returned is attained by the ``u``
    returned).
``StreamingExactOracle`` (``kind="exact"``, :mod:`.stream`)
    The same value for ranks 3 to 5 without storing the arrangement: each call visits
    the cells from their extreme rays, block by block (each bounded cell once, at its
    lowest vertex in a chart), prunes a cell by its top singular value or a two-facet
    wedge bound against the best value attained, and solves the few left face by face.
``SDPOracle`` (``kind="upper_bound"``, :mod:`.sdp`)
    A Shor/RLT semidefinite relaxation of :math:`\max \|Z^\top a\|^2` over the lifting of
    ``(u, a = (Xu)_+)``; valid for any ``d``, practical for moderate ``n``.
``HeuristicOracle`` (``kind="heuristic"``, :mod:`.heuristic`)
    Sampled patterns and multi-start ascent on the sphere: a *lower* estimate, never a
    bound.
``SpectralOracle`` (``kind="upper_bound"``, :mod:`.spectral`)
    :math:`\sigma_{\max}(Z)\,\sigma_{\max}(X)`: cheap, valid for every ``X``, tight for
    whitened spike-free data at the closed-form solution.
``BranchAndBoundOracle`` (``kind="upper_bound"``, ``"exact"`` on a result whose search closed, :mod:`.bnb`)
    Branch and bound over boxes of directions on the faces of the cube, with bounds from
    interval arithmetic on the rows' signs, a relaxation of the rows that change sign and
    a second-order bound of the quadratic over each box's cap: a proven upper bound at any
    rank within its budget, exact to ``rtol`` when the search closes.
``SpikeFreeOracle`` (``kind="exact"`` for ``n <= 12``, else ``"heuristic"``, :mod:`.spike_free`)
    The single pattern ``D = I`` of spike-free data with orthogonal rows (eq. 15).

:func:`make_oracle` (:mod:`.factory`) picks one for ``X``; :func:`omega` is the one-shot
call. Layout, bottom up (no module imports one above it): :mod:`.base` (the result and
the protocol), :mod:`._common` (the numerics shared by the exact, heuristic and SDP
oracles), one module per oracle, :mod:`.factory`.
"""

from ..patterns import DEFAULT_MAX_PATTERNS, DEFAULT_TIE_TOL  # noqa: F401  (api, certificates, estimators)
# private helpers too: tests, benchmarks and older code import them from here
from ._common import (  # noqa: F401
    _ascent,
    _best_in_regions,
    _Evaluator,
    _inside,
    _region_candidates,
    _relu_values,
    _whitened_values,
    row_groups,
)
from .base import ORACLE_KINDS, CandidateOracle, Oracle, OracleBase, OracleResult
from .bnb import BranchAndBoundOracle
from .exact import _FLOAT_CACHE_BYTES, ExactOracle, _Sweep2D  # noqa: F401
from .factory import make_oracle, omega
from .heuristic import HeuristicOracle
from .sdp import SDPOracle
from .spectral import SpectralOracle
from .spike_free import SpikeFreeOracle
from .stream import StreamingExactOracle

__all__ = [
    "OracleResult",
    "Oracle", "OracleBase",
    "CandidateOracle",
    "ExactOracle",
    "StreamingExactOracle",
    "SDPOracle",
    "HeuristicOracle",
    "SpectralOracle",
    "SpikeFreeOracle",
    "BranchAndBoundOracle",
    "make_oracle",
    "omega",
    "ORACLE_KINDS",
]
