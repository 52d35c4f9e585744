"""General convex losses (App. A.6): Fenchel-Young, gradients, domains, certificates."""

import numpy as np
import pytest
from scipy.optimize import check_grad

import convexrelu as cr
from convexrelu.losses import (LOSSES as REGISTRY, AbsoluteLoss, HuberLoss, LogisticLoss,
                               MulticlassHinge, SoftmaxCrossEntropy, SquaredLoss, cvxpy_loss,
                               get_loss)

LOSSES = [SquaredLoss(), SoftmaxCrossEntropy(), LogisticLoss(), MulticlassHinge(), HuberLoss(0.7),
          AbsoluteLoss()]


def _targets(loss, rng, n=7, c=3):
    if loss.name == "logistic":
        return loss.prepare_targets(rng.integers(0, 2, n))
    if loss.name in ("cross_entropy", "multiclass_hinge"):
        return loss.prepare_targets(rng.integers(0, c, n))
    return loss.prepare_targets(rng.standard_normal((n, c)))


def _domain_point(loss, Y, rng):
    """A random point in the conjugate's domain: a convex combination of subgradients."""
    G = 0
    ws = rng.dirichlet(np.ones(4))
    for w in ws:
        G = G + w * loss.gradient(3 * rng.standard_normal(Y.shape), Y)
    return G


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
def test_fenchel_young(loss):
    rng = np.random.default_rng(0)
    for _ in range(20):
        Y = _targets(loss, rng)
        F = 2 * rng.standard_normal(Y.shape)
        G = _domain_point(loss, Y, rng)
        assert np.isfinite(loss.conjugate(G, Y))
        assert loss.value(F, Y) + loss.conjugate(G, Y) >= np.vdot(F, G) - 1e-9
        # equality at a (sub)gradient
        Gf = loss.gradient(F, Y)
        np.testing.assert_allclose(loss.value(F, Y) + loss.conjugate(Gf, Y), np.vdot(F, Gf),
                                   rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("loss", [l for l in LOSSES if np.isfinite(l.smoothness)], ids=lambda l: l.name)
def test_gradients(loss):
    rng = np.random.default_rng(1)
    Y = _targets(loss, rng)
    shape = Y.shape
    err = check_grad(lambda f: loss.value(f.reshape(shape), Y),
                     lambda f: loss.gradient(f.reshape(shape), Y).ravel(), rng.standard_normal(Y.size))
    assert err < 1e-5


@pytest.mark.parametrize("loss", LOSSES[1:], ids=lambda l: l.name)
def test_conjugate_is_infinite_outside_its_domain(loss):
    rng = np.random.default_rng(2)
    Y = _targets(loss, rng)
    G = loss.gradient(rng.standard_normal(Y.shape), Y)
    assert np.isinf(loss.conjugate(G + 5.0, Y))


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
def test_cvxpy_form_equals_the_numpy_loss(loss):
    """``cvxpy_value`` is the same function as ``value``: a convex (DCP) expression of the
    prediction variable whose value at a numeric ``F`` is ``loss.value(F, Y)`` (``F`` large
    enough to reach both pieces of Huber and every max of the hinge)."""
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(1)
    for _ in range(5):
        Y = _targets(loss, rng)
        Fv = cp.Variable(Y.shape)
        expr = loss.cvxpy_value(Fv, Y)
        assert expr.is_dcp() and expr.is_convex() and expr.size == 1
        F = 2 * rng.standard_normal(Y.shape)
        Fv.value = F
        assert float(expr.value) == pytest.approx(loss.value(F, Y), rel=1e-10, abs=1e-12)
        # the compatibility wrapper is the method
        assert float(cvxpy_loss(loss, Fv, Y).value) == float(expr.value)


def test_every_registered_loss_owns_its_cvxpy_and_torch_forms():
    for name, cls in REGISTRY.items():
        assert callable(getattr(cls, "cvxpy_value", None)), name
        assert callable(getattr(cls, "torch_value", None)), name


def test_target_preparation_and_errors():
    np.testing.assert_array_equal(LogisticLoss().prepare_targets([0, 1, 1]), [[-1], [1], [1]])
    np.testing.assert_array_equal(LogisticLoss().prepare_targets([-1, 1]), [[-1], [1]])
    with pytest.raises(ValueError, match="binary"):
        LogisticLoss().prepare_targets([0, 1, 2])
    np.testing.assert_array_equal(SoftmaxCrossEntropy().prepare_targets(["a", "b", "a"]),
                                  [[1, 0], [0, 1], [1, 0]])
    with pytest.raises(ValueError, match="simplex"):
        SoftmaxCrossEntropy().prepare_targets(np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="delta"):
        HuberLoss(0)
    with pytest.raises(ValueError, match="loss must be one of"):
        get_loss("hinge2")
    assert get_loss("huber") == HuberLoss(1.0) and HuberLoss(2.0) != HuberLoss(1.0)


@pytest.mark.parametrize("loss", ["cross_entropy", "multiclass_hinge", "huber", "absolute"])
def test_certificates_with_general_losses_are_valid_bounds(loss):
    """Weak duality: every certificate's dual value is below every network's objective."""
    from convexrelu.datasets import spiral

    X, Y, labels = spiral(n_per_class=8)
    targets = labels if loss in ("cross_entropy", "multiclass_hinge") else Y
    rng = np.random.default_rng(3)
    nets = [cr.TwoLayerReLU(rng.standard_normal((2, 10)), rng.standard_normal((10, 3)))
            for _ in range(5)] + [cr.fit(X, Y, 0.05).network]
    certs = [cr.certify(n, X, targets, 0.05, loss=loss) for n in nets]
    best_primal = min(c.primal for c in certs)
    for c in certs:
        assert c.oracle_kind == "exact" and np.isfinite(c.dual)
        assert c.dual <= best_primal * (1 + 1e-12)
        assert c.loss == loss
