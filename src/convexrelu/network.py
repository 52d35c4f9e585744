r"""The two-layer ReLU network :math:`f(X) = (X W_1)_+ W_2`."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from ._validation import check_beta, check_tol, check_X, check_Y
from .losses import get_loss

__all__ = ["TwoLayerReLU"]

_FORMAT = "convexrelu.TwoLayerReLU"
_FORMAT_VERSION = 1


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "this feature needs PyTorch: install the extra with "
            "pip install 'convexrelu[torch]' (pin torch==2.13.0 for the CPU build)"
        ) from None
    return torch


def _column_norms(A: np.ndarray, axis: int) -> np.ndarray:
    """Euclidean norms along ``axis`` without underflow/overflow (scaled by the max entry)."""
    amax = np.max(np.abs(A), axis=axis, initial=0.0)
    safe = np.where(amax > 0, amax, 1.0)
    scaled = A / (np.expand_dims(safe, axis))
    return amax * np.sqrt(np.sum(scaled * scaled, axis=axis))


def _check_weight(W, name: str, allow_1d: bool = False) -> np.ndarray:
    try:
        arr = np.array(W, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric 2-D array ({exc})") from None
    if allow_1d and arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values")
    arr.setflags(write=False)
    return arr


class TwoLayerReLU:
    r"""A two-layer ReLU network with vector output.

    .. math::

        f(X) = (X W_1)_+ W_2 = \sum_{j=1}^m (X u_j)_+ v_j^\top

    Parameters
    ----------
    W1 : array of shape (d, m)
        First-layer weights; column ``j`` is the neuron's input weight ``u_j``.
    W2 : array of shape (m, c)
        Second-layer weights; row ``j`` is the neuron's output weight ``v_j``. A 1-D
        array of length ``m`` is read as ``c = 1``.

    Notes
    -----
    The weights are stored read-only; methods that change the network
    (:meth:`rebalance`, :meth:`prune`) return a new one. A network with ``m = 0``
    neurons is allowed: it is the zero function.
    """

    def __init__(self, W1, W2):
        W1 = _check_weight(W1, "W1")
        W2 = _check_weight(W2, "W2", allow_1d=True)
        if W1.shape[0] == 0:
            raise ValueError(f"W1 must have at least one input feature (d >= 1); got shape {W1.shape}")
        if W2.shape[1] == 0:
            raise ValueError(f"W2 must have at least one output (c >= 1); got shape {W2.shape}")
        if W1.shape[1] != W2.shape[0]:
            raise ValueError(
                "W1 has shape (d, m) and W2 shape (m, c) with the same number of neurons m; "
                f"got W1 {W1.shape} with m = {W1.shape[1]} and W2 {W2.shape} with m = {W2.shape[0]}"
            )
        self._W1 = W1
        self._W2 = W2

    # ------------------------------------------------------------------ properties
    @property
    def W1(self) -> np.ndarray:
        """First-layer weights, shape ``(d, m)`` (read-only)."""
        return self._W1

    @property
    def W2(self) -> np.ndarray:
        """Second-layer weights, shape ``(m, c)`` (read-only)."""
        return self._W2

    @property
    def n_neurons(self) -> int:
        """Number of hidden neurons ``m``."""
        return self._W1.shape[1]

    @property
    def n_features(self) -> int:
        return self._W1.shape[0]

    @property
    def n_outputs(self) -> int:
        return self._W2.shape[1]

    @classmethod
    def zeros(cls, n_features: int, n_outputs: int) -> "TwoLayerReLU":
        """The zero network (no neurons) with the given input and output sizes."""
        return cls(np.zeros((n_features, 0)), np.zeros((0, n_outputs)))

    # ------------------------------------------------------------------ evaluation
    def _check_input(self, X) -> np.ndarray:
        X = check_X(X)
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features but the network expects {self.n_features} "
                f"(W1 has shape {self._W1.shape})"
            )
        return X

    def hidden(self, X) -> np.ndarray:
        """Hidden activations :math:`(X W_1)_+`, shape ``(n, m)``."""
        X = self._check_input(X)
        return np.maximum(X @ self._W1, 0.0)

    def predict(self, X) -> np.ndarray:
        """Network output :math:`(X W_1)_+ W_2`, shape ``(n, c)``."""
        return self.hidden(X) @ self._W2

    def weight_decay(self) -> float:
        r""":math:`\tfrac12(\|W_1\|_F^2 + \|W_2\|_F^2)`."""
        return 0.5 * (float(np.vdot(self._W1, self._W1)) + float(np.vdot(self._W2, self._W2)))

    def path_norm(self) -> float:
        r""":math:`\sum_j \|u_j\|_2 \|v_j\|_2`, the weight decay after :meth:`rebalance`."""
        return float(np.sum(_column_norms(self._W1, axis=0) * _column_norms(self._W2, axis=1)))

    def objective(self, X, Y, beta, loss="squared") -> float:
        r"""Training objective of paper eq. 5 (eq. 76 for a general loss).

        .. math::

            p(W_1, W_2) = L(f(X), Y) + \frac{\beta}{2}\left(\|W_1\|_F^2 + \|W_2\|_F^2\right)

        Parameters
        ----------
        X : array of shape (n, d)
        Y : array of shape (n, c) or (n,)
        beta : float > 0
            Weight-decay strength.
        loss : str or Loss, default "squared"
        """
        X = self._check_input(X)
        Y = check_Y(Y, X.shape[0])
        beta = check_beta(beta)
        if Y.shape[1] != self.n_outputs:
            raise ValueError(
                f"Y has {Y.shape[1]} output columns but the network has {self.n_outputs} outputs"
            )
        loss = get_loss(loss)
        F = np.maximum(X @ self._W1, 0.0) @ self._W2
        return loss.value(F, Y) + beta * self.weight_decay()

    # ------------------------------------------------------------------ transforms
    def rebalance(self) -> "TwoLayerReLU":
        r"""Rescale each neuron so that :math:`\|u_j\| = \|v_j\|`.

        The ReLU is positively homogeneous, so :math:`(X \alpha u)_+ v / \alpha` is the
        same function for every :math:`\alpha > 0`; the balanced scale minimises the
        weight decay, which becomes :math:`\sum_j \|u_j\|\|v_j\|`. Neurons with
        :math:`u_j = 0` or :math:`v_j = 0` compute nothing and are set to zero.
        """
        nu = _column_norms(self._W1, axis=0)
        nv = _column_norms(self._W2, axis=1)
        alive = (nu > 0) & (nv > 0)
        scale = np.zeros_like(nu)
        scale[alive] = np.sqrt(nv[alive]) / np.sqrt(nu[alive])  # no overflow in nv / nu
        W1 = self._W1 * scale[None, :]
        inv = np.zeros_like(nu)
        inv[alive] = 1.0 / scale[alive]
        W2 = self._W2 * inv[:, None]
        return TwoLayerReLU(W1, W2)

    def prune(self, tol: float = 0.0) -> "TwoLayerReLU":
        r"""Drop neurons whose contribution :math:`\|u_j\|\,\|v_j\|` is ``<= tol``.

        The product is invariant to rescaling, so the same neurons are dropped before
        and after :meth:`rebalance`. With ``tol = 0`` only neurons that compute the
        zero function are removed, so predictions are unchanged.
        """
        tol = check_tol(tol)
        strength = _column_norms(self._W1, axis=0) * _column_norms(self._W2, axis=1)
        keep = strength > tol
        return TwoLayerReLU(self._W1[:, keep], self._W2[keep, :])

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the network to an ``.npz`` file.

        Atomic (a temporary file renamed into place: no half-written file on failure), with
        the permissions a plain ``open(path, "wb")`` gives (``0o666`` less the umask for a
        new file, the existing mode when overwriting one).
        """
        from .io import atomic_write

        atomic_write(os.fspath(path), lambda fh: np.savez(
            fh,
            W1=self._W1,
            W2=self._W2,
            format=np.array(_FORMAT),
            format_version=np.array(_FORMAT_VERSION),
        ), suffix=".npz", make_dirs=False)

    @classmethod
    def load(cls, path) -> "TwoLayerReLU":
        """Read a network written by :meth:`save`; a corrupt file raises ``ValueError``."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model file not found: {path!r}")
        from .io import npz_signature_error

        reason = npz_signature_error(path, "a convexrelu model file (an .npz archive written by "
                                           "TwoLayerReLU.save)")
        if reason is not None:
            raise ValueError(f"could not read model file {path!r}: {reason}")
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError(
                    f"{path!r} is not a convexrelu model file: it holds a single .npy array, "
                    "not an .npz archive with W1 and W2"
                )
            with data:
                keys = set(data.files)
                missing = {"W1", "W2"} - keys
                if missing:
                    raise ValueError(
                        f"{path!r} is not a convexrelu model file: missing array(s) "
                        f"{', '.join(sorted(missing))} (found {', '.join(sorted(keys)) or 'none'})"
                    )
                if "format" in keys and str(data["format"]) != _FORMAT:
                    raise ValueError(
                        f"{path!r} holds a {str(data['format'])!r}, not a {_FORMAT!r}"
                    )
                W1 = np.array(data["W1"])
                W2 = np.array(data["W2"])
        except ValueError as exc:
            if "convexrelu" in str(exc):
                raise
            raise ValueError(f"could not read model file {path!r}: {exc}") from None
        except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
            raise ValueError(
                f"could not read model file {path!r}: not a valid .npz file ({type(exc).__name__}: {exc})"
            ) from None
        try:
            return cls(W1, W2)
        except ValueError as exc:
            raise ValueError(f"model file {path!r} holds invalid weights: {exc}") from None

    # ------------------------------------------------------------------ PyTorch
    def to_torch(self, dtype=None):
        """A PyTorch ``nn.Sequential(Linear(d, m, bias=False), ReLU(), Linear(m, c, bias=False))``.

        Needs the optional ``torch`` extra. ``dtype`` defaults to ``torch.float64`` so
        that the exported model computes the same function to round-off.
        """
        torch = _import_torch()
        dtype = torch.float64 if dtype is None else dtype
        d, m, c = self.n_features, self.n_neurons, self.n_outputs
        model = torch.nn.Sequential(
            torch.nn.Linear(d, m, bias=False, dtype=dtype),
            torch.nn.ReLU(),
            torch.nn.Linear(m, c, bias=False, dtype=dtype),
        )
        with torch.no_grad():
            model[0].weight.copy_(torch.tensor(np.array(self._W1.T), dtype=dtype))
            model[2].weight.copy_(torch.tensor(np.array(self._W2.T), dtype=dtype))
        return model

    @classmethod
    def from_torch(cls, model) -> "TwoLayerReLU":
        """Read a PyTorch two-layer ReLU network: ``Linear -> ReLU -> Linear``, no biases.

        Accepts an ``nn.Sequential`` of exactly those three modules (e.g. one trained by
        SGD or Adam) so that it can be passed to :func:`convexrelu.certify`. Biases are
        refused rather than dropped: the paper's model has none (append a constant
        column to ``X`` to model a first-layer bias).
        """
        torch = _import_torch()
        layers = list(model.children()) if isinstance(model, torch.nn.Module) else None
        if (
            layers is None
            or len(layers) != 3
            or not isinstance(layers[0], torch.nn.Linear)
            or not isinstance(layers[1], torch.nn.ReLU)
            or not isinstance(layers[2], torch.nn.Linear)
        ):
            raise ValueError(
                "model must be an nn.Sequential(Linear, ReLU, Linear); got "
                f"{type(model).__name__} with children "
                f"{[type(l).__name__ for l in layers] if layers is not None else 'n/a'}"
            )
        for i in (0, 2):
            if layers[i].bias is not None:
                raise ValueError(
                    f"layer {i} (Linear) has a bias; the two-layer model of the paper has none. "
                    "Use bias=False (append a constant feature to X for a first-layer bias)."
                )
        W1 = layers[0].weight.detach().cpu().double().numpy().T
        W2 = layers[2].weight.detach().cpu().double().numpy().T
        return cls(W1, W2)

    # ------------------------------------------------------------------ misc
    def __repr__(self) -> str:
        return (
            f"TwoLayerReLU(n_features={self.n_features}, n_neurons={self.n_neurons}, "
            f"n_outputs={self.n_outputs})"
        )

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, TwoLayerReLU)
            and self._W1.shape == other._W1.shape
            and self._W2.shape == other._W2.shape
            and np.array_equal(self._W1, other._W1)
            and np.array_equal(self._W2, other._W2)
        )

    __hash__ = None  # mutable-looking container semantics: not hashable
