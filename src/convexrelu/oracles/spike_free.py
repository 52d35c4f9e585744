r"""The spike-free oracle: the single sign pattern ``D = I`` of spike-free data with
orthogonal rows (paper eq. 15), and the spike-free test :func:`is_spike_free`.

Spike-free data (paper eq. 7): :math:`\{(Xu)_+ : \|u\| \le 1\} = \{Xu : Xu \ge 0,
\|u\| \le 1\}`; then one sign pattern, ``D = I``, represents every neuron. See
:mod:`convexrelu.preprocessing` for whitening and for why centred data with ``n <= d``
are never spike-free.
"""

from __future__ import annotations

import time

import numpy as np

from .._validation import check_X
from .base import OracleBase, OracleResult, in_memory_problem

__all__ = ["SpikeFreeOracle", "is_spike_free"]


def is_spike_free(X, *, rtol=1e-8, n_samples=2000, random_state=0, return_reason=False):
    r"""Whether ``X`` is spike-free; True only when it is proven.

    * Proven (exact): rows orthogonal, :math:`XX^\top` diagonal and positive (this covers
      whitened data with ``n <= d``, :math:`XX^\top = sI`): for any ``u``,
      :math:`u' = \sum_i (x_i^\top u)_+ x_i / \|x_i\|^2` has :math:`Xu' = (Xu)_+` and
      :math:`\|u'\| \le \|u\|`.
    * Disproven (exact): a direction ``u`` whose :math:`(Xu)_+` is not :math:`Xu'` for any
      :math:`\|u'\| \le \|u\|` (checked by least squares on ``n_samples`` random
      directions and the rows themselves). Centred data with ``n <= d`` fail this way.
    * Otherwise the answer is False with the reason "not proven": the sampling test can
      only refute, so for general ``X`` it is a sufficient test of *not* being spike-free.

    With ``return_reason=True`` returns ``(bool, reason)``.
    """
    X = check_X(X)
    n = X.shape[0]
    ok, worst = _orthogonal_rows(X, rtol)
    if ok:
        out = (True, "proven: the rows of X are orthogonal (e.g. whitened with n <= d)")
        return out if return_reason else out[0]
    rng = np.random.default_rng(random_state)
    U = np.concatenate([rng.standard_normal((X.shape[1], n_samples)), X.T], axis=1)
    U /= np.maximum(np.linalg.norm(U, axis=0), np.finfo(float).tiny)
    Zp = np.maximum(X @ U, 0.0)
    sol, *_ = np.linalg.lstsq(X, Zp, rcond=None)  # min-norm preimages
    resid = np.linalg.norm(X @ sol - Zp, axis=0)
    norms = np.linalg.norm(sol, axis=0)
    zn = np.maximum(np.linalg.norm(Zp, axis=0), np.finfo(float).tiny)
    bad = (resid > 1e-7 * zn) | (norms > 1.0 + 1e-7)
    if np.any(bad & (np.linalg.norm(Zp, axis=0) > 0)):
        j = int(np.flatnonzero(bad)[0])
        why = ("(Xu)_+ is not in the range of X" if resid[j] > 1e-7 * zn[j]
               else f"(Xu)_+ needs |u'| = {norms[j]:.3g} > |u| = 1")
        out = (False, f"disproven: a direction u with {why}")
        return out if return_reason else out[0]
    out = (False, f"not proven: no counterexample among {U.shape[1]} directions, but only "
                  "orthogonal rows are a proof")
    return out if return_reason else out[0]


def _orthogonal_rows(X, rtol=1e-8):
    r"""Whether every row is nonzero and every pair is orthogonal *relative to the pair*:
    :math:`|x_i^\top x_j| \le` ``rtol`` :math:`\|x_i\| \|x_j\|` for all ``i != j``.

    The test is per pair on purpose: measured against the largest row norm, eleven
    identical small rows next to one large row would pass as orthogonal. Returns
    ``(ok, worst)`` with ``worst`` the largest :math:`|\cos|` between two rows (0 for
    one row; inf when a row is zero).
    """
    nrm = np.linalg.norm(X, axis=1)
    if np.any(nrm == 0):
        return False, float("inf")
    Xn = X / nrm[:, None]
    C = Xn @ Xn.T
    np.fill_diagonal(C, 0.0)
    worst = float(np.max(np.abs(C))) if C.size > 1 else 0.0
    return worst <= rtol, worst


