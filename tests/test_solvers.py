import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import convexrelu as cr
from convexrelu.api import fit, regularization_path
from convexrelu.reconstruction import ConvexSolution
from convexrelu.solvers import solve_scalar_cvxpy

from _brute import brute_omega_2d
from conftest import load_reference


def planted(seed, n=30, c=3, m=20, noise=0.1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    teacher = cr.TwoLayerReLU(rng.standard_normal((2, m)), rng.standard_normal((m, c)))
    return X, teacher.predict(X) + noise * rng.standard_normal((n, c))


def check_certificate_by_hand(res, X, Y, beta):
    """Recompute the certificate independently: residual, brute-force Omega, dual value."""
    net = res.network
    F = np.maximum(X @ net.W1, 0) @ net.W2
    Z = Y - F
    om = brute_omega_2d(X, Z)
    Zs = Z * min(1.0, beta / om)
    dual = -0.5 * np.sum((Zs - Y) ** 2) + 0.5 * np.sum(Y**2)
    primal = net.objective(X, Y, beta)
    np.testing.assert_allclose(res.objective, primal, rtol=1e-12)
    # the solver may report a better (earlier) dual bound; it must still be below the optimum.
    # The brute-force Omega is a grid maximum (slightly below the true one), so the hand-made
    # dual may exceed the primal by the grid error (~1e-8 relative) at an exact optimum.
    assert dual <= primal * (1 + 1e-7)
    assert res.certificate.dual <= primal
    return primal, dual


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("rel_beta", [1e-2, 1e-1, 1.5])
def test_cg_certifies_global_optimum_on_2d_data(c, rel_beta):
    X, Y = planted(c, c=c)
    beta = rel_beta * cr.lambda_max(X, Y)
    res = fit(X, Y, beta)
    assert res.solver == "cg"
    assert res.status == "optimal"
    assert res.certificate.is_global and res.certificate.rel_gap <= 1e-6
    primal, dual = check_certificate_by_hand(res, X, Y, beta)
    assert (primal - dual) / primal <= 1e-5
    if rel_beta >= 1:
        assert res.network.n_neurons == 0  # beta >= lambda_max: the zero network


def test_cg_agrees_with_cvxpy_eq9_scalar():
    X, y = planted(11, n=25, c=1)
    beta = 0.05 * cr.lambda_max(X, y)
    ref = solve_scalar_cvxpy(X, y, beta)
    res = fit(X, y, beta)
    assert res.certificate.is_global
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)


@pytest.mark.parametrize("name", ["planted_25x2x5_seed101_b0.01", "spiral_60x2x3_seed7_b0.03",
                                  "scalar_30x2x1_seed2024_b0.05"])
def test_cg_matches_reference_optimum(name):
    ref = load_reference(name)
    X, Y, beta = ref["X"], ref["Y"], float(ref["beta"])
    res = fit(X, Y, beta, max_iter=200)
    assert res.certificate.is_global
    # the certified optimum lies in [dual, primal] and in the shipped [p_lower, p_upper]
    assert res.certificate.dual <= float(ref["p_upper"]) * (1 + 1e-12)
    assert res.objective >= float(ref["p_lower"]) * (1 - 1e-12)
    np.testing.assert_allclose(res.objective, float(ref["p_upper"]), rtol=1e-6)


def test_nonconvex_training_never_beats_certified_optimum():
    X, Y = planted(5, n=20, c=2)
    beta = 0.05 * cr.lambda_max(X, Y)
    res = fit(X, Y, beta)
    assert res.certificate.is_global
    rng = np.random.default_rng(0)
    from scipy.optimize import minimize

    m = 40
    for start in range(20):
        x0 = 0.5 * rng.standard_normal(2 * m + m * 2)

        def f(x):
            W1, W2 = x[: 2 * m].reshape(2, m), x[2 * m :].reshape(m, 2)
            Zp = X @ W1
            A = np.maximum(Zp, 0)
            R = A @ W2 - Y
            val = 0.5 * np.sum(R**2) + beta / 2 * (np.sum(W1**2) + np.sum(W2**2))
            g2 = A.T @ R + beta * W2
            g1 = X.T @ ((R @ W2.T) * (Zp > 0)) + beta * W1
            return val, np.concatenate([g1.ravel(), g2.ravel()])

        out = minimize(f, x0, jac=True, method="L-BFGS-B", options=dict(maxiter=3000))
        assert out.fun >= res.certificate.dual - 1e-10
        assert out.fun >= res.objective * (1 - 1e-6)


def test_reconstruction_matches_convex_model():
    X, Y = planted(8, n=25, c=3)
    beta = 0.05 * cr.lambda_max(X, Y)
    net = fit(X, Y, beta).network
    sol = ConvexSolution.from_neurons(X, net.W1, net.W2)
    assert sol.max_cone_violation(X) <= 1e-12  # atoms on boundary rays: round-off only
    rebuilt = sol.to_network()
    np.testing.assert_allclose(rebuilt.predict(X), sol.predict(X), rtol=0, atol=1e-10)
    np.testing.assert_allclose(rebuilt.objective(X, Y, beta), sol.objective(X, Y, beta), rtol=1e-10)
    np.testing.assert_allclose(rebuilt.predict(X), net.predict(X), atol=1e-10)


