r"""Sign patterns: the cells of the hyperplane arrangement of the rows of ``X``.

A sign pattern is :math:`D = \mathrm{diag}(1[X u \ge 0])` for some direction ``u``. The
patterns of full-dimensional cells suffice everywhere in this package: the closed cells
:math:`\{u : (2D_i - I) X u \ge 0\}` cover the whole space, and on each of them
:math:`(Xu)_+ = D_i X u`. Their number is at most :math:`2r(e(n-1)/r)^r` with
:math:`r = \mathrm{rank}(X)` (paper §2).

Enumeration works in the rank-reduced coordinates :math:`X V_r` of paper App. A.2, so
its cost depends on ``r``, not on ``d``:

* ``r = 1``: two cells;
* ``r = 2``: an angular sweep over the ``2m`` boundary rays of the ``m`` distinct lines;
* ``r >= 3``: every cell of an essential central arrangement is a pointed cone and so has
  an extreme ray, the intersection of ``r - 1`` independent hyperplanes. For each such
  ray the cells around it are enumerated (``2^{r-1}`` of them at a simple ray, a
  recursive enumeration in ``r - 1`` dimensions at a degenerate one) and the results are
  de-duplicated. Cost :math:`O(\binom{m}{r-1}\, m\, r)`, i.e. :math:`O(n^r)`.

Degenerate data are handled exactly: zero rows (always active, ``1[0 >= 0] = 1``),
duplicate and opposite rows (one hyperplane, found by grouping unit normals that agree
up to sign within ``tol``), points on a common hyperplane (degenerate rays, handled by
the recursion) and rank-deficient ``X`` (rank reduction).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ._validation import check_max_patterns, check_positive_int, check_X
from .kernels import equilibrated_gram, equilibrated_svd, gram_rounding, row_norms, thin_svd

__all__ = ["SignPatterns", "Reduction", "reduce_rank", "rank_reduce", "pattern_bound",
           "TooManyPatternsError", "DEFAULT_MAX_PATTERNS"]

logger = logging.getLogger(__name__)

#: Default limit on the pattern bound :math:`2r(e(n-1)/r)^r` before enumerating.
DEFAULT_MAX_PATTERNS = 10**9
#: Default angular tolerance for ties (parallel hyperplanes, hyperplanes through a ray),
#: measured in whitened coordinates.
DEFAULT_TIE_TOL = 1e-12


class TooManyPatternsError(ValueError):
    """Raised when exact enumeration would exceed the caller's pattern limit."""


def pattern_bound(n: int, r: int) -> float:
    r"""Upper bound :math:`2r(e(n-1)/r)^r` on the number of sign patterns (paper §2).

    For ``n = 1`` the formula degenerates; the true count there is at most 2.
    """
    if r <= 0:
        return 1.0
    if n <= 1:
        return 2.0
    log_bound = math.log(2.0 * r) + r * math.log(math.e * (n - 1) / r)
    return math.exp(log_bound) if log_bound < 709.0 else math.inf  # past the float range


@dataclass(frozen=True)
class Reduction:
    r"""The rank reduction of ``X`` and the whitened directions of its rows, from one SVD.

    Attributes
    ----------
    basis : ndarray, shape (d, r)
        Orthonormal basis ``V_r`` of the row space of ``X`` (the identity when ``r = d``).
    rank : int
    whitening : tuple or None
        ``(live, U, S, Vt, col)`` of the SVD :math:`N = U S V^\top` of the row-normalised,
        column-equilibrated matrix :math:`N = D^{-1} X C^{-1}` (rows ``live`` with a
        nonzero norm): the rows of ``U`` are the rows' unit normals in whitened
        coordinates, which the pattern enumeration uses directly when ``r = d`` (then it
        needs no second factorisation); None when ``X`` is zero.
    """

    basis: np.ndarray
    rank: int
    whitening: tuple | None = field(default=None, repr=False)


def sample_directions(d: int, k: int, random_state=None) -> np.ndarray:
    """``k`` Gaussian unit directions in dimension ``d`` (rows), as
    :meth:`SignPatterns.sample` draws them."""
    U = np.random.default_rng(random_state).standard_normal((k, d))
    return U / np.linalg.norm(U, axis=1, keepdims=True)


#: Entries of ``X`` above which :func:`reduce_rank` skips the SVD's left factor.
_LARGE_ENTRIES = 4_000_000


