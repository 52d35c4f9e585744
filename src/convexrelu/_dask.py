r"""Data-parallel fits on Dask: ``fit(X, Y, beta)`` with ``X`` a ``dask.array``.

Everything the default solver needs from the rows is a sum over rows: the loss and its
gradient, the oracle's values and ascent gradients at a batch of directions, the master's
Gram matrices, the certificate's norms. With ``X`` a Dask array chunked by rows, each
of these is a map-reduce over the row blocks (:class:`DaskKernels`, the kernels of
:mod:`convexrelu.kernels` chosen whenever their data argument is a Dask array), run by
whatever Dask scheduler is active: a ``dask.distributed`` ``Client`` (a cluster) when one
exists, else Dask's local threads. Only small arrays travel per call (directions and
weights, ``d m + m c`` numbers) and only small results come back, with two exceptions
that cost ``O(n c)``: the predictions (the client holds ``n x c`` arrays: predictions,
targets, the residual) and the residual sent back to the workers once per oracle call
(kept there, as a persisted Dask array, while it is in use).

What needs all rows in one place is refused with an error that says so, never done
silently in memory: exact pattern enumeration (the exact oracle), branch and bound, the
SDP bound, SCIP. With Dask input the oracle is the heuristic one and the proven bound
is the spectral bound :math:`\Omega(Z) \le \|Z\|_2\|X\|_2` (:math:`\|X\|_2` from the
``d x d`` Gram matrix, a sum over rows); the certificate says so (``bound_source``).

:class:`DaskProblem` is the :class:`~convexrelu.Problem` of Dask data: ``X`` is
validated by one pass (finite, not huge, real), rechunked to one column block, and
persisted on the workers (``persist=False`` keeps it lazy: every pass recomputes it, e.g.
from a generator); the rank reduction is the SVD of the ``R`` of a tall-skinny QR
(``dask.array.linalg.tsqr``); the targets are brought to the client (``n x c``).
"""

from __future__ import annotations

import numpy as np

import math

from .kernels import AtomSystem, NumpyKernels, sampled_checksum
from .losses import get_loss
from .patterns import Reduction
from .problem import Problem, _Derived, prepare_targets

__all__ = ["is_dask", "require_dask", "DaskProblem", "DaskKernels"]

_NP = NumpyKernels()


def is_dask(a) -> bool:
    """Whether ``a`` is a Dask collection (checked by type, without importing Dask)."""
    return type(a).__module__.split(".")[0] == "dask"


def require_dask():
    """``dask.array``, or an ImportError that names the extra."""
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError("Dask input needs Dask: pip install 'convexrelu[dask]' "
                          "(dask[array,distributed])") from None
    return dask, da


