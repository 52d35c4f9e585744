"""Data-parallel fits on Dask (``X`` a ``dask.array``), on a 2-worker LocalCluster.

The kernels as map-reduces over row blocks against NumPy (adversarial data, uneven
blocks); the Dask problem's rank reduction; ``certify`` and the first iterations of
``fit`` against the in-memory run to 1e-8; converged fits against each other (the same
objective to 1e-8, and the same certificate of the fitted network); joblib's
Dask back end for ``GridSearchCV`` and the parallel path; and the refusals of what
needs all rows in one place.
"""

import warnings

import numpy as np
import pytest

import convexrelu as cr
from convexrelu import kernels
from convexrelu.datasets import planted
from convexrelu.kernels import NumpyKernels
from convexrelu.oracles import HeuristicOracle
from convexrelu.solvers import ConditionalGradient

from _kernel_checks import check_master_kernels, close

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

NP = NumpyKernels()


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                           dashboard_address=None)
        cl = distributed.Client(cluster)
    yield cl
    cl.close()
    cluster.close()




@pytest.mark.parametrize("kind", ["gaussian", "duplicates_opposites", "intercept", "scales"])
def test_kernels_on_row_blocks_match_numpy(client, kind):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((97, 4))
    if kind == "duplicates_opposites":
        X[50:70] = X[:20]
        X[70:90] = -X[:20]
    elif kind == "intercept":
        X[:, 3] = 1.0
    elif kind == "scales":
        X *= np.array([1e-8, 1.0, 1e4, 1e8])
    Xd = da.from_array(X, chunks=(30, 2))  # uneven row blocks, two column blocks
    Y = rng.standard_normal((97, 2))
    U = rng.standard_normal((4, 6))
    W2 = rng.standard_normal((6, 2))
    Q = rng.standard_normal((5, 4))
    close(NP.forward(X, U, W2), kernels.forward(Xd, U, W2))
    v1, a1, b1 = NP.objective_and_gradient(X, Y, 0.2, U, W2)
    v2, a2, b2 = kernels.objective_and_gradient(Xd, Y, 0.2, U, W2)
    assert abs(v1 - v2) <= 1e-10 * abs(v1)
    close(a1, a2)
    close(b1, b2)
    close(NP.relu_values(X, Y, Q), kernels.relu_values(Xd, Y, Q))
    close(NP.sphere_gradient(X, Y, Q / np.linalg.norm(Q, axis=1, keepdims=True)),
           kernels.sphere_gradient(Xd, Y, Q / np.linalg.norm(Q, axis=1, keepdims=True)))
    s = kernels.spectral_norm(Xd)
    assert s >= np.linalg.norm(X, 2) and s <= np.linalg.norm(X, 2) * (1 + 1e-8)
    check_master_kernels(NP, kernels, X, Xd, U, Y)
    Ud = np.hstack([U, U[:, :2], 3.0 * U[:, 4:5]])
    assert np.array_equal(NP.pattern_groups(X, Ud), kernels.pattern_groups(Xd, Ud))
    assert np.array_equal(NP.cone_signs(X, U[:, 0], U, 1e-12), kernels.cone_signs(Xd, U[:, 0], U, 1e-12))
    assert np.array_equal(NP.activation(X, U), kernels.activation(Xd, U))
    Us, ss, Vts = kernels.thin_svd(Xd)
    close(np.linalg.svd(X, compute_uv=False), ss)
    close(X, (np.asarray(Us.compute()) * ss) @ Vts, 1e-9)
    idx = np.array([5, 90, 0, 33])
    assert np.array_equal(kernels.take_rows(Xd, idx), X[idx])
    close(kernels.row_norms(Xd), np.linalg.norm(X, axis=1))
    close(kernels.column_norms(Xd), np.linalg.norm(X, axis=0))


