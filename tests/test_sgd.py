"""The non-convex baseline ``solver="sgd"`` (paper App. A.1 protocol)."""

import math

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.datasets import planted, spiral
from convexrelu.losses import LOSSES, get_loss

torch = pytest.importorskip("torch")

from convexrelu.solvers.sgd import SGD, torch_loss  # noqa: E402


@pytest.fixture(scope="module")
def small():
    X, Y, _ = planted(n=12, d=2, c=3, seed=3)
    beta = 1e-2
    opt = cr.fit(X, Y, beta, tol=1e-7)  # a tolerance cg reaches on every BLAS kernel
    assert opt.certificate.is_global
    return X, Y, beta, opt


def test_never_beats_the_certified_optimum_and_certificate_is_recomputable(small):
    X, Y, beta, opt = small
    for seed in range(4):
        r = cr.fit(X, Y, beta, solver=SGD(8, random_state=seed, max_epochs=3000))
        assert r.solver == "sgd"
        # the certified lower bound holds for every network, SGD's included
        assert r.objective >= opt.certificate.dual - 1e-9
        assert r.objective == pytest.approx(r.network.objective(X, Y, beta), rel=1e-12)
        again = cr.certify(r.network, X, Y, beta)
        assert again.dual == pytest.approx(r.certificate.dual, rel=1e-9, abs=1e-12)
        assert r.certificate.is_global == (r.certificate.rel_gap <= 1e-6)


def test_history_and_init_follow_the_protocol(small):
    X, Y, beta, _ = small
    s = SGD(20, random_state=0, max_epochs=300, lr=1e-3)
    r = cr.fit(X, Y, beta, solver=s)
    h = r.history
    assert len(h["objective"]) == r.n_iter == 300
    assert np.all(np.diff(h["time"]) >= 0)
    # epoch 0 is the Kaiming-uniform initialisation: recompute it from the same seed
    g = torch.Generator().manual_seed(0)
    W1 = ((torch.rand((2, 20), generator=g, dtype=torch.float64) * 2 - 1) * math.sqrt(6 / 2)).numpy()
    W2 = ((torch.rand((20, 3), generator=g, dtype=torch.float64) * 2 - 1) * math.sqrt(3 / 20)).numpy()
    assert h["objective"][0] == pytest.approx(cr.TwoLayerReLU(W1, W2).objective(X, Y, beta), rel=1e-12)
    # returned network: the best iterate, rebalanced (never worse)
    assert r.objective <= np.min(h["objective"]) + 1e-12
    assert r.info["objective_unbalanced"] == pytest.approx(np.min(h["objective"]))
    assert r.info["lr0"] == 1e-3 and h["lr"][0] == 1e-3
    assert r.status == "max_iter"


def test_auto_lr_is_the_largest_that_does_not_diverge(small):
    X, Y, beta, _ = small
    r = cr.fit(X, Y, beta, solver=SGD(10, random_state=1, max_epochs=50))
    probes = r.info["lr_probes"]
    assert probes[-1]["ok"] and all(not p["ok"] for p in probes[:-1])
    assert r.info["lr0"] == probes[-1]["lr"]
    if len(probes) > 1:  # twice the chosen rate was rejected by the probe
        assert probes[-2]["lr"] == pytest.approx(2 * r.info["lr0"])


def test_divergence_is_caught_and_the_rate_halved(small):
    X, Y, beta, _ = small
    r = cr.fit(X, Y, beta, solver=SGD(10, random_state=0, lr=50.0, max_epochs=400))
    assert r.info["divergence_restarts"] > 0
    assert r.info["final_lr"] < 50.0
    assert np.isfinite(r.objective)


def test_warm_start_at_the_optimum_is_certified(small):
    X, Y, beta, opt = small
    r = cr.fit(X, Y, beta, solver=SGD(lr=1e-4, max_epochs=50, plateau_patience=5),
               warm_start=opt.network)
    assert r.status == "optimal" and r.certificate.is_global
    assert r.objective == pytest.approx(opt.objective, rel=1e-6)


def test_too_narrow_network_stalls_above_the_optimum(small):
    X, Y, beta, opt = small
    r = cr.fit(X, Y, beta, solver=SGD(1, random_state=0, plateau_patience=20, lr=1e-2,
                                      min_lr=2.5e-3, max_epochs=20000))
    assert r.status == "stalled"
    assert r.objective > opt.objective * 1.01
    assert not r.certificate.is_global
    assert len(r.info["checks"]) >= 2  # certified at each halving and at the end


def test_adam_float32_and_time_limit(small):
    X, Y, beta, opt = small
    r = cr.fit(X, Y, beta, solver=SGD(30, optimizer="adam", lr=1e-2, dtype="float32",
                                      random_state=0, max_epochs=2000))
    assert r.objective >= opt.certificate.dual - 1e-6
    assert r.info["dtype"] == "float32" and r.objective < 0.5 * r.history["objective"][0]
    r = cr.fit(X, Y, beta, solver=SGD(30, random_state=0, lr=1e-3, max_epochs=10**7, time_limit=0.3))
    assert r.status == "time_limit" and r.time < 5