def test_reconstruction_of_cvxpy_eq9_solution():
    X, y = planted(9, n=20, c=1)
    beta = 0.1 * cr.lambda_max(X, y)
    ref = solve_scalar_cvxpy(X, y, beta)
    np.testing.assert_allclose(ref.network.objective(X, y, beta), ref.objective, rtol=1e-7)


def test_max_iter_warns_with_gap_and_tolerance():
    X, Y = planted(2, c=3)
    beta = 0.01 * cr.lambda_max(X, Y)
    with pytest.warns(ConvergenceWarning, match=r"rel_gap .* > tol"):
        res = fit(X, Y, beta, max_iter=1)
    assert res.status == "max_iter" and not res.certificate.is_global
    assert res.certificate.dual <= res.objective


def test_history_is_recorded_and_dual_bound_valid():
    X, Y = planted(3, c=2)
    beta = 0.05 * cr.lambda_max(X, Y)
    res = fit(X, Y, beta)
    h = res.history
    for key in ("iter", "time", "objective", "dual", "gap", "rel_gap", "n_neurons"):
        assert len(h[key]) == res.n_iter + 1
    assert np.all(h["dual"] <= res.objective + 1e-12)  # every dual value bounds p* from below
    assert h["rel_gap"][-1] <= 1e-6


def test_interrupt_returns_best_network_with_certificate():
    X, Y = planted(4, c=3)
    beta = 0.01 * cr.lambda_max(X, Y)
    calls = []

    def stop_after_three(info):
        calls.append(info["objective"])
        if len(calls) == 3:
            raise KeyboardInterrupt

    res = fit(X, Y, beta, callback=stop_after_three)
    assert res.status == "interrupted"
    assert res.objective == min(calls)
    assert res.certificate.primal == res.objective and res.certificate.dual <= res.objective


