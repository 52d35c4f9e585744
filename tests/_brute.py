"""Independent brute-force references used by the tests (no code shared with the library)."""

import itertools

import numpy as np
from scipy.optimize import linprog, minimize, minimize_scalar, nnls


def lp_patterns(X):
    """Every pattern 1[Xu >= 0] of a full-dimensional cell, by LP over all 2^n sign vectors."""
    n, d = X.shape
    norms = np.linalg.norm(X, axis=1)
    zero = norms == 0
    nz = np.flatnonzero(~zero)
    X = X.copy()
    X[nz] /= norms[nz, None]  # patterns are invariant under positive row scaling
    out = set()
    for bits in itertools.product([False, True], repeat=nz.size):
        s = np.where(bits, 1.0, -1.0)
        res = linprog(np.zeros(d), A_ub=-(s[:, None] * X[nz]), b_ub=-np.ones(nz.size),
                      bounds=[(None, None)] * d, method="highs")
        if res.status == 0:
            p = np.ones(n, dtype=bool)
            p[nz] = s > 0
            out.add(p.tobytes())
    return out


def f_omega(X, Z, u):
    u = np.asarray(u, dtype=float)
    u = u / np.linalg.norm(u)
    return float(np.linalg.norm(Z.T @ np.maximum(X @ u, 0.0)))


def brute_omega_2d(X, Z, n_grid=100000):
    """Fine angle grid, then bounded scalar refinement around the best few grid points."""
    th = np.linspace(0.0, 2 * np.pi, n_grid, endpoint=False)
    U = np.column_stack([np.cos(th), np.sin(th)])
    vals = np.linalg.norm(Z.T @ np.maximum(X @ U.T, 0.0), axis=0)
    best = vals.max()
    h = th[1] - th[0]
    for j in np.argsort(vals)[-10:]:
        res = minimize_scalar(lambda t: -f_omega(X, Z, [np.cos(t), np.sin(t)]),
                              bounds=(th[j] - h, th[j] + h), method="bounded",
                              options=dict(xatol=1e-14))
        best = max(best, -res.fun)
    return best


def brute_omega_sphere(X, Z, rng, n_dirs=200000, n_refine=20):
    """Dense random directions on the sphere, then Nelder-Mead refinement of the best ones."""
    d = X.shape[1]
    U = rng.standard_normal((n_dirs, d))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    vals = np.linalg.norm(Z.T @ np.maximum(X @ U.T, 0.0), axis=0)
    best = vals.max()
    for j in np.argsort(vals)[-n_refine:]:
        res = minimize(lambda u: -f_omega(X, Z, u), U[j], method="Nelder-Mead",
                       options=dict(xatol=1e-13, fatol=1e-15, maxiter=40000, maxfev=40000))
        best = max(best, -res.fun)
    return best


def projection_omega_c1(X, z, patterns):
    """c = 1: per pattern, max over the cone and unit ball of |g^T u| = |proj_cone(+-g)|.

    Moreau: proj_C(g) = g + A^T lam with lam = argmin_{lam>=0} |g + A^T lam|, where
    C = {u : A u >= 0}, A = (2D - I) X.
    """
    best = 0.0
    for p in patterns:
        S = np.where(p, 1.0, -1.0)
        A = S[:, None] * X
        g = X.T @ (p * z)
        for sg in (g, -g):
            lam, _ = nnls(-A.T, sg, maxiter=5000)
            proj = sg + A.T @ lam
            best = max(best, float(np.linalg.norm(proj)))
    return best