class DaskKernels:
    """The kernels as map-reduces over the row blocks of a Dask ``X`` (see the module)."""

    name = "dask"
    device = None
    dtype = "float64"
    max_cached = 4

    def __init__(self):
        self._dask, self._da = require_dask()
        self._cache: dict = {}

    def exact(self):
        return self

    # --------------------------------------------------------------- moving arrays
    def _blocks(self, X):
        """The row blocks of ``X`` as delayed objects (one column block)."""
        if len(X.chunks[1]) != 1:
            X = X.rechunk({1: -1})
        return list(X.to_delayed().ravel()), X.chunks[0]

    def _like(self, A, X):
        """A host array with ``X``'s rows, as blocks aligned with ``X``'s (sent to the
        workers once and kept while ``A`` is the same object, unmodified)."""
        if is_dask(A):
            return self._blocks(A.rechunk({0: X.chunks[0]}))[0]
        A = np.asarray(A, dtype=float)
        key = (id(A), A.shape, X.name)
        chk = sampled_checksum(A)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is A and hit[2] == chk:
            return hit[1]
        Ad = self._da.from_array(A, chunks=(X.chunks[0],) + A.shape[1:]).persist()
        blocks = list(Ad.to_delayed().ravel())
        self._cache[key] = (A, blocks, chk, Ad)
        while len(self._cache) > self.max_cached:
            self._cache.pop(next(iter(self._cache)))
        return blocks

    def _sum(self, parts):
        """The sum of the per-block results (tuples summed elementwise)."""
        (vals,) = self._dask.compute(parts)
        first = vals[0]
        if isinstance(first, tuple):
            return tuple(sum(v[i] for v in vals) for i in range(len(first)))
        return sum(vals)

    def _map(self, fn, X, *row_args, small=()):
        """``fn(X_block, *row_arg_blocks, *small)`` for every block, delayed."""
        delayed = self._dask.delayed
        Xb, _ = self._blocks(X)
        rows = [self._like(a, X) for a in row_args]
        return [delayed(fn, pure=False)(xb, *[r[i] for r in rows], *small)
                for i, xb in enumerate(Xb)]

    def _concat(self, parts, axis=0):
        (vals,) = self._dask.compute(parts)
        return np.concatenate(vals, axis=axis)

    # --------------------------------------------------------------- the kernels
    def relu_features(self, X, U):
        return self._concat(self._map(_NP.relu_features, X, small=(U,)))

    def thin_svd(self, A):
        """The thin SVD of a tall Dask array (``dask.array.linalg.svd``, tall-skinny QR):
        ``U`` stays a Dask array (``n x d``), ``s`` and ``Vt`` are computed."""
        U, s, Vt = self._da.linalg.svd(A.rechunk({1: -1}))
        s, Vt = self._dask.compute(s, Vt)
        return U, np.asarray(s), np.asarray(Vt)

    def forward(self, X, W1, W2):
        return self._concat(self._map(_NP.forward, X, small=(W1, W2)))

    def objective_and_gradient(self, X, Y, beta, W1, W2, loss=None):
        parts = self._map(_block_objective, X, Y, small=(W1, W2, loss))
        val, gW1, gW2 = self._sum(parts)
        val += 0.5 * beta * (float(np.vdot(W1, W1)) + float(np.vdot(W2, W2)))
        return val, gW1 + beta * W1, gW2 + beta * W2

    def relu_values(self, Xr, Z, U):
        G = self._sum(self._map(_block_ZtA, Xr, Z, small=(U,)))  # (c, q)
        return np.einsum("cq,cq->q", G, G)

    def sphere_gradient(self, Xr, Z, U):
        M = self._sum(self._map(_block_ZtA, Xr, Z, small=(U,)))  # Z^T (X_r U^T)_+, (c, q)
        grad = self._sum(self._map(_block_sphere, Xr, Z, small=(U, M))).T  # (q, r)
        grad -= np.sum(grad * U, axis=1, keepdims=True) * U
        return grad

    def gram(self, X):
        """:math:`X^\\top X` (``d x d``), summed over the blocks."""
        return self._sum(self._map(_block_gram, X))

    def spectral_norm(self, X):
        r""":math:`\sqrt{\lambda_{\max}(X^\top X)}` with the outward margin of
        :meth:`convexrelu._torch_kernels.TorchKernels.spectral_norm` (Gram rounding
        :math:`2(n + 2)\epsilon\|X\|_F^2`, eigenvalue :math:`4 d \epsilon\lambda`)."""
        n, d = X.shape
        G = self.gram(X)
        eps = np.finfo(float).eps
        lam = float(np.linalg.eigvalsh(G)[-1])
        lam = max(lam, 0.0) * (1.0 + 4.0 * d * eps) + 2.0 * (n + 2) * eps * float(np.trace(G))
        return float(np.sqrt(lam)) * (1.0 + 4.0 * eps)

    def atom_system(self, X, U, Y):
        G, B, yy, colsq = self._sum(self._map(_block_system, X, Y, small=(U,)))
        n = X.shape[0]

        def residual_form(keep):
            Uk = U if keep is None else U[:, keep]
            if n <= Uk.shape[1]:
                return self.relu_features(X, Uk), np.asarray(Y, dtype=float)
            # tall-skinny QR of H = (X U)_+: the R of each block (Q is never formed: it is
            # n x m), folded on the client; then c with R^T c = H^T Y (= B, in the range of
            # R^T), so that ||R V - c||^2 = ||H V - Y||^2 + const exactly
            (Rs,) = self._dask.compute(self._map(_block_R, X, small=(Uk,)))
            R = np.linalg.qr(np.vstack(Rs), mode="r")
            Bk = B if keep is None else B[keep]
            c = np.linalg.lstsq(R.T, Bk, rcond=None)[0]
            return R, c

        return AtomSystem(G, B, yy, colsq, n, residual_form)

    def relu_correlations(self, X, U, R):
        return self._sum(self._map(_block_corr, X, R, small=(U,)))

    def activation(self, X, U):
        return self._concat(self._map(_NP.activation, X, small=(U,)))

    def pattern_groups(self, X, U):
        # exact: two columns share a pattern iff they share one on every block
        (ids,) = self._dask.compute(self._map(_NP.pattern_groups, X, small=(U,)))
        _, inv = np.unique(np.vstack(ids).T, axis=0, return_inverse=True)
        return np.ravel(inv)

    def cone_signs(self, X, u_ref, A, tol):
        (parts,) = self._dask.compute(self._map(_block_cone, X, small=(u_ref, A, tol)))
        pos = np.all([p[0] for p in parts], axis=0)
        neg = np.all([p[1] for p in parts], axis=0)
        return np.where(pos, 1, np.where(neg, -1, 0))

    def row_norms(self, X):
        return self._concat(self._map(_NP.row_norms, X))

    def column_norms(self, X):
        return np.sqrt(self._sum(self._map(_block_colsq, X)))

    def take_rows(self, X, idx):
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            return np.zeros((0, X.shape[1]))
        return np.asarray(X[np.sort(idx)].compute())[np.argsort(np.argsort(idx))]


