r"""The spectral oracle: :math:`\Omega(Z) \le \sigma_{\max}(Z)\,\sigma_{\max}(X)`, a cheap
upper bound valid for every ``X`` and tight for whitened spike-free data at Theorem 2's
solution (``kind="upper_bound"``)."""

from __future__ import annotations

import time

import numpy as np

from ..kernels import spectral_norm
from ..problem import as_problem
from .base import OracleBase, OracleResult

__all__ = ["SpectralOracle"]


_spectral_norm = spectral_norm  # the kernel (convexrelu.kernels), under its old name


class SpectralOracle(OracleBase):
    r"""Upper bound :math:`\Omega(Z) \le \sigma_{\max}(Z)\,\sigma_{\max}(X)` (``kind="upper_bound"``).

    Valid for every ``X`` (:math:`\|Z^\top (Xu)_+\| \le \|Z\|_2 \|Xu\| \le \|Z\|_2 \|X\|_2`)
    and cheap (two top singular values); loose in general but tight for whitened
    spike-free data at Theorem 2's solution, where it certifies the closed form with a
    zero gap. The direction returned is the top right singular vector of
    :math:`Z^\top X` (sign chosen for the larger attained value).
    """

    kind = "upper_bound"

    def __init__(self, X):
        self.problem = as_problem(X)
        self.X = self.problem.X
        self.x_norm = _spectral_norm(self.X)
        self.patterns = None

    def __call__(self, Z) -> OracleResult:
        t0 = time.perf_counter()
        Z = np.asarray(Z, dtype=float)
        if Z.ndim == 1:
            Z = Z[:, None]
        if Z.shape[0] != self.X.shape[0] or not np.all(np.isfinite(Z)):
            raise ValueError(f"Z must be finite with {self.X.shape[0]} rows; got shape {Z.shape}")
        M = Z.T @ self.X  # (c, d)
        _, s, Vt = np.linalg.svd(M, full_matrices=False)
        value = float(np.linalg.norm(Z, 2)) * self.x_norm
        u = Vt[0] if s.size else np.eye(self.X.shape[1])[0]
        vals = [float(np.linalg.norm(Z.T @ np.maximum(self.X @ w, 0.0))) for w in (u, -u)]
        if vals[1] > vals[0]:
            u = -u
        return OracleResult(value, u, max(vals), "upper_bound", "exact", None,
                            time.perf_counter() - t0)
