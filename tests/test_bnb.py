"""The branch-and-bound oracle (issue 15): a proven upper bound at any rank.

Its value must never be below Omega (checked against the exact oracle where the patterns
can be enumerated, and against an independent reference on the adversarial generators),
it must close to ``rtol`` on small problems, its bound must hold when the budget cuts the
search short, and a certificate from it must never call a network optimal that a lower
one beats.
"""

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.experiments.adversarial import GENERATORS, make_problem, reference_omega, restarts
from convexrelu.oracles import BranchAndBoundOracle, make_oracle

from _brute import brute_omega_sphere


def _exact(X, Z):
    return make_oracle(X, "exact")(Z)


@pytest.mark.parametrize("n, d, c", [(12, 2, 1), (30, 3, 2), (40, 3, 3), (20, 4, 2), (12, 5, 1)])
def test_bnb_closes_on_the_exact_value(n, d, c):
    rng = np.random.default_rng(n * 100 + d * 10 + c)
    for _ in range(3):
        X = rng.standard_normal((n, d))
        Z = rng.standard_normal((n, c))
        ex = _exact(X, Z)
        orc = BranchAndBoundOracle(X, rtol=1e-7, time_limit=30)
        res = orc(Z)
        assert orc.last_stats["closed"], orc.last_stats
        assert res.kind == "exact" and res.is_upper_bound
        # a bound: never below the exact value (which itself carries a tiny outward margin)
        assert res.value >= (ex.value - ex.margin) * (1 - 1e-12)
        # and within rtol (plus the margins) of it
        assert res.value <= ex.value * (1 + 1e-6) + res.margin
        # the direction returned attains what it says
        assert res.attained == pytest.approx(
            float(np.linalg.norm(Z.T @ np.maximum(X @ res.u, 0.0))), rel=1e-9)
        assert res.attained <= ex.value * (1 + 1e-9)


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_bnb_never_below_omega_on_adversarial_data(kind):
    for seed in range(4):
        X, Z = make_problem(kind, 1000 + seed, n=int(8 + 4 * seed))
        ref, _ = reference_omega(X, Z, np.random.default_rng(seed))
        orc = BranchAndBoundOracle(X, rtol=1e-6, time_limit=10)
        res = orc(Z)
        assert res.value >= ref * (1 - 1e-9), (kind, seed, res.value, ref)
        if res.kind == "exact":  # closed: within rtol of the best direction it found
            assert res.value <= res.attained * (1 + 1e-5) + 2 * res.margin + 1e-300
        if orc.problem.rank <= 3:
            ex = _exact(X, Z)
            assert res.value >= (ex.value - ex.margin) * (1 - 1e-9)


def test_bnb_bound_holds_when_the_budget_cuts_it_short():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 6))
    Z = rng.standard_normal((60, 2))
    ref = brute_omega_sphere(X, Z, rng)
    for limit, regions in ((1e-3, 20_000_000), (30.0, 200)):
        orc = BranchAndBoundOracle(X, time_limit=limit, max_regions=regions, rtol=1e-9)
        res = orc(Z)
        assert not orc.last_stats["closed"]
        assert res.kind == "upper_bound" and res.is_upper_bound
        assert res.value >= ref * (1 - 1e-9)
        # never looser than the spectral bound
        assert res.value <= np.linalg.norm(Z, 2) * np.linalg.norm(X, 2) * (1 + 1e-9) + res.margin


def test_bnb_target_stops_once_every_region_is_below_it():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((25, 4))
    Z = rng.standard_normal((25, 2))
    ex = _exact(X, Z)
    above = BranchAndBoundOracle(X, target=1.05 * ex.value, time_limit=30)
    res = above(Z)
    assert above.last_stats["closed"]
    assert ex.value * (1 - 1e-12) <= res.value <= 1.05 * ex.value + res.margin
    below = BranchAndBoundOracle(X, target=0.9 * ex.value, stop_above=0.0, time_limit=30)
    res = below(Z)
    assert below.last_stats["stopped"] == "violated"
    assert res.attained > 0.9 * ex.value and res.value >= ex.value * (1 - 1e-12)


