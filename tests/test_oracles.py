import numpy as np
import pytest

import convexrelu as cr

from _brute import brute_omega_2d, brute_omega_sphere, f_omega, projection_omega_c1


def check_result(res, X, Z):
    assert res.u.shape == (X.shape[1],)
    np.testing.assert_allclose(np.linalg.norm(res.u), 1.0, rtol=1e-12)
    # the returned u attains the returned value
    np.testing.assert_allclose(f_omega(X, Z, res.u), res.attained, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("c", [1, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_oracle_2d_equals_brute_force(c, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((15, 2))
    Z = rng.standard_normal((15, c))
    res = cr.ExactOracle(X)(Z)
    brute = brute_omega_2d(X, Z)
    assert res.kind == "exact"
    assert res.value >= brute * (1 - 1e-12)  # never below any attained value
    np.testing.assert_allclose(res.value, brute, rtol=1e-8)
    check_result(res, X, Z)


@pytest.mark.parametrize("c", [1, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_oracle_3d_equals_brute_force(c, seed):
    rng = np.random.default_rng(10 + seed)
    X = rng.standard_normal((12, 3))
    Z = rng.standard_normal((12, c))
    res = cr.ExactOracle(X)(Z)
    brute = brute_omega_sphere(X, Z, rng)
    assert res.value >= brute * (1 - 1e-12)
    np.testing.assert_allclose(res.value, brute, rtol=1e-8)
    check_result(res, X, Z)


@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_oracle_c1_equals_cone_projection(d, seed):
    """For c = 1 each pattern's problem is convex: |projection of +-g onto the cone|."""
    rng = np.random.default_rng(20 * d + seed)
    n = 9
    X = rng.standard_normal((n, d))
    if seed == 2:
        X[3] = X[0]
        X[4] = 0.0
        X[5] = -X[1]
    z = rng.standard_normal((n, 1))
    sp = cr.SignPatterns.enumerate(X)
    res = cr.ExactOracle(X, sp)(z)
    proj = projection_omega_c1(X, z[:, 0], sp.patterns)
    np.testing.assert_allclose(res.value, proj, rtol=1e-9)
    check_result(res, X, z)


def test_maximiser_on_a_face_is_found():
    """Z built so that the best direction lies on a boundary ray, not inside a cell."""
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.3], [0.2, -1.0]])
    # |relu(u_1) - relu(u_2)|: any direction activating both rows loses, so the optimum
    # (value 1) sits on a ray where one of the two rows switches off.
    z = np.array([[1.0], [-1.0], [0.0], [0.0]])
    res = cr.ExactOracle(X)(z)
    brute = brute_omega_2d(X, z)
    np.testing.assert_allclose(res.value, 1.0, rtol=1e-12)
    np.testing.assert_allclose(res.value, brute, rtol=1e-10)
    assert min(abs(X[0] @ res.u), abs(X[1] @ res.u)) < 1e-8


def test_degenerate_data_3d_matches_brute_force():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((10, 3))
    X[1] = 3.0 * X[0]
    X[2] = -X[0]
    X[3] = 0.0
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    X[4], X[5], X[6] = a, a + b, a + 2 * b  # collinear points: a degenerate ray
    Z = rng.standard_normal((10, 4))
    res = cr.ExactOracle(X)(Z)
    brute = brute_omega_sphere(X, Z, rng)
    np.testing.assert_allclose(res.value, brute, rtol=1e-8)
    assert res.value >= brute * (1 - 1e-12)


def test_rank_deficient_oracle_matches_reduced_problem():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((20, 2)) @ rng.standard_normal((2, 6))
    Z = rng.standard_normal((20, 3))
    res = cr.ExactOracle(X)(Z)
    assert res.u.shape == (6,)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    brute = brute_omega_2d(X @ Vt[:2].T, Z)
    np.testing.assert_allclose(res.value, brute, rtol=1e-8)
    check_result(res, X, Z)


def test_zero_dual_point_and_zero_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 2))
    assert cr.ExactOracle(X)(np.zeros((6, 2))).value == 0.0
    assert cr.ExactOracle(np.zeros((6, 3)))(rng.standard_normal((6, 2))).value == 0.0


@pytest.mark.parametrize("c", [1, 3])
def test_sdp_bound_above_and_heuristic_below_exact(c):
    rng = np.random.default_rng(30 + c)
    X = rng.standard_normal((12, 3))
    Z = rng.standard_normal((12, c))
    exact = cr.ExactOracle(X)(Z)
    sdp = cr.SDPOracle(X)(Z)
    heur = cr.HeuristicOracle(X, random_state=0)(Z)
    assert sdp.kind == "upper_bound" and sdp.is_upper_bound
    assert heur.kind == "heuristic" and not heur.is_upper_bound
    assert sdp.value >= exact.value
    assert sdp.attained <= exact.value * (1 + 1e-12)
    assert heur.value <= exact.value * (1 + 1e-12)
    check_result(heur, X, Z)
    check_result(sdp, X, Z)


def test_heuristic_with_few_samples_is_not_a_bound_but_close():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 3))
    Z = rng.standard_normal((40, 2))
    exact = cr.ExactOracle(X)(Z).value
    heur = cr.HeuristicOracle(X, n_samples=50, random_state=0)(Z)
    assert heur.pattern_scope == "sampled"
    assert heur.value <= exact * (1 + 1e-12)
    assert heur.value >= 0.9 * exact


