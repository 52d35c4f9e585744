import numpy as np
import pytest

import convexrelu as cr

torch = pytest.importorskip("torch", reason="the optional torch extra is not installed")


def test_round_trip_and_same_function():
    rng = np.random.default_rng(0)
    net = cr.TwoLayerReLU(rng.standard_normal((3, 5)), rng.standard_normal((5, 2)))
    model = net.to_torch()
    X = rng.standard_normal((7, 3))
    out = model(torch.tensor(X)).detach().numpy()
    np.testing.assert_allclose(out, net.predict(X), rtol=1e-14, atol=1e-14)
    assert cr.TwoLayerReLU.from_torch(model) == net


def test_from_torch_refuses_biases_and_other_architectures():
    with pytest.raises(ValueError, match="bias"):
        cr.TwoLayerReLU.from_torch(torch.nn.Sequential(
            torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1, bias=False)))
    with pytest.raises(ValueError, match="Sequential"):
        cr.TwoLayerReLU.from_torch(torch.nn.Sequential(
            torch.nn.Linear(2, 3, bias=False), torch.nn.Tanh(), torch.nn.Linear(3, 1, bias=False)))


def test_certify_an_adam_trained_network():
    """The use case: how far from the global optimum is a network trained by Adam?"""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((25, 2))
    teacher = cr.TwoLayerReLU(rng.standard_normal((2, 20)), rng.standard_normal((20, 3)))
    Y = teacher.predict(X)
    beta = 1e-2
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 5, bias=False), torch.nn.ReLU(),
                                torch.nn.Linear(5, 3, bias=False)).double()
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        loss = 0.5 * ((model(Xt) - Yt) ** 2).sum() + beta / 2 * sum((p**2).sum() for p in model.parameters())
        loss.backward()
        opt.step()
    net = cr.TwoLayerReLU.from_torch(model)
    np.testing.assert_allclose(net.objective(X, Y, beta), float(loss.detach()), rtol=0.05)
    cert = cr.certify(net, X, Y, beta)
    assert cert.is_rigorous
    # weak duality and an honest verdict: 5 neurons and 300 Adam steps are not optimal here
    assert cert.dual <= cert.primal
    assert not cert.is_global
    assert cert.gap > 0
