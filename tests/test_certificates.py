import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convexrelu as cr
from convexrelu.solvers import solve_scalar_cvxpy

from _brute import brute_omega_2d
from conftest import load_reference


def random_problem(seed, n=12, d=2, c=2, m=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, c))
    net = cr.TwoLayerReLU(rng.standard_normal((d, m)), rng.standard_normal((m, c)))
    return X, Y, net


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), c=st.integers(1, 4), m=st.integers(0, 6),
       beta=st.floats(1e-3, 10.0), scale=st.floats(0.01, 10.0))
def test_weak_duality_property(seed, c, m, beta, scale):
    """dual <= p* <= primal of every network: check against this and another network."""
    X, Y, net = random_problem(seed, c=c, m=m)
    net = cr.TwoLayerReLU(scale * net.W1, net.W2)
    _, _, other = random_problem(seed + 1, c=c, m=3)
    cert = cr.certify(net, X, Y, beta, oracle="exact")
    assert cert.is_rigorous
    assert cert.dual <= cert.primal + 1e-12 * max(1.0, abs(cert.primal))
    assert cert.dual <= other.objective(X, Y, beta) + 1e-12
    assert cert.dual <= cr.TwoLayerReLU.zeros(2, c).objective(X, Y, beta) + 1e-12
    assert cert.gap >= -1e-12 * max(1.0, abs(cert.primal))


def test_dual_point_rebuilt_by_hand():
    X, Y, net = random_problem(3, n=15, c=3, m=5)
    beta = 0.7
    cert = cr.certify(net, X, Y, beta)
    # by hand: residual, brute-force Omega, scaling, squared-loss dual objective
    F = np.maximum(X @ net.W1, 0) @ net.W2
    Z = Y - F
    om = brute_omega_2d(X, Z)
    Zs = Z * min(1.0, beta / om)
    dual = -0.5 * np.sum((Zs - Y) ** 2) + 0.5 * np.sum(Y**2)
    primal = 0.5 * np.sum((F - Y) ** 2) + beta / 2 * (np.sum(net.W1**2) + np.sum(net.W2**2))
    np.testing.assert_allclose(cert.omega, om, rtol=1e-8)
    np.testing.assert_allclose(cert.primal, primal, rtol=1e-12)
    np.testing.assert_allclose(cert.dual, dual, rtol=1e-8)
    np.testing.assert_allclose(cert.gap, primal - dual, rtol=1e-7)
    np.testing.assert_allclose(cert.rel_gap, (primal - dual) / primal, rtol=1e-7)


@pytest.fixture(scope="module")
def scalar_optimum():
    rng = np.random.default_rng(2024)
    X = rng.standard_normal((20, 2))
    y = rng.standard_normal(20)
    beta = 0.1
    res = solve_scalar_cvxpy(X, y, beta)
    assert res.status == "optimal"
    return X, y, beta, res


def test_cvxpy_eq9_optimum_certifies_as_global(scalar_optimum):
    X, y, beta, res = scalar_optimum
    cert = cr.certify(res.network, X, y, beta)
    assert cert.oracle_kind == "exact" and cert.pattern_scope == "exact"
    assert cert.rel_gap <= 1e-6
    assert cert.is_global
    # the network's objective equals the conic program's value (reconstruction is exact)
    np.testing.assert_allclose(cert.primal, res.objective, rtol=1e-7)


def test_removing_a_neuron_breaks_the_certificate(scalar_optimum):
    X, y, beta, res = scalar_optimum
    net = res.network.prune(1e-8)
    strength = np.linalg.norm(net.W1, axis=0) * np.abs(net.W2[:, 0])
    keep = np.arange(net.n_neurons) != int(np.argmax(strength))
    worse = cr.TwoLayerReLU(net.W1[:, keep], net.W2[keep])
    cert = cr.certify(worse, X, y, beta)
    assert cert.is_rigorous
    assert not cert.is_global
    assert cert.rel_gap > 1e-2
    # the dual bound is still valid: below the true optimum
    assert cert.dual <= res.objective * (1 + 1e-8)


def test_zero_network_certified_above_lambda_max():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 2))
    Y = rng.standard_normal((20, 3))
    lam = cr.lambda_max(X, Y)
    np.testing.assert_allclose(lam, brute_omega_2d(X, Y), rtol=1e-8)
    zero = cr.TwoLayerReLU.zeros(2, 3)
    for beta in (lam, 1.5 * lam):
        cert = cr.certify(zero, X, Y, beta)
        assert cert.is_global and cert.gap == pytest.approx(0.0, abs=1e-12)
    below = cr.certify(zero, X, Y, 0.5 * lam)
    assert not below.is_global and below.rel_gap > 1e-3


def test_sampled_patterns_or_heuristic_never_global(scalar_optimum):
    X, y, beta, res = scalar_optimum
    for kwargs in (dict(patterns="sampled"), dict(oracle="heuristic"),
                   dict(patterns="sampled", oracle="heuristic"),
                   dict(patterns=cr.SignPatterns.sample(X, 10**5, random_state=0))):
        cert = cr.certify(res.network, X, y, beta, random_state=0, **kwargs)
        assert cert.oracle_kind == "heuristic"
        assert not cert.is_rigorous
        assert not cert.is_global
        # the estimate itself is close: the network is optimal; the proven gap (spectral
        # bound) is reported beside it and is never smaller
        assert cert.rel_gap_estimate < 1e-5 and cert.rel_gap >= cert.rel_gap_estimate


