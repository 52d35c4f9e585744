r"""Convex solutions of eq. 12 and the networks they define (paper Remark 5.1, eq. 49).

A solution of the convex program is held as atoms: :math:`V_i = \sum_{j \in i} h_j g_j^\top`
with :math:`(2D_i - I) X h_j \ge 0` and :math:`\|g_j\| = 1`. Its prediction is
:math:`\sum_i D_i X V_i` and its penalty :math:`\sum_j \|h_j\| \ge \sum_i \|V_i\|_*`.
Each atom becomes one neuron :math:`u = h/\sqrt{\|h\|}`, :math:`v = g\sqrt{\|h\|}`:
:math:`(X u)_+ v^\top = D_i X h g^\top` because :math:`h` lies in the cone of :math:`D_i`,
and :math:`\tfrac12(\|u\|^2 + \|v\|^2) = \|h\|`, so the network has the same
predictions and the same objective as the convex model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_beta, check_X, check_Y
from .losses import get_loss
from .network import TwoLayerReLU

__all__ = ["ConvexSolution"]


@dataclass(frozen=True)
class ConvexSolution:
    """Atoms of a solution of the convex program (paper eq. 12).

    Attributes
    ----------
    H : ndarray (d, m)
        Column ``j`` is the atom's input part ``h_j`` (its norm is the atom's weight).
    G : ndarray (m, c)
        Row ``j`` is the atom's unit output direction ``g_j``.
    patterns : ndarray of bool (m, n)
        Row ``j`` is the diagonal of the sign pattern ``D_i`` the atom belongs to.
    """

    H: np.ndarray
    G: np.ndarray
    patterns: np.ndarray

    def __post_init__(self):
        if self.H.shape[1] != self.G.shape[0] or self.patterns.shape[0] != self.H.shape[1]:
            raise ValueError(
                f"inconsistent atoms: H {self.H.shape}, G {self.G.shape}, patterns {self.patterns.shape}"
            )

    @classmethod
    def from_neurons(cls, X, U, V) -> "ConvexSolution":
        """Atoms of a network's neurons: ``h = u |v|``, ``g = v / |v|``, ``D = 1[Xu >= 0]``."""
        X = check_X(X)
        U = np.asarray(U, dtype=float)
        V = np.asarray(V, dtype=float)
        nu = np.linalg.norm(U, axis=0)
        nv = np.linalg.norm(V, axis=1)
        keep = (nu > 0) & (nv > 0)
        U, V, nv = U[:, keep], V[keep], nv[keep]
        return cls(U * nv[None, :], V / nv[:, None], (X @ U).T >= 0)

    @property
    def n_atoms(self) -> int:
        return self.H.shape[1]

    def predict(self, X) -> np.ndarray:
        r""":math:`\sum_i D_i X V_i` (the convex model's prediction, linear in the atoms)."""
        X = check_X(X)
        if X.shape[0] != self.patterns.shape[1]:
            raise ValueError(
                f"the convex model is defined on the {self.patterns.shape[1]} training rows; "
                f"X has {X.shape[0]}"
            )
        return (self.patterns.T * (X @ self.H)) @ self.G

    def penalty(self) -> float:
        r""":math:`\sum_j \|h_j\|` (an upper bound on :math:`\sum_i \|V_i\|_*`)."""
        return float(np.sum(np.linalg.norm(self.H, axis=0)))

    def objective(self, X, Y, beta, loss="squared") -> float:
        r"""Convex objective of eq. 12 for these atoms: :math:`L(\sum_i D_i X V_i) + \beta \sum_j \|h_j\|`."""
        X = check_X(X)
        Y = check_Y(Y, X.shape[0])
        return get_loss(loss).value(self.predict(X), Y) + check_beta(beta) * self.penalty()

    def max_cone_violation(self, X) -> float:
        r"""Largest :math:`\max(0, -(2D_i - I) X h_j) / \|x_k\|\|h_j\|` (0 when every atom is in its cone)."""
        X = check_X(X)
        S = np.where(self.patterns.T, 1.0, -1.0)  # (n, m)
        scale = np.linalg.norm(X, axis=1)[:, None] * np.linalg.norm(self.H, axis=0)[None, :]
        viol = np.maximum(0.0, -S * (X @ self.H)) / np.where(scale > 0, scale, 1.0)
        return float(viol.max(initial=0.0))

    def to_network(self) -> TwoLayerReLU:
        r"""Remark 5.1: :math:`u = h/\sqrt{\|h\|}`, :math:`v = g\sqrt{\|h\|}` (zero atoms dropped)."""
        w = np.linalg.norm(self.H, axis=0)
        keep = w > 0
        root = np.sqrt(w[keep])
        return TwoLayerReLU(self.H[:, keep] / root[None, :], self.G[keep] * root[:, None])
