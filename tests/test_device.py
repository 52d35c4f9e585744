"""The PyTorch back end (``fit(..., device=...)``): the same answers as NumPy on the CPU.

CI has no GPU: every test here runs PyTorch on the CPU, in float64, against the NumPy
back end; kernels on adversarial data (duplicates, opposite rows, integer grids, an
intercept column, column scales 1e-8..1e8) with row blocks forced small, whole fits to
1e-8, float32's certificate still a proven bound, and the errors a user can meet.
"""

import os
import warnings

import numpy as np
import pytest

import convexrelu as cr
from convexrelu import kernels
from convexrelu.datasets import planted
from convexrelu.kernels import NumpyKernels, make_backend, use_backend
from convexrelu.solvers import ConditionalGradient

from _kernel_checks import check_master_kernels, close
from convexrelu.solvers.engine import group_lasso, merge_cells

torch = pytest.importorskip("torch")
from convexrelu._torch_kernels import TorchKernels  # noqa: E402

NP = NumpyKernels()
#: where the PyTorch side runs: the CPU in CI; CONVEXRELU_TEST_DEVICE=cuda on a GPU machine
DEV = os.environ.get("CONVEXRELU_TEST_DEVICE", "cpu")


def _adversarial(kind, rng):
    base = rng.standard_normal((40, 4))
    if kind == "gaussian":
        return base
    if kind == "duplicates_opposites":
        return np.vstack([base, base[:10], -base[10:20], 2.0 * base[:5]])
    if kind == "integer_grid":
        g = np.arange(-2, 3, dtype=float)
        return np.array(np.meshgrid(g, g, g)).reshape(3, -1).T
    if kind == "intercept":
        return np.column_stack([base[:, :3], np.ones(40)])
    if kind == "collinear":  # rank 2 in 4 dimensions
        return base[:, :2] @ rng.standard_normal((2, 4))
    if kind == "scales":
        return base * np.array([1e-8, 1.0, 1e4, 1e8])
    raise AssertionError(kind)


KINDS = ["gaussian", "duplicates_opposites", "integer_grid", "intercept", "collinear", "scales"]




@pytest.mark.parametrize("kind", KINDS)
def test_kernels_match_numpy_in_blocks(kind):
    rng = np.random.default_rng(3)
    X = _adversarial(kind, rng)
    n, d = X.shape
    Y = rng.standard_normal((n, 3))
    U = rng.standard_normal((d, 7))
    U[:, 1] = X[0] / np.linalg.norm(X[0])  # a direction on a row's hyperplane boundary
    W2 = rng.standard_normal((7, 3))
    Q = rng.standard_normal((9, d))
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    tk = TorchKernels(DEV, max_memory=200)  # a few rows per block: the blocks are tested
    assert tk._rows(n, 7) < n
    close(NP.forward(X, U, W2), tk.forward(X, U, W2))
    close(NP.relu_features(X, U), tk.relu_features(X, U))
    v1, a1, b1 = NP.objective_and_gradient(X, Y, 0.3, U, W2)
    v2, a2, b2 = tk.objective_and_gradient(X, Y, 0.3, U, W2)
    assert abs(v1 - v2) <= 1e-10 * abs(v1)
    close(a1, a2)
    close(b1, b2)
    close(NP.relu_values(X, Y, Q), tk.relu_values(X, Y, Q))
    close(NP.sphere_gradient(X, Y, Q), tk.sphere_gradient(X, Y, Q))
    s1, s2 = NP.spectral_norm(X), tk.spectral_norm(X)
    assert s2 >= np.linalg.norm(X, 2) and abs(s1 - s2) <= 1e-8 * s1
    check_master_kernels(NP, tk, X, X, U, Y)  # the residual form: tall-skinny QR in blocks
    assert np.array_equal(NP.activation(X, U), tk.activation(X, U))
    s1 = NP.thin_svd(X)[1]
    U2, s2, V2 = tk.thin_svd(X)
    close(s1, s2)
    close(X, (U2 * s2) @ V2)
    from convexrelu.patterns import reduce_rank

    r1 = reduce_rank(X)
    with use_backend(tk):
        r2 = reduce_rank(X)
    assert r1.rank == r2.rank  # the same rank decision on the equilibrated matrix
    close(r1.basis @ r1.basis.T, r2.basis @ r2.basis.T, 1e-9)
    Ud = np.hstack([U, U[:, :2], 2.0 * U[:, 3:4]])
    assert np.array_equal(NP.pattern_groups(X, Ud), tk.pattern_groups(X, Ud))
    assert np.array_equal(NP.cone_signs(X, U[:, 0], U, 1e-12), tk.cone_signs(X, U[:, 0], U, 1e-12))


