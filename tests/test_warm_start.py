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
    assert auto_warm_width(150, 4, 3, 100) == 128  # low dimension: at most 8 d^2 (d <= 8)
    assert auto_warm_width(442, 10, 1, 100) == 640  # diabetes: 64 d above d = 8
    assert auto_warm_width(442, 10, 1, 1e4) == 640
    assert auto_warm_width(100_000, 50, 10, 100) == 64  # at most what one evaluation may cost


def test_refine_iterations_bounds():
    assert heuristic_refine_iter(178, 13, 3, 150, 1000) > 100  # cheap evaluations: long moves
    assert heuristic_refine_iter(100_000, 50, 10, 300, 1000) == 100
    assert heuristic_refine_iter(20, 3, 3, 1, 50) == 50  # never above the solver's own limit
    assert 100 <= heuristic_refine_iter(2000, 20, 10, 0, 1000) <= 1000
    # once an iteration gains little: short moves, at least SHORT_REFINE_LEAST
    from convexrelu.solvers.cg import SHORT_REFINE_LEAST
    assert heuristic_refine_iter(442, 10, 1, 100, 1000, short=True) == SHORT_REFINE_LEAST
    assert heuristic_refine_iter(442, 10, 1, 100, 1000, short=True) \
        < heuristic_refine_iter(442, 10, 1, 100, 1000)
    assert heuristic_refine_iter(20, 3, 3, 1, 30, short=True) == 30  # the solver's limit


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


def _eq5(X, Y, beta, U, V):
    from convexrelu.solvers.engine import balanced_network

    net = balanced_network(U, V)
    R = np.maximum(X @ net.W1, 0) @ net.W2 - Y
    return 0.5 * float(np.sum(R * R)) + 0.5 * beta * (np.sum(net.W1 ** 2) + np.sum(net.W2 ** 2))


def test_adam_moves_lower_eq5_and_return_the_best_iterate():
    """From a stalled L-BFGS point of a wide network Adam's local move goes lower; with a
    step far too large it never returns a point above its start (the best iterate is kept)."""
    from convexrelu.solvers.engine import adam_moves, refine

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6))
    Y = np.maximum(X @ rng.standard_normal((6, 8)), 0) @ rng.standard_normal((8, 3))
    beta = 0.05
    U = rng.standard_normal((6, 60))
    U /= np.linalg.norm(U, axis=0)
    V = 1e-2 * rng.standard_normal((60, 3))
    U, V, _ = refine(X, Y, beta, U, V, 300)
    f0 = _eq5(X, Y, beta, U, V)
    U1, V1, moved = adam_moves(X, Y, beta, U, V, 300)
    assert moved and _eq5(X, Y, beta, U1, V1) < f0
    np.testing.assert_allclose(np.linalg.norm(U1, axis=0), 1.0)  # unit directions again
    U2, V2, moved2 = adam_moves(X, Y, beta, U, V, 50, lr=1e3)
    assert _eq5(X, Y, beta, U2, V2) <= f0 * (1 + 1e-12)
    if not moved2:
        assert U2 is U and V2 is V


def test_adam_moves_stop_at_the_deadline_and_on_empty_networks():
    import time

    from convexrelu.solvers.engine import adam_moves

    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((50, 3)), rng.standard_normal((50, 2))
    U0, V0 = np.zeros((3, 0)), np.zeros((0, 2))
    assert adam_moves(X, Y, 0.1, U0, V0, 100)[2] is False
    U = rng.standard_normal((3, 10))
    U /= np.linalg.norm(U, axis=0)
    V = rng.standard_normal((10, 2))
    t0 = time.perf_counter()
    adam_moves(X, Y, 0.1, U, V, 10**9, deadline=t0 + 0.2)
    assert time.perf_counter() - t0 < 5.0  # 1e9 steps would take hours


def test_heuristic_path_uses_adam_moves_and_keeps_its_bound(monkeypatch):
    """The heuristic path (rank 6, no enumeration) runs the Adam moves after L-BFGS; the
    result is still an estimate with a proven lower bound at or below its objective."""
    from convexrelu.solvers import cg

    calls = []
    real = cg.adam_moves
    monkeypatch.setattr(cg, "adam_moves", lambda *a, **k: calls.append(a[5]) or real(*a, **k))
    rng = np.random.default_rng(2)
    X = rng.standard_normal((150, 6))
    Y = np.maximum(X @ rng.standard_normal((6, 5)), 0) @ rng.standard_normal((5, 2))
    beta = 0.05 * float(cr.lambda_max(X, Y))
    res = cr.fit(X, Y, beta, oracle="heuristic", max_iter=4, time_limit=20, random_state=0)
    assert calls and all(s >= cg.ADAM_STEPS * 100 for s in calls)
    assert res.certificate.dual <= res.objective * (1 + 1e-9)
    assert not res.certificate.is_global and res.status != "optimal"