def test_heuristic_oracle_result_is_never_global():
    X, Y = planted(6, c=2)
    beta = 0.05 * cr.lambda_max(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = fit(X, Y, beta, patterns="sampled", random_state=0, max_iter=20)
    assert res.certificate.oracle_kind == "heuristic"
    assert not res.certificate.is_global


def test_frank_wolfe_certificates_are_valid_and_improve():
    ref = load_reference("scalar_30x2x1_seed2024_b0.05")
    X, Y, beta = ref["X"], ref["Y"], float(ref["beta"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = fit(X, Y, beta, solver="frank-wolfe", max_iter=1500)
    assert res.solver == "frank-wolfe"
    h = res.history
    assert "fw_gap" in h and "t" in h
    assert np.all(h["dual"] <= float(ref["p_upper"]) + 1e-9)  # valid lower bounds
    assert res.objective >= float(ref["p_lower"]) - 1e-9
    assert res.certificate.rel_gap < h["rel_gap"][1]  # it made progress
    assert res.certificate.is_rigorous


def test_regularization_path_warm_starts_and_certifies():
    X, Y = planted(7, c=2)
    lam = cr.lambda_max(X, Y)
    betas = [0.05 * lam, 0.5 * lam, 2.0 * lam]
    path = regularization_path(X, Y, betas)
    assert [r.certificate.beta for r in path] == betas
    assert all(r.certificate.is_global for r in path)
    objs = [r.objective for r in path]
    assert objs[0] < objs[1] < objs[2]  # the optimum grows with beta
    assert path[2].network.n_neurons == 0


def test_fit_rejects_bad_arguments():
    X, Y = planted(0)
    with pytest.raises(ValueError, match="solver"):
        fit(X, Y, 0.1, solver="adam")
    with pytest.raises(ValueError, match="beta"):
        fit(X, Y, -1.0)
    with pytest.raises(ValueError, match="max_iter"):
        fit(X, Y, 0.1, max_iter=0)
    with pytest.raises(ValueError, match="warm_start"):
        fit(X, Y, 0.1, warm_start=cr.TwoLayerReLU.zeros(3, 3))
    with pytest.raises(ValueError, match="time_limit"):
        fit(X, Y, 0.1, time_limit=-1)


@pytest.mark.parametrize("c", [3, 5])
@pytest.mark.parametrize("rel_beta", [1e-2, 1e-1])
def test_cg_agrees_with_cvxpy_copositive_relaxation(c, rel_beta):
    """For d = 2 every cone is simplicial, so eq. 19 (lifted Schur form) equals p*."""
    from convexrelu.solvers.reference import solve_copositive_cvxpy

    rng = np.random.default_rng(10 * c)
    X = rng.standard_normal((15, 2))
    Y = np.maximum(X @ rng.standard_normal((2, 10)), 0) @ rng.standard_normal((10, c))
    beta = rel_beta * cr.lambda_max(X, Y)
    ref = solve_copositive_cvxpy(X, Y, beta)
    assert ref.status in ("optimal", "optimal_inaccurate")
    res = fit(X, Y, beta)
    assert res.certificate.is_global
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6)
    # the relaxation is a lower bound: never above the certified optimum (up to solver tol)
    assert ref.objective <= res.objective * (1 + 1e-7)


@pytest.mark.parametrize("method", ["ipm", "fista", "auto"])
@pytest.mark.parametrize("shape", [(30, 8, 1), (25, 20, 5), (200, 15, 3), (20, 60, 3)])
def test_group_lasso_agrees_with_sklearn_multitask_lasso(shape, method):
    from sklearn.linear_model import MultiTaskLasso

    from convexrelu.solvers.engine import group_lasso

    n, m, c = shape
    rng = np.random.default_rng(n + m)
    H = np.maximum(rng.standard_normal((n, m)), 0)
    Y = rng.standard_normal((n, c))
    beta = 0.1 * np.max(np.linalg.norm(H.T @ Y, axis=1))

    def obj(V):
        return 0.5 * np.sum((H @ V - Y) ** 2) + beta * np.sum(np.linalg.norm(V, axis=1))

    V = group_lasso(H, Y, beta, tol=1e-12, method=method)
    ref = MultiTaskLasso(alpha=beta / n, fit_intercept=False, tol=1e-12, max_iter=100000).fit(H, Y)
    np.testing.assert_allclose(obj(V), obj(ref.coef_.T), rtol=1e-8)
    assert obj(V) <= obj(ref.coef_.T) * (1 + 1e-9)
    # warm start from the solution stays there
    np.testing.assert_allclose(obj(group_lasso(H, Y, beta, V0=V, method=method)), obj(V),
                               rtol=1e-12)
    # optimality: no row's correlation with the residual exceeds beta (beyond 1e-7)
    R = Y - H @ V
    assert np.max(np.linalg.norm(H.T @ R, axis=1)) <= beta * (1 + 1e-7)


def _parallel_atoms_master():
    """A master of column generation: m = 120 > n = 40 nearly parallel ReLU columns (a
    singular Gram matrix), c = 3, beta = 1e-3 of the largest correlation."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 2))
    ang = np.sort(rng.uniform(0, 2 * np.pi, 120))
    H = np.maximum(X @ np.vstack([np.cos(ang), np.sin(ang)]), 0)
    Y = rng.standard_normal((40, 3))
    return H, Y, 1e-3 * np.max(np.linalg.norm(H.T @ Y, axis=1))


def test_group_lasso_ipm_is_accurate_on_a_singular_gram():
    """m > n, nearly parallel columns: the masters of column generation. The interior point
    reaches dual feasibility 1e-8 where FISTA (first order) would need ~1e5 iterations."""
    from convexrelu.solvers.engine import group_lasso

    H, Y, beta = _parallel_atoms_master()
    V = group_lasso(H, Y, beta, tol=1e-12, method="ipm")
    R = Y - H @ V
    corr = np.linalg.norm(H.T @ R, axis=1)
    assert corr.max() <= beta * (1 + 1e-8)
    # complementary slackness: rows in use have correlation beta
    used = np.linalg.norm(V, axis=1) > 0
    np.testing.assert_allclose(corr[used], beta, rtol=1e-6)


def test_group_lasso_ipm_qr_reduction_is_exact_on_tall_ill_conditioned_masters():
    """n >> m (the large-n masters): the interior point runs on R, Q^T Y of H = QR; the
    answer must still satisfy the optimality conditions of the original problem."""
    from convexrelu.solvers.engine import group_lasso

    rng = np.random.default_rng(4)
    X = rng.standard_normal((1500, 2))
    ang = np.sort(rng.uniform(0, 2 * np.pi, 80))
    H = np.maximum(X @ np.vstack([np.cos(ang), np.sin(ang)]), 0)
    Y = rng.standard_normal((1500, 10))
    beta = 1e-2 * np.max(np.linalg.norm(H.T @ Y, axis=1))
    V = group_lasso(H, Y, beta, tol=1e-12, method="ipm")
    corr = np.linalg.norm(H.T @ (Y - H @ V), axis=1)
    assert corr.max() <= beta * (1 + 1e-8)
    used = np.linalg.norm(V, axis=1) > 0
    assert used.any()
    np.testing.assert_allclose(corr[used], beta, rtol=1e-6)


@pytest.mark.parametrize("status", ["NumericalError", "InsufficientProgress", "PrimalInfeasible"])
def test_group_lasso_keeps_an_interior_point_that_stopped_early(status, monkeypatch):
    """Clarabel sometimes stops with NumericalError or InsufficientProgress at a point whose
    primal and dual objectives already agree: that point is measured by its duality gap
    (and polished by FISTA when above tol), not thrown away for 50,000 FISTA steps; a
    status that means failure still sends the master to FISTA, which is still checked."""
    import clarabel

    import convexrelu.solvers.engine as E

    H, Y, beta = _parallel_atoms_master()
    real = clarabel.DefaultSolver

    class Relabelled:  # Clarabel's answer, reported with another status
        def __init__(self, *args):
            self.solver = real(*args)

        def solve(self):
            sol = self.solver.solve()
            return type("Sol", (), dict(status=status, x=sol.x, iterations=sol.iterations))

    fista_iters = []
    real_fista = E._fista

    def counting_fista(G, B, yy, L, beta_, V, tol, max_iter, deadline=None):
        fista_iters.append(max_iter)
        return real_fista(G, B, yy, L, beta_, V, tol, max_iter, deadline)

    monkeypatch.setattr(clarabel, "DefaultSolver", Relabelled)
    monkeypatch.setattr(E, "_fista", counting_fista)
    V = E.group_lasso(H, Y, beta, tol=1e-8, method="ipm")
    corr = np.linalg.norm(H.T @ (Y - H @ V), axis=1)
    if status == "PrimalInfeasible":
        assert fista_iters == [50000]  # no interior-point answer: FISTA from zero
        assert np.all(np.isfinite(V))
    else:
        assert fista_iters in ([], [2000])  # at most the short polish, as when solved
        assert corr.max() <= beta * (1 + 1e-6)


@pytest.mark.parametrize("case", ["parallel", "duplicates", "scales", "tall", "sparse_y"])
def test_group_lasso_working_set_matches_the_interior_point_on_all_atoms(case, monkeypatch):
    """The interior point on a working set (grown until no outside atom violates
    optimality) reaches the optimum of the interior point on all atoms, on the masters of
    column generation and on degenerate ones: many nearly parallel atoms, duplicated atoms,
    columns scaled from 1e-4 to 1e4, tall masters; and it does run on subsets."""
    from convexrelu.kernels import AtomSystem
    from convexrelu.solvers import engine

    rng = np.random.default_rng(["parallel", "duplicates", "scales", "tall", "sparse_y"].index(case))
    n, d, m, c = (150, 4, 150, 3) if case != "tall" else (1200, 6, 120, 3)
    X = rng.standard_normal((n, d))
    U = rng.standard_normal((d, m))
    if case == "parallel":  # clusters of nearly parallel directions
        U = np.repeat(rng.standard_normal((d, m // 10)), 10, axis=1) + 1e-3 * U
    H = np.maximum(X @ U, 0)
    if case == "duplicates":
        H = np.hstack([H[:, : m // 2], H[:, : m // 2]])
    if case == "scales":
        H = H * np.logspace(-4, 4, H.shape[1])[rng.permutation(H.shape[1])]
    Y = rng.standard_normal((n, c))
    if case == "sparse_y":  # targets made by a few atoms: a small optimal support
        Y = H[:, :3] @ rng.standard_normal((3, c)) + 0.01 * Y
    beta = 0.02 * np.max(np.linalg.norm(H.T @ Y, axis=1))

    def obj(V):
        return 0.5 * np.sum((H @ V - Y) ** 2) + beta * np.sum(np.linalg.norm(V, axis=1))

    sizes = []
    real = engine._group_lasso_ipm
    monkeypatch.setattr(engine, "_group_lasso_ipm",
                        lambda A, b, *a, **k: sizes.append(A.shape[1]) or real(A, b, *a, **k))
    system = AtomSystem.from_features(H, Y)
    V0 = engine._fista(system.G, system.B, system.yy, float(np.linalg.eigvalsh(system.G)[-1]),
                       beta, np.zeros((H.shape[1], c)), 1e-12, 200)
    Vws = engine._ipm_working_set(system, beta, V0, 1e-12)
    assert min(sizes) < H.shape[1]  # it worked on a subset first
    Vfull = real(*system.residual_form(), beta)
    assert obj(Vws) <= obj(Vfull) * (1 + 1e-9)
    np.testing.assert_allclose(obj(Vws), obj(Vfull), rtol=1e-8)
    # dual feasibility as good as the interior point's on all atoms (1e-7 relative on
    # clusters of nearly parallel atoms, 1e-9 elsewhere)
    corr = np.linalg.norm(H.T @ (Y - H @ Vws), axis=1)
    corr_full = np.linalg.norm(H.T @ (Y - H @ Vfull), axis=1)
    assert corr.max() <= max(corr_full.max(), beta) * (1 + 1e-6)
    # and through group_lasso itself (which checks the duality gap on all atoms)
    V = engine.group_lasso(H, Y, beta, tol=1e-10, method="ipm", working_set=True)
    assert _gl_rel_gap(H, Y, beta, V) <= 1e-9


def _gl_rel_gap(H, Y, beta, V):
    from convexrelu.solvers.engine import _gl_gap

    gap, primal = _gl_gap(H.T @ H, H.T @ Y, float(np.vdot(Y, Y)), V, beta)
    return gap / primal


@pytest.mark.parametrize("tol", [1e-3, 1e-8])
def test_group_lasso_auto_meets_tol_whichever_method_it_picks(tol, monkeypatch):
    """The cost model picks FISTA on a well-conditioned tall master and the interior point
    on a small singular one; either way the answer's duality gap meets tol."""
    from convexrelu.solvers import engine

    calls = []
    real_ipm, real_fista = engine._group_lasso_ipm, engine._fista
    monkeypatch.setattr(engine, "_group_lasso_ipm",
                        lambda *a, **k: calls.append("ipm") or real_ipm(*a, **k))
    monkeypatch.setattr(engine, "_fista", lambda *a, **k: calls.append("fista") or real_fista(*a, **k))
    rng = np.random.default_rng(7)
    # tall and well conditioned (the heuristic path's masters): FISTA alone
    H = np.maximum(rng.standard_normal((2000, 60)), 0)
    Y = rng.standard_normal((2000, 10))
    beta = 0.1 * np.max(np.linalg.norm(H.T @ Y, axis=1))
    V = engine.group_lasso(H, Y, beta, tol=tol)
    assert _gl_rel_gap(H, Y, beta, V) <= tol
    assert calls and set(calls) == {"fista"}
    # singular Gram (m > n), small: the interior point
    calls.clear()
    X = rng.standard_normal((30, 2))
    ang = np.sort(rng.uniform(0, 2 * np.pi, 60))
    H2 = np.maximum(X @ np.vstack([np.cos(ang), np.sin(ang)]), 0)
    Y2 = rng.standard_normal((30, 3))
    beta2 = 1e-2 * np.max(np.linalg.norm(H2.T @ Y2, axis=1))
    V2 = engine.group_lasso(H2, Y2, beta2, tol=tol)
    assert _gl_rel_gap(H2, Y2, beta2, V2) <= max(tol, 1e-9)
    assert calls[0] == "ipm"


def test_group_lasso_max_ipm_time_keeps_the_interior_point_out(monkeypatch):
    """With an interior point estimated above max_ipm_time, only FISTA runs (capped to about
    that time) and its answer is returned, whatever gap it reached; never worse than the
    warm start."""
    from convexrelu.solvers import engine

    def no_ipm(*a, **k):
        raise AssertionError("the interior point ran despite max_ipm_time")

    rng = np.random.default_rng(8)
    X = rng.standard_normal((300, 3))
    U = rng.standard_normal((3, 250))
    H = np.maximum(X @ U, 0)  # m close to n, nearly dependent columns: FISTA is slow here
    Y = rng.standard_normal((300, 5))
    beta = 1e-3 * np.max(np.linalg.norm(H.T @ Y, axis=1))
    V0 = np.zeros((250, 5))
    monkeypatch.setattr(engine, "_group_lasso_ipm", no_ipm)
    V = engine.group_lasso(H, Y, beta, V0=V0, tol=1e-12, max_ipm_time=1e-6)
    assert np.all(np.isfinite(V))

    def obj(W):
        return 0.5 * np.sum((H @ W - Y) ** 2) + beta * np.sum(np.linalg.norm(W, axis=1))

    assert obj(V) < obj(V0)


def test_max_iter_is_unlimited_with_a_time_limit():
    from convexrelu.solvers import SGD, ConditionalGradient, FrankWolfe

    for cls, default in ((ConditionalGradient, 100), (FrankWolfe, 20000), (SGD, 20000)):
        assert cls().max_iter == default
        assert cls(time_limit=5).max_iter >= 2**62
        assert cls(time_limit=5, max_iter=7).max_iter == 7


def test_group_lasso_rejects_unknown_method():
    from convexrelu.solvers.engine import group_lasso

    with pytest.raises(ValueError, match="method"):
        group_lasso(np.ones((3, 2)), np.ones((3, 1)), 0.1, method="newton")


def test_cg_rejects_bad_refine():
    from convexrelu.solvers.cg import ConditionalGradient

    with pytest.raises(ValueError, match="refine"):
        ConditionalGradient(refine="yes")


@pytest.mark.parametrize("refine", ["auto", True, False])
def test_cg_refine_modes_all_certify(refine):
    from convexrelu.losses import SquaredLoss
    from convexrelu.oracles import make_oracle
    from convexrelu.solvers.cg import ConditionalGradient

    from convexrelu.datasets import planted

    X, Y, _ = planted(n=20, d=2, c=3, seed=4)
    res = ConditionalGradient(tol=1e-6, refine=refine, max_iter=200).solve(
        X, Y, 1e-2, make_oracle(X), SquaredLoss())
    assert res.status == "optimal" and res.certificate.is_global


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2, float("nan"), "0.05", True, None])
def test_cg_rejects_bad_spread(bad):
    from convexrelu.solvers.cg import ConditionalGradient

    with pytest.raises(ValueError, match="spread"):
        ConditionalGradient(spread=bad)