def test_bnb_certificates_agree_with_exact_enumeration_and_restarts():
    """No false certificate: on small problems the branch-and-bound certificate of the
    exact solver's optimum and of worse networks says what the exact oracle says, and
    no network found by non-convex restarts goes below a proven dual."""
    rng = np.random.default_rng(11)
    for trial in range(3):
        X = rng.standard_normal((20, 3))
        Y = rng.standard_normal((20, 2))
        beta = 0.2 * float(cr.lambda_max(X, Y))
        best = cr.fit(X, Y, beta, oracle="exact", tol=1e-8)
        assert best.certificate.is_global
        for net in (best.network, cr.TwoLayerReLU.zeros(3, 2),
                    cr.TwoLayerReLU(0.5 * best.network.W1, best.network.W2)):
            cb = cr.certify(net, X, Y, beta, oracle="bnb", tol=1e-5)
            ce = cr.certify(net, X, Y, beta, oracle="exact", tol=1e-5)
            assert cb.is_rigorous and cb.bound_source.startswith("branch and bound")
            assert cb.dual <= best.objective * (1 + 1e-9)
            assert cb.is_global == ce.is_global, (trial, cb, ce)
            for f, _, _ in restarts(X, Y, beta, np.random.default_rng(trial), n_random=1):
                assert cb.dual <= f * (1 + 1e-9)


def test_fit_on_rank4_data_is_proven_by_branch_and_bound():
    """Iris (150 x 4): the exact oracle costs minutes, so fit takes the heuristic path
    and branch and bound proves the result at the end."""
    from sklearn.datasets import load_iris

    data = load_iris()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    Y = (data.target[:, None] == np.arange(3)[None, :]).astype(float)
    beta = 0.1 * float(cr.lambda_max(X, Y))
    res = cr.fit(X, Y, beta, random_state=0, tol=1e-5)
    cert = res.certificate
    if res.status == "optimal":
        assert cert.is_global and cert.bound_source.startswith("branch and bound")
    else:  # the proof may run out of its budget on a slow machine: then no claim at all
        assert not cert.is_global
    assert cert.dual <= cert.primal
    # the proven dual is below the objective of non-convex restarts from the result
    for f, _, _ in restarts(X, Y, beta, np.random.default_rng(0), n_random=0,
                            start=(res.network.W1, res.network.W2), maxiter=50):
        assert cert.dual <= f * (1 + 1e-9)


def test_fit_with_prove_false_keeps_the_estimate():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 5))
    Y = rng.standard_normal((200, 1))
    beta = 0.3 * float(cr.lambda_max(X, Y))
    res = cr.fit(X, Y, beta, solver=cr.solvers.ConditionalGradient(prove=False, random_state=0,
                                                                    time_limit=4))
    assert res.certificate.oracle_kind == "heuristic"
    assert res.status != "optimal"


@pytest.mark.parametrize("kwargs, match", [
    (dict(rtol=-1.0), "rtol"), (dict(time_limit=0.0), "time_limit"),
    (dict(split=7), "split"), (dict(batch=0), "batch"), (dict(stop_above=-1.0), "stop_above"),
    (dict(max_regions=1.5), "max_regions"), (dict(corners=-1), "corners"),
    (dict(corners=2.5), "corners"),
])
def test_bnb_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BranchAndBoundOracle(np.eye(3), **kwargs)


