import math

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.patterns import pattern_bound

from _brute import lp_patterns
from conftest import load_reference


def as_set(sp):
    return {p.tobytes() for p in sp.patterns}


def cover_count(n, r):
    """Cells of n hyperplanes through 0 in general position in R^r (Cover 1965)."""
    return 2 * sum(math.comb(n - 1, k) for k in range(r))


def degenerate(rng, d, kind):
    n = 8
    X = rng.standard_normal((n, d))
    if kind == "duplicates":
        X[3] = X[1]
        X[4] = 2.5 * X[0]
    elif kind == "opposite":
        X[3] = -X[1]
        X[5] = -0.3 * X[2]
    elif kind == "zero_rows":
        X[2] = 0.0
        X[6] = 0.0
    elif kind == "collinear":
        # points on an affine line: in d >= 3 they span a plane through the origin,
        # so their hyperplanes share a ray (a degenerate vertex).
        a, b = rng.standard_normal(d), rng.standard_normal(d)
        for k, t in enumerate([-1.0, 0.5, 2.0, 3.5]):
            X[k] = a + t * b
    elif kind == "integers":
        X = rng.integers(-2, 3, size=(n, d)).astype(float)
    elif kind == "rank_deficient":
        X = rng.standard_normal((n, 2)) @ rng.standard_normal((2, d))
    return X


KINDS = ["random", "duplicates", "opposite", "zero_rows", "collinear", "integers", "rank_deficient"]


@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("kind", KINDS)
def test_enumeration_equals_lp_brute_force(d, kind):
    rng = np.random.default_rng(100 * d + KINDS.index(kind))
    X = degenerate(rng, d, kind)
    sp = cr.SignPatterns.enumerate(X)
    brute = lp_patterns(X)
    assert sp.scope == "exact"
    assert len(as_set(sp)) == sp.n_patterns  # no duplicates
    assert as_set(sp) == brute
    # each stored direction generates its pattern
    np.testing.assert_array_equal((sp.directions @ X.T) >= 0, sp.patterns)
    np.testing.assert_allclose(np.linalg.norm(sp.directions, axis=1), 1.0)
    assert sp.n_patterns <= pattern_bound(X.shape[0], sp.rank)


@pytest.mark.parametrize("n,d", [(10, 2), (40, 2), (12, 3), (30, 3), (9, 4), (15, 4), (8, 5)])
def test_general_position_count_matches_cover_formula(n, d):
    rng = np.random.default_rng(n * d)
    X = rng.standard_normal((n, d))
    sp = cr.SignPatterns.enumerate(X)
    assert sp.rank == d
    assert sp.n_patterns == cover_count(n, d)
    assert sp.n_patterns <= pattern_bound(n, d)
    np.testing.assert_array_equal((sp.directions @ X.T) >= 0, sp.patterns)


@pytest.mark.parametrize("n,d", [(25, 2), (20, 3)])
def test_dense_direction_sampling_finds_exactly_the_enumerated_patterns(n, d):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, d))
    X[5] = X[2]  # a tie: the same hyperplane twice
    X[7] = 0.0  # a zero row: always active
    sp = cr.SignPatterns.enumerate(X)
    sampled = cr.SignPatterns.sample(X, 400000, random_state=0)
    assert as_set(sampled) <= as_set(sp)
    if d == 2:
        assert as_set(sampled) == as_set(sp)  # dense enough to hit every arc
    else:
        # some 3-D cells are too small to be hit; the rest must be hit, and the
        # exact count is Cover's for the n - 2 distinct hyperplanes
        assert len(as_set(sampled)) >= 0.95 * sp.n_patterns
    assert sp.n_patterns == cover_count(n - 2, d)
    assert np.all(sp.patterns[:, 7])
    np.testing.assert_array_equal(sp.patterns[:, 5], sp.patterns[:, 2])


def test_rank_deficient_enumerates_in_reduced_coordinates():
    rng = np.random.default_rng(3)
    n = 60
    X = rng.standard_normal((n, 2)) @ rng.standard_normal((2, 5))
    sp = cr.SignPatterns.enumerate(X)
    assert sp.rank == 2
    assert sp.basis.shape == (5, 2)
    assert sp.n_patterns == 2 * n  # 2-D arrangement of n distinct lines
    # same patterns as enumerating the 2-D coordinates directly
    sp2 = cr.SignPatterns.enumerate(X @ sp.basis)
    assert as_set(sp) == as_set(sp2)
    # the bound used for the refusal is the rank-2 bound, far below the d = 5 one
    assert pattern_bound(n, 2) < 1e5 < pattern_bound(n, 5)
    np.testing.assert_array_equal((sp.directions @ X.T) >= 0, sp.patterns)