def test_interrupt_returns_the_best_network_with_a_certificate(small):
    X, Y, beta, _ = small

    def cb(row):
        if row["epoch"] == 30:
            raise KeyboardInterrupt

    r = cr.fit(X, Y, beta, solver=SGD(10, random_state=0, lr=1e-3, callback=cb))
    assert r.status == "interrupted" and r.n_iter == 31
    assert r.certificate.primal == pytest.approx(r.objective)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_torch_losses_equal_the_numpy_losses(name):
    loss = get_loss(name)
    rng = np.random.default_rng(0)
    F = rng.standard_normal((7, 3))
    if name in ("cross_entropy", "multiclass_hinge"):
        Y = np.eye(3)[rng.integers(0, 3, 7)]
    elif name == "logistic":
        F = F[:, :1]
        Y = rng.choice([-1.0, 1.0], (7, 1))
    else:
        Y = rng.standard_normal((7, 3))
    val = float(torch_loss(loss, torch.tensor(F), torch.tensor(Y)))
    assert val == pytest.approx(loss.value(F, Y), rel=1e-12)
    # the loss owns its form; torch_loss (kept for compatibility) is a wrapper of it
    Ft = torch.tensor(F, requires_grad=True)
    own = loss.torch_value(Ft, torch.tensor(Y))
    assert own.ndim == 0 and float(own.detach()) == val
    own.backward()  # differentiable: the (sub)gradient is the numpy one
    np.testing.assert_allclose(Ft.grad.numpy(), loss.gradient(F, Y), rtol=1e-10, atol=1e-12)


def test_history_is_an_iteration_log_with_the_certificates_at_the_checks(small):
    X, Y, beta, _ = small
    r = cr.fit(X, Y, beta, solver=SGD(1, random_state=0, plateau_patience=20, lr=1e-2,
                                      min_lr=2.5e-3, max_epochs=20000))
    h = r.history
    n = r.n_iter
    assert {"iter", "time", "objective", "dual", "gap", "rel_gap", "n_neurons", "omega",
            "lr"} <= set(h)
    assert all(len(v) == n for v in h.values())
    assert h["iter"].dtype.kind == "i" and np.all(np.diff(h["iter"]) > 0)
    assert np.all(h["n_neurons"] == 1)
    # certified rows: one per learning-rate halving and the last (the returned network's)
    certified = np.flatnonzero(~np.isnan(h["rel_gap"]))
    assert np.array_equal(certified, np.flatnonzero(~np.isnan(h["omega"])))
    assert set(certified + 1) == {c["epoch"] for c in r.info["checks"]}
    assert certified[-1] == n - 1
    assert h["rel_gap"][-1] == r.certificate.rel_gap and h["dual"][-1] == r.certificate.dual
    assert h["gap"][-1] == r.certificate.gap


def test_epochs_that_diverged_leave_no_row(small):
    X, Y, beta, _ = small
    r = cr.fit(X, Y, beta, solver=SGD(10, random_state=0, lr=50.0, max_epochs=400))
    h = r.history
    assert r.status == "max_iter" and r.info["divergence_restarts"] > 0
    # rows keep the epoch numbers; the restarted epochs are the ones missing
    assert h["iter"][-1] == 399 and r.n_iter + r.info["divergence_restarts"] == 400


def test_cross_entropy_sgd_respects_the_certified_bound():
    X, _, labels = spiral(n_per_class=6, seed=1)
    beta = 0.1
    opt = cr.fit(X, labels, beta, loss="cross_entropy")
    r = cr.fit(X, labels, beta, loss="cross_entropy",
               solver=SGD(40, random_state=0, max_epochs=1500))
    assert r.certificate.loss == "cross_entropy"
    assert r.objective >= opt.certificate.dual - 1e-9


@pytest.mark.parametrize("kw, match", [
    (dict(n_neurons=0), "n_neurons"), (dict(optimizer="lbfgs"), "optimizer"),
    (dict(lr=-1.0), "lr"), (dict(lr="big"), "lr"), (dict(momentum=1.0), "momentum"),
    (dict(dtype="float16"), "dtype"), (dict(max_epochs=0), "max_epochs"),
    (dict(random_state=1.5), "random_state"), (dict(time_limit=0), "time_limit"),
])
def test_bad_settings_are_refused_by_name(kw, match):
    with pytest.raises(ValueError, match=match):
        SGD(**kw)


def test_missing_cuda_is_refused(small):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    X, Y, beta, _ = small
    with pytest.raises(ValueError, match="CUDA"):
        cr.fit(X, Y, beta, solver=SGD(device="cuda"))


def test_fit_by_name(small):
    X, Y, beta, opt = small
    r = cr.fit(X, Y, beta, solver="sgd", max_iter=200)
    assert r.solver == "sgd" and r.n_iter <= 200
    assert r.objective >= opt.certificate.dual - 1e-9