def reduce_rank(X: np.ndarray, rtol: float | None = None) -> Reduction:
    r"""The :class:`Reduction` of ``X``: one SVD of the row-normalised, column-equilibrated
    matrix :math:`N = D^{-1} X C^{-1}`.

    Sign patterns do not change when a row or a column of ``X`` is rescaled by a positive
    factor (:math:`X u = D (D^{-1} X C^{-1}) (C u)`), so the rank is decided on ``N``, whose
    nonzero rows and columns have comparable sizes: a column of size 1e-8 next to one of
    size 1e8, or a direction carried only by small rows, is a genuine direction, not
    rounding noise. Singular values of ``N`` below ``rtol * s_max`` count as zero (default:
    numpy's ``matrix_rank`` rule, ``max(n, d) * eps``). The basis is then that of
    ``span(C V_N)``, orthonormalised, which is the row space of ``X`` in its own
    coordinates.

    What truncation leaves out is measured, not ignored: :func:`rank_residual` gives
    :math:`\|X - X V_r V_r^\top\|_2`, which the exact oracle adds to its bound (the
    map :math:`u \mapsto \|Z^\top (Xu)_+\|` moves by at most
    :math:`\|Z\|_2 \|X - X V_r V_r^\top\|_2` when ``X`` is replaced by its truncation).
    """
    n, d = X.shape
    if rtol is None:
        rtol = max(n, d) * np.finfo(float).eps
    if n * d > _LARGE_ENTRIES and n >= d:
        # large data. First the d x d Gram matrix of N (one pass): when its smallest
        # eigenvalue, less a bound on the Gram matrix's rounding, still puts every singular
        # value of N above rtol * s_max, the rank is d, proven without a factorisation.
        if _full_rank_by_gram(X, rtol):
            return Reduction(np.eye(d), d, None)
        # Otherwise the SVD of N without its n x d left factor (only the pattern
        # enumeration reuses it, and it cannot run at this size: it factors N itself).
        _, col, s, Vt = equilibrated_svd(X)
        r = int(np.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0
        if r == 0:
            return Reduction(np.zeros((d, 0)), 0, None)
        if r == d:
            return Reduction(np.eye(d), d, None)
        M = Vt[:r].T * col[:, None]
        M /= np.linalg.norm(M, axis=0)
        Q, _ = np.linalg.qr(M)
        return Reduction(Q, r, None)
    rn = np.linalg.norm(X, axis=1)
    live = rn > 0
    if not np.any(live):
        return Reduction(np.zeros((d, 0)), 0, None)
    Nr = X[live] / rn[live, None]
    col = np.linalg.norm(Nr, axis=0)
    col = np.where(col > 0, col, 1.0)
    U, s, Vt = thin_svd(Nr / col)  # on the active back end (a device inside fit(device=))
    r = int(np.sum(s > rtol * s[0]))
    if r == 0:
        return Reduction(np.zeros((d, 0)), 0, None)
    if r == d:
        # full rank: no rotation (it would mix badly scaled columns)
        return Reduction(np.eye(d), d, (live, U, s, Vt, col))
    # row space of X = C * (row space of N); scale each basis vector back
    M = Vt[:r].T * col[:, None]
    M /= np.linalg.norm(M, axis=0)
    Q, _ = np.linalg.qr(M)
    return Reduction(Q, r, None)


def _full_rank_by_gram(X: np.ndarray, rtol: float) -> bool:
    r"""Whether the Gram matrix :math:`G = N^\top N` of the equilibrated rows proves that
    every singular value of ``N`` exceeds ``rtol`` times the largest. Computed ``G`` is
    within :math:`2(n + 2)\epsilon\,\mathrm{tr}\,G` of the exact one in norm (the same
    bound as the spectral norm's), and its eigenvalues within :math:`4 d\epsilon\lambda_{max}`
    more, so :math:`s_{min}^2 \ge \lambda_{min} - e` and :math:`s_{max}^2 \le \lambda_{max} + e`."""
    n, d = X.shape
    _, _, G = equilibrated_gram(X)
    if not np.all(np.isfinite(G)):
        return False
    lam = np.linalg.eigvalsh(G)
    err = gram_rounding(float(np.trace(G)), n) + 4.0 * d * np.finfo(float).eps * max(float(lam[-1]), 0.0)
    lo, hi = float(lam[0]) - err, float(lam[-1]) + err
    return lo > 0 and math.sqrt(lo) > rtol * math.sqrt(hi)


def rank_reduce(X: np.ndarray, rtol: float | None = None) -> tuple[np.ndarray, int]:
    r"""Orthonormal basis ``V_r`` (shape ``(d, r)``) of the row space of ``X`` and ``r``:
    ``(reduction.basis, reduction.rank)`` of :func:`reduce_rank` (see there for how the
    rank is decided). A :class:`~convexrelu.Problem` computes it once and keeps it."""
    red = reduce_rank(X, rtol)
    return red.basis, red.rank


def rank_residual(X: np.ndarray, basis: np.ndarray) -> float:
    r"""Spectral norm of :math:`X - X V_r V_r^\top`: how much of ``X`` the rank reduction
    left out (0 when nothing was truncated; rounding-level for exactly low-rank data).

    Returned with a small outward margin (relative ``sqrt(n d) * eps`` of :math:`\|X\|_F`)
    so that it bounds the true norm despite rounding in its own computation.
    """
    n, d = X.shape
    if basis.shape[1] == d:
        return 0.0  # a basis of all of R^d: nothing was left out
    E = X - (X @ basis) @ basis.T if basis.shape[1] else X
    if not np.any(E):
        return 0.0
    val = float(np.linalg.norm(E, 2))
    return val * (1.0 + 1e-12) + math.sqrt(n * d) * np.finfo(float).eps * float(np.linalg.norm(X))


# --------------------------------------------------------------------------- internals
@dataclass
class _Hyperplanes:
    """Distinct hyperplanes among the rows of a matrix ``A`` (shape ``(n, k)``)."""

    reps: np.ndarray  # (m, k) unit normals, one per distinct hyperplane
    labels: np.ndarray  # (n,) index of each row's hyperplane, -1 for a zero row
    orient: np.ndarray  # (n,) +1/-1: row ~ orient * reps[label]


def _unique_hyperplanes(A: np.ndarray, tol: float, zero: np.ndarray | None = None) -> _Hyperplanes:
    """Group the rows of ``A`` into distinct hyperplanes through the origin.

    ``zero`` marks rows that define no hyperplane (zero rows of ``X``, or rows that vanish
    on the current flat); rows of exactly zero norm are always treated so. Two rows are
    the same hyperplane when their unit normals agree up to sign within ``tol`` (``A``
    should be well-conditioned, e.g. whitened, for this test to be meaningful).
    """
    n, k = A.shape
    norms = np.linalg.norm(A, axis=1)
    zero = norms == 0 if zero is None else (np.asarray(zero, dtype=bool) | (norms == 0))
    idx = np.flatnonzero(~zero)
    labels = np.full(n, -1, dtype=np.int64)
    orient = np.ones(n)
    if idx.size == 0:
        return _Hyperplanes(np.zeros((0, k)), labels, orient)
    H = A[idx] / norms[idx, None]
    m0 = idx.size
    if k == 1:
        comp = np.zeros(m0, dtype=np.int64)
    else:
        tree = cKDTree(np.vstack([H, -H]))
        pairs = tree.query_pairs(r=tol, output_type="ndarray")
        if pairs.size:
            a = pairs[:, 0] % m0
            b = pairs[:, 1] % m0
            graph = coo_matrix((np.ones(a.size), (a, b)), shape=(m0, m0))
            _, comp = connected_components(graph, directed=False)
        else:
            comp = np.arange(m0)
    # representative: first row of each component (keeps a deterministic order)
    _, first, comp = np.unique(comp, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank_of = np.empty_like(order)
    rank_of[order] = np.arange(order.size)
    comp = rank_of[comp]
    reps = H[first[order]]
    if k == 1:
        reps = np.sign(reps)
    labels[idx] = comp
    orient[idx] = np.where(np.sum(H * reps[comp], axis=1) >= 0, 1.0, -1.0)
    return _Hyperplanes(reps, labels, orient)


def _unique_rows(packed: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct row of a 2-D uint8 array.

    Rows are viewed as opaque byte strings (``np.void``), which ``np.unique`` sorts
    much faster than with ``axis=0``.
    """
    packed = np.ascontiguousarray(packed)
    rows = packed.view(np.dtype((np.void, packed.dtype.itemsize * packed.shape[1]))).ravel()
    _, first = np.unique(rows, return_index=True)
    return first


def _patterns_from_witnesses(W: np.ndarray, hp: _Hyperplanes, chunk_bytes: int = 64 << 20) -> np.ndarray:
    """Row patterns ``1[a_k^T w >= 0]`` of interior witnesses ``W`` (zero rows: 1).

    Each row is evaluated against its hyperplane's representative normal (with the
    row's orientation), so rows found parallel within ``tol`` get consistent signs.
    Computed in chunks with a reused buffer: ``P * n`` can be large.
    """
    P = W.shape[0]
    n = hp.labels.size
    out = np.ones((P, n), dtype=bool)
    nz = np.flatnonzero(hp.labels >= 0)
    if nz.size == 0:
        return out
    R = hp.orient[nz, None] * hp.reps[hp.labels[nz]]  # (n_nz, k)
    step = max(1, chunk_bytes // (8 * nz.size))
    buf = np.empty((min(step, P), nz.size))
    full = nz.size == n
    for start in range(0, P, step):
        stop = min(P, start + step)
        b = buf[: stop - start]
        np.matmul(W[start:stop], R.T, out=b)
        if full:
            np.greater(b, 0.0, out=out[start:stop])
        else:
            out[start:stop, nz] = b > 0.0
    return out


def _null_vector(h: np.ndarray) -> np.ndarray:
    """Orthonormal basis (k, k-1) of the complement of the unit vector ``h``."""
    k = h.size
    # Householder reflection mapping e_1 to h: its other columns span h^perp.
    e = np.zeros(k)
    e[0] = 1.0
    v = h - e if h[0] < 0 else h + e
    Hh = np.eye(k) - 2.0 * np.outer(v, v) / np.dot(v, v)
    return Hh[:, 1:]


def _sweep_2d(reps: np.ndarray) -> np.ndarray:
    """Witnesses of the cells of distinct lines through 0 in R^2 (angular sweep, in order)."""
    perp = np.column_stack([-reps[:, 1], reps[:, 0]])
    ang = np.arctan2(perp[:, 1], perp[:, 0])
    ang = np.concatenate([ang, ang + np.pi])
    ang = np.sort(np.mod(ang, 2 * np.pi))
    nxt = np.concatenate([ang[1:], ang[:1] + 2 * np.pi])
    mid = 0.5 * (ang + nxt)
    return np.column_stack([np.cos(mid), np.sin(mid)])


def _ray_epsilon(t_nontight: np.ndarray, hw_nontight: np.ndarray) -> np.ndarray:
    """Step along a local witness that crosses no non-tight hyperplane."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(t_nontight) / np.abs(hw_nontight)
    ratio = np.where(np.isfinite(ratio), ratio, np.inf)
    eps = 0.5 * np.min(ratio, axis=-1, initial=np.inf)
    return np.minimum(eps, 1.0)


def _cells_general(reps: np.ndarray, tol: float, chunk: int = 20000) -> np.ndarray:
    """Cells of an essential central arrangement in R^k, k >= 3 (extreme-ray method)."""
    m, k = reps.shape
    sigmas = np.array(list(itertools.product([1.0, -1.0], repeat=k - 1)))  # (2^{k-1}, k-1)
    found: dict[bytes, np.ndarray] = {}
    degenerate: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    combos_iter = itertools.combinations(range(m), k - 1)
    while True:
        block = list(itertools.islice(combos_iter, chunk))
        if not block:
            break
        S = np.asarray(block, dtype=np.int64)  # (N, k-1)
        HS = reps[S]  # (N, k-1, k)
        _, sv, Vt = np.linalg.svd(HS)
        indep = sv[:, -1] > 1e-14  # keep nearly dependent subsets: they still give true rays
        if not np.any(indep):
            continue
        S, HS, v = S[indep], HS[indep], Vt[indep, -1, :]
        t = v @ reps.T  # (N, m)
        tight = np.abs(t) <= tol
        ntight = tight.sum(axis=1)
        gen = ntight == k - 1
        if np.any(gen):
            Sg, vg, tg = S[gen], v[gen], t[gen]
            pinv = np.linalg.pinv(HS[gen])  # (N, k, k-1)
            for sgn in (1.0, -1.0):
                base = (sgn * tg) > 0
                for sigma in sigmas:
                    pat = base.copy()
                    rows = np.arange(Sg.shape[0])[:, None]
                    pat[rows, Sg] = sigma[None, :] > 0
                    packed = np.packbits(pat, axis=1)
                    first = _unique_rows(packed)
                    new = [i for i in first if packed[i].tobytes() not in found]
                    if not new:
                        continue
                    new = np.asarray(new)
                    w = np.einsum("nkj,j->nk", pinv[new], sigma)  # local witness, in v^perp
                    hw = w @ reps.T
                    tt = sgn * tg[new]
                    mask = ~tight[gen][new]
                    eps = _ray_epsilon(np.where(mask, tt, np.inf), np.where(mask, hw, 0.0))
                    dirs = sgn * vg[new] + eps[:, None] * w
                    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
                    for i, d_ in zip(new, dirs):
                        found.setdefault(np.packbits(pat[i]).tobytes(), d_)
        for i in np.flatnonzero(~gen):
            key = np.packbits(np.concatenate([tight[i], t[i] > 0])).tobytes()
            if key not in degenerate:
                degenerate[key] = (v[i], tight[i])
    for v, tmask in degenerate.values():
        T = np.flatnonzero(tmask)
        Q = _null_vector(v)  # (k, k-1)
        local = reps[T] @ Q
        loc_signs, loc_w = _arrangement_cells(local, tol)
        w = loc_w @ Q.T  # (L, k)
        t = reps @ v
        for sgn in (1.0, -1.0):
            base = (sgn * t) > 0
            hw = w @ reps.T
            tt = np.where(tmask, np.inf, sgn * t)
            eps = _ray_epsilon(np.broadcast_to(tt, hw.shape), np.where(tmask[None, :], 0.0, hw))
            dirs = sgn * v[None, :] + eps[:, None] * w
            dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
            for j in range(loc_signs.shape[0]):
                pat = base.copy()
                pat[T] = loc_signs[j]
                found.setdefault(np.packbits(pat).tobytes(), dirs[j])
    return np.array([found[key] for key in sorted(found)])


def _arrangement_cells(A: np.ndarray, tol: float, zero: np.ndarray | None = None,
                       whitening: tuple | None = None):
    """Patterns (rows of ``A``) and unit witnesses of every cell of ``{a_k^T u = 0}``.

    ``A`` has shape ``(n, k)``; an arrangement whose rows span fewer than ``k``
    dimensions is enumerated in their span (each cell times the complement), and an
    all-zero ``A`` gives the single cell ``R^k``. The work is done in whitened
    coordinates of the row-normalised, column-equilibrated ``A`` (``A_e = U S V^T``: the
    rows of ``U`` define the same arrangement up to a linear map), so that nearly
    parallel rows of a badly scaled ``A`` are told apart whatever the sizes of its rows
    and columns; witnesses are mapped back to the coordinates of ``A``. ``whitening``:
    that SVD when it is already known (:attr:`Reduction.whitening`, for the rows ``live``
    of ``A``; used only when they are exactly the rows this call takes).
    """
    n, k = A.shape
    rn = np.linalg.norm(A, axis=1)
    zero = (rn == 0) if zero is None else (np.asarray(zero, dtype=bool) | (rn == 0))
    Aw = np.zeros_like(A)
    live = ~zero
    if np.any(live):
        # Rows scaled by positive factors define the same arrangement: normalise the rows
        # (a huge row must not swamp the small ones), then equilibrate the columns
        # (A u = (A C^-1)(C u)): the SVD of a matrix whose rows or columns differ in size
        # by many decades loses the small directions.
        An = A[live] / rn[live, None]
        if whitening is not None and np.array_equal(whitening[0], live) \
                and whitening[3].shape == (k, k):
            _, U, S, Vt, col = whitening  # the Problem's one factorisation of X
        else:
            col = np.linalg.norm(An, axis=0)
            col = np.where(col > 0, col, 1.0)
            U, S, Vt = np.linalg.svd(An / col, full_matrices=False)
        r_eff = int(np.sum(S > max(An.shape) * np.finfo(float).eps * S[0])) if S.size else 0
        if r_eff < k:
            # not essential (the rows span fewer than k dimensions, e.g. a row that was
            # taken as non-tight on a flat): the cells are those of the rows' span, each
            # times its orthogonal complement; enumerate there and lift the witnesses
            if r_eff == 0:
                W = np.zeros((1, k))
                W[0, 0] = 1.0
                return np.ones((1, n), dtype=bool), W
            Vr = Vt[:r_eff].T  # (k, r_eff), in the equilibrated coordinates C u
            sub = np.zeros((n, r_eff))
            sub[live] = (An / col) @ Vr
            pats, Wsub = _arrangement_cells(sub, tol, zero)
            W = (Wsub @ Vr.T) / col[None, :]
            W /= np.linalg.norm(W, axis=1, keepdims=True)
            return pats, W
        Aw[live] = U
        back = (Vt.T / S) / col[:, None]  # whitened witness w -> u = C^-1 V S^-1 w
    hp = _unique_hyperplanes(Aw, tol, zero)
    m = hp.reps.shape[0]
    if m == 0:
        W = np.zeros((1, k))
        W[0, 0] = 1.0
        return np.ones((1, n), dtype=bool), W
    if k == 1:
        Ww = np.array([[1.0], [-1.0]])
    elif k == 2:
        Ww = _sweep_2d(hp.reps)
    else:
        Ww = _cells_general(hp.reps, tol)
        if Ww.shape[0] == 0:
            raise RuntimeError(
                "sign-pattern enumeration found no extreme ray; the arrangement is "
                "numerically degenerate beyond the tie tolerance"
            )
    pats = _patterns_from_witnesses(Ww, hp)
    if k >= 3:
        # each witness is built strictly inside its cell, so the patterns are distinct;
        # a collision would mean a witness fell on a hyperplane numerically
        first = np.sort(_unique_rows(np.packbits(pats, axis=1)))
        if first.size != pats.shape[0]:
            logger.warning(
                "sign-pattern enumeration: %d witness directions fell on a hyperplane "
                "numerically (tol=%g); their duplicate patterns were dropped",
                pats.shape[0] - first.size, tol)
            pats, Ww = pats[first], Ww[first]
    W = Ww @ back.T
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    return pats, W


def zero_rows(X: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Rows of ``X`` that define no hyperplane: exactly zero, or (numerically) outside
    the kept row space ``basis`` (only possible when the rank was truncated)."""
    nx = row_norms(X)
    if basis.shape[1] == X.shape[1]:
        return nx == 0  # an orthonormal basis of all of R^d keeps every norm
    nr = np.linalg.norm(X @ basis, axis=1) if basis.shape[1] else np.zeros_like(nx)
    return (nx == 0) | (nr <= 1e-13 * nx)


def fingerprint(X: np.ndarray) -> str:
    """A short hash identifying the data matrix an object was built for."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(X.shape).encode())
    h.update(np.ascontiguousarray(X, dtype=float).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- public
@dataclass(frozen=True)
class SignPatterns:
    r"""A set of sign patterns :math:`D_i = \mathrm{diag}(1[X u_i \ge 0])` of a data matrix.

    Build one with :meth:`enumerate` (every cell, ``scope="exact"``) or :meth:`sample`
    (random directions, ``scope="sampled"``).

    Attributes
    ----------
    patterns : ndarray of bool, shape (P, n)
        Row ``i`` is the diagonal of ``D_i``.
    directions : ndarray, shape (P, d)
        A unit direction ``u_i`` with ``1[X u_i >= 0] = patterns[i]``.
    scope : {"exact", "sampled"}
        ``"exact"``: every pattern of ``X`` is present (certifiable);
        ``"sampled"``: a subset found by random directions.
    rank : int
        Numerical rank ``r`` of ``X``.
    basis : ndarray, shape (d, r)
        Orthonormal basis ``V_r`` of the row space (paper App. A.2).
    tol : float
        Angular tolerance used to decide ties.
    fingerprint : str
        Hash of the ``X`` the patterns were computed for (checked by the oracles).
    """

    patterns: np.ndarray
    directions: np.ndarray
    scope: str
    rank: int
    basis: np.ndarray = field(repr=False)
    tol: float = DEFAULT_TIE_TOL
    fingerprint: str = field(default="", repr=False)

    def __post_init__(self):
        for name in ("patterns", "directions", "basis"):
            arr = getattr(self, name)
            arr.setflags(write=False)

    @property
    def n_patterns(self) -> int:
        """Number of patterns ``P``."""
        return self.patterns.shape[0]

    @property
    def n_samples(self) -> int:
        return self.patterns.shape[1]

    def __len__(self) -> int:
        return self.n_patterns

    def __repr__(self) -> str:
        return (
            f"SignPatterns(n_patterns={self.n_patterns}, n_samples={self.n_samples}, "
            f"rank={self.rank}, scope={self.scope!r})"
        )

    @classmethod
    def enumerate(
        cls,
        X,
        *,
        max_patterns: float = DEFAULT_MAX_PATTERNS,
        tol: float = DEFAULT_TIE_TOL,
        rank_tol: float | None = None,
        verbose: int = 0,
        reduction: Reduction | None = None,
        x_fingerprint: str | None = None,
    ) -> "SignPatterns":
        r"""Every sign pattern of ``X`` (the cells of its hyperplane arrangement).

        Parameters
        ----------
        X : array of shape (n, d)
        max_patterns : float, default 1e9
            Refuse (``TooManyPatternsError``) when the bound :math:`2r(e(n-1)/r)^r`
            exceeds this; raise it to enumerate anyway.
        tol : float, default 1e-12
            Two rows whose unit normals agree up to sign within ``tol`` define the same
            hyperplane; a hyperplane within angle ``tol`` of a ray passes through it.
            Angles are measured in whitened coordinates (the rows of ``U`` in the SVD
            ``X = U S V^T``), which define the same arrangement, so badly scaled
            columns do not merge distinct hyperplanes.
        rank_tol : float, optional
            Relative singular-value threshold for the rank (default: numpy's rule).
        verbose : int, default 0
            If > 0, log the count and time at INFO level (``logging`` only, no prints).
        reduction, x_fingerprint : optional
            ``X``'s :class:`Reduction` and :func:`fingerprint` when already computed (a
            :class:`~convexrelu.Problem` passes its own, so that ``X`` is factorised once).

        Returns
        -------
        SignPatterns
            ``scope = "exact"``.
        """
        X = check_X(X)
        max_patterns = check_max_patterns(max_patterns)
        t0 = time.perf_counter()
        n, d = X.shape
        red = reduce_rank(X, rank_tol) if reduction is None else reduction
        fp = fingerprint(X) if x_fingerprint is None else x_fingerprint
        basis, r = red.basis, red.rank
        bound = pattern_bound(n, r)
        if bound > max_patterns:
            raise TooManyPatternsError(
                f"exact enumeration refused: X has n={n} rows and rank r={r}, so it may have "
                f"up to 2r(e(n-1)/r)^r = {bound:.3g} sign patterns, above "
                f"max_patterns={max_patterns:.3g}. Raise max_patterns to enumerate anyway, "
                f"or use SignPatterns.sample(X, n_samples) (sampled patterns cannot certify "
                f"global optimality)."
            )
        if r == 0:
            W = np.zeros((1, d))
            W[0, 0] = 1.0
            return cls(np.ones((1, n), dtype=bool), W, "exact", 0, basis, tol, fp)
        Xr = X @ basis
        pats, W = _arrangement_cells(Xr, tol, zero_rows(X, basis), red.whitening)
        dirs = W @ basis.T
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        logger.log(logging.INFO if verbose > 0 else logging.DEBUG,
                   "enumerated %d sign patterns (n=%d, rank=%d, bound %.3g) in %.3fs",
                   pats.shape[0], n, r, bound, time.perf_counter() - t0)
        return cls(pats, dirs, "exact", r, basis, tol, fp)

    @classmethod
    def sample(cls, X, n_samples: int, random_state=None, *, reduction: Reduction | None = None,
               x_fingerprint: str | None = None) -> "SignPatterns":
        """Patterns of ``n_samples`` Gaussian directions, de-duplicated (``scope="sampled"``).

        Parameters
        ----------
        X : array of shape (n, d)
        n_samples : int >= 1
            Number of random directions drawn.
        random_state : None, int or numpy Generator
        reduction, x_fingerprint : optional
            As in :meth:`enumerate`.
        """
        X = check_X(X)
        n_samples = check_positive_int(n_samples, "n_samples")
        return cls.of_directions(X, sample_directions(X.shape[1], n_samples, random_state),
                                 reduction=reduction, x_fingerprint=x_fingerprint)

    @classmethod
    def of_directions(cls, X, U, *, reduction: Reduction | None = None,
                      x_fingerprint: str | None = None) -> "SignPatterns":
        """The distinct patterns of the unit directions ``U`` (rows, ``(k, d)``) on ``X``
        (``scope="sampled"``); :meth:`sample` with directions drawn by the caller."""
        red = reduce_rank(X) if reduction is None else reduction
        pats = (U @ X.T) >= 0
        first = np.sort(_unique_rows(np.packbits(pats, axis=1)))
        return cls(pats[first], U[first], "sampled", red.rank, red.basis,
                   fingerprint=fingerprint(X) if x_fingerprint is None else x_fingerprint)