def test_sdp_certificate_is_rigorous_and_valid(scalar_optimum):
    X, y, beta, res = scalar_optimum
    cert = cr.certify(res.network, X, y, beta, oracle="upper_bound")
    exact = cr.certify(res.network, X, y, beta, oracle="exact")
    assert cert.oracle_kind == "upper_bound" and cert.is_rigorous
    assert cert.omega >= exact.omega
    assert cert.dual <= exact.dual + 1e-12
    assert cert.dual <= res.objective * (1 + 1e-8)


@pytest.mark.parametrize("name", ["planted_25x2x5_seed101_b0.01", "spiral_60x2x3_seed7_b0.03",
                                  "scalar_30x2x1_seed2024_b0.05"])
def test_reference_networks_certify_against_shipped_bounds(name):
    ref = load_reference(name)
    X, Y, beta = ref["X"], ref["Y"], float(ref["beta"])
    net = cr.TwoLayerReLU(ref["W1"], ref["W2"])
    cert = cr.certify(net, X, Y, beta)
    np.testing.assert_allclose(cert.primal, float(ref["p_upper"]), rtol=1e-12)
    # our dual bound is the same construction as the shipped p_lower
    np.testing.assert_allclose(cert.dual, float(ref["p_lower"]), rtol=1e-9)
    assert cert.is_global


def test_certificate_summary_and_dict():
    X, Y, net = random_problem(0)
    cert = cr.certify(net, X, Y, 0.5)
    text = str(cert)
    assert "primal objective" in text and "dual bound" in text and "verdict" in text
    d = cert.to_dict()
    assert d["primal"] == cert.primal and d["is_global"] == cert.is_global
    with pytest.raises(AttributeError):
        cert.primal = 0.0  # frozen


def test_oracle_object_reused_across_certificates():
    X, Y, net = random_problem(9, n=30, c=2)
    orc = cr.ExactOracle(X)
    a = cr.certify(net, X, Y, 0.3, oracle=orc)
    b = cr.certify(net, X, Y, 0.3)
    assert a.dual == pytest.approx(b.dual, rel=1e-12)


def test_certificate_check_never_proves_nothing():
    """check='never' (the solvers' reports between iterations): a bound that meets tol
    is not global without its self-check, and says why; an unknown value is an error."""
    from convexrelu.certificates import certificate_from_oracle, scaled_dual
    from convexrelu.losses import get_loss
    from convexrelu.oracles.spectral import spectral_result
    from convexrelu.kernels import spectral_norm

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    Y = rng.standard_normal((40, 2))
    loss, beta = get_loss("squared"), 0.5
    G = -Y  # the gradient at the zero network
    res = spectral_result(G, X, spectral_norm(X))
    dual = scaled_dual(G, Y, beta, loss, res.value)[0]
    primal = dual * (1 + 1e-9)  # the bound would meet tol
    auto = certificate_from_oracle(primal, G, Y, beta, loss, res, 1e-6, 0.0, X=X)
    assert auto.is_global and auto.check_passed is True  # the spectral bound passes its check
    never = certificate_from_oracle(primal, G, Y, beta, loss, res, 1e-6, 0.0, X=X,
                                    check="never")
    assert not never.is_global and never.check == "not run" and "check='never'" in never.reason
    assert never.dual == auto.dual  # the same proven number, only not claimed as a proof
    with pytest.raises(ValueError, match="check must be"):
        certificate_from_oracle(primal, G, Y, beta, loss, res, 1e-6, 0.0, X=X, check="nope")


def test_omega_for_tol_is_the_level_that_still_certifies():
    """omega_for_tol: a bound at the level it returns certifies at tol, a bound a little
    above the full level (share = 1) does not, and a primal value whose gap at a bound of
    beta is already above tol gets beta back."""
    import time

    import convexrelu as cr
    from convexrelu.certificates import certificate_from_oracle, omega_for_tol
    from convexrelu.losses import get_loss
    from convexrelu.oracles import OracleResult

    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 3))
    Y = rng.standard_normal((40, 2))
    beta = 0.2 * float(cr.lambda_max(X, Y))
    net = cr.fit(X, Y, beta, tol=1e-7, random_state=0).network
    loss = get_loss("squared")
    G = loss.gradient(net.predict(X), Y)
    primal = float(net.objective(X, Y, beta))

    def gap(om):
        res = OracleResult(om, np.eye(3)[0], beta, "upper_bound", "exact", None, 0.0)
        return certificate_from_oracle(primal, G, Y, beta, loss, res, 1e-3, time.perf_counter(),
                                       check="never").rel_gap

    for tol in (1e-3, 1e-4):
        w = omega_for_tol(primal, G, Y, beta, loss, tol, share=1.0)
        assert w > beta
        assert gap(w) <= tol < gap(w * (1 + 1e-6))
        w9 = omega_for_tol(primal, G, Y, beta, loss, tol)
        assert beta < w9 < w and gap(w9) < tol
    # a primal value 1 % above what this residual's dual can reach: no bound certifies it
    assert omega_for_tol(primal * 1.01, G, Y, beta, loss, 1e-4) == beta
