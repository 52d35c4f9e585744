"""StreamingExactOracle: the exact value without a stored enumeration (issue 15, item 1).

Checked against the stored ExactOracle (a different method: every cell, face and ray of
every flat) on every adversarial generator, on the fixed defect cases, at extreme column
scales, and against weak duality through ``certify``; the lowest-vertex rule is checked to
meet each cell about once.
"""

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.experiments.adversarial import FIXED_CASES, GENERATORS, make_problem
from convexrelu.oracles import ExactOracle, StreamingExactOracle, make_oracle
from convexrelu.problem import as_problem


def _agree(X, Z):
    ex = ExactOracle(X, max_patterns=1e12)(Z)
    orc = StreamingExactOracle(X)
    st = orc(Z)
    # both are upper bounds within their margins of Omega, and attained values below it
    assert st.value >= (ex.value - ex.margin) * (1 - 1e-9) - 1e-300
    assert ex.value >= (st.value - st.margin) * (1 - 1e-9) - 1e-300
    assert st.attained >= ex.attained * (1 - 1e-9) - 2 * ex.margin - 1e-300
    assert st.attained <= st.value
    assert st.attained == pytest.approx(
        float(np.linalg.norm(Z.T @ np.maximum(X @ st.u, 0.0))), rel=1e-9, abs=1e-300)
    assert st.kind == "exact" and st.is_upper_bound
    return orc, st, ex


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_stream_agrees_with_stored_enumeration_on_adversarial_data(kind):
    seen = 0
    for seed in range(12):
        X, Z = make_problem(kind, 2000 + seed, n=int(6 + 3 * (seed % 6)))
        if not 3 <= as_problem(X).rank <= 5:
            continue
        _agree(X, Z)
        seen += 1
    if kind not in ("lowrank", "grid2", "circle"):  # these are mostly rank <= 2
        assert seen >= 3, (kind, seen)


@pytest.mark.parametrize("name", sorted(FIXED_CASES))
def test_stream_on_the_fixed_defect_cases(name):
    case = FIXED_CASES[name]
    X, Y = case["X"], case["Y"]
    if not 3 <= as_problem(X).rank <= 5:
        pytest.skip("rank outside 3..5")
    res = StreamingExactOracle(X)(Y)
    assert res.value == pytest.approx(case["omega"], rel=1e-12)
    assert res.attained == pytest.approx(case["omega"], rel=1e-12)


def test_stream_at_extreme_column_scales_and_with_duplicates():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((18, 4)) * np.array([1e-8, 1.0, 1e8, 1e3])
    X = np.vstack([X, X[:4], -X[4:7], 2.0 * X[7:9]])
    Z = rng.standard_normal((X.shape[0], 2))
    _agree(X, Z)


def test_each_cell_is_met_about_once():
    # generic data: the lowest-vertex rule meets each bounded cell once; the cells that
    # cross the chart's equator are met once more at most
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    Z = rng.standard_normal((30, 2))
    orc, _, _ = _agree(X, Z)
    cells = ExactOracle(X, max_patterns=1e12).n_patterns
    visits = orc.last_stats["cells"]
    assert cells <= visits <= 1.25 * cells, (cells, visits)
    assert orc.last_stats["degenerate"] == 0 and orc.last_stats["ambiguous"] == 0


def test_hints_change_the_work_not_the_value():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((25, 5))
    Z = rng.standard_normal((25, 3))
    orc = StreamingExactOracle(X)
    a = orc(Z)
    orc.hint(np.column_stack([a.u, rng.standard_normal(5)]))
    b = orc(Z)
    assert b.value == pytest.approx(a.value, rel=1e-12)
    with pytest.raises(ValueError, match=r"shape \(d=5, q\)"):
        orc.hint(np.ones((4, 2)))


def test_stream_refuses_what_it_does_not_cover():
    rng = np.random.default_rng(2)
    for d in (2, 6):
        with pytest.raises(ValueError, match=rf"ranks 3 to 5; X has rank {d}"):
            StreamingExactOracle(rng.standard_normal((20, d)))
    X = rng.standard_normal((20, 4))
    with pytest.raises(ValueError, match="tol"):
        StreamingExactOracle(X, tol=0.5)
    with pytest.raises(ValueError, match="chunk"):
        StreamingExactOracle(X, chunk=0)
    with pytest.raises(ValueError, match="n_samples = 20"):
        StreamingExactOracle(X)(np.ones((19, 2)))  # names the expected shape


def test_certify_with_the_streaming_oracle_matches_the_stored_one():
    from convexrelu.datasets import planted

    X, Y, _ = planted(n=30, d=4, c=2, seed=0)
    fit = cr.fit(X, Y, 0.2, random_state=0, max_iter=30)
    a = cr.certify(fit.network, X, Y, 0.2, oracle="stream")
    b = cr.certify(fit.network, X, Y, 0.2, oracle="exact")
    assert a.is_global == b.is_global
    assert a.rel_gap == pytest.approx(b.rel_gap, rel=1e-3, abs=1e-9)
    # weak duality: the dual never exceeds the primal
    assert a.dual <= a.primal * (1 + 1e-12)
    assert make_oracle(X, "stream").kind == "exact"


