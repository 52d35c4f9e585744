r"""One training problem, prepared once: :class:`Problem`.

``fit``, ``certify``, ``lambda_max`` and ``regularization_path`` build one
:class:`Problem` from the user's ``X``, ``Y`` and loss, and everything downstream takes
it: the oracles (:func:`~convexrelu.oracles.make_oracle`), the solvers
(``Solver.solve``) and the certificates. What it holds is computed at most once, when
first needed:

=================  ==============================================================
``X``, ``Y``       validated (densified, finite, real); ``Y`` in the loss's
                   ``(n, c)`` form (labels become one-hot or :math:`\pm 1` columns)
``fingerprint``    the hash that ties oracles and patterns to this ``X``
``reduction``      the rank reduction and the whitened row directions, from **one**
                   SVD of ``X`` (:func:`~convexrelu.patterns.reduce_rank`)
``Xr``             ``X V_r``, the rows in rank-reduced coordinates
``residual``       :math:`\|X - X V_r V_r^\top\|_2` (0 unless the rank was truncated)
``patterns()``     the exhaustive sign patterns (enumerated on first call, then kept)
=================  ==============================================================

The arrays are not copied from a validated input and must not be modified while the
problem is in use.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_X, check_XY
from .losses import Loss, get_loss
from .patterns import (
    DEFAULT_MAX_PATTERNS,
    DEFAULT_TIE_TOL,
    Reduction,
    SignPatterns,
    fingerprint,
    rank_residual,
    reduce_rank,
    zero_rows,
)

__all__ = ["Problem", "as_problem", "prepare_data"]


def prepare_data(loss: Loss, X, Y) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``X`` and the targets in the loss's ``(n, c)`` form (labels -> one-hot or
    +-1 for the classification losses)."""
    if getattr(loss, "name", "squared") == "squared" or not hasattr(loss, "prepare_targets"):
        return check_XY(X, Y)
    X = check_X(X)  # densifies scipy.sparse, refuses complex/huge values, before anything else
    Yp = loss.prepare_targets(Y)  # refuses NaN/inf, complex and continuous labels, naming Y
    if Yp.shape[0] != X.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows; X has {X.shape[0]} rows, "
                         f"Y has {Yp.shape[0]}")
    if not np.all(np.isfinite(Yp)):  # a custom loss's prepare_targets may not check
        raise ValueError("Y must contain only finite values (after the loss's prepare_targets)")
    return X, Yp


