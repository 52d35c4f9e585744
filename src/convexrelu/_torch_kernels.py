r"""The PyTorch back end of :mod:`convexrelu.kernels` (``fit(..., device="cuda")``).

:class:`TorchKernels` computes the kernels on a PyTorch device. What it does, and what
it promises:

* **Data moved once.** A host array handed to a kernel (``X``, ``Y``, the rank-reduced
  rows, the current residual) is copied to the device on first use and kept (least
  recently used first out, at most :attr:`TorchKernels.max_cached` arrays); each copy is
  tied to the host array's identity and a checksum of 64 sampled entries, so an array
  modified in place is copied again. Small arguments (directions, weights) travel on
  every call, and only small results come back, except the predictions (``n x c``).
* **Chunked by memory.** Every kernel works on row blocks sized so that its
  intermediate arrays fit in ``max_memory`` bytes (default: half the device's free memory
  on a CUDA device, 512 MB on the CPU); sums over rows are accumulated in float64. The
  master's thin QR is the tall-skinny one (a QR per block, folded into the running ``R``),
  so ``n = 10^6`` rows never need an ``n x m`` array at once.
* **Precision.** ``dtype="float64"`` (default) computes everything in float64: on the CPU
  the results equal the NumPy back end's to rounding (the tests check 1e-8 on whole
  fits). ``dtype="float32"`` computes only the *searches* in float32: the local moves
  (:meth:`objective_and_gradient`, whose result L-BFGS only uses to move) and the
  heuristic oracle's ascent (:meth:`relu_values`, :meth:`sphere_gradient`, whose answer
  is an estimate anyway). Everything a certificate is built from stays float64: the
  predictions and hence the objective and the residual, the master, the spectral
  bound, and every oracle value that claims to be a bound (a solver calls a bounding
  oracle under :meth:`exact`, the float64 twin of this back end).
* **No silent fallback.** A CUDA device that PyTorch cannot see is an error.
"""

from __future__ import annotations

import collections
import warnings

import numpy as np

from .kernels import AtomSystem, NumpyKernels, gram_spectral_bound, sampled_checksum
from .network import _import_torch

__all__ = ["TorchKernels"]