def _facets_by_lp(A):
    """Facets of the cone ``A w >= 0`` by one LP per row (row j is a facet when some ``w``
    with ``a_j^T w = 0`` has every other constraint strictly positive)."""
    from scipy.optimize import linprog

    m, k = A.shape
    out = np.zeros(m, dtype=bool)
    for j in range(m):
        rest = np.delete(np.arange(m), j)
        res = linprog(np.r_[np.zeros(k), -1.0],
                      A_ub=np.hstack([-A[rest], np.ones((m - 1, 1))]), b_ub=np.zeros(m - 1),
                      A_eq=np.r_[A[j], 0.0][None, :], b_eq=[0.0],
                      bounds=[(-1, 1)] * k + [(None, 1)], method="highs")
        out[j] = res.status == 0 and res.x[-1] > 1e-9
    return out


@pytest.mark.parametrize("seed", range(3))
def test_the_facets_of_a_cell_are_found_from_a_point_inside(seed):
    # the hot cells are solved over their facets: qhull's polar from a point inside, or
    # an LP's deepest point when the point given is not strictly inside
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((14, 4))
    orc = StreamingExactOracle(X)
    W = rng.standard_normal((40, 4))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    sides = np.where(W @ orc._reps.T > 0, 1.0, -1.0)
    found = orc._facets(sides, W)
    # a point on the cell's boundary (a vertex of the arrangement) still works
    found_edge = orc._facets(sides[:5], np.tile(orc._reps[0], (5, 1)))
    for q in range(W.shape[0]):
        truth = _facets_by_lp(sides[q][:, None] * orc._reps)
        assert np.array_equal(found[q], truth), (q, np.flatnonzero(found[q]), np.flatnonzero(truth))
        if q < 5:
            assert np.array_equal(found_edge[q], truth)


def test_closed_form_top_eigenvalue_is_never_below_lapack():
    from convexrelu.oracles.stream import _top_value

    rng = np.random.default_rng(4)
    for shape in ((3000, 3, 4), (3000, 2, 5), (3000, 4, 3), (3000, 3, 3), (500, 1, 4)):
        G = rng.standard_normal(shape) * np.exp(rng.uniform(-30, 30, size=(shape[0], 1, 1)))
        G[:200, 1:] = 0.0  # rank one
        G[200:300] *= np.array([1.0] + [1e-9] * (shape[2] - 1))  # nearly rank one
        M = np.einsum("qck,qcl->qkl", G, G)
        ref = np.linalg.eigvalsh(M)[:, -1]
        top = _top_value(G)
        tr = np.einsum("qii->q", M)
        assert np.all(top >= ref)
        assert np.all(top - ref <= 2e-9 * tr + 1e-300)


@pytest.mark.parametrize("seed", range(3))
def test_cutting_planes_never_cut_off_a_cells_maximum(seed):
    # the cells whose top vector lies outside them, each solved exactly over its faces
    # (facets by LP), against the cutting-plane stage at a floor in the middle of their
    # maxima: a pruned cell's maximum is at most the floor, a solved cell's bound is its
    # maximum, and its maximiser lies in the cell
    rng = np.random.default_rng(10 + seed)
    X = rng.standard_normal((13, 4))
    Z = rng.standard_normal((13, 2))
    orc = StreamingExactOracle(X)
    pats = ExactOracle(X, max_patterns=1e12).patterns.patterns  # rows: 1 where x_i^T u > 0
    Xr = orc._ev.Xr
    G = np.einsum("qn,nc,nr->qcr", pats.astype(float), Z, Xr)
    top, vec, _ = orc._top(G)
    # the cells' sides per hyperplane, from a row of each hyperplane (zero rows: none)
    lab, ori = orc._labels, orc._orient
    first = np.array([np.flatnonzero(lab == j)[0] for j in range(orc.m)])
    sides = np.where(pats[:, first], 1.0, -1.0) * ori[first]
    in_p, in_m = orc._inside(vec, sides)
    out = ~(in_p | in_m)
    keep = rng.permutation(np.flatnonzero(out))[:40]
    G, sides, vec = G[keep], sides[keep], vec[keep]
    assert G.shape[0] >= 20
    exact = np.empty(G.shape[0])
    for q in range(G.shape[0]):
        F = _facets_by_lp(sides[q][:, None] * orc._reps)[None, :]
        exact[q], _, _ = orc._faces(G[q:q + 1], sides[q:q + 1], F, -np.inf)
    floor = float(np.median(exact))
    bound, U, still, solved = orc._cut(G, sides, vec, floor)
    pruned = ~still & ~np.isfinite(solved)
    done = np.isfinite(solved)
    assert np.any(pruned)
    assert np.all(exact[pruned] <= floor * (1 + 1e-9))
    # a solved cell's value is its maximum, reached inside it
    assert np.allclose(solved[done], exact[done], rtol=1e-9, atol=0)
    assert U.shape[0] == int(np.sum(done))
    for u in U:  # each maximiser lies in one of the solved cells
        assert np.any(orc._inside(np.tile(u, (int(np.sum(done)), 1)), sides[done])[0])