def test_bnb_on_zero_and_rank_one_data():
    X = np.zeros((5, 3))
    res = BranchAndBoundOracle(X)(np.ones((5, 1)))
    assert res.value >= 0 and res.attained == 0.0
    X = np.outer(np.arange(1.0, 6.0) - 3, [1.0, -2.0, 0.5])  # rank 1, opposite rows
    Z = np.random.default_rng(0).standard_normal((5, 2))
    res = BranchAndBoundOracle(X)(Z)
    ref = max(np.linalg.norm(Z.T @ np.maximum(X @ u, 0)) for u in
              (np.array([1.0, -2.0, 0.5]) / np.linalg.norm([1.0, -2.0, 0.5]),
               -np.array([1.0, -2.0, 0.5]) / np.linalg.norm([1.0, -2.0, 0.5])))
    assert res.value >= ref * (1 - 1e-12) and res.value <= ref * (1 + 1e-6) + res.margin


def test_scip_route_is_a_checked_bound():
    pytest.importorskip("pyscipopt")
    from convexrelu.oracles.scip import SCIPOracle

    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 3))
    Z = rng.standard_normal((12, 2))
    ex = _exact(X, Z)
    orc = SCIPOracle(X, time_limit=20)
    res = orc(Z)
    assert res.is_upper_bound and res.value >= ex.value * (1 - 1e-12)
    # our re-evaluation of SCIP's direction never exceeds Omega (SCIP's own value may)
    assert res.attained <= ex.value * (1 + 1e-9)
    if orc.last_stats["status"] == "optimal":
        assert res.value <= ex.value * (1 + 1e-4) + res.margin


def test_bnb_ctrl_c_returns_the_bound_so_far(monkeypatch):
    """Ctrl-C during the search ends it with a proven bound (never below Omega)."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((80, 5))
    Z = rng.standard_normal((80, 2))
    orc = BranchAndBoundOracle(X, rtol=1e-12, time_limit=30)
    calls = {"n": 0}
    real = orc._bound

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(orc, "_bound", interrupting)
    res = orc(Z)
    assert orc.last_stats["stopped"] == "interrupted"
    ref = brute_omega_sphere(X, Z, rng, n_dirs=20000, n_refine=5)
    assert res.is_upper_bound and res.value >= ref * (1 - 1e-9)


def test_proofs_suite_writes_its_table(tmp_path, capsys):
    from convexrelu.experiments.suites import proofs

    out = tmp_path / "proofs"
    assert proofs.main(["--budget", "5", "--fit-time", "2", "--problems", "sec5.1",
                        "--routes", "enumeration,bnb", "--out", str(out)]) == 0
    md = (tmp_path / "proofs.md").read_text()
    assert "sec5.1" in md and "**proved**" in md
    import json

    row = json.loads((tmp_path / "proofs.json").read_text())["rows"][0]
    assert row["routes"]["bnb"]["is_global"] and row["routes"]["enumeration"]["is_global"]


@pytest.mark.parametrize("sz, sx", [(-280, 0), (-140, -140), (-540, 0), (0, 370), (300, 0)])
def test_bnb_bound_holds_at_extreme_scales(sz, sx):
    """Found by red-teaming: squares of tiny or huge products underflowed or overflowed
    (a bound 0.06 % low at |Z| ~ 1e-84, 16 % low at |X| ~ 1e111 through NaN regions that
    were dropped). The search now runs on data scaled by powers of two."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8, 3))
    Z = rng.standard_normal((8, 2))
    ex = _exact(X, Z)
    ref = float(np.linalg.norm(Z.T @ np.maximum(X @ ex.u, 0.0)))
    res = BranchAndBoundOracle(np.ldexp(X, sx))(np.ldexp(Z, sz))
    scale = 2.0 ** (sz + sx)
    assert res.value / scale >= ref * (1 - 1e-12)
    assert res.value / scale <= ex.value * (1 + 1e-5)
    assert res.attained / scale == pytest.approx(ref, rel=1e-6)


def test_bnb_candidates_on_zero_data():
    orc = BranchAndBoundOracle(np.random.default_rng(0).standard_normal((5, 3)))
    vals, U = orc.candidates(np.zeros((5, 1)), 0.0)
    assert vals.shape == (0,) and U.shape == (0, 3)


