"""CNNs with global average pooling (eq. 6, eq. 50): patches, the network, the convex solve."""

import numpy as np
import pytest

from convexrelu.conv import TwoLayerReLUConv, extract_patches, fit_conv


@pytest.mark.parametrize("shape,kernel,stride,padding", [
    ((3, 10), 2, 1, 0), ((3, 2, 11), 3, 2, 1), ((2, 1, 8, 8), 3, 1, 1), ((2, 3, 7, 9), (2, 3), (2, 1), (0, 1)),
])
def test_network_equals_its_pytorch_export(shape, kernel, stride, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal(shape)
    P, spec = extract_patches(X, kernel, stride, padding)
    net = TwoLayerReLUConv(rng.standard_normal((spec.patch_dim, 5)), rng.standard_normal((5, 3)), spec)
    Xt = torch.tensor(X if X.ndim > 2 else X[:, None, :])
    out = net.to_torch()(Xt).detach().numpy()
    np.testing.assert_allclose(out, net.predict(X), atol=1e-12)
    # patch count matches PyTorch's output size
    conv = net.to_torch()[0](Xt)
    assert P.shape[1] == int(np.prod(conv.shape[2:]))


def test_extract_patches_bad_input():
    with pytest.raises(ValueError, match="larger than"):
        extract_patches(np.zeros((2, 3)), 5)
    with pytest.raises(ValueError, match="shape"):
        extract_patches(np.zeros((2, 3, 4, 5, 6)), 2)
    with pytest.raises(ValueError, match="finite"):
        extract_patches(np.full((2, 4), np.nan), 2)
    with pytest.raises(ValueError, match="kernel_size"):
        extract_patches(np.zeros((2, 4)), (2, 2))


def _signals(seed=0, n=16, L=8, c=2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, L)), rng.standard_normal((n, c)), rng


def test_conv_kernel_2_certified_and_nonconvex_never_beats_it():
    """1-D signals, kernel 2: the stacked patch matrix has rank 2, the patterns are exact and
    the convex solution is certified; PyTorch training of the same CNN from 20 random starts
    never ends below it."""
    torch = pytest.importorskip("torch")
    X, Y, rng = _signals()
    beta = 0.05
    res = fit_conv(X, Y, beta, kernel_size=2)
    assert res.status == "optimal" and res.certificate.is_global
    assert res.certificate.oracle_kind == "exact"
    np.testing.assert_allclose(res.network.objective(X, Y, beta), res.objective, rtol=1e-12)
    Xt, Yt = torch.tensor(X[:, None, :]), torch.tensor(Y)
    width = max(res.network.n_neurons, 8)
    for seed in range(20):
        torch.manual_seed(seed)
        model = TwoLayerReLUConv(np.zeros((2, width)), np.zeros((width, 2)),
                                 res.network.spec).to_torch()
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.5)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(400):
            opt.zero_grad()
            w = [p for p in model.parameters()]
            loss = 0.5 * ((model(Xt) - Yt) ** 2).sum() + 0.5 * beta * sum((q**2).sum() for q in w)
            loss.backward()
            opt.step()
        assert float(loss) >= res.objective * (1 - 1e-6)


def test_conv_oracle_is_the_plain_oracle_at_the_pulled_back_point():
    """Brute force: no random filter beats the oracle's value on the certificate's residual."""
    X, Y, rng = _signals(seed=1, n=10, L=6, c=2)
    res = fit_conv(X, Y, 0.5, kernel_size=2, max_iter=2)  # stop early: a nonzero residual
    P, _ = extract_patches(X, 2)
    Z = Y - res.network.predict(X)
    U = rng.standard_normal((2, 20000))
    U /= np.linalg.norm(U, axis=0)
    vals = np.linalg.norm(Z.T @ np.maximum(P @ U, 0).mean(axis=1), axis=0)
    om = res.history["omega"][-1]
    assert vals.max() <= om * (1 + 1e-9)
    np.testing.assert_allclose(vals.max(), om, rtol=1e-3)


def test_conv_images_sampled_patterns_flagged():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((12, 1, 5, 5))
    Y = np.eye(2)[rng.integers(0, 2, 12)]
    res = fit_conv(X, Y, 0.1, kernel_size=3, max_iter=10, random_state=0)
    # 3x3 patches: rank 9, patterns not enumerable by default? either way, honest
    c = res.certificate
    assert c.is_global == (c.oracle_kind == "exact" and c.rel_gap <= 1e-6)
    assert res.network.predict(X).shape == (12, 2)


def test_conv_estimators():
    from sklearn.utils.estimator_checks import check_estimator

    import convexrelu as cr

    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 8))
    y = (X[:, :4].sum(axis=1) > 0).astype(int)
    clf = cr.ConvexReLUConvClassifier(beta=0.05, kernel_size=2).fit(X, y)
    assert clf.certificate_.is_global and clf.predict(X).shape == (20,)
    assert clf.score(X, y) > 0.6
    reg = cr.ConvexReLUConvRegressor(beta=0.05, input_shape=(2, 4), kernel_size=2, oracle="heuristic",
                                     max_iter=20, random_state=0).fit(X, X[:, 0])
    assert reg.certificate_.oracle_kind == "heuristic" and not reg.certificate_.is_global
    assert reg.predict(X).shape == (20,)
    with pytest.raises(ValueError, match="input_shape"):
        cr.ConvexReLUConvRegressor(input_shape=(3, 3)).fit(X, X[:, 0])
    check_estimator(cr.ConvexReLUConvRegressor(beta=0.1, max_iter=3))


def test_conv_is_the_cg_solver_on_the_patch_feature_map():
    """fit_conv runs ConditionalGradient with ConvFeatures: the atoms are B (M U)_+, the
    network of a state predicts H V, and the result is cg's (name, history, time breakdown)."""
    from convexrelu.conv import ConvFeatures

    X, Y, rng = _signals(seed=4, n=12, L=7, c=2)
    P, spec = extract_patches(X, 2)
    f = ConvFeatures(P, spec)
    assert f.rows.shape == (12 * 6, 2) and not f.local_moves
    U = rng.standard_normal((2, 4))
    U /= np.linalg.norm(U, axis=0)
    V = rng.standard_normal((4, 2))
    net = f.network(U, V)
    np.testing.assert_allclose(f.predict(net), f.atoms(U) @ V, atol=1e-12)
    np.testing.assert_allclose(f.predict(net), net.predict(X), atol=1e-12)
    G = rng.standard_normal((12, 2))  # <G, B H> = <B^T G, H> on the patch rows
    H = np.maximum(f.rows @ U, 0.0)
    np.testing.assert_allclose(G.T @ f.atoms(U), f.pull_back(G).T @ H, atol=1e-12)
    res = fit_conv(X, Y, 0.1, kernel_size=2)
    assert res.solver == "cg-conv" and res.status == "optimal"
    assert isinstance(res.network, TwoLayerReLUConv)
    tb = res.info["time_breakdown"]
    assert tb["merge"] == 0.0 and tb["refine"] == 0.0 and tb["oracle"] > 0 and tb["master"] > 0