def test_torch_float32_searches_float64_certificate_kernels():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((50, 3)), rng.standard_normal((50, 2))
    U, W2 = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    k32 = TorchKernels(DEV, "float32")
    # the searches run in float32 (close, not equal) ...
    v1 = NP.objective_and_gradient(X, Y, 0.1, U, W2)[0]
    v2 = k32.objective_and_gradient(X, Y, 0.1, U, W2)[0]
    assert v1 != v2 and abs(v1 - v2) <= 1e-5 * abs(v1)
    # ... what a certificate is built from stays float64
    assert np.array_equal(NP.forward(X, U, W2), k32.forward(X, U, W2)) or \
        np.allclose(NP.forward(X, U, W2), k32.forward(X, U, W2), rtol=1e-13, atol=0)
    assert k32.exact().dtype == "float64" and k32.exact()._cache is k32._cache


def test_data_moved_once_and_refreshed_when_modified():
    tk = TorchKernels(DEV)
    X = np.random.default_rng(0).standard_normal((30, 3))
    t1 = tk._data(X)
    assert tk._data(X) is t1  # kept on the device
    X[5, 1] += 1.0  # modified in place: the sampled checksum sees it (row 5 is sampled)
    assert tk._data(X) is not t1 and float(tk._data(X)[5, 1]) == X[5, 1]


def test_group_lasso_from_device_system_matches():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((120, 5)), rng.standard_normal((120, 2))
    U = rng.standard_normal((5, 30))
    U /= np.linalg.norm(U, axis=0)
    H = np.maximum(X @ U, 0.0)
    V1 = group_lasso(H, Y, 2.0, tol=1e-11, method="ipm")
    with use_backend(TorchKernels(DEV, max_memory=3000)):
        V2 = group_lasso(kernels.atom_system(X, U, Y), Y, 2.0, tol=1e-11, method="ipm")
        Um, Vm = merge_cells(X, np.hstack([U[:, :3], U[:, :1]]), np.vstack([V1[:3], V1[:1]]))
    assert np.max(np.abs(V1 - V2)) <= 1e-7 * np.max(np.abs(V1))
    Un, Vn = merge_cells(X, np.hstack([U[:, :3], U[:, :1]]), np.vstack([V1[:3], V1[:1]]))
    assert np.allclose(Um, Un) and np.allclose(Vm, Vn)


@pytest.mark.parametrize("n, d, c, frac", [(120, 2, 3, 0.1), (80, 3, 2, 0.3)])
def test_certified_fit_same_on_torch_cpu(n, d, c, frac):
    # tol 1e-8: at 1e-9 the certificate depends on which atoms the path met (the two back
    # ends round differently): on the 120 x 2 problem the PyTorch path met 40 nearly
    # parallel atoms whose master the interior point solves only to relative gap 2.7e-9,
    # and ended on max_iter at 1.7e-9 (NumPy: optimal at 5e-10)
    X, Y = planted(n, d, c=c, seed=2)[:2]
    beta = frac * float(cr.lambda_max(X, Y))
    a = cr.fit(X, Y, beta, tol=1e-8)
    b = cr.fit(X, Y, beta, tol=1e-8, device=DEV)
    assert a.status == b.status == "optimal"
    assert b.certificate.is_global
    assert abs(a.objective - b.objective) <= 1e-8 * abs(a.objective)
    assert abs(a.certificate.dual - b.certificate.dual) <= 1e-8 * abs(a.objective)
    assert b.certificate.dual <= a.objective * (1 + 1e-12)


def test_heuristic_path_proven_same_on_torch_cpu():
    # rank 4 (no enumeration at the default budget): heuristic oracle, local moves,
    # merging and branch and bound's proof, on both back ends
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    Y = np.eye(3)[y]
    beta = 0.1 * float(cr.lambda_max(X, Y))
    a = cr.fit(X, Y, beta, tol=1e-6, random_state=0)
    b = cr.fit(X, Y, beta, tol=1e-6, random_state=0, device=DEV)
    for r in (a, b):
        assert r.status == "optimal" and r.certificate.is_global
        assert r.certificate.bound_source.startswith("branch and bound")
    # both proven within tol of the one optimum: they agree to the proven gaps
    assert abs(a.objective - b.objective) <= 2e-6 * abs(a.objective)
    assert b.certificate.dual <= a.objective and a.certificate.dual <= b.objective