def test_spread_keeps_candidates_that_activate_different_rows():
    """``_spread_out`` keeps the best candidate, then each one whose activation pattern
    differs from every kept one on at least ``spread`` of the rows (at least two), at
    most ``max_add`` in all, in the order given."""
    from convexrelu.solvers.cg import ConditionalGradient

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    C = rng.standard_normal((60, 3))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    # near-copies of the first candidates: they differ from them on a few rows only
    C[10:20] = C[:10] + 1e-3 * rng.standard_normal((10, 3))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    for spread, max_add in [(0.05, 20), (0.2, 50), (0.01, 5)]:
        slv = ConditionalGradient(spread=spread, max_add=max_add)
        K = slv._spread_out(X, C)
        assert 1 <= K.shape[0] <= max_add
        np.testing.assert_array_equal(K[0], C[0])
        idx = [int(np.flatnonzero(np.all(C == k, axis=1))[0]) for k in K]
        assert idx == sorted(idx)  # best first, as given
        act = X @ C.T > 0
        least = max(2, int(np.ceil(spread * X.shape[0])))
        for a in range(len(idx)):
            for b in range(a):
                assert np.count_nonzero(act[:, idx[a]] != act[:, idx[b]]) >= least
        # greedy and maximal: every candidate left out (before the cap) is close to a kept one
        if K.shape[0] < max_add:
            for j in set(range(C.shape[0])) - set(idx):
                assert min(np.count_nonzero(act[:, j] != act[:, i]) for i in idx) < least