def test_adam_steps_follow_lbfgs_and_their_cost():
    from convexrelu.solvers.cg import ADAM_STEPS, ADAM_WORK, adam_steps

    # cheap evaluations (wine-sized): ADAM_STEPS per L-BFGS iteration
    assert adam_steps(178, 13, 3, 100, 100) == ADAM_STEPS * 100
    # the cost cap binds: at most ADAM_WORK multiply-adds
    n, d, c, m = 1797, 64, 10, 50
    s = adam_steps(n, d, c, m, 100)
    assert 0 < s < ADAM_STEPS * 100 and s * n * (d + c) * m <= ADAM_WORK
    # fewer than 20 would fit (digits with 1000 neurons), or large data: none
    assert adam_steps(n, d, c, 1000, 100) == 0
    assert adam_steps(100_000, 50, 10, 100, 100) == 0


@pytest.mark.parametrize("backoff", [True, False])
def test_adam_moves_back_off_after_failures(monkeypatch, backoff):
    # an Adam move that gains nothing makes the next ones skip it (1, 3, 7, ... moves)
    import convexrelu.solvers.cg as cg

    calls = {"adam": 0, "refine": 0}
    real_refine = cg.refine

    def fake_adam(X, Y, beta, U, V, steps, deadline=None, loss=None, lr=None, progress=None):
        calls["adam"] += 1
        return U, V, False

    def counting_refine(*args, **kwargs):
        calls["refine"] += 1
        return real_refine(*args, **kwargs)

    monkeypatch.setattr(cg, "adam_moves", fake_adam)
    monkeypatch.setattr(cg, "refine", counting_refine)
    monkeypatch.setattr(cg, "ADAM_BACKOFF", backoff)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((60, 6)), rng.standard_normal((60, 2))
    res = cr.fit(X, Y, 0.05, oracle="heuristic", max_iter=16, time_limit=60, random_state=0)
    assert np.isfinite(res.objective)
    assert calls["refine"] >= 8
    if backoff:
        assert 1 <= calls["adam"] <= 5  # calls at moves 1, 3, 7, 15
    else:
        assert calls["adam"] == calls["refine"]


def test_local_moves_shorten_once_iterations_gain_little(monkeypatch):
    import convexrelu.solvers.cg as cg

    moves = []  # (L-BFGS iterations, neurons) of each local move
    real_refine = cg.refine

    def recording_refine(X, Y, beta, U, V, max_iter, *args, **kwargs):
        moves.append((max_iter, U.shape[1]))
        return real_refine(X, Y, beta, U, V, max_iter, *args, **kwargs)

    def kinds():
        return ["short" if it == heuristic_refine_iter(60, 6, 2, m, 1000, short=True) else
                "long" if it == heuristic_refine_iter(60, 6, 2, m, 1000) else "?"
                for it, m in moves]

    monkeypatch.setattr(cg, "refine", recording_refine)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((60, 6)), rng.standard_normal((60, 2))
    cr.fit(X, Y, 0.05, oracle="heuristic", max_iter=16, time_limit=60, random_state=0)
    k = kinds()
    assert k[0] == "long" and "short" in k[1:] and "?" not in k
    monkeypatch.setattr(cg, "SHORT_MOVE_GAIN", None)  # always long
    moves.clear()
    cr.fit(X, Y, 0.05, oracle="heuristic", max_iter=16, time_limit=60, random_state=0)
    assert set(kinds()) == {"long"}


from convexrelu.oracles.spectral import spectral_bound  # noqa: E402