def test_fit_proof_step_stays_within_time_limit():
    """The proof step runs after the estimate converged and never past time_limit
    (overrun at most max(5 %, 1 s)); its seconds are reported as 'prove'."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((400, 6))
    Y = np.maximum(X @ rng.standard_normal((6, 3)), 0) @ rng.standard_normal((3, 2))
    beta = 0.05 * float(cr.lambda_max(X, Y, oracle="heuristic"))
    res = cr.fit(X, Y, beta, time_limit=4, random_state=0)
    assert res.time <= 4 + 1.0
    assert res.certificate.dual <= res.objective
    tb = res.info["time_breakdown"]
    assert tb["prove"] >= 0.0 and sum(tb.values()) == pytest.approx(res.time, rel=0.1, abs=0.05)


# -- the corner bound -----------------------------------------------------------------------

def _random_regions(r, Q, depth, rng):
    """Boxes on the faces of the cube, as the search makes them (random halvings)."""
    C = np.zeros((Q, r))
    H = np.ones((Q, r))
    q = np.arange(Q)
    ax = rng.integers(r, size=Q)
    C[q, ax] = rng.choice([-1.0, 1.0], Q)
    H[q, ax] = 0.0
    for _ in range(depth):
        j = np.argmax(H * rng.uniform(0.5, 1.5, (Q, r)), axis=1)
        H[q, j] /= 2
        C[q, j] += rng.choice([-1.0, 1.0], Q) * H[q, j]
    return C, H


def _region_max_from_below(Xr, Z, c0, h, rng, m=3000):
    """The largest value met at random points, corners and edge points of one region (a
    lower estimate of the region's maximum: a bound below it is wrong)."""
    r = c0.size
    P = [c0 + rng.uniform(-1, 1, (m, r)) * h, c0 + np.sign(rng.uniform(-1, 1, (m, r))) * h]
    E = np.sign(rng.uniform(-1, 1, (m, r)))
    E[np.arange(m), rng.integers(r, size=m)] = rng.uniform(-1, 1, m)
    P.append(c0 + E * h)
    U = np.concatenate(P)
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    return float(np.sqrt(np.max(np.sum((np.maximum(U @ Xr.T, 0.0) @ Z) ** 2, axis=1))))


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_corner_bound_is_never_below_the_region_maximum(kind, monkeypatch):
    """Region bounds with the corner bound (and its one-row split) applied to every region,
    against points of each region, on the adversarial generators, at depths from whole
    faces to small boxes. A corner bound below a region's maximum makes the region's bound
    (the smaller of the two) wrong, so checking the region's bound checks it."""
    from convexrelu.oracles import bnb

    monkeypatch.setattr(bnb, "CORNER_RATIO", np.inf)
    used = 0
    for seed in range(3):
        X, Z = make_problem(kind, 2000 + seed, n=int(10 + 6 * seed))
        orc = BranchAndBoundOracle(X)
        if not orc._use_corners:
            continue
        Xr = orc._Xr
        n, r = Xr.shape
        Zs = Z / max(float(np.max(np.abs(Z))), 1e-300)
        rng = np.random.default_rng(seed)
        K = orc._ev.kron(Zs, Xr)
        zn = np.linalg.norm(Zs, axis=1)
        for depth in (0, 3, 8, 14):
            C, H = _random_regions(r, 24, depth, rng)
            Ma = np.zeros((C.shape[0], Zs.shape[1], r))
            Ub = np.packbits(np.ones((C.shape[0], n), dtype=np.uint8), axis=1)
            orc._corner_floor = 1e-300  # every region above it: all get the corner bound
            ub = orc._bound(Zs, K, zn, C, H, Ma, Ub)[0]
            orc._use_corners = False
            ub_chord = orc._bound(Zs, K, zn, C, H, Ma, Ub)[0]
            orc._use_corners = True
            used += int(np.sum(ub < ub_chord))
            for q in range(C.shape[0]):
                ref = _region_max_from_below(Xr, Zs, C[q], H[q], rng, 600)
                assert ub[q] >= ref * (1 - 1e-12), (kind, seed, depth, q, ub[q], ref)
    if kind not in ("rank1",):
        assert used > 0  # the corner bound was the tighter one somewhere


def test_corner_bound_closes_with_fewer_regions():
    """On rank-4 data with three outputs the corner bound must cut the regions the search
    needs (it is the reason for its cost), and both searches agree on the value."""
    from convexrelu.datasets import planted

    X, Y, _ = planted(n=120, d=4, c=3, seed=4)
    beta = 0.05 * float(cr.lambda_max(X, Y))
    solver = cr.solvers.ConditionalGradient(prove=False, random_state=0, time_limit=10)
    net = cr.fit(X, Y, beta, solver=solver).network
    Z = net.predict(X) - Y
    out = {}
    for corners in (0, None):
        orc = BranchAndBoundOracle(X, rtol=1e-6, time_limit=60, corners=corners)
        res = orc(Z)
        assert orc.last_stats["closed"], orc.last_stats
        out[corners] = (res.value, orc.last_stats["regions"])
    assert out[None][0] == pytest.approx(out[0][0], rel=2e-6)
    assert out[None][1] < 0.7 * out[0][1], out


# --------------------------------------------------------------------------- exact leaves
@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_exact_region_solve_on_whole_faces_gives_omega(kind):
    """The exact solve of a region (every sign case of its crossing rows, every face of
    each case's cone) applied to the 2r faces of the cube with every row counted as
    crossing: the largest of the 2r maxima is Omega itself, checked against the exact
    oracle (rank <= 3) on the adversarial generators; each maximiser attains its value."""
    from convexrelu.oracles.exact import ExactOracle

    checked = 0
    for seed in range(4):
        X, Z = make_problem(kind, 3000 + seed, n=int(4 + seed % 3))
        orc = BranchAndBoundOracle(X)
        Xr = orc._Xr
        n, r = Xr.shape
        if r == 0 or r > 3 or not np.any(Z):
            continue
        Zs = Z / float(np.max(np.abs(Z)))
        C = np.concatenate([np.eye(r), -np.eye(r)])
        H = np.concatenate([1.0 - np.eye(r), 1.0 - np.eye(r)])
        if r == 1:
            H = np.zeros_like(C)
        Ma = np.zeros((2 * r, Zs.shape[1], r))
        Ub = np.packbits(np.ones((2 * r, n), dtype=np.uint8), axis=1)
        val, U, att, _ = orc._exact_regions(Zs, C, H, Ma, Ub)
        got = float(val.max())
        f = np.sqrt(np.sum((np.maximum(U @ Xr.T, 0.0) @ Zs) ** 2, axis=1))
        slack = 1e-9 * float(val.max())  # values at rounding level (1e-12 here) aside
        assert np.all(f[att] <= val[att] * (1 + 1e-12) + slack), (kind, seed, f, val)
        assert np.all(f[att] >= val[att] * (1 - 1e-9) - slack), (kind, seed, f, val)
        ex = ExactOracle(Xr, max_patterns=1e7)(Zs)
        assert got == pytest.approx(ex.value, rel=1e-9, abs=1e-12), (kind, seed, got, ex.value)
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_bnb_with_exact_leaves_closes_on_the_exact_value(kind):
    """With regions crossed by few rows solved exactly, the search closes to rtol 1e-10 on
    the adversarial generators (ranks <= 3: checked against the exact oracle), and the
    value is never below Omega."""
    for seed in range(3):
        X, Z = make_problem(kind, 4000 + seed, n=int(10 + 5 * seed))
        orc = BranchAndBoundOracle(X, rtol=1e-10, time_limit=20)
        res = orc(Z)
        if orc.problem.rank <= 3:
            ex = _exact(X, Z)
            assert res.value >= (ex.value - ex.margin) * (1 - 1e-12), (kind, seed)
            if res.kind == "exact":
                assert res.value <= ex.value * (1 + 2e-10) + res.margin + ex.margin, \
                    (kind, seed, res.value, ex.value, orc.last_stats)
        if res.kind == "exact":
            assert res.attained >= res.value * (1 - 1e-9) - 2 * res.margin - 1e-300


def test_exact_leaves_close_where_bounds_alone_stall():
    """Near an optimum's kinks the region bounds fall only geometrically; solving the
    regions crossed by few rows exactly closes the search to rtol 1e-9 (the accuracy of a
    solved region: its maximiser is accepted to 1e-9), with fewer regions, at the value
    the streamed enumeration gives (rank 4). (At rtol 1e-10 the search can end at its
    resolution instead, on some of the networks a 10 s fit returns.)"""
    from convexrelu.datasets import planted
    from convexrelu.oracles import StreamingExactOracle

    X, Y, _ = planted(n=60, d=4, c=3, seed=4)
    beta = 0.02 * float(cr.lambda_max(X, Y))
    solver = cr.solvers.ConditionalGradient(prove=False, random_state=0, time_limit=10)
    net = cr.fit(X, Y, beta, solver=solver).network
    Z = net.predict(X) - Y
    on = BranchAndBoundOracle(X, rtol=1e-9, time_limit=60)
    on.hint(net.W1)
    res = on(Z)
    assert on.last_stats["closed"] and on.last_stats["exact"] > 0, on.last_stats
    off = BranchAndBoundOracle(X, rtol=1e-9, time_limit=60, exact_leaves=0,
                               max_regions=4 * on.last_stats["regions"])
    off.hint(net.W1)
    off(Z)
    assert off.last_stats["regions"] > on.last_stats["regions"], (on.last_stats, off.last_stats)
    st = StreamingExactOracle(X)
    ex = st(Z)
    assert res.value >= ex.value * (1 - 1e-12)
    assert res.value <= ex.value * (1 + 2e-9) + res.margin


def test_bnb_rejects_a_bad_exact_leaves():
    with pytest.raises(ValueError, match="exact_leaves"):
        BranchAndBoundOracle(np.eye(3), exact_leaves=-1)


# --------------------------------------------------------------------------- scales
def _scale_cases():
    """(X, Z, Omega): a row large where the other factor is zero sets max|Z| or max|X|
    while adding nothing; the rows that add to Omega are then tiny next to it (found by
    red-teaming: branch and bound returned 1.2 % below Omega, or 0, with kind "exact"; the
    enumerations returned values below directions they attained)."""
    out = []
    for d in (2, 3):
        E = np.eye(d)
        for big in (1e90, 1e149):
            X = np.vstack([E, big * np.array([1.0, -1.0, 1.0][:d])])
            out.append((X, np.r_[np.ones(d), 0.0][:, None], np.sqrt(d)))
        for s in (1e-100, 1e-150):
            X = np.vstack([E, np.zeros(d)])
            Z = np.r_[np.full(d, s), 1.0 / s][:, None]
            out.append((X, Z, np.sqrt(d) * s))
    return out


@pytest.mark.parametrize("case", range(8))
@pytest.mark.parametrize("kind", ["bnb", "exact", "stream"])
def test_oracles_hold_when_rows_that_add_nothing_set_the_scale(case, kind):
    X, Z, om = _scale_cases()[case]
    if kind == "stream" and X.shape[1] < 3:
        pytest.skip("the streamed enumeration takes ranks 3 to 5")
    if kind == "bnb":
        res = BranchAndBoundOracle(X, rtol=1e-10, time_limit=20)(Z)
    else:
        res = make_oracle(X, kind)(Z)
    assert np.isfinite(res.value)
    assert res.value >= om * (1 - 1e-12), (kind, case, res.value, om)
    assert res.value <= om * (1 + 1e-9), (kind, case, res.value, om)
    assert res.attained == pytest.approx(om, rel=1e-9)


@pytest.mark.parametrize("kind", ["bnb", "exact", "stream"])
@pytest.mark.parametrize("s", [1e-120, 1e140])
def test_oracles_scale_with_z(kind, s):
    """Omega(s Z) = s Omega(Z): at s = 1e-120 the enumerations' closed-form eigenvalues
    had squares of squares underflow (values below directions they attained), and at
    1e140 the exact oracle returned inf."""
    for seed in range(3):
        X, Z = make_problem("grid3" if seed else "gauss", 5000 + seed, n=12, c=2)
        r = cr.problem.as_problem(X).rank
        if kind == "stream" and not 3 <= r <= 5:
            continue
        if kind == "bnb":
            one, big = (BranchAndBoundOracle(X, rtol=1e-10, time_limit=20)(W) for W in (Z, s * Z))
        else:
            orc = make_oracle(X, kind)
            one, big = orc(Z), orc(s * Z)
        assert np.isfinite(big.value)
        assert big.value == pytest.approx(s * one.value, rel=1e-9), (kind, seed)
        assert big.attained == pytest.approx(s * one.attained, rel=1e-9), (kind, seed)


@pytest.mark.parametrize("name", ["fail003", "fail010", "fail028", "fail054", "fail072",
                                  "fail073"])
def test_oracles_on_red_team_scale_cases(name):
    """Cases a red-team sweep found (tests/data/scales): Z of order 1e-100 or 1e-150, or X
    of order 1e-100 or 1e-150. The exact oracle and the streamed enumeration returned
    values below directions they attained (the squares of their forms' entries underflowed
    in the closed-form eigenvalues). Every oracle's value must be at least every
    direction's value, and the exact ones must agree."""
    import os

    D = np.load(os.path.join(os.path.dirname(__file__), "data", "scales", name + ".npz"))
    X, Z = D["X"], D["Z"]

    def f(u):  # the direction's value, scaled so that the check itself cannot underflow
        v = Z.T @ np.maximum(X @ u, 0.0)
        m = float(np.max(np.abs(v))) if v.size else 0.0
        return 0.0 if m == 0.0 else m * float(np.linalg.norm(v / m))

    res = {"bnb": BranchAndBoundOracle(X, rtol=1e-10, time_limit=20)(Z),
           "exact": make_oracle(X, "exact")(Z)}
    if 3 <= cr.problem.as_problem(X).rank <= 5:
        res["stream"] = make_oracle(X, "stream")(Z)
    best = max(f(r.u) for r in res.values())
    for kind, r in res.items():
        assert np.isfinite(r.value) and r.value >= best * (1 - 1e-12), (kind, r.value, best)
    exact = [r.value for r in res.values() if r.kind == "exact"]
    assert max(exact) <= min(exact) * (1 + 1e-8), res


def test_scip_refusing_the_model_falls_back_to_a_stated_bound():
    """Coefficients SCIP cannot take (a row 1e90 next to rows of order one) made SCIP
    raise "error in input data" through the oracle; the oracle now returns the spectral
    bound (a proven bound) and says in ``source`` that SCIP refused the model."""
    pytest.importorskip("pyscipopt")
    from convexrelu.oracles.scip import SCIPOracle

    X = np.array([[1.0, 0.0], [0.0, 1.0], [1e90, -1e90]])
    Z = np.array([[1.0], [1.0], [0.0]])
    res = SCIPOracle(X, time_limit=5)(Z)
    assert np.isfinite(res.value) and res.value >= np.sqrt(2.0) * (1 - 1e-12)
    assert "refused" in res.source and res.kind == "upper_bound"
    assert res.attained <= np.sqrt(2.0) * (1 + 1e-12)
