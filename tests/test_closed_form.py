"""Whitening, the spike-free test, Theorem 2's closed form and the linear counterpart."""

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.losses import SquaredLoss
from convexrelu.preprocessing import SpectralOracle
from convexrelu.solvers.closed_form import ClosedForm, ClosedFormNotApplicable, closed_form_solution


def _row_whitened(n, d, seed=0):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, d))
    U, _, Vt = np.linalg.svd(G, full_matrices=False)
    return U @ Vt, rng


def _onehot(rng, n, c):
    return np.eye(c)[rng.integers(0, c, n)]


@pytest.mark.parametrize("beta", [0.3, 1.0, 2.0])
def test_closed_form_equals_cg_cvxpy_eq20_and_linear(beta):
    from convexrelu.solvers.copositive import solve_relaxation

    X, rng = _row_whitened(16, 24)
    Y = _onehot(rng, 16, 3)
    res = cr.fit(X, Y, beta, solver="closed-form")
    assert res.status == "optimal" and res.certificate.is_global
    assert res.certificate.oracle_kind == "upper_bound"
    cg = cr.fit(X, Y, beta, oracle="heuristic", random_state=0, max_iter=300, tol=1e-10)
    # cg on the heuristic oracle stops where its gap *estimate* stalls (1e-8..1e-10 by
    # BLAS kernel): agreement to 1e-6, and nothing beats the proven optimum
    np.testing.assert_allclose(res.objective, cg.objective, rtol=1e-6)
    assert res.objective <= cg.objective * (1 + 1e-12)
    rel = solve_relaxation(X, Y, beta, form="eq20")
    np.testing.assert_allclose(res.objective, rel.value, rtol=1e-7)
    # condition holds: ReLU and linear networks coincide (paper, after Theorem 2)
    np.testing.assert_allclose(cr.fit_linear(X, Y, beta).objective, res.objective, rtol=1e-10)
    # the network predicts X V* exactly and its objective is the reported one
    np.testing.assert_allclose(res.network.objective(X, Y, beta), res.objective, rtol=1e-12)


def test_closed_form_on_whitened_digits_one_hot():
    """scikit-learn digits, n = 50 <= d = 64 (60 images are rank-deficient), rows whitened
    (uncentred ZCA), one-hot targets: the condition holds."""
    from sklearn.datasets import load_digits

    dig = load_digits()
    idx = np.concatenate([np.flatnonzero(dig.target == k)[:5] for k in range(10)])
    X = cr.ZCAWhitener(center=False).fit_transform(dig.data[idx])
    assert cr.is_spike_free(X)
    Y = np.eye(10)[dig.target[idx]]
    for beta in (0.5, 2.0, 5.0):
        res = cr.fit(X, Y, beta, solver="closed-form")
        assert res.certificate.is_global, res.certificate
        assert res.certificate.rel_gap <= 1e-9


def test_closed_form_refused_with_the_reason():
    X, rng = _row_whitened(12, 20)
    # 1. not whitened
    with pytest.raises(ClosedFormNotApplicable, match=r"X X\^T = s I.*whiten_rtol"):
        cr.fit(X * rng.uniform(0.5, 2, (12, 1)), _onehot(rng, 12, 2), 0.1, solver="closed-form")
    # 2. n > d
    with pytest.raises(ClosedFormNotApplicable, match="n <= d"):
        cr.fit(rng.standard_normal((30, 5)), rng.standard_normal((30, 2)), 0.1,
               solver="closed-form")
    # 3. the cone condition: random signed targets
    Y = rng.standard_normal((12, 3))
    with pytest.raises(ClosedFormNotApplicable, match=r"X a_i >= 0.*singular vector"):
        closed_form_solution(X, Y, 1e-3)
    # fallback="cg" is explicit and says what happened
    res = ClosedForm(fallback="cg").solve(X, Y, 1e-2, cr.make_oracle(X, "heuristic", random_state=0),
                                          SquaredLoss())
    assert res.solver == "cg" and res.info["closed_form"] == "not applicable"
    assert "X a_i >= 0" in res.info["closed_form_reason"]


def test_closed_form_full_check_and_scaled_whitening():
    X, rng = _row_whitened(10, 15)
    Y = _onehot(rng, 10, 2)
    a = closed_form_solution(X, Y, 0.2, whiten_check="full")
    # X X^T = 4 I: same problem as X with beta / 2 after the change of scale
    b = closed_form_solution(2.0 * X, Y, 0.2)
    cg = cr.fit(2 * X, Y, 0.2, oracle="heuristic", random_state=0, max_iter=300, tol=1e-10)
    pb = b.network.objective(2 * X, Y, 0.2)
    np.testing.assert_allclose(pb, cg.objective, rtol=1e-6)  # see the test above
    assert pb <= cg.objective * (1 + 1e-12)
    assert a.n_active >= 1


