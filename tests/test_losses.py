"""Tests of the loss objects: value, gradient, conjugate (Fenchel–Young), registry."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import check_grad, minimize

from convexrelu import Loss, SquaredLoss, get_loss
from convexrelu.losses import LOSSES, cvxpy_loss, torch_loss

LOSS = SquaredLoss()


def test_value_by_hand():
    F = np.array([[1.0, 2.0], [3.0, -1.0]])
    Y = np.array([[0.0, 2.0], [1.0, 1.0]])
    # residuals 1, 0, 2, -2 -> 1/2 (1 + 0 + 4 + 4) = 4.5
    assert LOSS.value(F, Y) == 4.5
    assert LOSS.value(Y, Y) == 0.0
    assert isinstance(LOSS.value(F, Y), float)
    # lists and 1-D arrays are accepted
    assert LOSS.value([1.0, 2.0], [0.0, 0.0]) == 2.5


def test_gradient_by_hand():
    F = np.array([[1.0, 2.0], [3.0, -1.0]])
    Y = np.array([[0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_array_equal(LOSS.gradient(F, Y), F - Y)
    assert LOSS.gradient(F, Y).shape == (2, 2)


@pytest.mark.parametrize("seed", range(5))
def test_gradient_check_grad(seed):
    g = np.random.default_rng(seed)
    n, c = 7, 3
    Y = g.standard_normal((n, c))
    F0 = g.standard_normal(n * c) * 3

    def fun(f):
        return LOSS.value(f.reshape(n, c), Y)

    def grad(f):
        return LOSS.gradient(f.reshape(n, c), Y).ravel()

    err = check_grad(fun, grad, F0)
    assert err < 1e-5 * (1 + np.linalg.norm(grad(F0)))
    # a wrong gradient would be caught by the same check
    assert check_grad(fun, lambda f: 2 * grad(f), F0) > 1e-2


def test_smoothness_is_the_gradient_lipschitz_constant():
    g = np.random.default_rng(1)
    Y = g.standard_normal((5, 2))
    F1, F2 = g.standard_normal((5, 2)), g.standard_normal((5, 2))
    ratio = np.linalg.norm(LOSS.gradient(F1, Y) - LOSS.gradient(F2, Y)) / np.linalg.norm(F1 - F2)
    assert ratio == pytest.approx(LOSS.smoothness, rel=1e-12)
    assert LOSS.smoothness == 1.0
    assert LOSS.name == "squared"


def test_conjugate_closed_form_and_dual_objective():
    g = np.random.default_rng(2)
    G = g.standard_normal((4, 3))
    Y = g.standard_normal((4, 3))
    assert LOSS.conjugate(G, Y) == pytest.approx(0.5 * np.sum(G ** 2) + np.sum(G * Y), rel=1e-14)
    # with Z = -G the dual objective -L*(-Z) is the paper's -1/2||Z - Y||^2 + 1/2||Y||^2 (eq. 11)
    Z = -G
    assert -LOSS.conjugate(-Z, Y) == pytest.approx(
        -0.5 * np.sum((Z - Y) ** 2) + 0.5 * np.sum(Y ** 2), rel=1e-13)


def test_conjugate_is_the_supremum():
    """L*(G) = sup_F <G, F> - L(F), computed numerically."""
    g = np.random.default_rng(3)
    n, c = 4, 2
    G = g.standard_normal((n, c))
    Y = g.standard_normal((n, c))
    res = minimize(lambda f: -(np.vdot(G, f.reshape(n, c)) - LOSS.value(f.reshape(n, c), Y)),
                   np.zeros(n * c), method="BFGS", options={"gtol": 1e-10})
    assert -res.fun == pytest.approx(LOSS.conjugate(G, Y), rel=1e-8, abs=1e-10)


_mat = hnp.arrays(float, (3, 2), elements=st.floats(-1e3, 1e3, allow_subnormal=False))


@settings(max_examples=200, deadline=None)
@given(F=_mat, G=_mat, Y=_mat)
def test_fenchel_young_inequality(F, G, Y):
    lhs = LOSS.value(F, Y) + LOSS.conjugate(G, Y)
    rhs = float(np.vdot(F, G))
    scale = 1.0 + np.sum(F ** 2) + np.sum(G ** 2) + np.sum(Y ** 2)
    assert lhs >= rhs - 1e-12 * scale
    # for the squared loss the slack is exactly 1/2 ||F - Y - G||^2
    assert lhs - rhs == pytest.approx(0.5 * np.sum((F - Y - G) ** 2), abs=1e-10 * scale)


@settings(max_examples=200, deadline=None)
@given(F=_mat, Y=_mat)
def test_fenchel_young_equality_at_gradient(F, Y):
    G = LOSS.gradient(F, Y)
    lhs = LOSS.value(F, Y) + LOSS.conjugate(G, Y)
    rhs = float(np.vdot(F, G))
    scale = 1.0 + np.sum(F ** 2) + np.sum(Y ** 2)
    assert lhs == pytest.approx(rhs, abs=1e-12 * scale)


# --------------------------------------------------------------------------- registry
def test_get_loss_by_name_and_passthrough():
    loss = get_loss("squared")
    assert isinstance(loss, SquaredLoss)
    assert isinstance(loss, Loss)
    assert "squared" in LOSSES
    obj = SquaredLoss()
    assert get_loss(obj) is obj
    assert SquaredLoss() == SquaredLoss() and hash(SquaredLoss()) == hash(SquaredLoss())


def test_get_loss_accepts_custom_protocol_object():
    class Scaled:
        name = "scaled"
        smoothness = 2.0

        def value(self, F, Y):
            return float(np.sum((F - Y) ** 2))

        def gradient(self, F, Y):
            return 2 * (F - Y)

        def conjugate(self, G, Y):
            return float(np.sum(G ** 2) / 4 + np.sum(G * Y))

    obj = Scaled()
    assert get_loss(obj) is obj
    # the CVXPY and PyTorch forms are optional: a loss without one is refused by name,
    # saying which method it lacks, when a solver asks for it
    for wrapper, method in ((cvxpy_loss, "cvxpy_value"), (torch_loss, "torch_value")):
        with pytest.raises(ValueError, match=rf"loss 'scaled' \(Scaled\) has no .* form: "
                                             rf"it lacks a {method}\(F, Y\) method"):
            wrapper(obj, np.zeros((2, 1)), np.zeros((2, 1)))


@pytest.mark.parametrize("bad", ["hinge", "Squared", "", "squared "])
def test_get_loss_unknown_name(bad):
    with pytest.raises(ValueError, match=r"loss must be one of 'squared'.*got " + repr(bad)):
        get_loss(bad)


@pytest.mark.parametrize("bad", [None, 3, 1.5, object(), ["squared"]])
def test_get_loss_not_a_loss(bad):
    with pytest.raises(ValueError, match=r"loss must be one of"):
        get_loss(bad)