def test_spread_compares_patterns_on_an_even_subsample_of_large_data(monkeypatch):
    """Above SPREAD_ROWS rows the patterns are compared on an even subsample, taken once
    per solve (Dask data too: one pass, the same rows)."""
    import convexrelu.solvers.cg as cgmod
    from convexrelu.solvers.cg import ConditionalGradient

    monkeypatch.setattr(cgmod, "SPREAD_ROWS", 50)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3))
    C = rng.standard_normal((40, 3))
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    slv = ConditionalGradient(spread=0.1, max_add=10)
    K = slv._spread_out(X, C)
    sub = X[np.unique(np.linspace(0, 199, 50).astype(np.int64))]
    act = sub @ C.T > 0
    keep = [0]
    for i in range(1, 40):
        if len(keep) < 10 and all(np.count_nonzero(act[:, i] != act[:, j]) >= 5 for j in keep):
            keep.append(i)
    np.testing.assert_array_equal(K, C[keep])
    assert slv._spread_cache[0] is X  # taken once, reused while X is the same
    da = pytest.importorskip("dask.array")
    Xd = da.from_array(X, chunks=(60, 3))
    slv2 = ConditionalGradient(spread=0.1, max_add=10)
    np.testing.assert_array_equal(slv2._spread_out(Xd, C), C[keep])