def _tabular(seed=0, n=120, d=6, c=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = np.maximum(X @ rng.standard_normal((d, 8)), 0) @ rng.standard_normal((8, c))
    return X, Y, 0.05 * float(cr.lambda_max(X, Y))


def _oracle_kinds(infos):
    return [i["certificate"].oracle_kind for i in infos]


def test_warm_start_is_recorded_with_a_proven_bound_before_the_first_oracle_call():
    """The warm start's networks reach the callback (during the descent and at its end)
    before any oracle call, each with the spectral bound as a proven lower bound; the first
    iteration then certifies the last of them with the oracle's estimate."""
    X, Y, beta = _tabular()
    infos = []
    res = cr.fit(X, Y, beta, oracle="heuristic", max_iter=3, time_limit=30, random_state=0,
                 callback=infos.append)
    kinds = _oracle_kinds(infos)
    first_oracle = kinds.index("heuristic")
    warm = infos[:first_oracle]
    assert len(warm) >= 2  # at least one report inside the descent, and its end
    assert set(kinds[:first_oracle]) == {"upper_bound"}
    for i in warm:
        cert, net = i["certificate"], i["network"]
        assert cert.is_rigorous and not cert.is_global
        assert cert.dual <= cert.primal
        # the reported objective is the reported network's own
        assert i["objective"] == pytest.approx(net.objective(X, Y, beta), rel=1e-12)
        G = net.predict(X) - Y
        assert cert.omega_bound >= spectral_bound(G, np.linalg.norm(X, 2)) * (1 - 1e-12)
    assert warm[-1]["objective"] <= warm[0]["objective"]
    # the first oracle call is on the warm start's final network: same objective, and the
    # result then carries the oracle's estimate (not the loose spectral one) beside the bound
    assert infos[first_oracle]["objective"] == pytest.approx(warm[-1]["objective"], rel=1e-12)
    assert res.certificate.oracle_kind == "heuristic"
    assert res.certificate.dual <= res.objective * (1 + 1e-12)


def test_slow_set_up_leaves_the_warm_start_its_share_of_the_time_left(monkeypatch):
    """The warm start gets 15 % of the time left when it begins, not 15 % of time_limit
    from the fit's start: a set-up that takes longer than that (here the oracle's build,
    slowed to 2 s of a 10 s limit; in practice the first import of scikit-learn under a short limit)
    used to leave its deadline already past, and the warm start returned its random start
    after no descent at all (diabetes, beta = 0.1 lambda_max, time_limit=3: objective 195
    instead of 132)."""
    import time

    import convexrelu.solvers.base as base

    make = base.make_oracle

    def slow(*a, **k):
        time.sleep(2.0)
        return make(*a, **k)

    monkeypatch.setattr(base, "make_oracle", slow)
    X, Y, beta = _tabular()
    infos = []
    cr.fit(X, Y, beta, oracle="heuristic", max_iter=1, time_limit=10.0, random_state=0,
           callback=infos.append)
    warm = [i for i in infos if i["stage"] == "warm start"]
    # the descent ran: a report inside it (L-BFGS iteration 10) before its end
    assert len(warm) >= 2
    assert warm[-1]["objective"] < warm[0]["objective"]


def test_interrupt_during_the_first_oracle_call_returns_the_warm_start():
    """Ctrl-C once the warm start exists returns it with its certificate (before, the fit
    had no network recorded until the first oracle call and re-raised the interrupt)."""
    X, Y, beta = _tabular(1)
    seen = []

    def cb(info):
        seen.append(info["objective"])
        if info["certificate"].oracle_kind == "upper_bound" and len(seen) >= 2:
            raise KeyboardInterrupt

    res = cr.fit(X, Y, beta, oracle="heuristic", max_iter=5, time_limit=30, random_state=0,
                 callback=cb)
    assert res.status == "interrupted"
    assert res.network.n_neurons > 0
    assert res.objective == pytest.approx(min(seen), rel=1e-12)
    assert res.objective == pytest.approx(res.network.objective(X, Y, beta), rel=1e-12)
    assert res.certificate.dual <= res.objective and not res.certificate.is_global


def test_refine_reports_progress_at_doubling_iterations():
    from convexrelu.solvers.engine import PROGRESS_FIRST_ITER, refine

    X, Y, beta = _tabular(2)
    rng = np.random.default_rng(0)
    U, V = rng.standard_normal((6, 30)), 0.1 * rng.standard_normal((30, 2))
    seen = []
    Un, Vn, improved = refine(X, Y, beta, U, V, 100, progress=lambda a, b: seen.append((a, b)))
    assert improved
    # at iterations 10, 20, 40, 80 of at most 100 (fewer if L-BFGS stopped sooner)
    assert 1 <= len(seen) <= 4 and PROGRESS_FIRST_ITER == 10
    objs = [0.5 * np.sum((np.maximum(X @ a, 0) @ b - Y) ** 2)
            + beta * np.sum(np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=1)) for a, b in seen]
    assert all(a.shape == (6, 30) and b.shape == (30, 2) for a, b in seen)
    assert objs == sorted(objs)[::-1]  # L-BFGS iterates descend
    # without progress: the same result (the reports do not change the descent)
    Un2, Vn2, _ = refine(X, Y, beta, U, V, 100)
    np.testing.assert_array_equal(Un, Un2)
    np.testing.assert_array_equal(Vn, Vn2)