# ------------------------------------------------------------------- per-block parts
#: rows per slice inside one block's task, so that a task's temporaries (rows x q for q
#: directions) stay small whatever the block size
_SLICE = 32768


def _slices(n):
    return [slice(s, min(n, s + _SLICE)) for s in range(0, max(n, 1), _SLICE)]


def _block_R(Xb, U):
    Rs = [np.linalg.qr(np.maximum(Xb[s] @ U, 0.0), mode="r") for s in _slices(Xb.shape[0])]
    return np.linalg.qr(np.vstack(Rs), mode="r") if len(Rs) > 1 else Rs[0]


def _block_objective(Xb, Yb, W1, W2, loss):
    # one block's share of eq. 5 and its gradient: NumPy's kernel without the penalty
    parts = [_NP.objective_and_gradient(Xb[s], Yb[s], 0.0, W1, W2, loss)
             for s in _slices(Xb.shape[0])]
    return tuple(sum(p[i] for p in parts) for i in range(3))


def _block_ZtA(Xb, Zb, U):
    return sum(Zb[s].T @ np.maximum(Xb[s] @ U.T, 0.0) for s in _slices(Xb.shape[0]))


def _block_sphere(Xb, Zb, U, M):
    return sum(Xb[s].T @ (((Xb[s] @ U.T) > 0) * (Zb[s] @ M))  # (r, q)
               for s in _slices(Xb.shape[0]))


def _block_gram(Xb):
    return Xb.T @ Xb


def _block_system(Xb, Yb, U):
    out = None
    for s in _slices(Xb.shape[0]):
        H = np.maximum(Xb[s] @ U, 0.0)
        part = (H.T @ H, H.T @ Yb[s], float(np.vdot(Yb[s], Yb[s])), np.einsum("nm,nm->m", H, H))
        out = part if out is None else tuple(a + b for a, b in zip(out, part))
    return out


def _block_corr(Xb, Rb, U):
    out = None
    for s in _slices(Xb.shape[0]):
        A = np.maximum(Xb[s] @ U, 0.0)
        part = (Rb[s].T @ A, np.einsum("nk,nk->k", A, A))
        out = part if out is None else (out[0] + part[0], out[1] + part[1])
    return out


def _block_cone(Xb, u_ref, A, tol):
    S = np.where((Xb @ u_ref) >= 0, 1.0, -1.0)
    XA = S[:, None] * (Xb @ A)
    slack = (tol * np.linalg.norm(Xb, axis=1))[:, None]
    return np.all(XA >= -slack, axis=0), np.all(-XA >= -slack, axis=0)