def test_spread_zero_asks_for_max_add_candidates_and_keeps_them(monkeypatch):
    """``spread=0`` is the former rule: the oracle is asked for ``max_add`` candidates and
    the maximiser and all of them are added (no pattern test)."""
    from convexrelu.oracles import ExactOracle
    from convexrelu.solvers.cg import ConditionalGradient

    asked = []
    cands = ExactOracle.candidates

    def recording(self, Z, threshold, kmax=50):
        asked.append(kmax)
        return cands(self, Z, threshold, kmax)

    monkeypatch.setattr(ExactOracle, "candidates", recording)
    X, Y = planted(2, n=40, c=2)
    res = fit(X, Y, 0.05, solver=cr.solvers.ConditionalGradient(spread=0.0, max_add=7))
    assert res.certificate.is_global
    assert asked and set(asked) == {7}
    asked.clear()
    gaps = []

    def record(info):
        gaps.append(info["rel_gap"])

    fit(X, Y, 0.05, solver=cr.solvers.ConditionalGradient(spread=0.05, max_add=7, tol=1e-10,
                                                          callback=record))
    # the spread (a pool of 4 x max_add) only while the gap is above SPREAD_GAP
    from convexrelu.solvers.cg import SPREAD_GAP

    assert len(asked) >= 2 and any(g > SPREAD_GAP for g in gaps)
    for gap, k in zip(gaps, asked):  # one candidates() call per iteration, after its record
        assert k == (28 if gap > SPREAD_GAP else 7)


@pytest.mark.parametrize("spread", [0.0, 0.05, 0.3])
def test_cg_spread_reaches_the_same_certified_optimum(spread):
    """The choice of atoms changes the path, not the optimum: with or without spreading
    them over different rows, the fit is certified and the objectives agree within the
    certified gaps (two-class spiral and a planted rank-2 problem)."""
    from convexrelu.datasets import spiral

    for X, Y, beta in [(*spiral(n_per_class=15, seed=3)[:2], 1e-2),
                       (*planted(5, n=40, c=2), 0.05)]:
        ref = fit(X, Y, beta, tol=1e-8)
        res = fit(X, Y, beta, solver=cr.solvers.ConditionalGradient(tol=1e-8, spread=spread))
        assert ref.status == res.status == "optimal"
        assert res.certificate.is_global
        assert abs(res.objective - ref.objective) <= (ref.certificate.gap + res.certificate.gap) \
            + 1e-12 * ref.objective
        check_certificate_by_hand(res, X, Y, beta)


def test_has_direction_distinguishes_patterns_across_a_boundary():
    """A direction 1e-7 rad from an atom but across a hyperplane is a new atom."""
    from convexrelu.solvers.engine import has_direction

    X = np.array([[1.0, 0.0], [0.3, 1.0]])
    u0 = np.array([0.0, 1.0])  # on the hyperplane of the first row
    t = 1e-7
    u1 = np.array([np.sin(t), np.cos(t)])  # activates row 0
    assert has_direction(u0[:, None], u0, X)
    assert not has_direction(u0[:, None], u1, X)


def test_known_directions_agrees_with_has_direction_row_by_row():
    """The batched test gives has_direction's answer for every candidate: equal
    directions with equal patterns, equal directions across a hyperplane (not known),
    other directions, and no atoms at all."""
    from convexrelu.solvers.engine import has_direction, known_directions

    rng = np.random.default_rng(2)
    X = np.vstack([rng.standard_normal((30, 2)), [[1.0, 0.0], [0.3, 1.0]]])
    U = rng.standard_normal((2, 6))
    U /= np.linalg.norm(U, axis=0)
    U[:, 0] = [0.0, 1.0]  # on the hyperplane of the row [1, 0]
    t = 1e-7
    C = np.vstack([U[:, 2], U[:, 5], [np.sin(t), np.cos(t)], [0.0, 1.0],
                   rng.standard_normal((4, 2))])
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    got = known_directions(U, C, X)
    want = np.array([has_direction(U, u, X) for u in C])
    np.testing.assert_array_equal(got, want)
    assert got[:2].all() and not got[2] and got[3]  # the near one activates another row
    assert not known_directions(np.zeros((2, 0)), C, X).any()


def test_group_lasso_without_the_probe_meets_tol(monkeypatch):
    """``probe=False`` skips the 11-step FISTA probe from ``V0`` (and only that): the
    answer still meets tol."""
    import convexrelu.solvers.engine as engine
    from convexrelu.solvers.engine import _gl_gap, group_lasso

    calls = []
    fista = engine._fista

    def recording(*a, **k):
        calls.append(a[7])  # max_iter
        return fista(*a, **k)

    monkeypatch.setattr(engine, "_fista", recording)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 2))
    U = rng.standard_normal((2, 30))
    U /= np.linalg.norm(U, axis=0)
    H = np.maximum(X @ U, 0.0)
    Y = rng.standard_normal((40, 3))
    V0 = 0.01 * rng.standard_normal((30, 3))
    for tol in (1e-3, 1e-10):
        calls.clear()
        Va = group_lasso(H, Y, 0.5, V0, tol=tol)
        assert calls[0] == 11  # the probe comes first
        calls.clear()
        Vb = group_lasso(H, Y, 0.5, V0, tol=tol, probe=False)
        assert 11 not in calls
        G, B, yy = H.T @ H, H.T @ Y, float(np.vdot(Y, Y))
        for V in (Va, Vb):
            gap, primal = _gl_gap(G, B, yy, V, 0.5)
            assert gap <= tol * primal


