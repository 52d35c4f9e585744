"""No claim without proof: ``status="optimal"`` only when the certificate is a proof.

A gap *estimate* (heuristic oracle, sampled patterns) that meets ``tol`` gives
``"estimate_converged"``; every printed summary says "estimate" where a number is one.
"""

import json
import warnings

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.cli import main
from convexrelu.losses import SquaredLoss
from convexrelu.oracles import make_oracle
from convexrelu.solvers import STATUSES
from convexrelu.solvers.base import IterationLog, converged_status


def _problem(d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((20, d))
    Y = rng.standard_normal((20, 2))
    return X, Y


def _beta(X, Y, rel=0.3):
    return rel * cr.lambda_max(X, Y)


def test_estimate_converged_is_a_status():
    assert "estimate_converged" in STATUSES and "optimal" in STATUSES
    from convexrelu.solvers import base

    assert "estimate_converged" in base.SolveResult.__doc__


# --------------------------------------------------------------------------- the rule itself
def _log_with(oracle, X, Y, beta, tol=1e-6):
    """An IterationLog that has recorded the zero network with ``oracle``."""
    log = IterationLog("test", X, Y, beta, SquaredLoss(), tol)
    net = cr.TwoLayerReLU.zeros(X.shape[1], Y.shape[1])
    F = net.predict(X)
    log.record(net, F, oracle(SquaredLoss().gradient(F, Y)))
    return log


def test_log_converged_on_an_estimate_never_says_optimal():
    X, Y = _problem()
    # the zero network is optimal (gap 0), but the spectral bound cannot prove it
    big = 1.05 * cr.lambda_max(X, Y)
    assert np.linalg.norm(Y, 2) * np.linalg.norm(X, 2) > 1.01 * big
    log = _log_with(make_oracle(X, "heuristic", random_state=0), X, Y, big)
    assert log.converged() and not log.best_cert.is_global
    assert log.best_cert.rel_gap_estimate <= 1e-12 < log.best_cert.rel_gap
    assert log.stop_status(0, 10) == "estimate_converged"
    assert log.converged_status() == "estimate_converged"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = log.result("optimal", 0)  # a solver that claims too much is corrected
    assert res.status == "estimate_converged" and not res.certificate.is_global


def test_log_converged_with_a_proof_says_optimal():
    X, Y = _problem(d=2)
    big = 10 * cr.lambda_max(X, Y)
    log = _log_with(make_oracle(X, "exact"), X, Y, big)
    assert log.best_cert.is_global
    assert log.stop_status(0, 10) == "optimal"
    res = log.result("estimate_converged", 0)  # proven after all: the proof decides
    assert res.status == "optimal"


def test_log_claim_without_converged_gap_is_not_optimal():
    X, Y = _problem(d=2)
    log = _log_with(make_oracle(X, "exact"), X, Y, 1e-3 * cr.lambda_max(X, Y))
    assert not log.converged() and log.converged_status() is None
    assert log.stop_status(0, 10) is None
    res = log.result("optimal", 0)
    assert res.status == "stalled" and not res.certificate.is_global


def test_converged_status_follows_is_global():
    X, Y = _problem(d=2)
    cert = cr.certify(cr.TwoLayerReLU.zeros(2, 2), X, Y, 10 * cr.lambda_max(X, Y))
    assert cert.is_global and converged_status(cert) == "optimal"
    from dataclasses import replace

    assert converged_status(replace(cert, is_global=False)) == "estimate_converged"


# --------------------------------------------------------------------------- solvers
def test_cg_heuristic_converges_to_estimate_converged_never_optimal():
    X, Y = _problem()
    beta = _beta(X, Y)
    res = cr.fit(X, Y, beta, oracle="heuristic", random_state=0)
    c = res.certificate
    assert c.rel_gap_estimate <= 1e-6  # the estimate met tol ...
    assert res.status == "estimate_converged"  # ... which proves nothing
    assert c.is_global is False and c.is_rigorous is False
    # the proven bound (spectral) is reported beside it, and is never tighter
    assert np.isfinite(c.dual) and c.dual <= c.dual_estimate and c.rel_gap > 1e-6
    text = str(res)
    assert "estimate_converged" in text and "rel_gap_estimate" in text and "estimate" in text
    d = res.to_dict()
    assert d["status"] == "estimate_converged" and d["rel_gap_estimate"] <= 1e-6 < d["rel_gap"]


def test_cg_exact_converges_to_optimal():
    X, Y = _problem(d=2)
    res = cr.fit(X, Y, _beta(X, Y))
    assert res.status == "optimal"
    assert res.certificate.is_global is True and res.certificate.is_rigorous
    assert "estimate" not in str(res)
    assert res.to_dict()["gap_is_estimate"] is False


def test_every_status_optimal_is_global():
    """Whatever the solver, "optimal" comes with is_global and never with an estimate."""
    X, Y = _problem()
    beta = _beta(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = [cr.fit(X, Y, beta, oracle="heuristic", random_state=0, solver="cg", max_iter=3),
                   cr.fit(X, Y, beta, oracle="heuristic", random_state=0, solver="copositive")]
    for res in results:
        assert res.status in STATUSES
        assert (res.status == "optimal") == res.certificate.is_global
        assert res.status != "optimal"
        if res.certificate.rel_gap <= 1e-6:
            assert res.status == "estimate_converged"


def test_sgd_heuristic_converged_is_estimate_converged():
    pytest.importorskip("torch")
    from convexrelu.solvers import SGD

    X, Y = _problem()
    res = cr.fit(X, Y, _beta(X, Y), oracle="heuristic", random_state=0,
                 solver=SGD(n_neurons=30, max_epochs=3000, random_state=0, tol=1e-3))
    assert res.status != "optimal" and not res.certificate.is_global
    if res.certificate.rel_gap <= 1e-3:
        assert res.status == "estimate_converged"


def test_estimator_never_claims_optimal_from_an_estimate():
    X, Y = _problem()
    est = cr.ConvexReLURegressor(beta=_beta(X, Y), oracle="heuristic", random_state=0,
                                 fit_intercept=False).fit(X, Y)
    assert est.result_.status == "estimate_converged"
    assert not est.certificate_.is_global


# --------------------------------------------------------------------------- CLI
def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data3(tmp_path):
    X, Y = _problem()
    path = tmp_path / "d3.npz"
    np.savez(path, X=X, Y=Y)
    return path, _beta(X, Y)


def test_cli_fit_json_carries_estimate_converged(capsys, data3):
    path, beta = data3
    code, out, _ = _run(capsys, ["fit", str(path), "--beta", repr(beta), "--oracle", "heuristic",
                                 "--patterns", "sampled", "--seed", "0", "--json"])
    rec = json.loads(out)
    assert code == 1  # not certified
    assert rec["status"] == "estimate_converged"
    assert rec["is_global"] is False and rec["is_rigorous"] is False
    # dual/gap are proven (spectral); the oracle's estimate is reported separately
    assert rec["gap_is_estimate"] is False and rec["rel_gap"] >= rec["rel_gap_estimate"]


def test_cli_fit_human_output_says_estimate(capsys, data3):
    path, beta = data3
    code, out, _ = _run(capsys, ["fit", str(path), "--beta", repr(beta), "--oracle", "heuristic",
                                 "--patterns", "sampled", "--seed", "0"])
    assert code == 1
    assert "status='estimate_converged'" in out
    assert "status estimate_converged: the gap estimate" in out
    gap_lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("gap")]
    # every gap line says what it is: a proven bound, or an estimate that is not a bound
    assert any(ln.startswith("gap bound") for ln in gap_lines)
    assert any(ln.startswith("gap estimate") and "not a bound" in ln for ln in gap_lines)
    assert all(ln.startswith(("gap bound", "gap estimate")) for ln in gap_lines)


def test_cli_fit_json_exact_is_optimal(capsys, tmp_path):
    X, Y = _problem(d=2)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, Y=Y)
    code, out, _ = _run(capsys, ["fit", str(path), "--beta", repr(_beta(X, Y)), "--json"])
    rec = json.loads(out)
    assert code == 0 and rec["status"] == "optimal" and rec["is_global"] is True
    assert rec["gap_is_estimate"] is False


