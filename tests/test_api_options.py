"""fit never drops an option: with a solver object, options given to fit must agree."""

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.datasets import planted
from convexrelu.solvers.cg import ConditionalGradient
from convexrelu.solvers.frank_wolfe import FrankWolfe


@pytest.fixture(scope="module")
def data():
    X, Y, _ = planted(seed=0)
    return X, Y


@pytest.mark.parametrize("kw, what", [
    (dict(tol=1e-1), "tol=0.1"),
    (dict(max_iter=50), "max_iter=50"),
    (dict(time_limit=5.0), "time_limit=5.0"),
    (dict(verbose=1), "verbose=1"),
])
def test_conflicting_option_with_a_solver_object_is_refused(data, kw, what):
    X, Y = data
    with pytest.raises(ValueError, match=what.replace(".", r"\.") + r"\) conflicts"):
        cr.fit(X, Y, 1e-2, solver=ConditionalGradient(max_iter=3), **kw)


def test_agreeing_or_absent_options_run_with_the_objects_settings(data):
    X, Y = data
    with pytest.warns(Warning):
        r = cr.fit(X, Y, 1e-2, solver=ConditionalGradient(max_iter=2), tol=1e-6, max_iter=2)
    assert r.n_iter == 2 and r.status == "max_iter"
    r = cr.fit(X, Y, 1e-2, solver=ConditionalGradient(tol=1e-5))
    assert r.status == "optimal" and r.certificate.tol == 1e-5


def test_an_object_outside_the_solver_contract_is_refused(data):
    X, Y = data

    class Bare:
        name = "bare"

        def solve(self, *a, **k):  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(ValueError, match=r"convexrelu\.solvers\.Solver"):
        cr.fit(X, Y, 1e-2, solver=Bare(), tol=1e-3)


def test_an_option_a_solver_has_no_use_for_is_refused(data):
    X, Y = data
    from convexrelu.solvers import CopositiveRelaxation

    with pytest.raises(ValueError, match="no iteration limit"):
        cr.fit(X, Y, 1e-2, solver="copositive", max_iter=5)
    with pytest.raises(ValueError, match="no iteration limit"):
        CopositiveRelaxation(max_iter=5)


def test_named_solver_defaults_unchanged(data):
    X, Y = data
    r = cr.fit(X, Y, 1e-2)
    assert r.certificate.tol == 1e-6 and r.status == "optimal"
    with pytest.warns(Warning):
        fw = cr.fit(X, Y, 1e-2, solver=FrankWolfe(max_iter=5))
    assert fw.status == "max_iter"
