"""The heuristic path's budget rules: the warm start's width and the local moves' length."""

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.solvers.cg import _lambda_hint, auto_warm_width, heuristic_refine_iter, warm_iterations


def test_warm_width_bounds_and_monotonicity():
    widths = [auto_warm_width(178, 13, 3, r) for r in (0.5, 1, 10, 30, 100, 1e4)]
    assert all(64 <= w <= 1024 for w in widths)
    assert widths == sorted(widths)  # smaller beta: at least as many neurons
    assert auto_warm_width(178, 13, 3, 10) == 64  # beta = 0.1 lambda_max
    assert auto_warm_width(150, 4, 3, 100) == 128  # at most 32 d
    assert auto_warm_width(100_000, 50, 10, 100) == 64  # at most what one evaluation may cost


def test_refine_iterations_bounds():
    assert heuristic_refine_iter(178, 13, 3, 150, 1000) > 100  # cheap evaluations: long moves
    assert heuristic_refine_iter(100_000, 50, 10, 300, 1000) == 100
    assert heuristic_refine_iter(20, 3, 3, 1, 50) == 50  # never above the solver's own limit
    assert 100 <= heuristic_refine_iter(2000, 20, 10, 0, 1000) <= 1000


def test_warm_start_iterations_grow_with_width_within_their_cost():
    assert warm_iterations(178, 13, 3, 64, 1000) == 100  # the narrow start: as before
    assert warm_iterations(178, 13, 3, 416, 1000) == 650  # wine, beta = 0.01: 100 per 64
    its = [warm_iterations(442, 10, 1, w, 1000) for w in (64, 128, 320, 640, 1024)]
    assert its[:3] == [100, 200, 500] and all(100 <= i <= 1000 for i in its)
    # past that, the cost bound: total multiply-adds of the descent at most WARM_ITER_WORK
    from convexrelu.solvers.cg import WARM_ITER_WORK
    assert all(i * 442 * 11 * w <= 1.001 * WARM_ITER_WORK for i, w in zip(its[3:], (640, 1024)))
    # bounded by the descent's total cost: breast cancer's 274 neurons get fewer
    assert warm_iterations(569, 30, 2, 274, 1000) < 100 * 274 / 64
    assert warm_iterations(100_000, 50, 10, 64, 1000) == 100  # at least 100
    assert warm_iterations(178, 13, 3, 1024, 300) == 300  # never above refine_max_iter


def test_exact_path_moves_are_short_far_from_the_optimum():
    from convexrelu.solvers.cg import EXACT_EARLY_MOVE, EXACT_LONG_MOVE_GAP, ConditionalGradient

    s = ConditionalGradient()
    s._heuristic = False  # a proof is the aim
    assert s._refine_iter(None, None, 10, 1000, 0.5) == EXACT_EARLY_MOVE
    assert s._refine_iter(None, None, 10, 1000, EXACT_LONG_MOVE_GAP / 2) == 1000
    assert s._refine_iter(None, None, 10, 1000, float("nan")) == 1000  # unknown gap: full
    assert s._refine_iter(None, None, 10, 50, 0.5) == 50  # never above the solver's limit


def test_exact_path_still_certifies_rank3():
    # rank-3 data (enumerable patterns) at a small beta: many atoms, short early moves, and
    # still a certified optimum that a non-convex restart cannot beat
    rng = np.random.default_rng(5)
    X = rng.standard_normal((25, 3))
    Y = rng.standard_normal((25, 2))
    lam = float(cr.lambda_max(X, Y))
    res = cr.fit(X, Y, 0.02 * lam)
    assert res.status == "optimal" and res.certificate.is_global
    assert res.certificate.dual <= res.objective


@pytest.mark.parametrize("kind", ["gaussian", "opposite and duplicate rows", "grid with intercept"])
def test_lambda_hint_is_a_lower_estimate(kind):
    rng = np.random.default_rng(3)
    if kind == "gaussian":
        X = rng.standard_normal((60, 2))
    elif kind == "opposite and duplicate rows":
        g = rng.standard_normal((20, 2))
        X = np.vstack([g, -g, g])
    else:
        X = np.column_stack([rng.integers(-2, 3, 60).astype(float), np.ones(60)])
    Y = rng.standard_normal((60, 2))
    exact = cr.lambda_max(X, Y)  # rank 2: the exact oracle
    assert exact.kind == "exact"
    hint = _lambda_hint(X, -Y)
    assert 0 < hint <= float(exact) * (1 + 1e-9)
