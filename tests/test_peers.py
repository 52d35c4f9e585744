"""The pyscnn adapter (convexrelu.experiments.peers): regulariser scaling, network mapping,
error messages. The tests that run pyscnn are skipped where it is not installed
(``pip install --no-deps pyscnn linalg-backends opt_einsum``; its import name is ``scnn``)."""

import logging
import sys

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.experiments import peers

INSTALL = "pip install --no-deps pyscnn linalg-backends opt_einsum"
HAVE_PYSCNN, WHY = peers.pyscnn_status()
needs_pyscnn = pytest.mark.skipif(not HAVE_PYSCNN, reason=WHY)


def _problem():
    # d = 2: cr.fit's patterns are exact (certified), and 200 gates draw all 16 patterns
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 2))
    y = np.maximum(X @ rng.standard_normal((2, 5)), 0.0) @ rng.standard_normal(5)
    beta = 0.5 * cr.lambda_max(X, y)
    return X, y, beta


@pytest.fixture(scope="module")
def solved():
    X, y, beta = _problem()
    ref = cr.fit(X, y, beta)
    np_state = np.random.get_state()[1].copy()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    res = peers.fit_pyscnn(X, y, beta, n_patterns=200, tol=1e-6, max_iter=2000, random_state=0)
    restored = (np.array_equal(np.random.get_state()[1], np_state) and root.level == level
                and root.handlers == handlers)
    return X, y, beta, ref, res, restored


def test_pyscnn_status_is_bool_and_reason():
    ok, reason = peers.pyscnn_status()
    assert isinstance(ok, bool) and isinstance(reason, str) and reason
    if not ok:
        assert INSTALL in reason


@needs_pyscnn
def test_scaling_lam_is_beta_over_n(solved):
    X, y, beta, ref, res, _ = solved
    n = X.shape[0]
    assert res.info["lam"] == pytest.approx(beta / n, rel=1e-15)
    # pyscnn's own objective of its solution, times n, is eq. 9 of the same weights with
    # beta: the exact identity that holds only for lam = beta / n (any iterate, converged or not)
    np.testing.assert_allclose(n * res.info["pyscnn_objective"], res.info["convex_objective"],
                               rtol=1e-10)
    assert res.info["objective_scale"] == n


@needs_pyscnn
def test_objective_matches_certified_optimum(solved):
    X, y, beta, ref, res, _ = solved
    assert ref.certificate.is_global
    lower = ref.certificate.dual
    # ours, not pyscnn's: the network's eq. 5 objective
    assert res.objective == pytest.approx(res.network.objective(X, y, beta), rel=1e-14)
    assert res.objective >= lower - 1e-8 * abs(lower)
    assert res.objective <= ref.objective * (1 + 1e-3)
    assert res.info["status"] == "converged"
    assert res.info["n_patterns_used"] == cr.SignPatterns.enumerate(X).n_patterns
    cert = cr.certify(res.network, X, y, beta=beta)
    assert cert.primal == pytest.approx(res.objective, rel=1e-12) and cert.rel_gap < 1e-3
    assert res.time > 0 and res.network.n_outputs == 1


@needs_pyscnn
def test_network_is_remark_5_1_of_the_convex_weights(solved):
    X, y, beta, ref, res, _ = solved
    net = res.network
    # balanced neurons: |u_j| = |a_j|, so beta/2(|u|^2 + a^2) = beta |w_i|
    np.testing.assert_allclose(np.linalg.norm(net.W1, axis=0), np.abs(net.W2[:, 0]), rtol=1e-12)
    # eq. 5 of the network = eq. 9 of the weights up to the (reported) cone violation
    assert abs(res.objective - res.info["convex_objective"]) <= 1e-3 * res.objective
    assert res.info["cone_violation"] >= 0.0


@needs_pyscnn
def test_global_state_is_put_back(solved):
    assert solved[5]


def test_vector_output_is_refused():
    X, y, beta = _problem()
    Y = np.column_stack([y, -y])
    with pytest.raises(ValueError, match=r"scalar-output.*c=2"):
        peers.fit_pyscnn(X, Y, beta)


def test_missing_pyscnn_is_a_clear_import_error(monkeypatch):
    for name in [m for m in sys.modules if m == "scnn" or m.startswith("scnn.")] + ["scnn"]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: the import fails
    X, y, beta = _problem()
    with pytest.raises(ImportError, match="pip install --no-deps pyscnn linalg-backends opt_einsum"):
        peers.fit_pyscnn(X, y, beta)
    ok, reason = peers.pyscnn_status()
    assert ok is False and INSTALL in reason and "scnn" in reason
