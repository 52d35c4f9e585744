"""Checks shared by the back-end tests (PyTorch, Dask): a back end's kernels against NumPy's."""

import numpy as np


def close(a, b, rtol=1e-10):
    """``a`` and ``b`` agree entrywise to ``rtol`` of ``a``'s largest entry."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    if a.size:
        scale = max(float(np.max(np.abs(a))), 1e-300)
        assert float(np.max(np.abs(a - b))) <= rtol * scale


def check_master_kernels(NP, K, X, Xk, U, Y):
    """The master's system (``H^T H``, ``H^T Y``, the residual form) and the new atoms'
    correlations of back end ``K`` on its copy ``Xk`` of ``X`` equal NumPy's. The residual
    form is checked as the same problem, ``R^T R = H^T H`` and ``R^T c = H^T Y`` (``R`` is
    unique only up to its rows' signs, and ``Q^T Y`` along ``H``'s near-null directions is
    not determined at all)."""
    A1, A2 = NP.atom_system(X, U, Y), K.atom_system(Xk, U, Y)
    close(A1.G, A2.G)
    close(A1.B, A2.B)
    close(A1.colsq, A2.colsq)
    R2, c2 = A2.residual_form()
    close(R2.T @ R2, A1.G, 1e-9)
    close(R2.T @ c2, A1.B, 1e-9)
    r1, n1 = NP.relu_correlations(X, U, Y)
    r2, n2 = K.relu_correlations(Xk, U, Y)
    close(r1, r2)
    close(n1, n2)
