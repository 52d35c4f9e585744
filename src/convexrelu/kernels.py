r"""The dense kernels: the few array operations every algorithm spends its time in.

Everything heavy in the package goes through these functions, written on NumPy arrays
with no other dependency, so that a back end (PyTorch on a GPU) can replace them without
touching the algorithms:

=============================  ===========================================================
:func:`relu_features`          :math:`(X U)_+`: the atoms' columns (forward pass, layer 1)
:func:`forward`                :math:`(X W_1)_+ W_2`: the network's predictions
:func:`objective_and_gradient` eq. 5 (or eq. 76 for another loss) and its gradient in
                               :math:`(W_1, W_2)`: the local moves (L-BFGS)
:func:`relu_values`            :math:`\|Z^\top (X_r u)_+\|^2` for many directions at once:
                               the oracles' batched evaluations
:func:`sphere_gradient`        the tangent gradient of those values: the oracles' ascent
:func:`spectral_norm`          an upper bound on :math:`\|X\|_2`: the spectral bound
=============================  ===========================================================
"""

from __future__ import annotations

import numpy as np

__all__ = ["relu_features", "forward", "objective_and_gradient", "relu_values",
           "sphere_gradient", "spectral_norm"]


def relu_features(X: np.ndarray, U: np.ndarray) -> np.ndarray:
    r""":math:`(X U)_+`, shape ``(n, m)``, for directions ``U`` of shape ``(d, m)``."""
    return np.maximum(X @ U, 0.0)


def forward(X: np.ndarray, W1: np.ndarray, W2: np.ndarray) -> np.ndarray:
    r""":math:`(X W_1)_+ W_2`, shape ``(n, c)``."""
    return relu_features(X, W1) @ W2


def objective_and_gradient(X, Y, beta, W1, W2, loss=None):
    r"""Eq. 5, :math:`\tfrac12\|(XW_1)_+W_2 - Y\|^2 + \tfrac\beta2(\|W_1\|^2 + \|W_2\|^2)` (or
    eq. 76 with ``loss``), and its gradient ``(gW1, gW2)`` (the ReLU's derivative taken as
    0 at 0)."""
    Zp = X @ W1
    A = np.maximum(Zp, 0.0)
    Fp = A @ W2
    if loss is None:
        R = Fp - Y
        val = 0.5 * float(np.vdot(R, R))
    else:
        R = loss.gradient(Fp, Y)
        val = float(loss.value(Fp, Y))
    val += 0.5 * beta * (float(np.vdot(W1, W1)) + float(np.vdot(W2, W2)))
    gW2 = A.T @ R + beta * W2
    gW1 = X.T @ ((R @ W2.T) * (Zp > 0)) + beta * W1
    return val, gW1, gW2


def relu_values(Xr: np.ndarray, Z: np.ndarray, U: np.ndarray) -> np.ndarray:
    r""":math:`\|Z^\top (X_r u)_+\|^2` for each row ``u`` of ``U`` (shape ``(q, r)``)."""
    A = np.maximum(Xr @ U.T, 0.0)  # (n, q)
    G = Z.T @ A  # (c, q)
    return np.einsum("cq,cq->q", G, G)


def sphere_gradient(Xr: np.ndarray, Z: np.ndarray, U: np.ndarray) -> np.ndarray:
    r"""The gradient of :math:`\|Z^\top (X_r u)_+\|^2` at each row ``u`` of ``U`` (unit
    rows), projected on the sphere's tangent space; shape ``(q, r)``."""
    A = Xr @ U.T  # (n, q)
    act = A > 0
    grad = (Xr.T @ (act * (Z @ (Z.T @ (act * A))))).T  # (q, r)
    grad -= np.sum(grad * U, axis=1, keepdims=True) * U
    return grad


def spectral_norm(X: np.ndarray) -> float:
    """An upper bound on the largest singular value of ``X``: dense SVD when small, else
    ARPACK (``svds``, tol 0 = machine precision), with an outward margin for rounding."""
    if min(X.shape) <= 200:
        s = float(np.linalg.norm(X, 2))
        return s * (1 + 4 * max(X.shape) * np.finfo(float).eps)
    from scipy.sparse.linalg import svds

    s = svds(X, k=1, return_singular_vectors=False, tol=0, random_state=0)
    return float(s[0]) * (1 + 1e-12)  # ARPACK converges from below: a hair of margin