def test_make_oracle_auto_choices():
    rng = np.random.default_rng(0)
    assert cr.make_oracle(rng.standard_normal((30, 2))).kind == "exact"
    # d = 8, n = 30: not enumerable by default; the SDP bound is only used when asked for
    assert cr.make_oracle(rng.standard_normal((30, 8))).kind == "heuristic"
    assert cr.make_oracle(rng.standard_normal((30, 8)), oracle="upper_bound").kind == "upper_bound"
    # explicitly sampled patterns give the heuristic oracle
    assert cr.make_oracle(rng.standard_normal((30, 2)), patterns="sampled").kind == "heuristic"
    assert cr.make_oracle(rng.standard_normal((300, 8))).kind == "heuristic"


def test_omega_reference_cases_dual_feasible():
    """At the certified optima the scaled dual point has Omega = beta (tight constraint)."""
    from conftest import load_reference

    ref = load_reference("spiral_60x2x3_seed7_b0.03")
    X, Y, beta = ref["X"], ref["Y"], float(ref["beta"])
    net = cr.TwoLayerReLU(ref["W1"], ref["W2"])
    Z = Y - net.predict(X)
    val = cr.omega(X, Z, oracle="exact").value
    np.testing.assert_allclose(val, beta, rtol=1e-5)


def whitened_brute_2d(X, Z, n_grid=200000):
    """Brute force over directions u = V diag(1/s) w, w on a fine circle grid: uniform
    in the whitened coordinates, where even very thin cells of badly scaled data are wide."""
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    th = np.linspace(0, 2 * np.pi, n_grid, endpoint=False)
    Wd = np.column_stack([np.cos(th), np.sin(th)])
    U = (Wd / s) @ Vt
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    vals = np.linalg.norm(Z.T @ np.maximum(X @ U.T, 0.0), axis=0)
    return vals.max()


def test_badly_scaled_2d_data_regression():
    X0 = np.array([[1, 1.4022648267725224], [1, 1.1501656361496921],
                   [1, -2.3653039062769743], [1, 1.228683719203421]])
    X = X0 * np.array([1, 1e-8])
    Z = np.array([[0.5574634212833207, 0.3390962336838311], [0.5890708307709369, 0.29808204110124475],
                  [0.5372576332870589, -0.4435884277081366], [-1.6837918853413165, -0.19358984707693938]])
    res = cr.ExactOracle(X)(Z)
    brute = whitened_brute_2d(X, Z)
    assert res.value >= brute * (1 - 1e-12)
    np.testing.assert_allclose(res.value, brute, rtol=1e-5)  # grid resolution
    assert res.value >= 2.52514e-08  # exact face enumeration (multi-precision) gives this
    check_result(res, X, Z)


