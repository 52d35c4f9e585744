"""One solver contract: shared options validated once, compatibility declared once."""

import numpy as np
import pytest

import convexrelu as cr
from convexrelu.datasets import planted
from convexrelu.losses import LOSSES, get_loss
from convexrelu.solvers import COMMON_OPTIONS, SOLVER_CLASSES, Solver

BAD = {
    "tol": [-1.0, float("nan"), "small"],
    "max_iter": [0, -3, 2.5, True],
    "time_limit": [0, -1.0, float("inf"), "soon"],
    "verbose": [-1, 1.5, "loud"],
    "callback": [3, "print"],
    "random_state": [-1, 1.5, "seed"],
}


def _make(cls, **kw):
    return cls(**kw)


@pytest.mark.parametrize("name", sorted(SOLVER_CLASSES))
def test_every_solver_takes_the_common_options_with_one_meaning(name):
    cls = SOLVER_CLASSES[name]
    assert issubclass(cls, Solver) and cls.name == name
    s = _make(cls)
    for opt in COMMON_OPTIONS:
        assert hasattr(s, opt), (name, opt)
    assert s.max_iter == cls.default_max_iter
    assert s.tol == 1e-6 and s.time_limit is None and s.verbose == 0
    for opt, values in BAD.items():
        if opt == "max_iter" and cls.default_max_iter is None:
            continue
        for v in values:
            with pytest.raises(ValueError, match=opt):
                _make(cls, **{opt: v})
    if cls.default_max_iter is not None:
        assert _make(cls, max_iter=7).max_iter == 7
    else:
        with pytest.raises(ValueError, match="no iteration limit"):
            _make(cls, max_iter=7)
    assert _make(cls, time_limit=2).time_limit == 2.0
    assert _make(cls, random_state=np.random.default_rng(0)).random_state is not None


def test_old_names_of_max_iter_are_the_same_setting():
    from convexrelu.solvers import SGD, CopositiveFO

    assert SGD(max_epochs=12).max_iter == 12 and SGD(max_iter=12).max_epochs == 12
    assert CopositiveFO(max_outer=4).max_iter == 4 and CopositiveFO(max_iter=4).max_outer == 4
    with pytest.raises(ValueError, match="another name for max_iter"):
        SGD(max_epochs=3, max_iter=4)
    with pytest.raises(ValueError, match="another name for max_iter"):
        CopositiveFO(max_outer=3, max_iter=4)


def _expected_support(cls, loss):
    decl = cls.losses
    if decl == "any":
        return True
    if decl == "smooth":
        return bool(np.isfinite(loss.smoothness))
    if decl in ("cvxpy", "torch"):
        return hasattr(loss, f"{decl}_value")
    return loss.name in decl


@pytest.mark.parametrize("name", sorted(SOLVER_CLASSES))
def test_the_declaration_alone_decides_loss_support_and_fit_follows_it(name):
    cls = SOLVER_CLASSES[name]
    s = cls()
    X, Y, _ = planted(n=12, d=2, c=1, seed=0)
    labels = (Y[:, 0] > np.median(Y[:, 0])).astype(int)
    for lname in LOSSES:
        loss = get_loss(lname)
        ok = _expected_support(cls, loss)
        assert (s.unsupported(loss) is None) == ok, (name, lname)
        if not ok:
            targets = labels if lname in ("cross_entropy", "logistic", "multiclass_hinge") else Y
            with pytest.raises(ValueError, match=f"solver='{name}'"):
                cr.fit(X, targets, 0.1, solver=name, loss=lname)
            with pytest.raises(ValueError, match=f"solver='{name}'"):
                s.solve(X, targets, 0.1, loss=lname)


def test_a_loss_is_refused_before_the_data_are_looked_at():
    # the data are invalid too; the solver's refusal comes first and names the solver
    with pytest.raises(ValueError, match="solver='copositive'"):
        cr.fit(np.full((3, 2), np.nan), np.ones(3), 0.1, solver="copositive", loss="huber")


def test_solve_accepts_a_problem_or_arrays_with_the_same_result():
    from convexrelu.problem import Problem
    from convexrelu.solvers import ConditionalGradient

    X, Y, _ = planted(n=20, d=2, c=2, seed=3)
    a = ConditionalGradient().solve(X, Y, 1e-2)
    b = ConditionalGradient().solve(Problem(X, Y), beta=1e-2, oracle="exact")
    assert a.objective == pytest.approx(b.objective, rel=1e-9)
    with pytest.raises(ValueError, match="warm_start must be a TwoLayerReLU"):
        ConditionalGradient().solve(X, Y, 1e-2, init="net")
    with pytest.raises(ValueError, match="beta"):
        ConditionalGradient().solve(X, Y, -1.0)


