r"""Whitening for spike-free data: :class:`ZCAWhitener`, and the spike-free test.

Spike-free data (paper eq. 7): :math:`\{(Xu)_+ : \|u\| \le 1\} = \{Xu : Xu \ge 0,
\|u\| \le 1\}`; then one sign pattern, ``D = I``, represents every neuron and training is
the spike-free program eq. 15 (and, under Theorem 2's condition, a soft-thresholded SVD).

A caveat the paper passes over: **centred** data are never spike-free when ``n <= d``.
After de-meaning, the columns of ``X`` sum to zero, so every ``Xu`` sums to zero, while a
nonzero :math:`(Xu)_+` has a positive sum: it is not in the range of ``X``. ZCA-whitened
centred data therefore have :math:`XX^\top = n(I - \mathbf{1}\mathbf{1}^\top/n)`, not a
multiple of ``I``, and :func:`is_spike_free` says so. Use ``ZCAWhitener(center=False)``
(or whiten the rows' span directly) when the spike-free results are needed.

The spike-free test and the two oracles for such data live in :mod:`convexrelu.oracles`
(:mod:`~convexrelu.oracles.spike_free`, :mod:`~convexrelu.oracles.spectral`); they are
re-exported here, where they were first defined.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .oracles.spectral import SpectralOracle
from .oracles.spike_free import SpikeFreeOracle, is_spike_free
from .oracles.spectral import _spectral_norm  # noqa: F401  (private; kept importable from here)
from .oracles.spike_free import _orthogonal_rows  # noqa: F401  (private; kept importable from here)

__all__ = ["ZCAWhitener", "is_spike_free", "SpectralOracle", "SpikeFreeOracle"]


class ZCAWhitener(TransformerMixin, BaseEstimator):
    r"""ZCA (zero-phase) whitening as a scikit-learn transformer.

    ``fit`` estimates the mean :math:`\mu` (if ``center``) and the covariance
    :math:`C = (X - \mu)^\top (X - \mu) / n = V \Lambda V^\top`; ``transform`` maps
    :math:`x \mapsto W (x - \mu)` with :math:`W = V (\Lambda + \epsilon I)^{-1/2} V^\top`,
    the same ``mu`` and ``W`` for test data.

    Parameters
    ----------
    eps : float, default 0.0
        Added to the eigenvalues before the inverse square root, *relative* to the
        largest eigenvalue (``eps * lambda_max``), to damp directions the training data
        barely span. The default 0 whitens exactly (needed for the spike-free results:
        even 1e-8 distorts the small directions of real data by percents); eigenvalues
        below ``d * machine-eps * lambda_max`` count as zero and their directions are
        mapped to zero (with ``n <= d`` at least ``d - n`` of them are).
    center : bool, default True
        Subtract the training mean. Centred data with ``n <= d`` are not spike-free
        (see the module notes); ``center=False`` keeps them so when ``X`` has full row rank.

    Attributes
    ----------
    mean_ : ndarray (d,)
    whitening_ : ndarray (d, d)
    """

    def __init__(self, eps=0.0, center=True):
        self.eps = eps
        self.center = center

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64)
        if not (np.isfinite(self.eps) and self.eps >= 0):
            raise ValueError(f"eps must be a finite number >= 0; got {self.eps!r}")
        n = X.shape[0]
        self.mean_ = X.mean(axis=0) if self.center else np.zeros(X.shape[1])
        Xc = X - self.mean_
        C = Xc.T @ Xc / n
        lam, V = np.linalg.eigh(C)
        lam = np.maximum(lam, 0.0)
        top = max(float(lam[-1]), np.finfo(float).tiny)
        floor = self.eps * top
        den = np.sqrt(lam + floor)
        live = lam > X.shape[1] * np.finfo(float).eps * top
        scale = np.divide(1.0, den, out=np.zeros_like(den), where=live & (den > 0))
        self.whitening_ = (V * scale) @ V.T
        return self

    def transform(self, X):
        check_is_fitted(self, "whitening_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return (X - self.mean_) @ self.whitening_