def test_badly_scaled_3d_data_no_false_certificate():
    X = np.array([[2, 1e-6, 0], [-2, 1e-6, -2e-6], [2, -1e-6, 0], [2, 0, -1e-6]])
    y = np.array([1.0, 0, 1, 1])
    # u = e1 alone attains |y^T (X e1)_+| = 6
    assert cr.ExactOracle(X)(y).value >= 6.0 * (1 - 1e-12)
    assert cr.SDPOracle(X)(y).value >= 6.0
    zero = cr.TwoLayerReLU(np.zeros((3, 1)), np.zeros((1, 1)))
    assert not cr.certify(zero, X, y, beta=1.0).is_global


def test_oracle_and_patterns_refuse_another_X():
    rng = np.random.default_rng(0)
    X1, X2 = rng.standard_normal((10, 3)), rng.standard_normal((10, 3))
    with pytest.raises(ValueError, match="different X"):
        cr.ExactOracle(X2, patterns=cr.SignPatterns.enumerate(X1))
    with pytest.raises(ValueError, match="different X"):
        cr.certify(cr.TwoLayerReLU.zeros(3, 1), X2, rng.standard_normal(10), 1.0,
                   oracle=cr.ExactOracle(X1))


def test_badly_scaled_3d_oracle_does_not_crash_and_is_exact():
    """Column scales 3e4, 1, 1e-5: the flats' metric spans ~1e19 (a Cholesky used to fail)."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((37, 3)) * np.array([3e4, 1.0, 1e-5])
    Z = rng.standard_normal((37, 3))
    res = cr.ExactOracle(X)(Z)
    brute = brute_omega_sphere(X, Z, rng, n_dirs=100000, n_refine=10)
    assert res.value >= brute * (1 - 1e-12)
    np.testing.assert_allclose(res.value, brute, rtol=1e-8)
    check_result(res, X, Z)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_exact_candidates_are_attained_sorted_and_include_the_maximiser(d):
    """``candidates`` (several atoms per call for column generation), every rank."""
    rng = np.random.default_rng(d)
    X = rng.standard_normal((12, d))
    Z = rng.standard_normal((12, 3))
    orc = cr.ExactOracle(X)
    best = orc(Z)
    thr = 0.5 * best.value
    vals, U = orc.candidates(Z, thr, kmax=15)
    assert 1 <= len(vals) <= 15 and U.shape == (len(vals), d)
    assert np.all(vals > thr) and np.all(np.diff(vals) <= 0)
    np.testing.assert_allclose(vals[0], best.value, rtol=1e-10)
    for v, u in zip(vals, U):
        np.testing.assert_allclose(np.linalg.norm(u), 1.0, rtol=1e-12)
        np.testing.assert_allclose(f_omega(X, Z, u), v, rtol=1e-10)
    # distinct directions
    G = U @ U.T
    assert np.all(G[~np.eye(len(vals), dtype=bool)] < 1 - 1e-12)
    # nothing above the maximum
    assert orc.candidates(Z, best.value * (1 + 1e-9))[0].size == 0


@pytest.mark.parametrize("d", [3, 4])
def test_exact_oracle_packed_regions_give_the_same_answers(d, monkeypatch):
    """Large region sets are kept as bits (and one basis per flat); forcing that layout on
    a small problem must change nothing: the same value, maximiser and candidates."""
    from convexrelu.oracles import exact

    rng = np.random.default_rng(40 + d)
    X = rng.standard_normal((14, d))
    X[3] = -X[2]  # opposite rows: one hyperplane, two patterns
    X[5] = X[4]
    Zs = [rng.standard_normal((14, 2)) for _ in range(3)]
    ref = exact.ExactOracle(X)
    monkeypatch.setattr(exact, "_FLOAT_CACHE_BYTES", 0)
    packed = exact.ExactOracle(X)
    assert any(isinstance(P, exact._PackedRows) for _, P in packed._groups)
    assert packed.n_regions == ref.n_regions
    for Z in Zs:
        a, b = ref(Z), packed(Z)
        assert a.value == b.value and a.attained == b.attained
        np.testing.assert_array_equal(a.u, b.u)
        va, Ua = ref.candidates(Z, 0.5 * a.value, 20)
        vb, Ub = packed.candidates(Z, 0.5 * a.value, 20)
        np.testing.assert_array_equal(va, vb)
        np.testing.assert_array_equal(Ua, Ub)