def test_random_state_of_fit_must_agree_with_the_solver_object():
    from convexrelu.solvers import SGD

    X, Y, _ = planted(n=10, d=2, c=1, seed=0)
    with pytest.raises(ValueError, match="random_state"):
        cr.fit(X, Y, 0.1, solver=SGD(5, random_state=1, max_iter=3), random_state=2)


def test_fit_passes_random_state_to_a_solver_named_by_string():
    X, Y, _ = planted(n=10, d=2, c=1, seed=0)
    a = cr.fit(X, Y, 0.1, solver="sgd", max_iter=30, random_state=4)
    b = cr.fit(X, Y, 0.1, solver="sgd", max_iter=30, random_state=4)
    assert a.objective == b.objective


def test_lambda_max_at_any_d_says_what_it_is():
    from sklearn.datasets import load_iris

    X = load_iris().data
    X = (X - X.mean(0)) / X.std(0)
    Y = np.eye(3)[load_iris().target]
    # rank 4, n = 150: the exact oracle is not affordable, branch and bound closes
    lam = cr.lambda_max(X, Y)
    assert lam.kind == "exact" and 0 < float(lam) <= lam.upper_bound
    est = cr.lambda_max(X, Y, oracle="heuristic")  # a named lower estimate
    assert est.kind == "estimate" and float(est) <= float(lam) * (1 + 1e-9)
    zero = cr.TwoLayerReLU.zeros(4, 3)
    # above the proven upper bound the zero network is certified optimal by the spectral bound
    assert cr.certify(zero, X, Y, 1.001 * est.upper_bound, oracle="heuristic").is_global
    # and just above lambda_max by branch and bound, just below it not
    assert cr.certify(zero, X, Y, 1.001 * lam.upper_bound, oracle="bnb").is_global
    assert not cr.certify(zero, X, Y, 0.99 * float(lam), oracle="bnb").is_global
    exact = cr.lambda_max(X[:, :2], Y)
    assert exact.kind == "exact" and float(exact) == exact.upper_bound
    assert "kind='exact'" in repr(exact)


def test_fit_from_any_network_never_ends_above_it():
    X, Y, _ = planted(n=30, d=4, c=2, seed=1)
    rng = np.random.default_rng(0)
    start = cr.TwoLayerReLU(rng.standard_normal((4, 7)), rng.standard_normal((7, 2)))
    beta = 0.05 * float(cr.lambda_max(X, Y))
    p0 = start.objective(X, Y, beta)
    for kw in (dict(init=start), dict(warm_start=start)):
        res = cr.fit(X, Y, beta, max_iter=2, **kw)
        assert res.objective <= p0
    with pytest.raises(ValueError, match="init or warm_start"):
        cr.fit(X, Y, beta, init=start, warm_start=start)


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["cg", "sgd"])
def test_time_limit_is_wall_time_and_holds_within_iterations(solver):
    """time_limit counts from the call (set-up included) and holds inside an iteration:
    overrun at most 5 % or 1 s (here with 1 s of slack for a loaded machine)."""
    import time

    X, Y, _ = planted(n=20000, d=30, c=10, seed=0)
    beta = 0.05 * float(cr.lambda_max(X, Y))
    t0 = time.perf_counter()
    res = cr.fit(X, Y, beta, solver=solver, time_limit=8.0, random_state=0)
    elapsed = time.perf_counter() - t0
    assert res.status in ("time_limit", "estimate_converged", "optimal", "stalled")
    assert elapsed <= 8.0 + max(0.05 * 8.0, 1.0) + 1.0, elapsed
    assert np.isfinite(res.certificate.dual)  # a proven lower bound, whatever the oracle


@pytest.mark.slow
@pytest.mark.parametrize("solver,n", [("frank-wolfe", 3000), ("cutting-plane", 1000),
                                      ("copositive-fo", 200), ("copositive", 150),
                                      ("copositive", 12)])
def test_time_limit_holds_for_every_solver(solver, n):
    """The other solvers on problems they cannot finish in 3 s (measured before the fix:
    copositive-fo ran past 10 min, copositive past 1 min, cutting-plane 33 s): each
    returns within the limit plus max(5 %, 1 s) (and 1 s of slack for a loaded machine),
    with a network and a proven lower bound."""
    import time

    X, Y, _ = planted(n=n, d=3, c=5, seed=0)
    beta = 0.01 * float(cr.lambda_max(X, Y))
    t0 = time.perf_counter()
    res = cr.fit(X, Y, beta, solver=solver, time_limit=3.0)
    elapsed = time.perf_counter() - t0
    assert elapsed <= 3.0 + 1.0 + 1.0, elapsed
    assert res.status in ("time_limit", "optimal", "estimate_converged", "recovery_gap",
                          "inaccurate")
    assert np.isfinite(res.objective) and np.isfinite(res.certificate.dual)