def test_progress_records_stay_out_of_the_history_and_the_stopping_test():
    """IterationLog.progress: a network below every one met so far reaches the callback
    with its stage and a proven bound (never global); one that is not lower is not
    reported; the history, the best network and its certificate follow record() only;
    an interrupt returns the lowest network met, with its own certificate."""
    from convexrelu.losses import get_loss
    from convexrelu.oracles.base import OracleResult
    from convexrelu.oracles.spectral import spectral_result
    from convexrelu.solvers.base import IterationLog

    X, Y, beta = _tabular(3)
    net = cr.fit(X, Y, beta, oracle="heuristic", max_iter=2, time_limit=10, random_state=0).network
    other = cr.TwoLayerReLU(net.W1, 0.9 * net.W2)
    high, low = sorted([net, other], key=lambda k: -k.objective(X, Y, beta))
    assert high.objective(X, Y, beta) > low.objective(X, Y, beta)
    loss = get_loss("squared")
    seen = []
    log = IterationLog("t", X, Y, beta, loss, 1e-6, callback=seen.append)

    def parts(k):
        F = k.predict(X)
        return F, loss.gradient(F, Y)

    F, G = parts(high)
    heur = OracleResult(0.5 * spectral_bound(G, np.linalg.norm(X, 2)), np.eye(6)[0], 0.0,
                        "heuristic", "sampled", 10, 0.0)
    c1 = log.record(high, F, heur, G=G)
    F, G = parts(low)
    c2 = log.progress(low, F, spectral_result(G, X, log.x_norm()), G=G, stage="local move")
    F, G = parts(high)  # not below the lowest met: not reported
    assert log.progress(high, F, spectral_result(G, X, log.x_norm()), G=G) is None
    assert [i["stage"] for i in seen] == ["iteration", "local move"]
    assert seen[1]["certificate"] is c2 and c2.dual <= c2.primal and not c2.is_global
    assert c2.check == "not run"
    assert len(log.rows) == 1 and log.best_cert is c1 and log.best_net is high
    # an ordinary end returns the recorded network; an interrupt the lower one
    assert log.result("max_iter", 1, warn_budget=False).network is high
    res = log.result("interrupted", 1)
    assert res.network is low and res.certificate.primal == res.objective == c2.primal
    assert list(res.history["iter"]) == [0, 1]
    assert res.history["objective"][-1] == c2.primal


def test_interrupt_during_a_local_move_returns_its_lower_network():
    X, Y, beta = _tabular(5)
    seen = []

    def cb(info):
        seen.append((info["stage"], info["objective"]))
        if info["stage"] == "local move" and sum(s == "iteration" for s, _ in seen) >= 2:
            raise KeyboardInterrupt

    res = cr.fit(X, Y, beta, oracle="heuristic", max_iter=30, time_limit=60, random_state=0,
                 callback=cb)
    assert res.status == "interrupted" and seen[-1][0] == "local move"
    assert res.objective == pytest.approx(min(o for _, o in seen), rel=1e-12)
    assert res.objective == pytest.approx(res.network.objective(X, Y, beta), rel=1e-12)
    assert res.certificate.dual <= res.objective


def test_verbose_labels_the_warm_start_lines(capsys):
    X, Y, beta = _tabular(4)
    cr.fit(X, Y, beta, oracle="heuristic", max_iter=1, time_limit=30, random_state=0, verbose=1)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("cg it")]
    labelled = [ln for ln in lines if "(warm start)" in ln]
    assert labelled and lines.index(labelled[-1]) == len(labelled) - 1  # they come first
    assert all("rel_gap_est" not in ln for ln in labelled)  # a proven bound, not an estimate