def test_engine_parts_still_importable_from_cg():
    """The engine moved out of cg.py; its former names there are the same objects."""
    from convexrelu.solvers import cg, engine

    assert cg.group_lasso is engine.group_lasso
    assert cg.group_lasso_general is engine.group_lasso_general
    assert cg.network_from_atoms is engine.network_from_atoms
    assert cg._has_direction is engine.has_direction and cg._prune is engine.prune
    assert cg._refine is engine.refine and cg._slide_2d is engine.slide_2d
    assert cg._merge_cells is engine.merge_cells and cg._balanced is engine.balanced_network


def test_engine_atoms_round_trip_and_merge_keeps_predictions():
    """split_network inverts balanced_network; merging atoms of one cell keeps the
    predictions and does not raise the penalty; prune drops only negligible atoms."""
    from convexrelu.solvers.engine import balanced_network, merge_cells, prune, split_network

    rng = np.random.default_rng(7)
    X = rng.standard_normal((25, 2))
    u = np.array([1.0, 0.2]) / np.hypot(1.0, 0.2)
    U = np.column_stack([u, u, [0.0, 1.0]])  # two atoms in one cell
    V = rng.standard_normal((3, 2))
    net = balanced_network(U, V)
    Us, Vs = split_network(net)
    np.testing.assert_allclose(Us, U, atol=1e-15)
    np.testing.assert_allclose(Vs, V, rtol=1e-14)
    Um, Vm = merge_cells(X, U, V)
    assert Um.shape[1] == 2
    np.testing.assert_allclose(balanced_network(Um, Vm).predict(X), net.predict(X), atol=1e-12)
    assert np.linalg.norm(Vm, axis=1).sum() <= np.linalg.norm(V, axis=1).sum() + 1e-12
    Up, Vp = prune(U, np.vstack([V[:2], 1e-16 * V[2]]))
    assert Up.shape[1] == 2 and np.array_equal(Vp, V[:2])


def test_cg_reports_its_time_breakdown():
    """cg times its own parts (no patching): oracle, master, merge, refine, prove (branch
    and bound on the heuristic path) and other add up to the solve time; the dense feature
    map passed explicitly is the default."""
    from convexrelu.losses import SquaredLoss
    from convexrelu.oracles import make_oracle
    from convexrelu.solvers.cg import ConditionalGradient
    from convexrelu.solvers.engine import DenseFeatures

    from convexrelu.datasets import planted

    X, Y, _ = planted(n=20, d=2, c=3, seed=4)
    res = fit(X, Y, 1e-2)
    tb = res.info["time_breakdown"]
    assert set(tb) == {"oracle", "master", "merge", "refine", "prove", "other"}
    assert tb["prove"] == 0.0  # an exact oracle: nothing to prove afterwards
    assert all(v >= 0 for v in tb.values())
    assert tb["oracle"] > 0 and tb["master"] > 0
    assert sum(tb.values()) == pytest.approx(res.time, rel=0.05, abs=0.01)
    assert "time_breakdown" not in res.to_dict()  # a dict: not one of the scalar fields
    res2 = ConditionalGradient().solve(X, Y, 1e-2, make_oracle(X), SquaredLoss(),
                                       features=DenseFeatures(X))
    assert res2.solver == "cg"
    assert res2.objective == pytest.approx(res.objective, rel=1e-12)


@pytest.mark.slow
def test_scale_sampled_patterns_honest_and_shrinking():
    """n = 10,000, d = 20, c = 10: sampled patterns, heuristic oracle, under 60 s."""
    import resource
    import time

    rng = np.random.default_rng(0)
    X = rng.standard_normal((10000, 20))
    teacher = cr.TwoLayerReLU(rng.standard_normal((20, 50)), rng.standard_normal((50, 10)))
    Y = teacher.predict(X) + 0.1 * rng.standard_normal((10000, 10))
    beta = 0.01 * cr.omega(X, Y, oracle="heuristic", random_state=0).value
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = fit(X, Y, beta, time_limit=55, random_state=0)
    assert time.perf_counter() - t0 < 60
    assert res.certificate.oracle_kind == "heuristic" and not res.certificate.is_global
    # the estimate shrinks (the first network is already the 64-neuron warm start, not the
    # zero network, whose estimate is ~0.9 here); the proven gap is the loose spectral one
    gaps = res.history["rel_gap_estimate"]
    assert gaps[-1] < 0.1 and gaps[-1] < gaps[0]
    assert np.all(res.history["rel_gap"] >= gaps - 1e-12)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2 * 1024 * 1024  # KiB: < 2 GiB