def test_dask_problem_rank_reduction(client):
    from convexrelu._dask import DaskProblem
    from convexrelu.problem import Problem

    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 2)) @ rng.standard_normal((2, 5))  # rank 2 in 5 dimensions
    X[:7] = 0.0  # zero rows
    p, q = Problem(X), DaskProblem(da.from_array(X, chunks=(25, 5)))
    assert p.rank == q.rank == 2
    close(p.basis @ p.basis.T, q.basis @ q.basis.T, 1e-9)
    assert np.array_equal(p.zero_rows, q.zero_rows)
    assert q.residual <= 1e-6 * np.linalg.norm(X, 2)
    assert q.fingerprint.startswith("dask:")


def _solver(**kw):
    return ConditionalGradient(prove=False, random_state=0, refine_max_iter=30, warm_width=8,
                               max_escapes=1, **kw)


def _oracle(X):
    # the same search on both sides: no per-cell check (it needs all rows in one place)
    return HeuristicOracle(X, n_iter=10, random_state=0, cell_budget=1e3)


def test_first_iterations_and_certify_match_in_memory(client):
    X, Y = planted(300, 3, c=2, seed=3)[:2]
    beta = 0.3 * float(cr.lambda_max(X, Y))
    Xd, Yd = da.from_array(X, chunks=(100, 3)), da.from_array(Y, chunks=(100, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = cr.fit(X, Y, beta, oracle=_oracle(X), solver=_solver(max_iter=1))
        b = cr.fit(Xd, Yd, beta, oracle=_oracle(Xd), solver=_solver(max_iter=1))
    assert abs(a.objective - b.objective) <= 1e-8 * abs(a.objective)
    assert abs(a.certificate.dual - b.certificate.dual) <= 1e-8 * abs(a.objective)
    assert b.certificate.bound_source == "spectral bound" and not b.certificate.is_global
    assert b.status != "optimal"
    # the certificate of one network: the same numbers from the blocks and from memory
    c1 = cr.certify(b.network, X, Y, beta, oracle="heuristic")
    c2 = cr.certify(b.network, Xd, Yd, beta)
    assert abs(c1.primal - c2.primal) <= 1e-10 * c1.primal
    assert abs(c1.dual - c2.dual) <= 1e-8 * c1.primal
    assert c2.bound_source == "spectral bound" and c2.is_global is False


def test_converged_fits_agree(client):
    # whole fits: the trajectories part at rounding-level differences (the blocks'
    # summation order), but both converge to the one optimum of the convex program, so
    # the objectives agree to 1e-8 (measured 1.6e-11). The fitted networks' certificates,
    # computed on Dask and in memory, agree to 1e-8 as well. The fits' own proven duals
    # are functions of their final residuals, which the objective fixes only to the
    # square root of its accuracy (the loss is strongly convex in the predictions), so
    # they agree to 1e-5 (measured 3e-7), each below the other fit's objective.
    X, Y = planted(200, 2, c=1, seed=4)[:2]
    beta = 0.3 * float(cr.lambda_max(X, Y))
    Xd, Yd = da.from_array(X, chunks=(50, 2)), da.from_array(Y, chunks=(50, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = cr.fit(X, Y, beta, oracle=_oracle(X), solver=_solver(tol=1e-8))
        b = cr.fit(Xd, Yd, beta, oracle=_oracle(Xd), solver=_solver(tol=1e-8))
    assert a.status == b.status == "estimate_converged"
    assert abs(a.objective - b.objective) <= 1e-8 * a.objective
    ca, cb = a.certificate, b.certificate
    spectral = {"spectral bound", "bound proven at an earlier iterate"}
    assert ca.bound_source in spectral and cb.bound_source in spectral
    assert ca.is_global is False and cb.is_global is False
    assert abs(ca.primal - cb.primal) <= 1e-8 * ca.primal
    assert abs(ca.dual - cb.dual) <= 1e-5 * ca.primal
    assert cb.dual <= a.objective and ca.dual <= b.objective
    close(a.network.predict(X), b.network.predict(X), 1e-4)
    # the certificate of the fitted network: the same numbers from the blocks and memory
    c1 = cr.certify(b.network, X, Y, beta, oracle="heuristic")
    c2 = cr.certify(b.network, Xd, Yd, beta)
    assert abs(c1.primal - c2.primal) <= 1e-10 * c1.primal
    assert abs(c1.dual - c2.dual) <= 1e-8 * c1.primal


def test_what_needs_all_rows_is_refused(client):
    X, Y = planted(60, 3, c=1, seed=0)[:2]
    Xd, Yd = da.from_array(X, chunks=(20, 3)), da.from_array(Y, chunks=(20, 1))
    for oracle in ("exact", "bnb", "upper_bound", "spike-free"):
        with pytest.raises(ValueError, match="all rows in one place|heuristic one"):
            cr.fit(Xd, Yd, 0.1, oracle=oracle)
    with pytest.raises(ValueError, match="all rows in one place"):
        cr.certify(cr.TwoLayerReLU.zeros(3, 1), Xd, Yd, 0.1, oracle="bnb")
    with pytest.raises(ValueError, match="Dask input"):
        cr.fit(Xd, Yd, 0.1, device="cpu")
    with pytest.raises(ValueError, match="branch and bound"):
        cr.fit(Xd, Yd, 0.1, solver=ConditionalGradient(prove=True))
    with pytest.raises(ValueError, match="pass X as a Dask array too"):
        cr.fit(X, Yd, 0.1)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        cr.fit(da.from_array(bad, chunks=(20, 3)), Yd, 0.1)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        cr.fit(Xd[Xd[:, 0] > 0], Y, 0.1)
    with pytest.raises(ValueError, match="n_jobs with Dask input"):
        cr.regularization_path(Xd, Yd, [0.1, 0.2], n_jobs=2)


def test_gridsearch_with_the_dask_joblib_backend(client):
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV

    X, Y = planted(80, 2, c=1, seed=6)[:2]
    y = Y[:, 0]
    grid = {"beta": [1e-3, 1e-2, 1e-1, 1.0, 10.0]}
    est = cr.ConvexReLURegressor(fit_intercept=False)
    serial = GridSearchCV(est, grid, cv=3).fit(X, y)
    with parallel_backend("dask"):
        par = GridSearchCV(est, grid, cv=3, n_jobs=-1).fit(X, y)
    assert par.best_params_ == serial.best_params_
    close(par.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"], 1e-8)


def test_parallel_path_on_the_dask_backend(client):
    from joblib import parallel_backend

    X, Y = planted(60, 2, c=2, seed=8)[:2]
    betas = [0.5, 0.05, 5.0]
    serial = cr.regularization_path(X, Y, betas)
    with parallel_backend("dask"):
        par = cr.regularization_path(X, Y, betas, n_jobs=-1)
    for a, b in zip(serial, par):
        assert a.status == b.status == "optimal"
        assert a.certificate.is_global and b.certificate.is_global
        # the serial path is warm-started and the parallel fits are not: two certified
        # optima, each within its own proven gap of the same optimum
        assert abs(a.objective - b.objective) <= a.certificate.gap + b.certificate.gap \
            + 1e-12 * abs(a.objective)


def test_ray_backend_if_installed():
    ray = pytest.importorskip("ray")
    from joblib import parallel_backend
    from ray.util.joblib import register_ray

    register_ray()
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        X, Y = planted(40, 2, c=1, seed=2)[:2]
        with parallel_backend("ray"):
            par = cr.regularization_path(X, Y, [0.5, 0.05], n_jobs=2)
        assert all(r.status == "optimal" for r in par)
    finally:
        ray.shutdown()


def test_lambda_max_on_dask_is_an_estimate_with_a_proven_bound(client):
    X, Y = planted(200, 3, c=2, seed=0)[:2]
    exact = cr.lambda_max(X, Y)
    lam = cr.lambda_max(da.from_array(X, chunks=(50, 3)), da.from_array(Y, chunks=(50, 2)))
    assert lam.kind == "estimate"  # the heuristic oracle: a value attained, not a bound
    assert float(lam) <= float(exact) * (1 + 1e-9) <= lam.upper_bound
