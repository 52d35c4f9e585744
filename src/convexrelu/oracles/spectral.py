r"""The spectral oracle: :math:`\Omega(Z) \le \sigma_{\max}(Z)\,\sigma_{\max}(X)`, a cheap
upper bound valid for every ``X`` and tight for whitened spike-free data at Theorem 2's
solution (``kind="upper_bound"``)."""

from __future__ import annotations

import time

import numpy as np

from ..kernels import relu_correlations, spectral_norm
from ..problem import as_problem
from .base import OracleBase, OracleResult

__all__ = ["SpectralOracle", "spectral_bound", "spectral_result"]


_spectral_norm = spectral_norm  # the kernel (convexrelu.kernels), under its old name


def spectral_bound(G, x_norm: float) -> float:
    r"""A proven upper bound on :math:`\Omega(G)`: :math:`\|G\|_2 \|X\|_2` (``x_norm``
    must itself bound :math:`\|X\|_2`, e.g. :attr:`Problem.spectral_norm
    <convexrelu.Problem.spectral_norm>`), with an outward margin for the rounding of
    :math:`G^\top G` and its eigenvalue (:math:`\|Z^\top (Xu)_+\| \le \|Z\|_2 \|Xu\| \le
    \|Z\|_2 \|X\|_2` for every unit ``u``)."""
    G = np.asarray(G, dtype=float)
    G = G[:, None] if G.ndim == 1 else G
    n = G.shape[0]
    fro2 = float(np.vdot(G, G))
    if fro2 == 0.0:
        return 0.0
    lam = float(np.linalg.eigvalsh(G.T @ G)[-1]) if G.shape[1] > 1 else fro2
    lam += 2.0 * (n + G.shape[1] + 2) * np.finfo(float).eps * fro2  # rounding, outward
    return float(np.sqrt(lam)) * float(x_norm) * (1.0 + 4.0 * np.finfo(float).eps)


def spectral_result(Z, X, x_norm: float, t0: float | None = None) -> OracleResult:
    r"""The spectral oracle's result on ``Z`` (shape ``(n, c)``) for the data ``X``, given
    ``x_norm``, a proven bound on :math:`\|X\|_2`: value :func:`spectral_bound`
    (``kind="upper_bound"``, every pattern covered), direction the top right singular
    vector of :math:`Z^\top X` with the sign that attains more. ``t0``: the
    ``time.perf_counter()`` at which the call started (default: now)."""
    t0 = time.perf_counter() if t0 is None else t0
    M = np.asarray(Z.T @ X, dtype=float)  # (c, d); one pass over X on every back end
    _, s, Vt = np.linalg.svd(M, full_matrices=False)
    u = Vt[0] if s.size else np.eye(X.shape[1])[0]
    W = np.column_stack([u, -u])  # both signs in one pass
    # host arrays stay on the host (a PyTorch back end in the context would cache Z on
    # its device); other arrays (Dask) through their back end
    C = Z.T @ np.maximum(X @ W, 0.0) if isinstance(X, np.ndarray) else \
        relu_correlations(X, W, Z)[0]
    vals = np.linalg.norm(np.asarray(C, dtype=float), axis=0)
    if vals[1] > vals[0]:
        u = -u
    return OracleResult(spectral_bound(Z, x_norm), u, float(vals.max()), "upper_bound", "exact",
                        None, time.perf_counter() - t0)


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
        return spectral_result(Z, self.X, self.x_norm, t0)