def test_frank_wolfe_at_a_fixed_t_follows_the_paper_protocol():
    """FrankWolfe(t=...) runs Algorithm 1 at one t (App. A.1.5); at t* it approaches p*."""
    import warnings

    from convexrelu.datasets import spiral
    from convexrelu.solvers import FrankWolfe

    X, Y, _ = spiral(n_per_class=6, seed=2)
    beta = 0.1
    opt = cr.fit(X, Y, beta, tol=1e-9)
    t_star = opt.network.weight_decay()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = cr.fit(X, Y, beta, solver=FrankWolfe(t=t_star, max_iter=3000, inner_tol=1e-12))
        off = cr.fit(X, Y, beta, solver=FrankWolfe(t=0.5 * t_star, max_iter=3000, inner_tol=1e-12))
    assert set(r.history["t"][1:]) == {t_star}  # no search over t
    assert opt.certificate.dual - 1e-9 <= r.objective <= opt.objective * (1 + 1e-3)
    assert r.network.path_norm() <= t_star * (1 + 1e-12)
    assert off.objective > opt.objective * (1 + 1e-2)  # a wrong t cannot reach p*
    for bad in (0.0, -1.0, float("nan"), "x"):
        with pytest.raises(ValueError, match="t must be"):
            FrankWolfe(t=bad)


def test_refine_stops_inside_an_iteration_at_the_deadline():
    # the deadline passes during L-BFGS's evaluations: refine returns at once with the
    # best point it evaluated (never worse than the start)
    import time

    import convexrelu.solvers.engine as eng

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((200, 5)), rng.standard_normal((200, 2))
    U = rng.standard_normal((5, 10))
    U /= np.linalg.norm(U, axis=0)
    V = 0.1 * rng.standard_normal((10, 2))
    calls = []
    real = eng.objective_and_gradient

    def slow(*a, **k):
        calls.append(1)
        time.sleep(0.02)
        return real(*a, **k)

    eng.objective_and_gradient = slow
    try:
        t = time.perf_counter()
        U2, V2, improved = eng.refine(X, Y, 0.1, U, V, 10**6, deadline=t + 0.3)
        took = time.perf_counter() - t
    finally:
        eng.objective_and_gradient = real
    assert took < 0.3 + 0.1  # at most one evaluation past the deadline
    f = lambda U_, V_: real(X, Y, 0.1, *(lambda n: (n.W1, n.W2))(eng.balanced_network(U_, V_)))[0]
    assert f(U2, V2) <= f(U, V) * (1 + 1e-12)


def test_cg_first_master_after_a_wide_warm_start_uses_the_working_set(monkeypatch):
    """On the heuristic path the master after a wide warm start (many more atoms than its
    optimum keeps) runs the interior point on a working set; the fit's objective stays
    above its proven lower bound and its masters' answers are the optimum on all atoms."""
    from sklearn.datasets import load_iris

    import convexrelu as cr
    from convexrelu.solvers import engine

    X = load_iris().data
    X = (X - X.mean(0)) / X.std(0)
    Y = np.eye(3)[load_iris().target]
    beta = 0.01 * float(cr.omega(X, Y, oracle="heuristic", random_state=0).attained)
    calls = []
    real = engine._ipm_working_set

    def spy(system, beta_, V, tol, deadline=None):
        out = real(system, beta_, V, tol, deadline)
        calls.append((system.m, engine._gl_gap(system.G, system.B, system.yy, out, beta_)))
        return out

    monkeypatch.setattr(engine, "_ipm_working_set", spy)
    # no time_limit (a loaded machine must not change the path): a warm start of 64
    # neurons, and max_iter bounds the fit
    res = cr.fit(X, Y, beta, max_iter=3, random_state=0, max_patterns=1e3)
    assert calls and max(m for m, _ in calls) > engine.IPM_WS_MIN
    for _, (gap, primal) in calls:
        assert gap <= 1e-6 * primal
    assert res.certificate.dual <= res.objective


def test_cg_keeps_searching_until_time_limit_when_only_an_estimate_met_tol(monkeypatch):
    """With a time_limit (and no max_iter) a heuristic fit whose estimate met tol does not
    stop early: escape descents go on until one lowers the objective or the time is
    spent; every escape that returned kept the objective or lowered it, and the result is
    never above the network the estimate stopped at. With max_iter given, it stops."""
    import time as _time

    import convexrelu as cr
    from convexrelu.solvers import cg

    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 6))
    Y = np.maximum(X @ rng.standard_normal((6, 3)), 0) @ rng.standard_normal((3, 2))
    beta = 0.5 * float(cr.omega(X, Y, oracle="heuristic", random_state=0).attained)
    searched = []
    real = cg.ConditionalGradient._search

    def spy(self, *a, **k):
        searched.append(a[-1])  # the objective the estimate stopped at
        return real(self, *a, **k)

    monkeypatch.setattr(cg.ConditionalGradient, "_search", spy)
    t0 = _time.perf_counter()
    res = cr.fit(X, Y, beta, oracle="heuristic", time_limit=8.0, random_state=0)
    elapsed = _time.perf_counter() - t0
    assert searched, "the estimate met tol and no search followed"
    assert elapsed >= 4.0 and elapsed <= 8.0 + 1.0 + 1.0
    assert res.status in ("estimate_converged", "time_limit")
    assert res.objective <= min(searched) * (1 + 1e-12)
    assert not res.certificate.is_global and res.certificate.dual <= res.objective
    searched.clear()
    t0 = _time.perf_counter()
    cr.fit(X, Y, beta, oracle="heuristic", time_limit=30.0, max_iter=50, random_state=0)
    assert not searched and _time.perf_counter() - t0 < 20.0