def test_float32_keeps_the_certificate_proven():
    X, Y = planted(200, 6, c=3, seed=4)[:2]
    beta = 0.3 * float(cr.lambda_max(X, Y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = cr.fit(X, Y, beta, solver=ConditionalGradient(max_iter=8, prove=False,
                                                          random_state=0))
        b = cr.fit(X, Y, beta, solver=ConditionalGradient(max_iter=8, prove=False, random_state=0,
                                                          device=DEV, dtype="float32"))
    # float32 searches: the objective is the float64 value of the network it returns ...
    net = b.network
    F = np.maximum(X @ net.W1, 0) @ net.W2
    obj = 0.5 * np.sum((F - Y) ** 2) + beta * net.weight_decay()
    assert abs(obj - b.objective) <= 1e-10 * obj
    # ... and its dual is a proven lower bound on the optimum, below every objective
    assert np.isfinite(b.certificate.dual)
    assert b.certificate.dual <= min(a.objective, b.objective)
    assert a.certificate.dual <= b.objective
    assert abs(a.objective - b.objective) <= 1e-2 * a.objective


def test_device_errors_are_clear():
    X, Y = planted(30, 2, c=1, seed=0)[:2]
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            cr.fit(X, Y, 0.1, device="cuda")
    with pytest.raises(ValueError, match="device must be"):
        cr.fit(X, Y, 0.1, device="tpu")
    with pytest.raises(ValueError, match="dtype must be"):
        cr.fit(X, Y, 0.1, device=DEV, dtype="float16")
    with pytest.raises(ValueError, match="needs a PyTorch device"):
        cr.fit(X, Y, 0.1, dtype="float32")
    with pytest.raises(ValueError, match="options of solver='cg'"):
        cr.fit(X, Y, 0.1, solver="frank-wolfe", device=DEV)
    with pytest.raises(ValueError, match="conflicts"):
        cr.fit(X, Y, 0.1, solver=ConditionalGradient(device=None), device=DEV)
    with pytest.raises(ValueError, match="max_memory"):
        ConditionalGradient(device=DEV, max_memory=-1)
    with pytest.raises(ValueError, match="needs a PyTorch device"):
        make_backend(None, "float32")


def test_fit_passes_the_device_to_sgd():
    X, Y = planted(30, 2, c=1, seed=0)[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = cr.fit(X, Y, 0.1, solver="sgd", device=DEV, dtype="float32", max_iter=5)
    assert r.solver == "sgd" and np.isfinite(r.objective)


def test_backend_context_restores_numpy():
    assert kernels.get_backend().name == "numpy"
    with use_backend(TorchKernels(DEV)) as k:
        assert kernels.get_backend() is k
    assert kernels.get_backend().name == "numpy"


def test_device_bench_runs_on_the_cpu(tmp_path, capsys):
    import json

    from convexrelu.cli import main

    assert main(["bench", "--device", "cpu", "--out", str(tmp_path), "--", "--sizes", "300",
                 "--dims", "3", "--budgets", "1", "--cpu-budget", "1",
                 "--methods", "cg-device,cg-numpy,adam"]) == 0
    res = json.loads((tmp_path / "device.json").read_text())
    (p,) = res["problems"]
    assert set(p["runs"]) == {"cg-device-1", "cg-numpy", "adam-w100-lr0.001", "adam-w100-lr0.01",
                              "adam-w1000-lr0.001", "adam-w1000-lr0.01"}
    row = p["summary"]["1"]
    assert row["ok"] == (row["default"] <= row["best_adam"])
    assert "| planted n=300 d=3 c=10 | 1 s |" in (tmp_path / "device.md").read_text()
    capsys.readouterr()
    # errors name the problem (the CLI prints them and exits 2)
    assert main(["bench", "--device", "cpu", "--suite", "real", "--out", str(tmp_path)]) == 2
    assert "does not combine" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["bench", "--device", "cuda", "--out", str(tmp_path)]) == 2
        assert "sees no CUDA device" in capsys.readouterr().err


def test_cli_fit_on_a_device(tmp_path, capsys):
    import json

    from convexrelu.cli import main

    X, Y = planted(40, 2, c=2, seed=5)[:2]
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    assert main(["fit", str(tmp_path / "d.npz"), "--beta", "0.05", "--device", DEV, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "optimal"
    ref = cr.fit(X, Y, 0.05)
    assert abs(out["objective"] - ref.objective) <= 1e-8 * ref.objective


def test_estimator_on_a_device_matches():
    from sklearn.base import clone

    X, Y = planted(60, 2, c=1, seed=3)[:2]
    a = cr.ConvexReLURegressor(beta=0.1, fit_intercept=False).fit(X, Y[:, 0])
    b = clone(cr.ConvexReLURegressor(beta=0.1, fit_intercept=False, device=DEV)).fit(X, Y[:, 0])
    assert b.get_params()["device"] == DEV
    assert abs(a.certificate_.primal - b.certificate_.primal) <= 1e-8 * a.certificate_.primal
    assert np.allclose(a.predict(X), b.predict(X), rtol=1e-6, atol=1e-8 * np.abs(Y).max())