def test_spike_free_test():
    X, rng = _row_whitened(8, 12)
    ok, why = cr.is_spike_free(X, return_reason=True)
    assert ok and why.startswith("proven")
    # orthogonal rows of different norms: still proven
    assert cr.is_spike_free(X * np.arange(1, 9)[:, None])
    # centred ZCA with n <= d is never spike-free (the paper's caveat, see preprocessing)
    Z = cr.ZCAWhitener().fit_transform(rng.standard_normal((8, 12)))
    ok, why = cr.is_spike_free(Z, return_reason=True)
    assert not ok and why.startswith("disproven")
    # n > d general data: refuted by a direction
    assert not cr.is_spike_free(rng.standard_normal((20, 3)))


def test_zca_whitener_transformer():
    from sklearn.utils.estimator_checks import check_estimator

    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 5))
    X = rng.standard_normal((400, 5)) @ A + 3.0
    w = cr.ZCAWhitener().fit(X)
    Z = w.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(Z.T @ Z / 400, np.eye(5), atol=1e-6)
    # test data: same mean and matrix
    Xt = rng.standard_normal((7, 5))
    np.testing.assert_allclose(w.transform(Xt), (Xt - w.mean_) @ w.whitening_)
    # ZCA is symmetric (zero-phase): the whitening matrix is symmetric
    np.testing.assert_allclose(w.whitening_, w.whitening_.T, atol=1e-12)
    with pytest.raises(ValueError, match="eps"):
        cr.ZCAWhitener(eps=-1).fit(X)
    check_estimator(cr.ZCAWhitener())


def test_spectral_oracle_is_an_upper_bound():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((9, 2))
    Z = rng.standard_normal((9, 3))
    sp = SpectralOracle(X)(Z)
    ex = cr.ExactOracle(X)(Z)
    assert sp.kind == "upper_bound" and sp.value >= ex.value * (1 - 1e-12)
    assert sp.attained <= ex.value * (1 + 1e-12)


def test_fit_linear_fista_agrees_with_cvxpy():
    import cvxpy as cp

    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 6))
    Y = rng.standard_normal((30, 4))
    beta = 3.0
    lin = cr.fit_linear(X, Y, beta)
    assert lin.method == "fista"
    W = cp.Variable((6, 4))
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X @ W - Y) + beta * cp.normNuc(W)))
    prob.solve(solver="SCS", eps=1e-9, max_iters=100000)
    np.testing.assert_allclose(lin.objective, prob.value, rtol=1e-5)
    W1, W2 = lin.factors()
    np.testing.assert_allclose(W1 @ W2, lin.W, atol=1e-10)
    # weight decay of the balanced factors equals the nuclear norm
    np.testing.assert_allclose(0.5 * (np.sum(W1**2) + np.sum(W2**2)),
                               np.sum(np.linalg.svd(lin.W, compute_uv=False)), rtol=1e-10)


def test_spike_free_problem_eq15_solved_and_certified_where_the_closed_form_fails():
    """Whitened data, signed targets: Theorem 2's condition fails; cg with the spike-free
    oracle (one pattern, exact for n <= 12) certifies the optimum of training."""
    X, rng = _row_whitened(10, 25, seed=3)
    Y = rng.standard_normal((10, 3))
    beta = 0.2
    with pytest.raises(ClosedFormNotApplicable):
        closed_form_solution(X, Y, beta)
    res = cr.fit(X, Y, beta, oracle="spike-free", tol=1e-7, max_iter=300)
    assert res.certificate.is_global and res.certificate.oracle_kind == "exact"
    # against brute force on the oracle: random directions never beat it
    orc = cr.make_oracle(X, "spike-free")
    Z = Y - res.network.predict(X)
    U = rng.standard_normal((25, 100000))
    U /= np.linalg.norm(U, axis=0)
    assert np.max(np.linalg.norm(Z.T @ np.maximum(X @ U, 0), axis=0)) <= orc(Z).value * (1 + 1e-12)
    # non-convex training from random starts never ends below the certified optimum
    from convexrelu.solvers.cg import _refine

    for seed in range(5):
        r = np.random.default_rng(seed)
        U0 = r.standard_normal((25, 30))
        U0 /= np.linalg.norm(U0, axis=0)
        Uf, Vf, _ = _refine(X, Y, beta, U0, 0.1 * r.standard_normal((30, 3)), 2000)
        net = cr.TwoLayerReLU(Uf, Vf).rebalance()
        assert net.objective(X, Y, beta) >= res.objective * (1 - 1e-6)


def test_spike_free_oracle_refuses_other_data():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="orthogonal"):
        cr.make_oracle(rng.standard_normal((10, 3)), "spike-free")
