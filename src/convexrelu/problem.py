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

from ._validation import check_X, check_XY, check_Y
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

__all__ = ["Problem", "as_problem", "make_problem", "prepare_data", "prepare_targets", "gram_error",
           "thin_whitening"]


def gram_error(A: np.ndarray, scale: float | None = None) -> tuple[float, float]:
    r"""How far :math:`A A^\top` is from :math:`s I`: returns ``(s, err)`` with
    :math:`err = \max_{ij} |(A A^\top)_{ij} / s - \delta_{ij}|` and ``s`` the mean squared
    row norm (or ``scale``). The one test of "whitened rows" (:math:`X X^\top = s I`) used
    by the copositive solvers, the closed form and the linear model; ``err`` is ``inf``
    when ``s`` is not positive."""
    A = np.asarray(A, dtype=float)
    G = A @ A.T
    s = float(np.trace(G)) / max(A.shape[0], 1) if scale is None else float(scale)
    if not s > 0:
        return s, float("inf")
    return s, float(np.max(np.abs(G / s - np.eye(A.shape[0])))) if A.shape[0] else 0.0


def thin_whitening(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X = W diag(s) V^T`` (thin SVD, numerical rank ``r``); returns ``(W, s, A)`` with
    ``A = V diag(1/s)``, so that ``u = A y`` maps whitened coordinates ``y`` (in which
    ``X u = W y``) back. The copositive relaxations work in these coordinates."""
    Wf, s, Vt = np.linalg.svd(X, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        raise ValueError("X is zero: there is no relaxation to solve")
    r = int(np.sum(s > max(X.shape) * np.finfo(float).eps * s[0]))
    return Wf[:, :r], s[:r], Vt[:r].T / s[:r]


def prepare_targets(loss: Loss, Y, n: int) -> np.ndarray:
    """The targets in the loss's ``(n, c)`` form (labels -> one-hot or +-1 for the
    classification losses), checked to have ``n`` rows of finite values."""
    if getattr(loss, "name", "squared") == "squared" or not hasattr(loss, "prepare_targets"):
        return check_Y(Y, n)
    Yp = loss.prepare_targets(Y)  # refuses NaN/inf, complex and continuous labels, naming Y
    if Yp.shape[0] != n:
        raise ValueError(f"X and Y must have the same number of rows; X has {n} rows, "
                         f"Y has {Yp.shape[0]}")
    if not np.all(np.isfinite(Yp)):  # a custom loss's prepare_targets may not check
        raise ValueError("Y must contain only finite values (after the loss's prepare_targets)")
    return Yp


def prepare_data(loss: Loss, X, Y) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``X`` and the targets in the loss's ``(n, c)`` form."""
    if getattr(loss, "name", "squared") == "squared" or not hasattr(loss, "prepare_targets"):
        return check_XY(X, Y)
    X = check_X(X)  # densifies scipy.sparse, refuses complex/huge values, before anything else
    return X, prepare_targets(loss, Y, X.shape[0])


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
    samples : int, optional
        The number of training samples when ``X`` does not have one row per sample: the
        rows of a feature map (the convolutional fit's patch matrix, ``samples * K``
        rows). ``Y`` must then have ``samples`` rows. Default: ``n``.

    Attributes
    ----------
    X : ndarray (n, d)
    Y : ndarray (n, c) or None
        The loss's prepared targets.
    loss : Loss
    n, d, c : int
    """

    def __init__(self, X, Y=None, loss="squared", *, samples: int | None = None):
        self.loss = get_loss(loss)
        if Y is None:
            X, self.Y = check_X(X), None
        elif samples is None:
            X, self.Y = prepare_data(self.loss, X, Y)
        else:
            X = check_X(X)
            self.Y = prepare_targets(self.loss, Y, int(samples))
        # one memory layout, so that results do not depend on how the caller stored X
        self.X = np.ascontiguousarray(X)
        self._data = _Derived()  # what is derived from X alone (shared by with_targets)

    #: whether all rows are in this process's memory (False for a Dask problem)
    in_memory = True

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
        dd = self._data
        if dd.fingerprint is None:
            dd.fingerprint = fingerprint(self.X)
        return dd.fingerprint

    @property
    def reduction(self) -> Reduction:
        """The rank reduction of ``X`` (its one SVD; :func:`~convexrelu.patterns.reduce_rank`)."""
        dd = self._data
        if dd.reduction is None:
            dd.reduction = reduce_rank(self.X)
        return dd.reduction

    @property
    def basis(self) -> np.ndarray:
        """Orthonormal basis ``V_r`` of the row space, shape ``(d, r)``."""
        return self.reduction.basis

    @property
    def rank(self) -> int:
        return self.reduction.rank

    @property
    def Xr(self) -> np.ndarray:
        """``X V_r``: the rows in rank-reduced coordinates, shape ``(n, r)`` (``X`` itself
        when the basis is the identity)."""
        dd = self._data
        if dd.Xr is None:
            red = self.reduction
            full = red.whitening is not None or (
                red.rank == self.d and np.array_equal(red.basis, np.eye(self.d)))
            dd.Xr = self.X if full else self.X @ red.basis  # X @ I would cost n d^2
        return dd.Xr

    @property
    def residual(self) -> float:
        r""":math:`\|X - X V_r V_r^\top\|_2` (:func:`~convexrelu.patterns.rank_residual`)."""
        dd = self._data
        if dd.residual is None:
            dd.residual = rank_residual(self.X, self.basis)
        return dd.residual

    @property
    def zero_rows(self) -> np.ndarray:
        """Rows that define no hyperplane (:func:`~convexrelu.patterns.zero_rows`)."""
        dd = self._data
        if dd.zero is None:
            dd.zero = zero_rows(self.X, self.basis)
        return dd.zero

    def patterns(self, *, max_patterns: float = DEFAULT_MAX_PATTERNS,
                 tol: float = DEFAULT_TIE_TOL, verbose: int = 0) -> SignPatterns:
        """Every sign pattern of ``X`` (:meth:`SignPatterns.enumerate
        <convexrelu.patterns.SignPatterns.enumerate>`), enumerated on the first call for a
        given ``tol`` and kept (``max_patterns`` only matters for that first call)."""
        key = float(tol)
        dd = self._data
        if key not in dd.patterns:
            dd.patterns[key] = SignPatterns.enumerate(
                self.X, max_patterns=max_patterns, tol=tol, verbose=verbose,
                reduction=self.reduction, x_fingerprint=self.fingerprint)
        return dd.patterns[key]

    @property
    def whitening(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`thin_whitening` of ``X`` (the copositive solvers' coordinates), once."""
        dd = self._data
        if dd.whitening is None:
            dd.whitening = thin_whitening(self.X)
        return dd.whitening

    @property
    def gram_error(self) -> tuple[float, float]:
        """:func:`gram_error` of ``X`` (is ``X X^T = s I``?), once."""
        dd = self._data
        if dd.gram is None:
            dd.gram = gram_error(self.X)
        return dd.gram

    def sample_patterns(self, n_samples: int, random_state=None) -> SignPatterns:
        """Sampled sign patterns (:meth:`SignPatterns.sample
        <convexrelu.patterns.SignPatterns.sample>`), using this problem's reduction."""
        return SignPatterns.sample(self.X, n_samples, random_state, reduction=self.reduction,
                                   x_fingerprint=self.fingerprint)

    def _copy(self) -> "Problem":
        new = object.__new__(Problem)
        new.__dict__.update(self.__dict__)
        return new

    def with_basis(self, basis: np.ndarray, rank: int) -> "Problem":
        """This problem (itself when ``basis`` is its own) with another rank reduction, e.g.
        that of patterns enumerated with another ``rank_tol``."""
        if basis.shape == self.basis.shape and np.array_equal(basis, self.basis):
            return self
        new = self._copy()
        new._data = _Derived(fingerprint=self._data.fingerprint,  # same X: hashed when asked
                            
                             reduction=Reduction(basis, int(rank), None))
        return new

    def with_targets(self, Y, loss=None) -> "Problem":
        """The same ``X``, with everything derived from it shared, and other targets."""
        new = self._copy()
        new.loss = self.loss if loss is None else get_loss(loss)
        new.Y = prepare_targets(new.loss, Y, self.n if self.Y is None else self.Y.shape[0])
        return new


class _Derived:
    """What a :class:`Problem` derives from ``X`` alone, filled in on first use."""

    def __init__(self, fingerprint=None, reduction=None):
        self.fingerprint, self.reduction = fingerprint, reduction
        self.Xr = self.residual = self.zero = self.whitening = self.gram = None
        self.patterns: dict = {}


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
    return make_problem(X, Y, "squared" if loss is None else loss)


def make_problem(X, Y=None, loss="squared") -> Problem:
    """A :class:`Problem`, or a :class:`~convexrelu._dask.DaskProblem` when ``X`` is a Dask
    array (needs the ``dask`` extra; its error names it)."""
    if type(X).__module__.split(".")[0] == "dask":
        from ._dask import DaskProblem

        return DaskProblem(X, Y, loss)
    if type(Y).__module__.split(".")[0] == "dask":
        raise ValueError("Y is a Dask array but X is not: pass X as a Dask array too (a "
                         "data-parallel fit), or Y.compute()")
    return Problem(X, Y, loss)