def test_cli_certify_says_estimate(capsys, tmp_path, data3):
    path, beta = data3
    model = tmp_path / "zero.npz"
    cr.TwoLayerReLU.zeros(3, 2).save(model)
    code, out, _ = _run(capsys, ["certify", str(model), str(path), "--beta", repr(beta),
                                 "--oracle", "heuristic", "--patterns", "sampled", "--seed", "0"])
    assert code == 1
    gap_lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("gap")]
    assert any(ln.startswith("gap estimate") and "not a bound" in ln for ln in gap_lines)
    assert all(ln.startswith(("gap bound", "gap estimate")) for ln in gap_lines)
    code, out, _ = _run(capsys, ["certify", str(model), str(path), "--beta", repr(beta),
                                 "--oracle", "heuristic", "--patterns", "sampled", "--seed", "0",
                                 "--json"])
    rec = json.loads(out)
    assert rec["status"] == "not_global" and rec["is_rigorous"] is False
    assert rec["dual"] <= rec["dual_estimate"]


def test_certificate_text_labels_bounds_and_estimates():
    X, Y = _problem()
    net = cr.TwoLayerReLU.zeros(X.shape[1], Y.shape[1])
    c = cr.certify(net, X, Y, _beta(X, Y), oracle="heuristic", random_state=0)
    text = str(c)
    assert "dual bound" in text and "proven, from the spectral bound" in text
    assert "gap estimate" in text and "not a bound" in text
    exact = cr.certify(cr.TwoLayerReLU.zeros(2, Y.shape[1]), X[:, :2], Y, _beta(X, Y))
    assert "estimate" not in str(exact)