def test_rank_one_and_rank_zero():
    X = np.outer([1.0, -2.0, 0.0, 3.0], [1.0, 1.0, 1.0])
    sp = cr.SignPatterns.enumerate(X)
    assert sp.rank == 1 and sp.n_patterns == 2
    assert as_set(sp) == {np.array([1, 0, 1, 1], bool).tobytes(), np.array([0, 1, 1, 0], bool).tobytes()}
    sp0 = cr.SignPatterns.enumerate(np.zeros((3, 2)))
    assert sp0.rank == 0 and sp0.n_patterns == 1 and sp0.patterns.all()


def test_refuses_when_bound_exceeds_limit():
    X = np.random.default_rng(0).standard_normal((50, 6))
    with pytest.raises(cr.TooManyPatternsError, match="max_patterns"):
        cr.SignPatterns.enumerate(X)
    with pytest.raises(cr.TooManyPatternsError, match="sample"):
        cr.SignPatterns.enumerate(np.random.default_rng(0).standard_normal((40, 2)), max_patterns=100)
    # raising the limit lets it through
    sp = cr.SignPatterns.enumerate(np.random.default_rng(0).standard_normal((40, 2)), max_patterns=1e5)
    assert sp.n_patterns == 80


def test_sample_scope_dedup_and_directions():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 3))
    sp = cr.SignPatterns.sample(X, 500, random_state=1)
    assert sp.scope == "sampled"
    assert len(as_set(sp)) == sp.n_patterns <= 500
    np.testing.assert_array_equal((sp.directions @ X.T) >= 0, sp.patterns)
    assert as_set(sp) <= as_set(cr.SignPatterns.enumerate(X))
    again = cr.SignPatterns.sample(X, 500, random_state=1)
    np.testing.assert_array_equal(sp.patterns, again.patterns)


@pytest.mark.parametrize("name", ["planted_25x2x5_seed101_b0.01", "spiral_60x2x3_seed7_b0.03",
                                  "scalar_30x2x1_seed2024_b0.05"])
def test_reference_case_patterns(name):
    ref = load_reference(name)
    sp = cr.SignPatterns.enumerate(ref["X"])
    assert as_set(sp) == {p.tobytes() for p in ref["patterns"].astype(bool)}


def test_patterns_are_read_only():
    sp = cr.SignPatterns.enumerate(np.random.default_rng(0).standard_normal((5, 2)))
    with pytest.raises(ValueError):
        sp.patterns[0, 0] = not sp.patterns[0, 0]


# Regression: badly scaled columns (raw features such as price, rate and a bias column)
# used to merge distinct hyperplanes and lose cells for rank >= 3.
ILL_CONDITIONED = [
    (np.column_stack([np.random.default_rng(5).normal(3e5, 6e4, 8),
                      np.random.default_rng(6).normal(0.05, 0.02, 8), np.ones(8)]), None),
    (np.array([[2, 1e-6, 0], [-2, 1e-6, -2e-6], [2, -1e-6, 0], [2, 0, -1e-6]]), 14),
    (np.array([[1.0, 0, 0], [1, 1e-7, 0], [1, 0, 1e-7]]), 8),
    (np.array([[1.0, -1, 0], [1, 1, -1], [1, -1, 1], [1, -2, 1]]) * np.array([1, 1e-6, 1e-6]), 14),
    (np.array([[1.0, 0], [0, 1], [1e-14, -1e-14]]), 6),
]


@pytest.mark.parametrize("X,expected", ILL_CONDITIONED)
def test_badly_scaled_columns_lose_no_cell(X, expected):
    # the arrangement is invariant under column scaling: brute-force a well-scaled copy
    scale = 1.0 / np.abs(X).max(axis=0)
    brute = lp_patterns(X * scale)
    sp = cr.SignPatterns.enumerate(X)
    assert as_set(sp) == brute
    if expected is not None:
        assert sp.n_patterns == expected
    np.testing.assert_array_equal((sp.directions @ X.T) >= 0, sp.patterns)
