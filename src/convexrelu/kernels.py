r"""The dense kernels: the few array operations every algorithm spends its time in.

Everything heavy in the default solver goes through these functions, so that a back end
(PyTorch, on a GPU or on the CPU) can replace them without touching the algorithms:

=============================  ===========================================================
:func:`relu_features`          :math:`(X U)_+`: the atoms' columns (forward pass, layer 1)
:func:`thin_svd`               the SVD of the rank reduction (once per problem)
:func:`forward`                :math:`(X W_1)_+ W_2`: the network's predictions
:func:`objective_and_gradient` eq. 5 (or eq. 76 for another loss) and its gradient in
                               :math:`(W_1, W_2)`: the local moves (L-BFGS)
:func:`relu_values`            :math:`\|Z^\top (X_r u)_+\|^2` for many directions at once:
                               the oracles' batched evaluations
:func:`sphere_gradient`        the tangent gradient of those values: the oracles' ascent
:func:`spectral_norm`          an upper bound on :math:`\|X\|_2`: the spectral bound
:func:`atom_system`            :math:`H^\top H`, :math:`H^\top Y` and the thin QR of
                               :math:`H = (XU)_+`: the restricted master's data
:func:`relu_correlations`      :math:`R^\top (XU)_+` and the columns' squared norms: the
                               first output step of new atoms
:func:`activation`             :math:`X U > 0`: sign patterns of a few directions
:func:`pattern_groups`         which directions share a sign pattern (merging atoms)
:func:`cone_signs`             whether directions keep another's sign pattern (merging)
=============================  ===========================================================

**Back ends.** The functions above dispatch to the back end active in the current
context (a :mod:`contextvars` variable, the way scikit-learn's ``config_context`` works):
:class:`NumpyKernels` unless a solve runs inside :func:`use_backend`. ``fit(...,
device="cuda")`` (or ``"cpu"``) runs the default solver inside ``use_backend(device)``,
whose :class:`~convexrelu._torch_kernels.TorchKernels` holds the large arrays (``X``,
``Y``, the rank-reduced rows, the current residual) on the device, moved there once each
and kept while they are in use; per call only the small arrays (directions, weights:
``d m + m c`` numbers) travel, and only small results come back, except the predictions
(``n x c``), which the certificate evaluates on the host in float64.

Arrays handed to the kernels inside a back-end context must not be modified in place
while the context is active (a device copy could go stale; a sampled checksum catches
the common cases and refreshes the copy).
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

__all__ = ["relu_features", "forward", "objective_and_gradient", "relu_values",
           "sphere_gradient", "spectral_norm", "atom_system", "relu_correlations",
           "activation", "pattern_groups", "cone_signs", "thin_svd", "row_norms",
           "column_norms", "take_rows", "AtomSystem", "NumpyKernels",
           "use_backend", "get_backend", "make_backend"]


class AtomSystem:
    r"""The restricted master's data for atoms :math:`H = (XU)_+` (``n x m``) and targets
    ``Y``: ``G`` :math:`= H^\top H`, ``B`` :math:`= H^\top Y`, ``yy`` :math:`= \|Y\|^2`,
    ``colsq`` (the columns' squared norms), ``n``; :meth:`residual_form` gives the
    interior point's residual rows for a subset of the atoms. Built by
    :func:`atom_system` (on the back end's device) or :meth:`from_features` (from ``H``)."""

    def __init__(self, G, B, yy, colsq, n, residual_form):
        self.G, self.B, self.yy, self.colsq, self.n = G, B, float(yy), colsq, int(n)
        self._residual_form = residual_form

    @property
    def m(self) -> int:
        return self.G.shape[0]

    @classmethod
    def from_features(cls, H, Y) -> "AtomSystem":
        """From the atoms' columns ``H`` themselves (a host array)."""
        H = np.asarray(H, dtype=float)
        Y = np.asarray(Y, dtype=float)

        def residual_form(keep):
            Hk = H if keep is None else H[:, keep]
            if Hk.shape[0] > Hk.shape[1]:
                Q, R = np.linalg.qr(Hk)
                return R, Q.T @ Y
            return Hk, Y

        G = H.T @ H
        return cls(G, H.T @ Y, float(np.vdot(Y, Y)), np.diag(G).copy(), H.shape[0], residual_form)

    def subset(self, keep) -> "AtomSystem":
        """The system of the atoms ``keep`` (a boolean mask or indices)."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep)
        parent = self._residual_form
        base = getattr(self, "_keep", None)
        full = idx if base is None else base[idx]
        out = AtomSystem(self.G[np.ix_(idx, idx)], self.B[idx], self.yy, self.colsq[idx], self.n,
                         parent)
        out._keep = full
        return out

    def residual_form(self):
        r"""``(A, b)`` with :math:`\|HV - Y\|^2 = \|AV - b\|^2 + \text{const}` and the fewest
        rows: the thin QR's ``(R, Q^\top Y)`` when ``n > m``, else ``(H, Y)``."""
        return self._residual_form(getattr(self, "_keep", None))


def gram_rounding(trace: float, k: int) -> float:
    r"""A bound on the rounding error, in norm, of a computed Gram matrix whose products
    sum over ``k`` terms: :math:`2(k + 2)\epsilon\,\mathrm{tr}\,G` (each entry's error is at
    most :math:`\gamma_k` times the product of its two columns' norms)."""
    return 2.0 * (k + 2) * np.finfo(float).eps * trace


def gram_spectral_bound(lam_max: float, trace: float, k: int, p: int) -> float:
    r"""An upper bound on :math:`\|X\|_2` from the largest computed eigenvalue of its
    ``p x p`` Gram matrix (summed over ``k``): the Gram matrix's rounding
    (:func:`gram_rounding`), the eigenvalue's (:math:`4 p \epsilon \lambda`) and the square
    root's, all outward."""
    eps = np.finfo(float).eps
    lam = max(lam_max, 0.0) * (1.0 + 4.0 * p * eps) + gram_rounding(trace, k)
    return float(np.sqrt(lam)) * (1.0 + 4.0 * eps)


def sampled_checksum(a: np.ndarray) -> float:
    """A cheap fingerprint of a host array's contents (64 entries spread over it, weighted
    by position): what the device and Dask back ends tie their copies of an array to."""
    flat = a.reshape(-1)
    if flat.size == 0:
        return 0.0
    idx = np.linspace(0, flat.size - 1, num=min(64, flat.size)).astype(np.int64)
    return float(np.sum(flat[idx] * (1.0 + np.arange(idx.size))))


class NumpyKernels:
    """The kernels on NumPy arrays (the default back end; no other dependency)."""

    name = "numpy"
    device = None
    dtype = "float64"

    def exact(self) -> "NumpyKernels":
        """This back end computing in float64 (itself)."""
        return self

    def relu_features(self, X, U):
        return np.maximum(X @ U, 0.0)

    def thin_svd(self, A):
        return np.linalg.svd(A, full_matrices=False)

    def equilibrated_gram(self, X):
        rn = self.row_norms(X)
        inv = np.where(rn > 0, 1.0 / np.where(rn > 0, rn, 1.0), 0.0)
        G = (X.T * inv) @ (X * inv[:, None])  # rows are scaled by positive factors
        col = np.sqrt(np.maximum(np.diag(G), 0.0))
        col = np.where(col > 0, col, 1.0)
        return rn, col, G / np.outer(col, col)

    def equilibrated_svd(self, X):
        rn = self.row_norms(X)
        live = rn > 0
        N = X[live] / rn[live, None]
        col = self.column_norms(N)
        col = np.where(col > 0, col, 1.0)
        N /= col
        if N.shape[0] == 0:
            return rn, col, np.zeros(0), np.zeros((0, X.shape[1]))
        _, s, Vt = np.linalg.svd(np.linalg.qr(N, mode="r"))
        return rn, col, s, Vt

    def forward(self, X, W1, W2):
        return np.maximum(X @ W1, 0.0) @ W2

    def objective_and_gradient(self, X, Y, beta, W1, W2, loss=None):
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

    def relu_values(self, Xr, Z, U):
        A = np.maximum(Xr @ U.T, 0.0)  # (n, q)
        G = Z.T @ A  # (c, q)
        return np.einsum("cq,cq->q", G, G)

    def sphere_gradient(self, Xr, Z, U):
        A = Xr @ U.T  # (n, q)
        act = A > 0
        grad = (Xr.T @ (act * (Z @ (Z.T @ (act * A))))).T  # (q, r)
        grad -= np.sum(grad * U, axis=1, keepdims=True) * U
        return grad

    def spectral_norm(self, X):
        k, p = max(X.shape), min(X.shape)
        if p <= 200 and k <= 20_000:
            s = float(np.linalg.norm(X, 2))
            return s * (1 + 4 * k * np.finfo(float).eps)
        if p <= 200:
            # a long thin X: the p x p Gram matrix (one pass, no n x p factor), with the
            # same outward margins as the PyTorch kernel: the Gram matrix's rounding
            # (2 (k + 2) eps ||X||_F^2) and its eigenvalue's (4 p eps lambda)
            G = X.T @ X if X.shape[0] >= X.shape[1] else X @ X.T
            return gram_spectral_bound(float(np.linalg.eigvalsh(G)[-1]), float(np.trace(G)), k, p)
        from scipy.sparse.linalg import svds

        s = svds(X, k=1, return_singular_vectors=False, tol=0, random_state=0)
        return float(s[0]) * (1 + 1e-12)  # ARPACK converges from below: a hair of margin

    def atom_system(self, X, U, Y):
        return AtomSystem.from_features(np.maximum(X @ U, 0.0), Y)

    def relu_correlations(self, X, U, R):
        A = np.maximum(X @ U, 0.0)
        return R.T @ A, np.einsum("nk,nk->k", A, A)

    def activation(self, X, U):
        return (X @ U) > 0

    def pattern_groups(self, X, U):
        pats = (X @ U) >= 0  # (n, m)
        # each column's pattern as bytes (the first row in the highest bit, so that the
        # bytes sort as the patterns do): 10x faster than np.unique(..., axis=0)
        keys = [col.tobytes() for col in np.packbits(pats, axis=0).T]
        rank = {k: i for i, k in enumerate(sorted(set(keys)))}
        return np.fromiter((rank[k] for k in keys), dtype=np.intp, count=len(keys))

    def row_norms(self, X):
        if X.size <= 1_000_000:
            return np.linalg.norm(X, axis=1)
        return np.sqrt(np.einsum("ij,ij->i", X, X))  # one pass, no n x d temporary

    def column_norms(self, X):
        if X.size <= 1_000_000:
            return np.linalg.norm(X, axis=0)
        return np.sqrt(np.einsum("ij,ij->j", X, X))

    def take_rows(self, X, idx):
        return X[np.asarray(idx, dtype=np.int64)]

    def cone_signs(self, X, u_ref, A, tol):
        S = np.where((X @ u_ref) >= 0, 1.0, -1.0)
        XA = S[:, None] * (X @ A)  # (n, k)
        slack = (tol * np.linalg.norm(X, axis=1))[:, None]
        pos = np.all(XA >= -slack, axis=0)
        neg = np.all(-XA >= -slack, axis=0)
        return np.where(pos, 1, np.where(neg, -1, 0))


_NUMPY = NumpyKernels()
_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("convexrelu_kernels", default=None)


_DASK = None


def get_backend(data=None):
    """The back end for ``data``: :class:`~convexrelu._dask.DaskKernels` when it is a Dask
    array (whatever the context: Dask data never reaches NumPy), else the back end
    active in this context (:class:`NumpyKernels` by default)."""
    global _DASK
    if data is not None and type(data).__module__.split(".")[0] == "dask":
        if _DASK is None:
            from ._dask import DaskKernels

            _DASK = DaskKernels()
        return _DASK
    kern = _ACTIVE.get()
    return _NUMPY if kern is None else kern


def make_backend(device=None, dtype="float64", max_memory=None):
    """A back end: ``device=None`` is NumPy; a PyTorch device (``"cpu"``, ``"cuda"``,
    ``"cuda:1"``, a ``torch.device``) is :class:`~convexrelu._torch_kernels.TorchKernels`
    (needs the ``torch`` extra; a CUDA device PyTorch cannot see is an error, never a
    silent move to the CPU). ``dtype``: ``"float64"`` or ``"float32"`` (PyTorch only;
    see :class:`~convexrelu._torch_kernels.TorchKernels` for what runs in float32).
    ``max_memory``: bytes of device memory one kernel call may use for its intermediate
    arrays (default: half the free memory of a CUDA device, 512 MB on the CPU)."""
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
    if device is None:
        if dtype != "float64":
            raise ValueError("dtype='float32' needs a PyTorch device (device='cuda' or 'cpu'); "
                             "the NumPy back end computes in float64")
        return _NUMPY
    from ._torch_kernels import TorchKernels

    return TorchKernels(device, dtype, max_memory)


@contextlib.contextmanager
def use_backend(kernels):
    """Run the block with ``kernels`` (a back end, or None for NumPy) as the active back end."""
    token = _ACTIVE.set(kernels if kernels is not None else _NUMPY)
    try:
        yield get_backend()
    finally:
        _ACTIVE.reset(token)


# --------------------------------------------------------------------------------------
# the dispatching functions (what the algorithms call)
# --------------------------------------------------------------------------------------
def relu_features(X: np.ndarray, U: np.ndarray) -> np.ndarray:
    r""":math:`(X U)_+`, shape ``(n, m)``, for directions ``U`` of shape ``(d, m)``."""
    return get_backend(X).relu_features(X, U)


def thin_svd(A: np.ndarray):
    """The thin SVD ``(U, s, Vt)`` of ``A`` (the rank reduction's one factorisation;
    PyTorch: a QR of ``A`` and the SVD of its ``R``, in float64)."""
    return get_backend(A).thin_svd(A)


def equilibrated_svd(X: np.ndarray):
    r"""``(rn, col, s, Vt)`` for a tall ``X``: its row norms ``rn``, and the column norms
    ``col`` (zeros replaced by 1), singular values and right singular vectors of the
    row-normalised, column-equilibrated :math:`N = D^{-1} X C^{-1}` (zero rows left out),
    without the left factor (a QR of ``N`` and the SVD of its ``R``): the rank reduction
    of large data, where the ``n x d`` left factor is never used."""
    return get_backend(X).equilibrated_svd(X)


def equilibrated_gram(X: np.ndarray):
    r"""``(rn, col, G)``: the row norms of ``X``, the column norms of the row-normalised
    matrix (zeros replaced by 1) and the Gram matrix :math:`G = N^\top N` of
    :math:`N = D^{-1} X C^{-1}` (one pass over ``X``; what :func:`equilibrated_svd` factors,
    squared)."""
    return get_backend(X).equilibrated_gram(X)


def forward(X: np.ndarray, W1: np.ndarray, W2: np.ndarray) -> np.ndarray:
    r""":math:`(X W_1)_+ W_2`, shape ``(n, c)`` (float64 on every back end)."""
    return get_backend(X).forward(X, W1, W2)


def objective_and_gradient(X, Y, beta, W1, W2, loss=None):
    r"""Eq. 5, :math:`\tfrac12\|(XW_1)_+W_2 - Y\|^2 + \tfrac\beta2(\|W_1\|^2 + \|W_2\|^2)` (or
    eq. 76 with ``loss``), and its gradient ``(gW1, gW2)`` (the ReLU's derivative taken as
    0 at 0)."""
    return get_backend(X).objective_and_gradient(X, Y, beta, W1, W2, loss)


def relu_values(Xr: np.ndarray, Z: np.ndarray, U: np.ndarray) -> np.ndarray:
    r""":math:`\|Z^\top (X_r u)_+\|^2` for each row ``u`` of ``U`` (shape ``(q, r)``)."""
    return get_backend(Xr).relu_values(Xr, Z, U)


def sphere_gradient(Xr: np.ndarray, Z: np.ndarray, U: np.ndarray) -> np.ndarray:
    r"""The gradient of :math:`\|Z^\top (X_r u)_+\|^2` at each row ``u`` of ``U`` (unit
    rows), projected on the sphere's tangent space; shape ``(q, r)``."""
    return get_backend(Xr).sphere_gradient(Xr, Z, U)


def spectral_norm(X: np.ndarray) -> float:
    """An upper bound on the largest singular value of ``X`` (NumPy: dense SVD when small,
    else ARPACK with tol 0; PyTorch: the top eigenvalue of the float64 Gram matrix), with
    an outward margin for rounding."""
    return get_backend(X).spectral_norm(X)


def atom_system(X, U, Y) -> AtomSystem:
    r"""The restricted master's data for the atoms :math:`(XU)_+` (:class:`AtomSystem`)."""
    return get_backend(X).atom_system(X, U, Y)


def relu_correlations(X, U, R):
    r"""``(R^T (XU)_+, column norms squared)``: shapes ``(c, k)`` and ``(k,)``."""
    return get_backend(X).relu_correlations(X, U, R)


def activation(X, U) -> np.ndarray:
    r""":math:`XU > 0`, a boolean ``(n, k)`` array (for a few directions)."""
    return get_backend(X).activation(X, U)


def pattern_groups(X, U) -> np.ndarray:
    r"""For each column of ``U``, the index of its group of columns with the same pattern
    :math:`XU \ge 0` (groups numbered in the lexicographic order of the patterns)."""
    return get_backend(X).pattern_groups(X, U)


def cone_signs(X, u_ref, A, tol) -> np.ndarray:
    r"""For each column ``a`` of ``A``: ``1`` when :math:`s_i x_i^\top a \ge -\text{tol}\,\|x_i\|`
    for every row (``s`` the sign pattern :math:`X u_{ref} \ge 0`, as +-1), ``-1`` when
    :math:`-a` satisfies it, else ``0``."""
    return get_backend(X).cone_signs(X, u_ref, A, tol)


def row_norms(X) -> np.ndarray:
    """The rows' Euclidean norms, shape ``(n,)``."""
    return get_backend(X).row_norms(X)


def column_norms(X) -> np.ndarray:
    """The columns' Euclidean norms, shape ``(d,)``."""
    return get_backend(X).column_norms(X)


def take_rows(X, idx) -> np.ndarray:
    """The rows ``idx`` of ``X`` as a host array, in the order given."""
    return get_backend(X).take_rows(X, idx)
