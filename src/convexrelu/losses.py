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

Each loss also owns its forms for the other back ends: ``cvxpy_value(F, Y)``, the same
function as a CVXPY expression (the restricted masters of ``cg`` and the conic solvers),
and ``torch_value(F, Y)``, a differentiable PyTorch scalar (``solver="sgd"``). Both are
imported lazily, so neither CVXPY nor PyTorch is needed to import this module. Adding a
loss is a class here with ``value``, ``gradient``, ``conjugate`` (and ``prepare_targets``,
``cvxpy_value``, ``torch_value`` where it has them) and an entry in :data:`LOSSES`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ._validation import check_class_labels, check_targets

__all__ = ["Loss", "SquaredLoss", "SoftmaxCrossEntropy", "LogisticLoss", "MulticlassHinge",
           "HuberLoss", "AbsoluteLoss", "get_loss", "LOSSES"]


@runtime_checkable
class Loss(Protocol):
    """What a loss provides to the solvers and certificates.

    Attributes
    ----------
    name : str
        Short name used by ``loss=`` arguments and the CLI.
    smoothness : float
        Lipschitz constant of the gradient in ``F`` (``inf`` if not smooth).

    Optional:

    - ``prepare_targets(Y) -> ndarray (n, c)``, the targets in the form the other methods
      take (labels become one-hot or +-1 for the classification losses); without it
      targets are used as given;
    - ``cvxpy_value(F, Y)``, :math:`L(F, Y)` as a CVXPY expression of the expression ``F``
      (needed by the solvers that solve a conic program: ``cg``'s restricted master for
      non-squared losses, ``copositive``);
    - ``torch_value(F, Y)``, :math:`L(F, Y)` as a differentiable PyTorch scalar of the
      tensor ``F`` (needed by ``solver="sgd"``).

    Both forms take the prepared targets and have the same definition and scale as
    ``value``; a loss without one is refused by the solvers that need it
    (:func:`cvxpy_loss`, :func:`torch_loss`).
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

    def prepare_targets(self, Y) -> np.ndarray:
        """Real targets as a finite ``(n, c)`` array; NaN/inf, complex values and values whose
        squares overflow are refused, naming ``Y``."""
        return check_targets(Y, "Y")

    def cvxpy_value(self, F, Y):
        """:meth:`value` as a CVXPY expression of ``F``."""
        return 0.5 * _cp().sum_squares(F - Y)

    def torch_value(self, F, Y):
        """:meth:`value` as a PyTorch scalar of the tensor ``F``."""
        return 0.5 * _torch().sum((F - Y) ** 2)

    def __repr__(self) -> str:
        return "SquaredLoss()"

    def __eq__(self, other) -> bool:
        return isinstance(other, SquaredLoss)

    def __hash__(self) -> int:
        return hash(self.name)


#: Slack allowed when testing that a dual point lies in a conjugate's domain.
_DOMAIN_TOL = 1e-9


def _cp():
    """CVXPY, imported when a CVXPY form is first asked for."""
    import cvxpy

    return cvxpy


def _torch():
    """PyTorch, imported when a PyTorch form is first asked for (a clear error without it)."""
    from .network import _import_torch

    return _import_torch()


def _xlogx(p):
    p = np.asarray(p, dtype=float)
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


class _Simple:
    """Equality and repr by class and parameters."""

    def _params(self):
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self._params()))})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._params() == self._params()

    def __hash__(self) -> int:
        return hash((self.name,) + self._params())


def _onehot(Y, name):
    """Labels ``(n,)`` or one-hot/soft ``(n, c)`` rows on the simplex -> ``(n, c)``.

    Labels may be of any discrete type (ints, strings, integer-valued floats); NaN/inf
    labels and float labels with non-integer values (continuous targets) are refused
    (:func:`~convexrelu._validation.check_class_labels`, as by ``ConvexReLUClassifier``).
    """
    if np.ndim(Y) == 1 or (np.ndim(Y) == 2 and np.shape(Y)[1] == 1):
        # a vector or a column of labels (e.g. from a data file)
        Y = check_class_labels(Y, "Y", f"loss={name!r}")
        classes, idx = np.unique(Y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"{name} needs at least 2 classes; got labels {classes.tolist()}")
        return np.eye(classes.size)[idx]
    Y = check_targets(Y, "Y")
    if Y.ndim != 2 or np.any(Y < -_DOMAIN_TOL) or not np.allclose(Y.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError(f"{name} needs labels (n,) or one-hot/probability rows (n, c); got "
                         f"shape {Y.shape} with rows not on the simplex")
    return Y


class SoftmaxCrossEntropy(_Simple):
    r"""Softmax cross-entropy :math:`\sum_i \operatorname{logsumexp}(f_i) - \langle y_i, f_i\rangle`.

    Targets: labels or one-hot (probability) rows. Gradient :math:`\mathrm{softmax}(F) - Y`.
    Conjugate :math:`L^*(G) = \sum_{ik} p_{ik}\log p_{ik}` with :math:`P = G + Y`, finite only
    when every row of ``P`` is on the simplex. Smooth with constant 1/2.
    """

    name = "cross_entropy"
    smoothness = 0.5

    def prepare_targets(self, Y):
        return _onehot(Y, "cross_entropy")

    def value(self, F, Y):
        F = np.asarray(F, dtype=float)
        m = F.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.sum(np.exp(F - m), axis=1))
        return float(np.sum(lse) - np.vdot(Y, F))

    def gradient(self, F, Y):
        F = np.asarray(F, dtype=float)
        E = np.exp(F - F.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True) - Y

    def conjugate(self, G, Y):
        P = np.asarray(G, dtype=float) + Y
        if np.any(P < -_DOMAIN_TOL) or not np.allclose(P.sum(axis=1), 1.0, atol=1e-8):
            return np.inf
        return float(np.sum(_xlogx(np.maximum(P, 0.0))))

    def cvxpy_value(self, F, Y):
        cp = _cp()
        return cp.sum(cp.log_sum_exp(F, axis=1)) - cp.sum(cp.multiply(Y, F))

    def torch_value(self, F, Y):
        torch = _torch()
        return torch.sum(torch.logsumexp(F, dim=1)) - torch.sum(Y * F)


class LogisticLoss(_Simple):
    r"""Binary logistic loss :math:`\sum_i \log(1 + e^{-y_i f_i})`, labels in {0, 1} or {-1, 1}.

    Targets become a ``(n, 1)`` column of +-1. Conjugate with :math:`a = -g y \in [0, 1]`:
    :math:`a\log a + (1-a)\log(1-a)`. Smooth with constant 1/4.
    """

    name = "logistic"
    smoothness = 0.25

    def prepare_targets(self, Y):
        if np.ndim(Y) == 2 and np.shape(Y)[1] != 1:
            raise ValueError(f"logistic needs binary labels (n,) or (n, 1); got shape {np.shape(Y)}")
        y = np.asarray(check_class_labels(Y, "Y", "loss='logistic'"), dtype=float)
        vals = set(np.unique(y).tolist())
        if vals <= {0.0, 1.0}:
            y = 2.0 * y - 1.0
        elif not vals <= {-1.0, 1.0}:
            raise ValueError(f"logistic needs binary labels in {{0, 1}} or {{-1, 1}}; got {sorted(vals)[:5]}")
        return y[:, None]

    def value(self, F, Y):
        return float(np.sum(np.logaddexp(0.0, -np.asarray(Y) * np.asarray(F, dtype=float))))

    def gradient(self, F, Y):
        t = np.asarray(Y) * np.asarray(F, dtype=float)
        return -np.asarray(Y) * np.exp(-np.logaddexp(0.0, t))  # -y sigma(-y f)

    def conjugate(self, G, Y):
        a = -np.asarray(G, dtype=float) * np.asarray(Y)
        if np.any(a < -_DOMAIN_TOL) or np.any(a > 1 + _DOMAIN_TOL):
            return np.inf
        a = np.clip(a, 0.0, 1.0)
        return float(np.sum(_xlogx(a) + _xlogx(1.0 - a)))

    def cvxpy_value(self, F, Y):
        cp = _cp()
        return cp.sum(cp.logistic(-cp.multiply(Y, F)))

    def torch_value(self, F, Y):
        torch = _torch()
        return torch.sum(torch.nn.functional.softplus(-Y * F))


class MulticlassHinge(_Simple):
    r"""Crammer–Singer hinge :math:`\sum_i \max_k (f_{ik} + \Delta_{ik}) - f_{i y_i}`,
    :math:`\Delta = 1 - Y` (one-hot ``Y``).

    Subgradient :math:`e_{k^*} - y_i` with :math:`k^*` the maximiser. It is a maximum of
    affine functions of :math:`f_i`, so :math:`L^*(G) = -\langle G + Y, 1 - Y\rangle` when
    every row of :math:`G + Y` is on the simplex, ``inf`` otherwise. Not smooth.
    """

    name = "multiclass_hinge"
    smoothness = np.inf

    def prepare_targets(self, Y):
        Y = _onehot(Y, "multiclass_hinge")
        if not np.all((Y == 0) | (Y == 1)):
            raise ValueError("multiclass_hinge needs hard labels (one-hot rows)")
        return Y

    def value(self, F, Y):
        F = np.asarray(F, dtype=float)
        return float(np.sum(np.max(F + 1.0 - Y, axis=1) - np.sum(F * Y, axis=1)))

    def gradient(self, F, Y):
        F = np.asarray(F, dtype=float)
        k = np.argmax(F + 1.0 - Y, axis=1)
        G = -np.asarray(Y, dtype=float).copy()
        G[np.arange(F.shape[0]), k] += 1.0
        return G

    def conjugate(self, G, Y):
        P = np.asarray(G, dtype=float) + Y
        if np.any(P < -_DOMAIN_TOL) or not np.allclose(P.sum(axis=1), 1.0, atol=1e-8):
            return np.inf
        return float(-np.vdot(P, 1.0 - Y))

    def cvxpy_value(self, F, Y):
        cp = _cp()
        return cp.sum(cp.max(F + 1.0 - Y, axis=1)) - cp.sum(cp.multiply(Y, F))

    def torch_value(self, F, Y):
        torch = _torch()
        return torch.sum(torch.max(F + 1.0 - Y, dim=1).values - torch.sum(F * Y, dim=1))


class HuberLoss(_Simple):
    r"""Huber loss, elementwise on :math:`r = f - y`: :math:`\tfrac12 r^2` for :math:`|r| \le \delta`,
    :math:`\delta(|r| - \delta/2)` beyond. Gradient :math:`\mathrm{clip}(r, -\delta, \delta)`;
    conjugate :math:`\sum \tfrac12 g^2 + g y` on :math:`|g| \le \delta`. Smooth with constant 1.
    """

    name = "huber"
    smoothness = 1.0

    def __init__(self, delta=1.0):
        delta = float(delta)
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"delta must be a finite number > 0; got {delta!r}")
        self.delta = delta

    def _params(self):
        return (self.delta,)

    def prepare_targets(self, Y):
        return SquaredLoss().prepare_targets(Y)

    def value(self, F, Y):
        r = np.abs(np.asarray(F, dtype=float) - Y)
        d = self.delta
        return float(np.sum(np.where(r <= d, 0.5 * r * r, d * (r - 0.5 * d))))

    def gradient(self, F, Y):
        return np.clip(np.asarray(F, dtype=float) - Y, -self.delta, self.delta)

    def conjugate(self, G, Y):
        G = np.asarray(G, dtype=float)
        if np.any(np.abs(G) > self.delta * (1 + _DOMAIN_TOL)):
            return np.inf
        return float(0.5 * np.vdot(G, G) + np.vdot(G, Y))

    def cvxpy_value(self, F, Y):
        # CVXPY's huber is 2x this loss: r^2 inside, 2 delta |r| - delta^2 beyond
        cp = _cp()
        return 0.5 * cp.sum(cp.huber(F - Y, self.delta))

    def torch_value(self, F, Y):
        return _torch().nn.functional.huber_loss(F, Y, reduction="sum", delta=self.delta)


class AbsoluteLoss(_Simple):
    r"""Absolute loss :math:`\sum |f - y|`. Subgradient :math:`\mathrm{sign}(f - y)` (0 at 0);
    conjugate :math:`\langle G, Y\rangle` on :math:`|g| \le 1`. Not smooth."""

    name = "absolute"
    smoothness = np.inf

    def prepare_targets(self, Y):
        return SquaredLoss().prepare_targets(Y)

    def value(self, F, Y):
        return float(np.sum(np.abs(np.asarray(F, dtype=float) - Y)))

    def gradient(self, F, Y):
        return np.sign(np.asarray(F, dtype=float) - Y)

    def conjugate(self, G, Y):
        G = np.asarray(G, dtype=float)
        if np.any(np.abs(G) > 1 + _DOMAIN_TOL):
            return np.inf
        return float(np.vdot(G, Y))

    def cvxpy_value(self, F, Y):
        cp = _cp()
        return cp.sum(cp.abs(F - Y))

    def torch_value(self, F, Y):
        torch = _torch()
        return torch.sum(torch.abs(F - Y))


LOSSES = {"squared": SquaredLoss, "cross_entropy": SoftmaxCrossEntropy, "logistic": LogisticLoss,
          "multiclass_hinge": MulticlassHinge, "huber": HuberLoss, "absolute": AbsoluteLoss}


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


def _form(loss, method: str, what: str, needed_by: str):
    """``loss``'s ``method`` (bound), or a ``ValueError`` naming the loss and what it lacks."""
    fn = getattr(loss, method, None)
    if callable(fn):
        return fn
    name = getattr(loss, "name", None)
    have = [k for k, cls in LOSSES.items() if callable(getattr(cls, method, None))]
    raise ValueError(
        f"loss {name!r} ({type(loss).__name__}) has no {what} form: it lacks a "
        f"{method}(F, Y) method, which {needed_by} needs; the built-in losses with one are "
        f"{', '.join(repr(k) for k in have)}")


def cvxpy_loss(loss, F, Y):
    """``loss.cvxpy_value(F, Y)``: the loss as a CVXPY expression of the prediction
    expression ``F`` (targets prepared).

    Kept for compatibility: the CVXPY form is the loss's own method (``cvxpy_value``), and
    this wrapper only adds the error for a loss without one (``ValueError`` naming the
    loss and the missing method).
    """
    return _form(loss, "cvxpy_value", "CVXPY", "a solver that solves a conic program "
                 "(cg's restricted master for non-squared losses, copositive)")(F, Y)


def torch_loss(loss, F, Y):
    """``loss.torch_value(F, Y)``: ``loss.value(F, Y)`` as a differentiable PyTorch
    expression of the tensor ``F`` (same definition and scale).

    Kept for compatibility (``convexrelu.solvers.sgd.torch_loss``): the PyTorch form is the
    loss's own method (``torch_value``), and this wrapper only adds the error for a loss
    without one (``ValueError`` naming the loss and the missing method).
    """
    return _form(loss, "torch_value", "PyTorch", "solver='sgd'")(F, Y)
