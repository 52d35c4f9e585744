r"""Convex losses and their Fenchel conjugates.

A loss :math:`L(F, Y)` is convex in the predictions :math:`F \in \mathbb{R}^{n \times c}`.
The certificates and the dual problems (paper eq. 11, App. A.6 eq. 76-79) need its
value, its gradient in ``F`` and its convex conjugate in ``F``,

.. math::

    L^*(G; Y) = \sup_F \; \langle G, F \rangle - L(F, Y).

For any ``G`` with :math:`\Omega(G) \le \beta` the number :math:`-L^*(G; Y)` is a lower
bound on the training optimum :math:`p^*` (weak duality); the certificate uses
``G = grad L(f(X), Y)`` scaled into that set.

Later losses (cross-entropy, hinge, Huber, ...) implement the same :class:`Loss`
protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Loss", "SquaredLoss", "get_loss", "LOSSES"]


@runtime_checkable
class Loss(Protocol):
    """What a loss provides to the solvers and certificates.

    Attributes
    ----------
    name : str
        Short name used by ``loss=`` arguments and the CLI.
    smoothness : float
        Lipschitz constant of the gradient in ``F`` (``inf`` if not smooth).
    """

    name: str
    smoothness: float

    def value(self, F: np.ndarray, Y: np.ndarray) -> float:
        """:math:`L(F, Y)`."""

    def gradient(self, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """:math:`\\nabla_F L(F, Y)` (a subgradient for non-smooth losses)."""

    def conjugate(self, G: np.ndarray, Y: np.ndarray) -> float:
        """:math:`L^*(G; Y)`; ``inf`` outside its domain."""


class SquaredLoss:
    r"""Squared loss :math:`L(F, Y) = \tfrac12 \|F - Y\|_F^2` (paper eq. 5).

    Its conjugate is :math:`L^*(G; Y) = \tfrac12\|G\|_F^2 + \langle G, Y\rangle`, so with
    :math:`Z = -G` the dual objective :math:`-L^*(-Z)` is the paper's
    :math:`-\tfrac12\|Z - Y\|_F^2 + \tfrac12\|Y\|_F^2` (eq. 11).
    """

    name = "squared"
    smoothness = 1.0

    def value(self, F, Y) -> float:
        R = np.asarray(F, dtype=float) - np.asarray(Y, dtype=float)
        return 0.5 * float(np.vdot(R, R))

    def gradient(self, F, Y) -> np.ndarray:
        return np.asarray(F, dtype=float) - np.asarray(Y, dtype=float)

    def conjugate(self, G, Y) -> float:
        G = np.asarray(G, dtype=float)
        return 0.5 * float(np.vdot(G, G)) + float(np.vdot(G, np.asarray(Y, dtype=float)))

    def __repr__(self) -> str:
        return "SquaredLoss()"

    def __eq__(self, other) -> bool:
        return isinstance(other, SquaredLoss)

    def __hash__(self) -> int:
        return hash(self.name)


LOSSES = {"squared": SquaredLoss}


def get_loss(loss) -> Loss:
    """Return a loss object from a name (``"squared"``) or pass a :class:`Loss` through."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(
                f"loss must be one of {', '.join(repr(k) for k in LOSSES)} or a Loss object; "
                f"got {loss!r}"
            )
        return LOSSES[loss]()
    if isinstance(loss, Loss):
        return loss
    raise ValueError(
        f"loss must be one of {', '.join(repr(k) for k in LOSSES)} or a Loss object; got {loss!r}"
    )
