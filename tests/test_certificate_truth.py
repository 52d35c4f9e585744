"""Certificates that cannot lie: the degenerate cases of issue 12, the self-check, and a
deliberately broken oracle that the self-check must catch."""

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.oracles import ExactOracle, OracleResult, _Sweep2D
from convexrelu.verify import check_omega

from _brute import brute_omega_2d, brute_omega_sphere, f_omega

X3 = np.array([[1.0, -2.0], [2.0, 2.0], [-1.0, 2.0]])  # rows 0 and 2 are opposite
Y3 = np.array([[-2.0], [-2.0], [2.0]])


def test_three_points_with_opposite_rows():
    res = cr.omega(X3, Y3)
    assert res.value == pytest.approx(6.0, rel=1e-12)  # attained at u = (1, 0)
    assert f_omega(X3, Y3, np.array([1.0, 0.0])) == pytest.approx(6.0, rel=1e-15)
    zero = cr.TwoLayerReLU.zeros(2, 1)
    cert = cr.certify(zero, X3, Y3, beta=5.7)
    assert not cert.is_global and cert.dual < 6.0 - 1e-3
    # a one-neuron network along (1, 0) beats the zero network: the certificate allows it
    a = np.sqrt(0.06)  # the best neuron along (1, 0): path weight 0.06, balanced
    one = cr.TwoLayerReLU(np.array([[a], [0.0]]), np.array([[-a]]))
    assert one.objective(X3, Y3, 5.7) == pytest.approx(5.991, abs=1e-12)
    assert one.objective(X3, Y3, 5.7) < 6.0 and cert.dual <= one.objective(X3, Y3, 5.7)
    fit = cr.fit(X3, Y3, beta=5.7)
    assert fit.status == "optimal" and fit.certificate.is_global
    assert fit.objective < 6.0 - 1e-3
    assert fit.certificate.check_passed is True


def test_rank3_four_points_with_two_opposite_rows():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 3))
    X[3] = -X[1]
    for seed in range(5):
        Z = np.random.default_rng(seed).standard_normal((4, 2))
        res = cr.omega(X, Z)
        ref = brute_omega_sphere(X, Z, np.random.default_rng(seed))
        assert res.value >= ref * (1 - 1e-10)
        assert res.value == pytest.approx(ref, rel=1e-7)