class TorchKernels:
    """The kernels on a PyTorch ``device`` (see the module docstring)."""

    name = "torch"
    max_cached = 8

    def __init__(self, device="cpu", dtype="float64", max_memory=None, *, _cache=None):
        torch = self._torch = _import_torch()
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device={device!r} is not a PyTorch device: {exc}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for but PyTorch sees no CUDA device "
                             f"(torch {torch.__version__}, CUDA build: {torch.version.cuda})")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: PyTorch sees {torch.cuda.device_count()} CUDA "
                             f"device(s)")
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"device={device!r}: the PyTorch back end runs on 'cpu' or 'cuda'")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
        self.device = dev
        self.dtype = dtype
        self._dt = getattr(torch, dtype)
        self._f64 = torch.float64
        if max_memory is None:
            if dev.type == "cuda":
                free, _ = torch.cuda.mem_get_info(dev)
                max_memory = 0.5 * free
            else:
                max_memory = 512e6
        if not (np.isfinite(max_memory) and max_memory > 0):
            raise ValueError(f"max_memory must be a positive number of bytes; got {max_memory!r}")
        self.max_memory = float(max_memory)
        self._cache = collections.OrderedDict() if _cache is None else _cache

    def __repr__(self) -> str:
        return f"TorchKernels(device={str(self.device)!r}, dtype={self.dtype!r})"

    def exact(self) -> "TorchKernels":
        """The float64 twin of this back end (same device, same cached arrays)."""
        if self.dtype == "float64":
            return self
        return TorchKernels(self.device, "float64", self.max_memory, _cache=self._cache)

    # ----------------------------------------------------------------------------------
    # moving arrays
    # ----------------------------------------------------------------------------------
    def _data(self, a, dtype=None):
        """The device copy of the host array ``a`` (cached; see the module docstring)."""
        torch = self._torch
        dt = self._f64 if dtype is None else dtype
        if isinstance(a, torch.Tensor):
            return a.to(device=self.device, dtype=dt)
        a = np.asarray(a)
        key = (id(a), a.shape, str(dt))
        chk = sampled_checksum(a) if a.dtype.kind == "f" else None
        hit = self._cache.get(key)
        if hit is not None and hit[0] is a and (chk is None or hit[2] == chk or
                                                 (np.isnan(chk) and np.isnan(hit[2]))):
            self._cache.move_to_end(key)
            return hit[1]
        t = self._as_tensor(a).to(device=self.device, dtype=dt)
        self._cache[key] = (a, t, chk)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return t

    def _as_tensor(self, a):
        """A CPU tensor viewing ``a`` (never written to: PyTorch's warning about read-only
        arrays does not apply)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return self._torch.as_tensor(np.ascontiguousarray(a))

    def _small(self, a, dtype=None):
        """A small argument (directions, weights): moved on every call."""
        return self._as_tensor(np.asarray(a, dtype=float)).to(
            device=self.device, dtype=self._f64 if dtype is None else dtype)

    @staticmethod
    def _host(t) -> np.ndarray:
        return t.detach().to("cpu").numpy().astype(float, copy=False)

    def _rows(self, n, width, itemsize=8) -> int:
        """Rows per block when each row holds ``width`` numbers of intermediates."""
        per_row = max(1, int(width)) * itemsize * 3  # the product, its ReLU, one temporary
        return max(1, min(int(n), int(self.max_memory // per_row)))

    def _blocks(self, n, width, itemsize=8):
        step = self._rows(n, width, itemsize)
        for start in range(0, n, step):
            yield slice(start, min(n, start + step))

    # ----------------------------------------------------------------------------------
    # the kernels
    # ----------------------------------------------------------------------------------
    def relu_features(self, X, U):
        torch = self._torch
        Xd, Ud = self._data(X), self._small(U)
        out = np.empty((X.shape[0], U.shape[1]))
        for b in self._blocks(X.shape[0], U.shape[1]):
            out[b] = self._host(torch.relu(Xd[b] @ Ud))
        return out

    def thin_svd(self, A):
        """``A = QR`` (thin), then the SVD of ``R``: ``U = Q U_R`` (float64)."""
        torch = self._torch
        n, d = A.shape
        Ad = self._as_tensor(np.asarray(A, dtype=float)).to(device=self.device, dtype=self._f64)
        if n < d:
            U, s, Vt = torch.linalg.svd(Ad, full_matrices=False)
        else:
            Q, R = torch.linalg.qr(Ad)
            del Ad
            Ur, s, Vt = torch.linalg.svd(R)
            U = Q @ Ur
        return self._host(U), self._host(s), self._host(Vt)

    def equilibrated_gram(self, X):
        torch = self._torch
        n, d = X.shape
        Xd = self._data(X)
        rn = torch.linalg.vector_norm(Xd, dim=1)
        inv = torch.where(rn > 0, 1.0 / torch.where(rn > 0, rn, 1.0), 0.0)
        G = torch.zeros((d, d), dtype=self._f64, device=self.device)
        for b in self._blocks(n, d):
            Nb = Xd[b] * inv[b, None]
            G += Nb.T @ Nb
        col = torch.sqrt(torch.clamp(torch.diagonal(G), min=0.0))
        col = torch.where(col > 0, col, 1.0)
        return self._host(rn), self._host(col), self._host(G / torch.outer(col, col))

    def equilibrated_svd(self, X):
        """Row and column scaling on the device, then a tall-skinny QR over row blocks
        (each block folded into the running ``R``) and the SVD of ``R`` (float64)."""
        torch = self._torch
        n, d = X.shape
        Xd = self._data(X)
        rn = torch.linalg.vector_norm(Xd, dim=1)
        inv = torch.where(rn > 0, 1.0 / torch.where(rn > 0, rn, 1.0), 0.0)
        colsq = torch.zeros(d, dtype=self._f64, device=self.device)
        for b in self._blocks(n, d):
            colsq += torch.sum((Xd[b] * inv[b, None]) ** 2, dim=0)
        col = torch.sqrt(colsq)
        col = torch.where(col > 0, col, 1.0)
        if not bool(torch.any(rn > 0)):
            return self._host(rn), self._host(col), np.zeros(0), np.zeros((0, d))
        R = torch.zeros((0, d), dtype=self._f64, device=self.device)
        for b in self._blocks(n, d):
            R = torch.linalg.qr(torch.cat([R, Xd[b] * inv[b, None] / col]), mode="r")[1]
        _, s, Vt = torch.linalg.svd(R)
        return self._host(rn), self._host(col), self._host(s), self._host(Vt)

    def forward(self, X, W1, W2):
        torch = self._torch
        Xd, W1d, W2d = self._data(X), self._small(W1), self._small(W2)
        out = np.empty((X.shape[0], W2.shape[1]))
        for b in self._blocks(X.shape[0], W1.shape[1] + W2.shape[1]):
            out[b] = self._host(torch.relu(Xd[b] @ W1d) @ W2d)
        return out

    def objective_and_gradient(self, X, Y, beta, W1, W2, loss=None):
        torch = self._torch
        dt = self._dt
        item = 4 if dt == torch.float32 else 8
        Xd, Yd = self._data(X, dt), self._data(Y, dt)
        W1d, W2d = self._small(W1, dt), self._small(W2, dt)
        d, m = W1.shape
        c = W2.shape[1]
        val = 0.0
        gW1 = torch.zeros((d, m), dtype=self._f64, device=self.device)
        gW2 = torch.zeros((m, c), dtype=self._f64, device=self.device)
        for b in self._blocks(X.shape[0], 2 * m + 2 * c, item):
            Zp = Xd[b] @ W1d
            A = torch.relu(Zp)
            Fp = A @ W2d
            if loss is None:
                R = Fp - Yd[b]
                val += 0.5 * float(torch.sum(R.to(self._f64) ** 2))
            else:
                Fv = Fp.detach().requires_grad_(True)
                with torch.enable_grad():
                    v = loss.torch_value(Fv, Yd[b])
                    (R,) = torch.autograd.grad(v, Fv)
                val += float(v.detach())
            gW2 += (A.T @ R).to(self._f64)
            gW1 += (Xd[b].T @ ((R @ W2d.T) * (Zp > 0))).to(self._f64)
        val += 0.5 * beta * (float(np.vdot(W1, W1)) + float(np.vdot(W2, W2)))
        gW1 = self._host(gW1) + beta * W1
        gW2 = self._host(gW2) + beta * W2
        return val, gW1, gW2

    def relu_values(self, Xr, Z, U):
        torch = self._torch
        dt = self._dt
        item = 4 if dt == torch.float32 else 8
        Xd, Zd, Ud = self._data(Xr, dt), self._data(Z, dt), self._small(U, dt)
        G = torch.zeros((Z.shape[1], U.shape[0]), dtype=self._f64, device=self.device)
        for b in self._blocks(Xr.shape[0], U.shape[0], item):
            G += (Zd[b].T @ torch.relu(Xd[b] @ Ud.T)).to(self._f64)
        return self._host(torch.sum(G * G, dim=0))

    def sphere_gradient(self, Xr, Z, U):
        torch = self._torch
        dt = self._dt
        item = 4 if dt == torch.float32 else 8
        Xd, Zd, Ud = self._data(Xr, dt), self._data(Z, dt), self._small(U, dt)
        q = U.shape[0]
        blocks = list(self._blocks(Xr.shape[0], q, item))
        M = torch.zeros((Z.shape[1], q), dtype=self._f64, device=self.device)
        kept = None
        for b in blocks:  # Z^T (act * A), summed over rows
            A = Xd[b] @ Ud.T
            M += (Zd[b].T @ torch.relu(A)).to(self._f64)
            kept = A if len(blocks) == 1 else None  # one block: reused below
        Md = M.to(dt)
        grad = torch.zeros((Xr.shape[1], q), dtype=self._f64, device=self.device)
        for b in blocks:
            act = ((Xd[b] @ Ud.T) if kept is None else kept) > 0
            grad += (Xd[b].T @ (act * (Zd[b] @ Md))).to(self._f64)
        grad = self._host(grad.T)
        grad -= np.sum(grad * U, axis=1, keepdims=True) * U
        return grad

    def spectral_norm(self, X):
        r""":math:`\sqrt{\lambda_{\max}(X^\top X)}` (or of :math:`XX^\top`, the smaller) in
        float64, with an outward margin for the rounding of the Gram matrix
        (:math:`2(k + 2)\epsilon\|X\|_F^2`, ``k`` the summed dimension) and of its
        eigenvalue (:math:`4 p\,\epsilon\lambda`, ``p`` its order)."""
        torch = self._torch
        n, d = X.shape
        if n == 0 or d == 0:
            return 0.0
        Xd = self._data(X)
        if d <= n:
            G = torch.zeros((d, d), dtype=self._f64, device=self.device)
            for b in self._blocks(n, d):
                G += Xd[b].T @ Xd[b]
            k, p = n, d
        else:
            G = Xd @ Xd.T
            k, p = d, n
        fro2 = float(torch.trace(G))
        lam = float(torch.linalg.eigvalsh(G)[-1])
        return gram_spectral_bound(lam, fro2, k, p)

    def atom_system(self, X, U, Y):
        torch = self._torch
        Xd, Yd, Ud = self._data(X), self._data(Y), self._small(U)
        n, m = X.shape[0], U.shape[1]
        c = Y.shape[1]
        G = torch.zeros((m, m), dtype=self._f64, device=self.device)
        B = torch.zeros((m, c), dtype=self._f64, device=self.device)
        for b in self._blocks(n, m):
            H = torch.relu(Xd[b] @ Ud)
            G += H.T @ H
            B += H.T @ Yd[b]
        yy = float(torch.sum(Yd * Yd))
        Gh = self._host(G)

        def residual_form(keep):
            Uk = Ud if keep is None else Ud[:, torch.as_tensor(np.asarray(keep), device=self.device)]
            mk = Uk.shape[1]
            if n <= mk:
                return self._host(torch.relu(Xd @ Uk)), np.asarray(Y, dtype=float)
            # tall-skinny QR: each block's rows folded into the running (R, Q^T Y)
            R = torch.zeros((0, mk), dtype=self._f64, device=self.device)
            QtY = torch.zeros((0, c), dtype=self._f64, device=self.device)
            for b in self._blocks(n, mk + c):
                H = torch.cat([R, torch.relu(Xd[b] @ Uk)])
                Yb = torch.cat([QtY, Yd[b]])
                Q, R = torch.linalg.qr(H)
                QtY = Q.T @ Yb
            return self._host(R), self._host(QtY)

        return AtomSystem(Gh, self._host(B), yy, np.diag(Gh).copy(), n, residual_form)

    def relu_correlations(self, X, U, R):
        torch = self._torch
        Xd, Ud = self._data(X), self._small(U)
        Rd = self._data(R) if R.shape[0] == X.shape[0] and R.size > 10_000 else self._small(R)
        k = U.shape[1]
        RA = torch.zeros((R.shape[1], k), dtype=self._f64, device=self.device)
        na = torch.zeros(k, dtype=self._f64, device=self.device)
        for b in self._blocks(X.shape[0], k):
            A = torch.relu(Xd[b] @ Ud)
            RA += Rd[b].T @ A
            na += torch.sum(A * A, dim=0)
        return self._host(RA), self._host(na)

    def activation(self, X, U):
        Xd, Ud = self._data(X), self._small(U)
        out = np.empty((X.shape[0], U.shape[1]), dtype=bool)
        for b in self._blocks(X.shape[0], U.shape[1]):
            out[b] = ((Xd[b] @ Ud) > 0).to("cpu").numpy()
        return out

    def pattern_groups(self, X, U):
        torch = self._torch
        Xd, Ud = self._data(X), self._small(U)
        pats = torch.cat([((Xd[b] @ Ud) >= 0).T for b in self._blocks(X.shape[0], U.shape[1])],
                         dim=1)  # (m, n) bool
        _, inv = torch.unique(pats, dim=0, return_inverse=True)
        return inv.to("cpu").numpy().astype(np.int64)

    # small O(n d) host reductions: on the host array itself (no device round trip)
    row_norms = NumpyKernels.row_norms
    column_norms = NumpyKernels.column_norms
    take_rows = NumpyKernels.take_rows

    def cone_signs(self, X, u_ref, A, tol):
        torch = self._torch
        Xd = self._data(X)
        ref, Ad = self._small(np.reshape(u_ref, (-1, 1))), self._small(A)
        k = A.shape[1]
        pos = torch.ones(k, dtype=torch.bool, device=self.device)
        neg = torch.ones(k, dtype=torch.bool, device=self.device)
        for b in self._blocks(X.shape[0], k + 2):
            Xb = Xd[b]
            S = torch.where((Xb @ ref) >= 0, 1.0, -1.0).to(self._f64)
            XA = S * (Xb @ Ad)
            slack = (tol * torch.linalg.vector_norm(Xb, dim=1))[:, None]
            pos &= torch.all(XA >= -slack, dim=0)
            neg &= torch.all(-XA >= -slack, dim=0)
        pos, neg = pos.to("cpu").numpy(), neg.to("cpu").numpy()
        return np.where(pos, 1, np.where(neg, -1, 0))
