"""The large-data set-up paths (no n x d left factor, Gram-matrix rank proof, thin
spectral norm) give the same answers as the small-data ones, on adversarial data."""

import numpy as np
import pytest

from convexrelu import patterns as P
from convexrelu.kernels import NumpyKernels, make_backend, use_backend
from convexrelu.patterns import reduce_rank, zero_rows


def _cases():
    rng = np.random.default_rng(0)
    grid = rng.integers(-3, 4, (300, 5)).astype(float)
    return {
        "gaussian": rng.standard_normal((3000, 20)),
        "rank 3": rng.standard_normal((3000, 3)) @ rng.standard_normal((3, 20)),
        "scales 1e-8..1e8": rng.standard_normal((3000, 20)) * np.logspace(-8, 8, 20),
        "grid, duplicates, intercept": np.hstack([np.repeat(grid, 10, axis=0), np.ones((3000, 1))]),
        "opposite rows": np.vstack([g := rng.standard_normal((1500, 6)), -g]),
        "zero rows, rank 4": np.vstack([np.zeros((100, 20)),
                                        rng.standard_normal((2900, 4)) @ rng.standard_normal((4, 20))]),
        "collinear": np.outer(rng.standard_normal(3000), rng.standard_normal(7)),
    }


def _proj(B):
    return B @ B.T


@pytest.mark.parametrize("name", list(_cases()))
def test_large_path_matches_small_path(name, monkeypatch):
    X = _cases()[name]
    ref = reduce_rank(X)
    monkeypatch.setattr(P, "_LARGE_ENTRIES", 0)
    light = reduce_rank(X)
    assert light.rank == ref.rank
    assert np.allclose(_proj(light.basis), _proj(ref.basis), atol=1e-9)
    assert np.array_equal(zero_rows(X, light.basis), zero_rows(X, ref.basis))
    pytest.importorskip("torch")
    with use_backend(make_backend("cpu", max_memory=20_000)):  # many row blocks
        dev = reduce_rank(X)
    assert dev.rank == ref.rank
    assert np.allclose(_proj(dev.basis), _proj(ref.basis), atol=1e-9)


def test_gram_rank_proof_refuses_deficient_data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5000, 8))
    assert P._full_rank_by_gram(X, 5000 * np.finfo(float).eps)
    X[:, 7] = X[:, 0] - 2.0 * X[:, 3]  # exactly dependent
    assert not P._full_rank_by_gram(X, 5000 * np.finfo(float).eps)
    X[:, 7] += 1e-9 * rng.standard_normal(5000)  # numerically independent, not provably so
    assert not P._full_rank_by_gram(X, 5000 * np.finfo(float).eps)
    assert reduce_rank(X).rank == 8  # the SVD decides


@pytest.mark.parametrize("shape", [(30_000, 5), (25_000, 150)])
def test_thin_spectral_norm_is_an_upper_bound(shape):
    rng = np.random.default_rng(2)
    X = rng.standard_normal(shape) * np.logspace(-3, 3, shape[1])
    true = np.linalg.svd(X, compute_uv=False)[0]
    got = NumpyKernels().spectral_norm(X)
    assert true <= got <= true * (1 + 1e-9)