@pytest.mark.parametrize("kind", ["duplicate", "opposite", "grid", "circle", "intercept"])
def test_exact_oracle_never_below_brute_force_on_degenerate_2d(kind):
    rng = np.random.default_rng(hash(kind) % 2**32)
    for _ in range(20):
        n = int(rng.integers(3, 12))
        if kind == "duplicate":
            X = rng.standard_normal((n, 2))
            X[1::2] = X[0::2][: X[1::2].shape[0]]
        elif kind == "opposite":
            X = rng.standard_normal((n, 2))
            X[n // 2:] = -X[: n - n // 2]
        elif kind == "grid":
            X = rng.integers(-2, 3, (n, 2)).astype(float)
        elif kind == "circle":
            t = rng.integers(0, 8, n) * np.pi / 4
            X = np.column_stack([np.cos(t), np.sin(t)])
        else:
            X = np.column_stack([rng.integers(-3, 4, n).astype(float), np.ones(n)])
        Z = rng.integers(-2, 3, (n, int(rng.integers(1, 3)))).astype(float)
        res = cr.omega(X, Z)
        assert res.value >= brute_omega_2d(X, Z) * (1 - 1e-12)


def test_extreme_column_scales_keep_the_small_direction():
    """1e8 and 1e-8 in one X: the small column is a genuine direction of the patterns."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((12, 2))
    X = A * np.array([1e8, 1e-8])
    X[:6, 0] = 0.0  # half the rows are decided by the small column alone
    Z = np.zeros((12, 1))
    Z[:6, 0] = np.sign(A[:6, 1])  # rewards exactly those rows
    res = cr.omega(X, Z)
    # u = (0, 1) activates the rows with A[:, 1] > 0 among the first six
    ref = max(f_omega(X, Z, np.array([0.0, 1.0])), f_omega(X, Z, np.array([0.0, -1.0])))
    assert ref > 0 and res.value >= ref * (1 - 1e-12)
    assert cr.SignPatterns.enumerate(X).rank == 2
    beta = 0.5 * ref
    cert = cr.certify(cr.TwoLayerReLU.zeros(2, 1), X, Z, beta=beta)
    assert not cert.is_global


def test_rank_truncation_is_bounded_not_ignored():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((15, 2)) @ rng.standard_normal((2, 4))
    X = X + 1e-19 * rng.standard_normal(X.shape)  # below any rank tolerance
    Z = rng.standard_normal((15, 3))
    res = cr.ExactOracle(X)(Z)
    assert res.margin > 0.0
    assert res.value >= res.attained
    assert res.value - res.attained <= 1e-12 * res.value
    np.testing.assert_allclose(f_omega(X, Z, res.u), res.attained, rtol=1e-12)


def test_spike_free_test_is_per_pair():
    X = np.zeros((12, 12))
    X[0, 0] = 1e3
    X[1:, 1] = 1e-3  # eleven identical small rows: not orthogonal to each other
    assert not cr.is_spike_free(X)
    with pytest.raises(ValueError, match="orthogonal"):
        cr.fit(X, np.ones(12), beta=0.1, oracle="spike-free")


class _WrongOracle:
    """An 'exact' oracle that under-reports Omega by 10 %: what a regressed sweep does."""

    kind = "exact"

    def __init__(self, X):
        self.inner = ExactOracle(X)
        self.fingerprint = self.inner.fingerprint
        self.n_patterns = self.inner.n_patterns

    def __call__(self, Z):
        r = self.inner(Z)
        return OracleResult(0.9 * r.value, r.u, 0.9 * r.value, "exact", "exact", r.n_patterns,
                            r.time)


@pytest.mark.parametrize("X, Y, beta", [
    (X3, Y3, 5.7),
    (np.array([[1.0, 2, 0], [0, 1, 1], [-1, -2, 0], [2, 0, 1]]), np.array([[1.0], [-1], [1], [2]]), 1.0),
])
def test_self_check_catches_a_wrong_oracle(X, Y, beta):
    zero = cr.TwoLayerReLU.zeros(X.shape[1], Y.shape[1])
    omega = cr.omega(X, Y).value
    beta = 0.95 * omega  # the zero network is not optimal here ...
    orc = _WrongOracle(X)
    assert orc(Y).value < beta  # ... but the wrong oracle says it is
    cert = cr.certify(zero, X, Y, beta=beta, oracle=orc)
    assert not cert.is_global
    assert cert.check_passed is False and "self-check failed" in cert.reason
    assert not cert.is_rigorous
    assert "FAILED" in str(cert) and "estimate" in str(cert)
    # the dual was recomputed from the larger value the check found
    assert cert.dual <= zero.objective(X, Y, beta)
    res = cr.fit(X, Y, beta=beta, oracle=orc)
    assert res.status != "optimal" and not res.certificate.is_global


def test_self_check_catches_a_regressed_sweep(monkeypatch):
    """Reinstate the old defect (the first cell's active set measured by a dot product
    inside a sliver): the oracle is fooled, the certificate is not."""
    orig = _Sweep2D.__init__

    def broken(self, ev, B, zero, tol):
        orig(self, ev, B, zero, tol)
        if self.n_cells:
            w0 = np.array([np.cos(self.angles[0] + 0.5 * self.width[0]),
                           np.sin(self.angles[0] + 0.5 * self.width[0])]) / self.col
            self.active0 = ((self.A @ w0) > 0).astype(float)
            self.active0[:1] = 1.0 - self.active0[:1]  # and miscount a row, as the old sweep did

    monkeypatch.setattr(_Sweep2D, "__init__", broken)
    orc = ExactOracle(X3)
    assert orc(Y3).value < 6.0 - 1e-3  # the regression is real
    cert = cr.certify(cr.TwoLayerReLU.zeros(2, 1), X3, Y3, beta=5.7, oracle=orc)
    assert not cert.is_global and cert.check_passed is False


def test_check_agrees_with_exact_oracle_on_gaussian_data():
    rng = np.random.default_rng(5)
    for d in (2, 3):
        X = rng.standard_normal((30, d))
        Z = rng.standard_normal((30, 3))
        res = cr.omega(X, Z)
        chk = check_omega(X, Z, res.value, res.u)
        assert chk.passed
        assert chk.reference == pytest.approx(res.value, rel=1e-6)
    assert check_omega(X, Z, 0.95 * res.value).passed is False


def test_certify_reports_the_check():
    from convexrelu.datasets import planted

    X, Y, _ = planted(seed=0)
    res = cr.fit(X, Y, beta=1e-2)
    cert = cr.certify(res.network, X, Y, beta=1e-2)
    assert cert.is_global and cert.check_passed is True
    assert "independent arc enumeration" in cert.check
    assert "passed" in str(cert)