def _block_colsq(Xb):
    return np.einsum("nd,nd->d", Xb, Xb)


# ------------------------------------------------------------------- the problem
_NEEDS_ROWS = ("it needs all rows in one place: pass X.compute() (a NumPy array) to use "
               "it, or use the heuristic oracle (oracle='auto')")


class DaskProblem(Problem):
    """A :class:`~convexrelu.Problem` whose ``X`` is a Dask array (see the module).

    Parameters
    ----------
    X : dask.array of shape (n, d)
        Real values, chunked by rows (column chunks are merged: one column block).
    Y : array or dask.array of shape (n, c) or (n,), optional
        Brought to the client as a NumPy array (``n x c``).
    loss : str or Loss, default "squared"
    persist : {"auto", True, False}, default "auto"
        Keep ``X`` in the workers' memory (True), or recompute it at every pass (False:
        e.g. blocks generated or read on the workers). ``"auto"``: persist when a
        ``dask.distributed`` client is active and ``X`` takes at most a third of its
        workers' memory limits together (else a worker that holds its share of ``X`` has
        no room left for the passes' temporaries, and spills or restarts).
    """

    in_memory = False

    def __init__(self, X, Y=None, loss="squared", *, persist="auto"):
        _, da = require_dask()
        self.loss = get_loss(loss)
        if not is_dask(X) or not hasattr(X, "chunks") or X.ndim != 2:
            raise ValueError(f"X must be a 2-D dask.array; got {type(X).__name__} with "
                             f"shape {getattr(X, 'shape', None)}")
        if np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError("complex data not supported: X must be real-valued")
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)
                or X.dtype == bool):
            raise ValueError(f"X must be a numeric array; got dtype {X.dtype}")
        if any(math.isnan(v) for v in X.shape):
            raise ValueError("X has unknown chunk sizes (NaN in its shape): call "
                             "X.compute_chunk_sizes() first")
        n, d = (int(v) for v in X.shape)
        if n == 0 or d == 0:
            raise ValueError(f"X must have at least one sample and one feature; got shape {X.shape}")
        X = X.astype(float).rechunk({1: -1})
        big, finite = _dask_compute(da.nanmax(da.where(da.isfinite(X), da.fabs(X), np.nan)),
                                    da.isfinite(X).all())
        if not bool(finite):
            raise ValueError("X must contain only finite values; found NaN or inf")
        limit = min(1e150, 0.1 * float(np.sqrt(np.finfo(float).max / (n * d))))
        if float(big) > limit:
            raise ValueError(f"X has values as large as {float(big):.3g} in absolute value; "
                             f"values above {limit:.3g} overflow float64 when squared and "
                             f"summed in the solvers. Rescale X")
        if persist == "auto":
            persist = _room_to_persist(X.nbytes)
        self.X = X.persist() if persist else X
        if Y is None:
            self.Y = None
        else:
            Yh = Y.compute() if is_dask(Y) else Y
            from ._validation import check_Y

            if getattr(self.loss, "name", "squared") == "squared" or \
                    not hasattr(self.loss, "prepare_targets"):
                self.Y = check_Y(Yh, n)
            else:
                self.Y = prepare_targets(self.loss, Yh, n)
        self._data = _Derived()

    def _copy(self) -> "DaskProblem":
        new = object.__new__(DaskProblem)
        new.__dict__.update(self.__dict__)
        return new

    @property
    def fingerprint(self) -> str:
        """The Dask array's name (a token of its graph: the same array, the same name)."""
        return f"dask:{self.X.name}"

    @property
    def reduction(self) -> Reduction:
        """The rank reduction: rows normalised, columns equilibrated (as
        :func:`~convexrelu.patterns.reduce_rank`), then ``N = QR`` (tall-skinny QR over
        the blocks) and the SVD of ``R``: the singular values and right singular vectors
        of ``N``. No whitening is kept (nothing is enumerated on Dask data)."""
        dd = self._data
        if dd.reduction is None:
            _, da = require_dask()
            X = self.X
            n, d = X.shape
            rn = da.sqrt(da.einsum("nd,nd->n", X, X))
            Nr = X / da.where(rn > 0, rn, 1.0)[:, None]
            col = np.sqrt(np.asarray(da.einsum("nd,nd->d", Nr, Nr).compute()))
            col = np.where(col > 0, col, 1.0)
            if not np.any(col != 1.0) and float(_dask_compute(rn.max())[0]) == 0.0:
                dd.reduction = Reduction(np.zeros((d, 0)), 0, None)
                return dd.reduction
            _, R = da.linalg.tsqr(Nr / col)
            _, s, Vt = np.linalg.svd(np.asarray(R.compute()))
            rtol = max(n, d) * np.finfo(float).eps
            r = int(np.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0
            if r == 0:
                dd.reduction = Reduction(np.zeros((d, 0)), 0, None)
            elif r == d:
                dd.reduction = Reduction(np.eye(d), d, None)
            else:
                M = Vt[:r].T * col[:, None]
                M /= np.linalg.norm(M, axis=0)
                Q, _ = np.linalg.qr(M)
                dd.reduction = Reduction(Q, r, None)
        return dd.reduction

    @property
    def Xr(self):
        dd = self._data
        if dd.Xr is None:
            r = self.reduction
            dd.Xr = self.X if r.rank == self.d and np.array_equal(r.basis, np.eye(self.d)) \
                else (self.X @ r.basis).persist()
        return dd.Xr

    @property
    def residual(self) -> float:
        r""":math:`\|X - X V_r V_r^\top\|_2` from the ``d x d`` Gram matrix, with an
        outward margin for its rounding."""
        dd = self._data
        if dd.residual is None:
            basis = self.basis
            n, d = self.X.shape
            if basis.shape[1] == d:
                dd.residual = 0.0
            else:
                G = DaskKernels().gram(self.X)
                P = np.eye(d) - basis @ basis.T
                lam = float(np.linalg.eigvalsh(P @ G @ P)[-1])
                eps = np.finfo(float).eps
                lam = max(lam, 0.0) + 2.0 * (n + d + 2) * eps * float(np.trace(G))
                dd.residual = float(np.sqrt(lam))
        return dd.residual

    @property
    def zero_rows(self) -> np.ndarray:
        dd = self._data
        if dd.zero is None:
            _, da = require_dask()
            X, basis = self.X, self.basis
            nx = da.sqrt(da.einsum("nd,nd->n", X, X))
            if basis.shape[1]:
                Xb = X @ basis
                nr = da.sqrt(da.einsum("nr,nr->n", Xb, Xb))
                dd.zero = np.asarray(((nx == 0) | (nr <= 1e-13 * nx)).compute())
            else:
                dd.zero = np.ones(X.shape[0], dtype=bool)
        return dd.zero

    def patterns(self, **kwargs):
        raise ValueError(f"exact sign-pattern enumeration is not available for Dask data: "
                         f"{_NEEDS_ROWS}")

    def sample_patterns(self, n_samples: int, random_state=None):
        raise ValueError(f"sampled sign patterns are not formed for Dask data: {_NEEDS_ROWS}")

    @property
    def whitening(self):
        raise ValueError(f"the copositive solvers' whitening is not available for Dask data: "
                         f"{_NEEDS_ROWS}")

    @property
    def gram_error(self):
        raise ValueError(f"the whitened-data test is not available for Dask data: {_NEEDS_ROWS}")

    def with_basis(self, basis, rank):
        if basis.shape == self.basis.shape and np.array_equal(basis, self.basis):
            return self
        raise ValueError("a Dask problem keeps its own rank reduction")


def _dask_compute(*xs):
    dask, _ = require_dask()
    return dask.compute(*xs)


def _room_to_persist(nbytes) -> bool:
    """Whether a ``dask.distributed`` client is active and ``nbytes`` fit in a third of
    its workers' memory limits together."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return False
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info()["workers"].values()]
    return bool(limits) and all(limits) and nbytes <= sum(limits) / 3.0
