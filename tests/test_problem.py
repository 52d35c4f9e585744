"""The problem object: data prepared once, shared by the oracles, solvers and certificates."""

import collections
import traceback

import numpy as np
import pytest

import convexrelu as cr
from convexrelu import patterns as P
from convexrelu.datasets import planted
from convexrelu.oracles import make_oracle
from convexrelu.problem import Problem, as_problem


class _Stop(Exception):
    pass


def _count_factorisations(monkeypatch, n, run):
    """SVDs of arrays with ``n`` rows and fingerprints computed while ``run()`` runs."""
    calls = collections.Counter()
    svd = np.linalg.svd

    def counted_svd(a, *args, **kw):
        if np.ndim(a) == 2 and a.shape[0] == n:
            calls["svd"] += 1
            calls["where: " + traceback.extract_stack()[-2].name] += 1
        return svd(a, *args, **kw)

    fp = P.fingerprint

    def counted_fp(A):
        calls["hash"] += 1
        return fp(A)

    monkeypatch.setattr(np.linalg, "svd", counted_svd)
    import convexrelu.problem as prob_mod

    monkeypatch.setattr(prob_mod, "fingerprint", counted_fp)
    try:
        run()
    except _Stop:
        pass
    return calls


@pytest.mark.parametrize("d", [2, 3])
def test_fit_factorises_X_once_before_the_first_iteration(monkeypatch, d):
    X, Y, _ = planted(n=40, d=d, c=2, seed=1)

    def stop(_):
        raise _Stop

    calls = _count_factorisations(monkeypatch, 40, lambda: cr.fit(X, Y, 1e-2, callback=stop))
    assert calls["svd"] == 1, calls
    assert calls["hash"] == 1, calls


def test_problem_derives_each_part_once_and_shares_it():
    X, Y, _ = planted(n=30, d=3, c=2, seed=2)
    prob = Problem(X, Y)
    assert (prob.n, prob.d, prob.c) == (30, 3, 2)
    assert prob.reduction is prob.reduction and prob.rank == 3
    assert prob.patterns() is prob.patterns()  # enumerated once
    orc = make_oracle(prob)
    assert orc.problem is prob and orc.patterns is prob.patterns()
    assert orc.fingerprint == prob.fingerprint == P.fingerprint(X)
    # the same X in a new object: the same fingerprint, so an oracle carries over
    assert make_oracle(Problem(X.copy(), Y), orc) is orc
    other = Problem(X + 1.0, Y)
    with pytest.raises(ValueError, match="different X"):
        make_oracle(other, orc)


def test_problem_rank_and_patterns_match_the_plain_functions():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((25, 2)) @ rng.standard_normal((2, 4))  # rank 2 in d = 4
    prob = Problem(X)
    basis, r = P.rank_reduce(X)
    assert r == prob.rank == 2 and np.allclose(basis, prob.basis)
    ref = P.SignPatterns.enumerate(X)
    got = prob.patterns()
    assert {p.tobytes() for p in ref.patterns} == {p.tobytes() for p in got.patterns}


def test_full_rank_enumeration_reuses_the_problem_svd(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 3))
    prob = Problem(X)
    prob.reduction  # the one SVD
    calls = _count_factorisations(monkeypatch, 20, lambda: prob.patterns())
    assert calls["svd"] == 0, calls
    ref = P.SignPatterns.enumerate(X)
    assert {p.tobytes() for p in ref.patterns} == {p.tobytes() for p in prob.patterns().patterns}


def test_rows_of_very_different_sizes_keep_their_direction():
    # a direction carried only by a tiny row is a genuine direction of the arrangement
    X = np.array([[1e8, 0.0, 0.0], [0.0, 1e8, 0.0], [0.0, 0.0, 1e-9], [1e8, 1e8, 0.0]])
    assert Problem(X).rank == 3


def test_problem_validates_and_prepares_targets():
    X = np.random.default_rng(0).standard_normal((6, 2))
    with pytest.raises(ValueError, match="same number of rows"):
        Problem(X, np.ones(5))
    prob = Problem(X, np.array([0, 1, 2, 0, 1, 2]), "cross_entropy")
    assert prob.Y.shape == (6, 3) and np.allclose(prob.Y.sum(1), 1)
    # a feature map whose rows are not one per sample (the convolutional patch matrix)
    conv = Problem(np.ones((12, 2)), np.ones((4, 1)), samples=4)
    assert conv.n == 12 and conv.Y.shape == (4, 1)
    with pytest.raises(ValueError, match="same number of rows"):
        Problem(np.ones((12, 2)), np.ones((5, 1)), samples=4)


def test_problem_is_laid_out_once_whatever_the_callers_memory_order():
    X, Y, _ = planted(n=20, d=2, c=2, seed=4)
    a = Problem(X, Y)
    b = Problem(np.asfortranarray(X), Y)
    assert b.X.flags.c_contiguous and a.fingerprint == b.fingerprint


def test_as_problem_refuses_mixed_arguments():
    X, Y, _ = planted(n=10, d=2, c=1, seed=0)
    prob = Problem(X, Y)
    assert as_problem(prob) is prob
    with pytest.raises(ValueError, match="either a Problem or X and Y"):
        as_problem(prob, Y)
    with pytest.raises(ValueError, match="loss='squared'"):
        as_problem(prob, loss="huber")


def test_with_targets_shares_the_data_parts():
    X, Y, _ = planted(n=15, d=3, c=2, seed=5)
    prob = Problem(X, Y)
    other = prob.with_targets(-Y)
    assert other.reduction is prob.reduction and other.fingerprint == prob.fingerprint
    assert np.array_equal(other.Y, -Y) and np.array_equal(prob.Y, Y)


def test_fit_and_certify_agree_through_the_problem():
    X, Y, _ = planted(n=25, d=2, c=2, seed=6)
    res = cr.fit(X, Y, 1e-2)
    prob = Problem(X, Y)
    cert = cr.certify(res.network, X, Y, 1e-2)
    again = cr.solvers.ConditionalGradient().solve(prob, beta=1e-2)
    assert res.status == again.status == "optimal" and cert.is_global
    assert again.objective == pytest.approx(res.objective, rel=1e-8)