class SpikeFreeOracle(OracleBase):
    r""":math:`\Omega(Z)` for spike-free ``X`` with orthogonal rows (e.g. whitened, ``n <= d``).

    For such ``X`` every neuron is represented by the single pattern ``D = I`` (paper
    eq. 15), and with :math:`s_i = \|x_i\|^2`, :math:`z = Xu \ge 0` and the min-norm
    :math:`u = \sum_i z_i x_i / s_i`,

    .. math::

        \Omega(Z) = \max_{w \ge 0,\ \|w\| \le 1} \|Z^\top S^{1/2} w\| ,

    a nonnegative PCA of :math:`K = S^{1/2} Z Z^\top S^{1/2}`. Its maximiser is the
    (positive) top eigenvector of :math:`K_{TT}` for some support ``T``; for
    ``n <= max_exact_n`` every support is examined (``kind="exact"``, a proof for the
    certificate), otherwise projected power iterations from ``n_starts`` starts give a
    lower estimate (``kind="heuristic"``), promoted to exact when it meets the spectral
    upper bound :math:`\lambda_{\max}(K)`.

    Raises ``ValueError`` when ``X`` is not proven spike-free with orthogonal rows.
    """

    n_patterns = 1  # the single pattern D = I

    def __init__(self, X, *, max_exact_n=12, n_starts=64, random_state=0):
        self.problem = in_memory_problem(X, "the spike-free oracle")
        self.X = self.problem.X
        ok, worst = _orthogonal_rows(self.X)
        if not ok:
            _, why = is_spike_free(self.X, return_reason=True)
            raise ValueError("SpikeFreeOracle needs X with orthogonal nonzero rows (e.g. whitened, "
                             f"n <= d): the largest |cos| between two rows is {worst:.3g} > 1e-8; "
                             f"is_spike_free: {why}")
        self.s = np.einsum("ij,ij->i", self.X, self.X)
        n = self.X.shape[0]
        self.exact = n <= max_exact_n
        self.kind = "exact" if self.exact else "heuristic"
        self.n_starts = n_starts
        self.rng = np.random.default_rng(random_state)
        self.patterns = None
        if self.exact:
            masks = ((np.arange(1, 2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
            self._by_size = [masks[masks.sum(axis=1) == k] for k in range(1, n + 1)]

    def _direction(self, w):
        z = np.sqrt(self.s) * w
        u = self.X.T @ (z / self.s)
        return u / max(np.linalg.norm(u), np.finfo(float).tiny)

    def __call__(self, Z) -> OracleResult:
        t0 = time.perf_counter()
        Z = np.asarray(Z, dtype=float)
        if Z.ndim == 1:
            Z = Z[:, None]
        n = self.X.shape[0]
        if Z.shape[0] != n or not np.all(np.isfinite(Z)):
            raise ValueError(f"Z must be finite with {n} rows; got shape {Z.shape}")
        R = np.sqrt(self.s)[:, None] * Z  # K = R R^T
        K = R @ R.T
        best, best_w = 0.0, np.zeros(n)
        lam, vec = np.linalg.eigh(K)
        top = vec[:, -1] * np.sign(vec[:, -1].sum() or 1.0)
        kind = self.kind
        if np.all(top >= -1e-12):  # the spectral bound is attained
            best, best_w, kind = float(lam[-1]), np.maximum(top, 0.0), "exact"
        elif self.exact:
            for masks in self._by_size:
                idx = np.nonzero(masks)[1].reshape(masks.shape[0], -1)  # (q, k)
                Ks = K[idx[:, :, None], idx[:, None, :]]
                lv, vv = np.linalg.eigh(Ks)
                v = vv[:, :, -1]
                v = v * np.where(v.sum(axis=1, keepdims=True) < 0, -1.0, 1.0)
                ok = np.all(v > -1e-12, axis=1)
                if np.any(ok):
                    j = np.flatnonzero(ok)[np.argmax(lv[ok, -1])]
                    if lv[j, -1] > best:
                        best = float(lv[j, -1])
                        best_w = np.zeros(n)
                        best_w[idx[j]] = np.maximum(v[j], 0.0)
        else:
            W = np.abs(self.rng.standard_normal((n, self.n_starts)))
            W = np.column_stack([W, np.maximum(top, 0.0), np.maximum(-top, 0.0)])
            for _ in range(200):
                Wn = np.maximum(K @ W, 0.0)
                nrm = np.linalg.norm(Wn, axis=0)
                Wn = Wn / np.where(nrm > 0, nrm, 1.0)
                if np.allclose(Wn, W, atol=1e-13):
                    break
                W = Wn
            vals = np.einsum("ij,ij->j", W, K @ W)
            j = int(np.argmax(vals))
            best, best_w = float(vals[j]), W[:, j]
            if best >= lam[-1] * (1 - 1e-12):
                kind = "exact"
        u = self._direction(best_w) if best > 0 else np.eye(self.X.shape[1])[0]
        attained = float(np.linalg.norm(Z.T @ np.maximum(self.X @ u, 0.0)))
        value = float(np.sqrt(max(best, 0.0)))
        if kind == "exact":
            value = max(value, attained)
        return OracleResult(value, u, attained, kind, "exact", 1, time.perf_counter() - t0)