class Problem:
    """The data of one training problem, validated and prepared once.

    Parameters
    ----------
    X : array of shape (n, d)
        Same rules as :func:`convexrelu.fit`.
    Y : array of shape (n, c) or (n,), optional
        Targets (class labels for the classification losses). A problem without
        targets serves the oracles only (``make_oracle(X)``, ``omega``).
    loss : str or Loss, default "squared"

    Attributes
    ----------
    X : ndarray (n, d)
    Y : ndarray (n, c) or None
        The loss's prepared targets.
    loss : Loss
    n, d, c : int
    """

    def __init__(self, X, Y=None, loss="squared"):
        self.loss = get_loss(loss)
        if Y is None:
            X, self.Y = check_X(X), None
        else:
            X, self.Y = prepare_data(self.loss, X, Y)
        # one memory layout, so that results do not depend on how the caller stored X
        self.X = np.ascontiguousarray(X)
        self._fingerprint: str | None = None
        self._reduction: Reduction | None = None
        self._Xr: np.ndarray | None = None
        self._residual: float | None = None
        self._zero: np.ndarray | None = None
        self._patterns: dict = {}

    # ------------------------------------------------------------------ shape
    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def c(self) -> int:
        if self.Y is None:
            raise ValueError("this Problem has no targets Y")
        return self.Y.shape[1]

    def __repr__(self) -> str:
        c = "" if self.Y is None else f", c={self.c}"
        return f"Problem(n={self.n}, d={self.d}{c}, loss={self.loss.name!r})"

    # ------------------------------------------------------------------ derived, once
    @property
    def fingerprint(self) -> str:
        """:func:`~convexrelu.patterns.fingerprint` of ``X`` (hashed once)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.X)
        return self._fingerprint

    @property
    def reduction(self) -> Reduction:
        """The rank reduction of ``X`` (its one SVD; :func:`~convexrelu.patterns.reduce_rank`)."""
        if self._reduction is None:
            self._reduction = reduce_rank(self.X)
        return self._reduction

    @property
    def basis(self) -> np.ndarray:
        """Orthonormal basis ``V_r`` of the row space, shape ``(d, r)``."""
        return self.reduction.basis

    @property
    def rank(self) -> int:
        return self.reduction.rank

    @property
    def Xr(self) -> np.ndarray:
        """``X V_r``: the rows in rank-reduced coordinates, shape ``(n, r)``."""
        if self._Xr is None:
            b = self.basis
            self._Xr = self.X if b.shape[1] == self.d and self.reduction.whitening is not None \
                else self.X @ b
        return self._Xr

    @property
    def residual(self) -> float:
        r""":math:`\|X - X V_r V_r^\top\|_2` (:func:`~convexrelu.patterns.rank_residual`)."""
        if self._residual is None:
            self._residual = rank_residual(self.X, self.basis)
        return self._residual

    @property
    def zero_rows(self) -> np.ndarray:
        """Rows that define no hyperplane (:func:`~convexrelu.patterns.zero_rows`)."""
        if self._zero is None:
            self._zero = zero_rows(self.X, self.basis)
        return self._zero

    def patterns(self, *, max_patterns: float = DEFAULT_MAX_PATTERNS,
                 tol: float = DEFAULT_TIE_TOL, verbose: int = 0) -> SignPatterns:
        """Every sign pattern of ``X`` (:meth:`SignPatterns.enumerate
        <convexrelu.patterns.SignPatterns.enumerate>`), enumerated on the first call for a
        given ``tol`` and kept (a larger ``max_patterns`` only matters before that)."""
        key = float(tol)
        if key not in self._patterns:
            self._patterns[key] = SignPatterns.enumerate(
                self.X, max_patterns=max_patterns, tol=tol, verbose=verbose,
                reduction=self.reduction, x_fingerprint=self.fingerprint)
        return self._patterns[key]

    def sample_patterns(self, n_samples: int, random_state=None) -> SignPatterns:
        """Sampled sign patterns (:meth:`SignPatterns.sample
        <convexrelu.patterns.SignPatterns.sample>`), using this problem's reduction."""
        return SignPatterns.sample(self.X, n_samples, random_state, reduction=self.reduction,
                                   x_fingerprint=self.fingerprint)

    def with_basis(self, basis: np.ndarray, rank: int) -> "Problem":
        """This problem (itself when ``basis`` is its own) with another rank reduction, e.g.
        that of patterns enumerated with another ``rank_tol``."""
        if basis.shape == self.basis.shape and np.array_equal(basis, self.basis):
            return self
        new = object.__new__(Problem)
        new.__dict__.update(self.__dict__)
        new._reduction = Reduction(basis, int(rank), None)
        new._Xr = new._residual = new._zero = None
        new._patterns = {}
        return new

    def with_targets(self, Y, loss=None) -> "Problem":
        """The same ``X`` (and everything derived from it, shared) with other targets."""
        new = object.__new__(Problem)
        new.__dict__.update(self.__dict__)
        new.loss = self.loss if loss is None else get_loss(loss)
        _, new.Y = prepare_data(new.loss, self.X, Y)
        new._patterns = self._patterns  # shared on purpose: same X, same cells
        return new


def as_problem(X, Y=None, loss=None) -> Problem:
    """``X`` itself when it is a :class:`Problem` (``Y`` and ``loss`` must then be left out
    or agree with it), else a new :class:`Problem` of ``X``, ``Y`` and ``loss``."""
    if isinstance(X, Problem):
        if Y is not None:
            raise ValueError("pass either a Problem or X and Y, not a Problem and Y")
        if loss is not None and get_loss(loss).name != X.loss.name:
            raise ValueError(f"the Problem was built for loss={X.loss.name!r}, not "
                             f"loss={get_loss(loss).name!r}")
        return X
    return Problem(X, Y, "squared" if loss is None else loss)
