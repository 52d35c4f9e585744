r"""Two-layer CNNs with global average pooling (paper eq. 6, Cor. 5.1, eq. 50–51).

The network :math:`f(x) = \sum_j \big(\tfrac1K \sum_k (x_k^\top u_j)_+\big) v_j^\top`,
with :math:`x_k` the ``K`` patches of ``x`` (kernel size, stride, padding), is the
two-layer model on the *stacked patch matrix* ``M`` (``nK x h``) followed by the
averaging operator ``B`` (``n x nK``): its atoms are :math:`B (M u)_+`. Hence

* the sign patterns are those of ``M`` (rank ``h`` at most: the patch size), enumerable
  for small kernels (1-D kernels of size 2 give rank 2 whatever ``n`` and ``K``);
* the oracle is the plain one on ``M`` at the pulled-back dual point:
  :math:`\|Z^\top B (Mu)_+\| = \|(B^\top Z)^\top (Mu)_+\|`;
* the convex program eq. 50 is solved by the ``cg`` solver itself on this feature map
  (:class:`ConvFeatures`), and the certificate is exact when the oracle on ``M`` is.

:class:`TwoLayerReLUConv` predicts, computes eq. 6's objective, and exports to PyTorch
(``Conv1d``/``Conv2d`` + ReLU + average pool + ``Linear``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ._validation import check_beta, check_positive_int, check_tol
from .losses import get_loss
from .problem import Problem

__all__ = ["PatchSpec", "extract_patches", "TwoLayerReLUConv", "ConvFeatures", "fit_conv"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatchSpec:
    """Kernel, stride and padding of a 1-D (``ndim=1``) or 2-D (``ndim=2``) convolution."""

    kernel_size: tuple
    stride: tuple
    padding: tuple
    in_channels: int

    @property
    def ndim(self) -> int:
        return len(self.kernel_size)

    @property
    def patch_dim(self) -> int:
        return self.in_channels * int(np.prod(self.kernel_size))


def _tuple(v, nd, name):
    t = (v,) * nd if np.isscalar(v) else tuple(v)
    if len(t) != nd or any(int(x) != x for x in t):
        raise ValueError(f"{name} must be an int or {nd} ints; got {v!r}")
    return tuple(int(x) for x in t)


def extract_patches(X, kernel_size, stride=1, padding=0):
    """Patches of signals ``(n, C, L)`` / ``(n, L)`` or images ``(n, C, H, W)``.

    Returns ``(P, spec)`` with ``P`` of shape ``(n, K, C * prod(kernel))``, each patch
    flattened in ``(C, *kernel)`` order (PyTorch's ``Conv`` weight layout), and the
    :class:`PatchSpec`. Zero padding.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 2:
        X = X[:, None, :]
    if X.ndim not in (3, 4):
        raise ValueError(f"X must have shape (n, L), (n, C, L) or (n, C, H, W); got {X.shape}")
    if X.shape[0] == 0 or not np.all(np.isfinite(X)):
        raise ValueError("X must be non-empty and finite")
    nd = X.ndim - 2
    k = _tuple(kernel_size, nd, "kernel_size")
    s = _tuple(stride, nd, "stride")
    p = _tuple(padding, nd, "padding")
    if any(x < 1 for x in k + s) or any(x < 0 for x in p):
        raise ValueError(f"kernel_size and stride must be >= 1 and padding >= 0; got {k}, {s}, {p}")
    pad = [(0, 0), (0, 0)] + [(q, q) for q in p]
    Xp = np.pad(X, pad)
    if any(Xp.shape[2 + i] < k[i] for i in range(nd)):
        raise ValueError(f"kernel {k} is larger than the padded input {Xp.shape[2:]}")
    W = np.lib.stride_tricks.sliding_window_view(Xp, k, axis=tuple(range(2, 2 + nd)))
    W = W[(slice(None), slice(None)) + tuple(slice(None, None, si) for si in s)]
    # W: (n, C, out..., k...) -> (n, out..., C, k...)
    n, C = X.shape[:2]
    out = W.shape[2:2 + nd]
    W = np.moveaxis(W, 1, 1 + nd)
    P = W.reshape(n, int(np.prod(out)), C * int(np.prod(k)))
    return np.ascontiguousarray(P), PatchSpec(k, s, p, C)


class TwoLayerReLUConv:
    """A two-layer CNN: ``m`` filters (columns of ``W1``, length ``C * prod(kernel)``), ReLU,
    global average pooling, a linear layer ``W2`` (``m x c``); no biases."""

    def __init__(self, W1, W2, spec: PatchSpec):
        self.W1 = np.asarray(W1, dtype=float)
        self.W2 = np.asarray(W2, dtype=float)
        if self.W1.ndim != 2 or self.W2.ndim != 2 or self.W1.shape[1] != self.W2.shape[0]:
            raise ValueError(f"W1 (h, m) and W2 (m, c) do not match: {self.W1.shape}, {self.W2.shape}")
        if self.W1.shape[0] != spec.patch_dim:
            raise ValueError(f"W1 has {self.W1.shape[0]} rows; the patches have {spec.patch_dim}")
        self.spec = spec

    @property
    def n_neurons(self):
        return self.W1.shape[1]

    @property
    def n_outputs(self):
        return self.W2.shape[1]

    def _patches(self, X):
        P, spec = extract_patches(X, self.spec.kernel_size, self.spec.stride, self.spec.padding)
        if spec != self.spec:
            raise ValueError(f"input gives patches {spec}, the network expects {self.spec}")
        return P

    def predict_patches(self, P):
        """Output from patches ``(n, K, h)``: mean over patches of ReLU, then ``W2``."""
        return np.maximum(P @ self.W1, 0.0).mean(axis=1) @ self.W2

    def predict(self, X):
        return self.predict_patches(self._patches(X))

    def weight_decay(self):
        return 0.5 * (float(np.vdot(self.W1, self.W1)) + float(np.vdot(self.W2, self.W2)))

    def objective(self, X, Y, beta, loss="squared"):
        """Paper eq. 6: loss plus weight decay."""
        beta = check_beta(beta)
        Y = np.asarray(Y, dtype=float)
        Y = Y[:, None] if Y.ndim == 1 else Y
        return get_loss(loss).value(self.predict(X), Y) + beta * self.weight_decay()

    def rebalance(self):
        nu = np.linalg.norm(self.W1, axis=0)
        nv = np.linalg.norm(self.W2, axis=1)
        alive = (nu > 0) & (nv > 0)
        sc = np.zeros_like(nu)
        sc[alive] = np.sqrt(nv[alive] / nu[alive])
        inv = np.zeros_like(nu)
        inv[alive] = 1.0 / sc[alive]
        return TwoLayerReLUConv(self.W1 * sc, self.W2 * inv[:, None], self.spec)

    def to_torch(self, dtype=None):
        """``nn.Sequential(Conv{1,2}d(C, m, kernel, stride, padding, bias=False), ReLU(),
        AdaptiveAvgPool{1,2}d(1), Flatten(), Linear(m, c, bias=False))``."""
        from .network import _import_torch

        torch = _import_torch()
        dtype = torch.float64 if dtype is None else dtype
        s = self.spec
        m, c = self.n_neurons, self.n_outputs
        Conv = torch.nn.Conv1d if s.ndim == 1 else torch.nn.Conv2d
        Pool = torch.nn.AdaptiveAvgPool1d if s.ndim == 1 else torch.nn.AdaptiveAvgPool2d
        model = torch.nn.Sequential(
            Conv(s.in_channels, m, s.kernel_size, stride=s.stride, padding=s.padding, bias=False,
                 dtype=dtype),
            torch.nn.ReLU(), Pool(1), torch.nn.Flatten(),
            torch.nn.Linear(m, c, bias=False, dtype=dtype))
        with torch.no_grad():
            model[0].weight.copy_(torch.tensor(self.W1.T.reshape((m, s.in_channels) + s.kernel_size),
                                               dtype=dtype))
            model[4].weight.copy_(torch.tensor(self.W2.T, dtype=dtype))
        return model


class ConvFeatures:
    r"""The patch feature map: the stacked patch matrix ``M`` (``nK x h``) and the averaging
    ``B`` (``n x nK``) as index arithmetic, so that the atoms are :math:`B (M U)_+`.

    A feature map for :class:`~convexrelu.solvers.cg.ConditionalGradient` (see
    :class:`~convexrelu.solvers.engine.DenseFeatures` for the members): the oracle is the
    plain one on ``rows = M`` at the pulled-back point :math:`B^\top G`. Merging and the
    local moves assume dense atoms and are off (``local_moves = False``).
    """

    name = "conv"
    local_moves = False

    def __init__(self, P, spec: PatchSpec):
        self.n, self.K, self.h = P.shape
        self.P, self.spec = P, spec
        self.M = self.rows = P.reshape(self.n * self.K, self.h)

    def atoms(self, U):  # B (M U)_+ : (n, m)
        return np.maximum(self.M @ U, 0.0).reshape(self.n, self.K, -1).mean(axis=1)

    def pull_back(self, G):  # B^T G : (nK, c)
        return np.repeat(G / self.K, self.K, axis=0)

    def network(self, U, V) -> TwoLayerReLUConv:  # balanced: |u_j| = |v_j|
        a = np.sqrt(np.linalg.norm(V, axis=1))
        return TwoLayerReLUConv(U * a, V / np.where(a > 0, a, 1.0)[:, None], self.spec)

    def predict(self, net):
        return net.predict_patches(self.P)


def fit_conv(X, Y, beta, *, kernel_size, stride=1, padding=0, oracle="auto", tol=1e-6,
             max_iter=100, max_add=20, random_state=None, verbose=0):
    r"""Train a two-layer CNN with global average pooling by the convex program eq. 50.

    The ``cg`` solver (:class:`~convexrelu.solvers.cg.ConditionalGradient`) on the patch
    feature map (:class:`ConvFeatures`): the oracle on the stacked patch matrix (exact when
    its patterns are enumerable, e.g. rank 2; heuristic otherwise, flagged), the restricted
    group lasso over the atoms :math:`B(Mu)_+`, stopped by the certificate. Returns a
    :class:`~convexrelu.solvers.base.SolveResult` whose ``network`` is a
    :class:`TwoLayerReLUConv` (``solver="cg-conv"``; ``info["time_breakdown"]`` as for
    ``cg``).
    """
    from .oracles import make_oracle
    from .solvers.cg import ConditionalGradient

    tol = check_tol(tol)
    max_iter = check_positive_int(max_iter, "max_iter")
    beta = check_beta(beta)
    P, spec = extract_patches(X, kernel_size, stride, padding)
    feats = ConvFeatures(P, spec)
    # the oracle's rows are the patches; the targets are one per image
    prob = Problem(feats.M, Y, "squared", samples=P.shape[0])
    orc = make_oracle(prob, oracle, random_state=random_state)
    solver = ConditionalGradient(tol=tol, max_iter=max_iter, max_add=max_add, verbose=verbose)
    return solver.solve(prob, beta=beta, oracle=orc, features=feats)