def test_time_limit_and_ctrl_c_return_a_proven_bound(monkeypatch, capsys):
    # cut short, the call is no longer exact: its value is the spectral bound (the cells
    # not visited could hold anything up to it), with the best direction found so far
    import convexrelu.oracles.stream as stream

    rng = np.random.default_rng(6)
    X = rng.standard_normal((40, 4))
    Z = rng.standard_normal((40, 3))
    ex = ExactOracle(X, max_patterns=1e12)(Z)
    full = StreamingExactOracle(X, chunk=64, verbose=1)(Z)
    assert "stream:" in capsys.readouterr().err or full.time < 2.0
    calls = {"n": 0}
    real = stream._null_vectors

    def interrupting(H):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(H)

    monkeypatch.setattr(stream, "_null_vectors", interrupting)
    orc = StreamingExactOracle(X, chunk=64)
    res = orc(Z)
    assert orc.last_stats["stopped"] == "interrupted"
    assert res.kind == "upper_bound" and res.is_upper_bound
    assert res.value >= ex.value * (1 - 1e-12)
    assert res.value >= np.linalg.norm(Z, 2) * np.linalg.norm(X, 2) * (1 - 1e-12)
    assert res.attained <= ex.value
    monkeypatch.setattr(stream, "_null_vectors", real)
    orc = StreamingExactOracle(X, chunk=1, time_limit=1e-3)
    res = orc(Z)
    assert orc.last_stats["stopped"] == "time limit" and res.kind == "upper_bound"
    assert res.value >= ex.value * (1 - 1e-12)
    assert full.kind == "exact" and full.value == pytest.approx(ex.value, rel=1e-9)
    with pytest.raises(ValueError, match="time_limit"):
        StreamingExactOracle(X, time_limit=0)


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.1, 0.01])
def test_branch_and_bound_proofs_agree_with_streamed_enumeration_on_iris(fraction):
    # iris (rank 4) is small enough for both: branch and bound's proven bound is never
    # below the exact Omega, and when it proves the network at tol so does the exact value
    import warnings

    from convexrelu.certificates import certificate_from_oracle, omega_for_tol
    from convexrelu.experiments.suites.real import estimate_lambda_max, load_problem
    from convexrelu.losses import get_loss
    from convexrelu.oracles import BranchAndBoundOracle
    from convexrelu.solvers import ConditionalGradient

    X, Y, _ = load_problem("iris")
    beta = fraction * estimate_lambda_max(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = cr.fit(X, Y, beta, solver=ConditionalGradient(prove=False, time_limit=10,
                                                            random_state=0)).network
    G = net.predict(X) - Y
    loss, primal, tol = get_loss("squared"), float(net.objective(X, Y, beta)), 1e-4
    exact = StreamingExactOracle(X)
    exact.hint(net.W1)
    ex = exact(G)
    bnb = BranchAndBoundOracle(X, time_limit=60, rtol=1e-7,
                               target=omega_for_tol(primal, G, Y, beta, loss, tol))
    bnb.hint(net.W1)
    bb = bnb(G)
    assert bb.value >= (ex.value - ex.margin) * (1 - 1e-9)
    assert ex.attained <= bb.value
    c_ex = certificate_from_oracle(primal, G, Y, beta, loss, ex, tol, 0.0, X=X)
    c_bb = certificate_from_oracle(primal, G, Y, beta, loss, bb, tol, 0.0, X=X)
    assert c_ex.rel_gap <= c_bb.rel_gap * (1 + 1e-9) + 1e-12
    if c_bb.is_global:
        assert c_ex.is_global


def test_huge_and_tiny_targets_do_not_overflow():
    # values are computed on Z scaled by a power of two: 1e200 and 1e-300 give the same
    # direction and the value scaled exactly
    rng = np.random.default_rng(9)
    X = rng.standard_normal((12, 4))
    Z = rng.standard_normal((12, 2))
    orc = StreamingExactOracle(X)
    ref = orc(Z)
    for s in (1e200, 1e-300):
        res = orc(Z * s)
        assert np.isfinite(res.value) and np.isfinite(res.attained)
        assert res.value == pytest.approx(ref.value * s, rel=1e-12)
        assert res.attained == pytest.approx(ref.attained * s, rel=1e-12)
