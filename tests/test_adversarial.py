"""Adversarial property tests for the exact oracle and the certificate (issue 12, item 7).

Properties
----------
(a) ``omega(X, Z).value`` (exact oracle) is >= the value at every direction an
    independent reference tries (random unit ``u``, every ``+-x_i/|x_i|``, the
    perpendiculars of every row in rank 2, an independent enumeration of rays, faces and
    cells for rank <= 4, and projected ascent from the best of these), up to 1e-9
    relative; the ``u`` it returns attains ``attained <= value``; and ``value`` is not far
    above what is attained (1e-6 relative: a usefulness check, not soundness).
(b) ``certify`` of the zero network and of a network from non-convex restarts never has
    a (rigorous) ``dual`` above the objective of any network found by restarts, and never
    says ``is_global`` for a network that a restart beats by more than ``tol``.
(c) ``fit`` certified (``is_global``) is never beaten by restarts started from it (plus
    the best neuron along the reference maximiser of its residual) or from scratch.

The generators and references live in ``tests/adversarial.py`` (shared with
``convexrelu bench --suite certificate-sweep``). Hypothesis runs derandomized (the same
examples on every machine); the larger sweeps are marked ``slow``.
"""

import os
import re

import numpy as np
import pytest

import convexrelu as cr

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convexrelu.experiments import adversarial as adv  # noqa: E402

RTOL = 1e-9
#: A clear refusal (ambiguous numerical rank, too many patterns) is allowed; a wrong
#: answer is not.
REFUSAL = re.compile(r"rank|ambiguous|refuse|too many patterns|max_patterns", re.I)


#: ``ADVERSARIAL_NO_SHRINK=1`` skips shrinking (a quick list of what fails, and the time a
#: passing run takes); the default shrinks to the smallest failing example.
_PHASES = ([Phase.explicit, Phase.reuse, Phase.generate]
           if os.environ.get("ADVERSARIAL_NO_SHRINK") else list(Phase))


def _settings(n, **kw):
    kw.setdefault("phases", _PHASES)
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much], **kw)


def omega_scale(X, Z):
    r""":math:`\sum_i \|z_i\| \|x_i\|`, which bounds every term of :math:`Z^\top (Xu)_+`.

    Rounding in :math:`x_i^\top u` is at most about :math:`d\,\epsilon\,\|x_i\|`, so a
    value is computed to within :math:`d\,\epsilon` times this scale; ``1e-13 *`` it
    (about ``450 eps``) is the absolute slack of the comparisons. It is row-wise on
    purpose: an Omega of 1e-8 seen only through a 1e-8 column (mixed scales) is still
    checked, while a Z almost orthogonal to every ``(Xu)_+`` (Omega at rounding level) is
    not reported as a false claim.
    """
    return float(np.sum(np.linalg.norm(Z, axis=1) * np.linalg.norm(X, axis=1)))


def _refused(exc):
    return isinstance(exc, (ValueError, ArithmeticError)) and bool(REFUSAL.search(str(exc)))


def exact_omega(X, Z):
    """The library's exact oracle, or None when it refuses clearly."""
    try:
        res = cr.omega(X, Z, oracle="exact")
    except Exception as exc:  # noqa: BLE001 - refusals are allowed, anything else is not
        if _refused(exc):
            note(f"oracle refused: {exc}")
            return None
        raise
    assert res.kind == "exact" and res.pattern_scope == "exact"
    return res


def check_omega(X, Z, rng):
    """Property (a) on one problem; returns (exact value, reference value)."""
    res = exact_omega(X, Z)
    if res is None:
        return None, None
    ref, u_ref = adv.reference_omega(X, Z, rng)
    atol = 1e-13 * omega_scale(X, Z)
    attained = getattr(res, "attained", res.value)
    note(f"X={X.tolist()}\nZ={Z.tolist()}\nexact={res.value!r} (attained {attained!r}) at "
         f"u={res.u.tolist()}\nreference={ref!r} at u={u_ref.tolist()}")
    # the u returned attains `attained`, and `value` (the bound certificates use) is not
    # below it (it may exceed it by a rigorous margin)
    f_u = adv.f_value(X, Z, res.u)
    assert abs(f_u - attained) <= RTOL * attained + atol, (f_u, attained)
    assert res.value >= attained * (1 - 1e-12) - atol, (res.value, attained)
    # soundness: not below any value the reference attains
    assert res.value >= ref * (1 - RTOL) - atol, (
        f"exact oracle {res.value!r} < reference {ref!r} (relative underestimate "
        f"{(ref - res.value) / max(ref, 1e-300):.3g}) at u = {u_ref.tolist()}")
    # usefulness (not soundness): a bound far above every attained value certifies little
    gscale = float(np.linalg.norm(Z, 2) * np.linalg.norm(X, 2))
    assert res.value <= max(ref, attained) * (1 + 1e-6) + 1e-9 * gscale, (
        f"exact oracle {res.value!r} far above the reference {ref!r} and its own attained "
        f"value {attained!r}")
    return res.value, ref


# =========================================================================== harness sanity
@pytest.mark.parametrize("seed", range(4))
def test_reference_agrees_with_the_oracle_on_gaussian_data(seed):
    """Control: on generic data the reference reaches the exact value (it is strong) and
    only ever reports attained values (it is sound)."""
    rng = np.random.default_rng(seed)
    for n, d in [(15, 2), (12, 3), (30, 3)]:
        X = rng.standard_normal((n, d))
        Z = rng.standard_normal((n, 2))
        ref, u = adv.reference_omega(X, Z, rng)
        assert abs(adv.f_value(X, Z, u) - ref) <= 1e-14 * ref
        res = cr.omega(X, Z, oracle="exact")
        np.testing.assert_allclose(ref, res.value, rtol=1e-9)


def test_reference_matches_the_angle_grid_brute_force():
    from _brute import brute_omega_2d

    for kind, seed in [("grid2", 1), ("opposite", 2), ("circle", 3), ("duplicates", 4)]:
        X, Z = adv.make_problem(kind, seed, 12)
        if X.shape[1] != 2:
            continue
        ref, _ = adv.reference_omega(X, Z)
        brute = brute_omega_2d(X, Z, n_grid=20000)
        assert ref >= brute * (1 - 1e-9)


@pytest.mark.parametrize("name", sorted(adv.GENERATORS))
def test_generators_are_deterministic_and_small_rank(name):
    a, za = adv.make_problem(name, 7, 20)
    b, zb = adv.make_problem(name, 7, 20)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(za, zb)
    assert a.shape[0] == 20 and np.all(np.isfinite(a))
    assert adv.numerical_rank(a)[0] <= 3


def test_one_neuron_objective_is_the_objective_of_the_network_it_returns():
    c = adv.ISSUE_3PT
    f, W1, W2 = adv.one_neuron_objective(c["X"], c["Y"], c["beta"], c["u"])
    assert f == pytest.approx(adv.objective(c["X"], c["Y"], c["beta"], W1, W2), rel=1e-14)
    net = cr.TwoLayerReLU(W1, W2)
    assert f == pytest.approx(net.objective(c["X"], c["Y"], c["beta"]), rel=1e-12)
    assert f < 6.0  # the zero network's objective


# =========================================================================== fixed cases
@pytest.mark.parametrize("name", sorted(adv.FIXED_CASES))
def test_fixed_case_omega_is_exact(name):
    c = adv.FIXED_CASES[name]
    X, Y = c["X"], c["Y"]
    assert adv.f_value(X, Y, c["u"]) == pytest.approx(c["omega"], rel=1e-14)
    res = cr.omega(X, Y)
    assert res.value >= c["omega"] * (1 - RTOL)
    np.testing.assert_allclose(res.value, c["omega"], rtol=1e-9)


@pytest.mark.parametrize("name", sorted(adv.FIXED_CASES))
def test_fixed_case_zero_network_is_not_certified(name):
    c = adv.FIXED_CASES[name]
    X, Y, beta = c["X"], c["Y"], c["beta"]
    zero = cr.TwoLayerReLU.zeros(X.shape[1], Y.shape[1])
    cert = cr.certify(zero, X, Y, beta)
    better, _, _ = adv.one_neuron_objective(X, Y, beta, c["u"])
    assert better < cert.primal
    assert not cert.is_global
    assert cert.dual <= better * (1 + RTOL)


@pytest.mark.parametrize("name", sorted(adv.FIXED_CASES))
def test_fixed_case_fit_is_certified_at_the_true_optimum(name):
    c = adv.FIXED_CASES[name]
    X, Y, beta = c["X"], c["Y"], c["beta"]
    res = cr.fit(X, Y, beta)
    assert res.certificate.is_global
    rng = np.random.default_rng(0)
    best = min(f for f, _, _ in adv.restarts(X, Y, beta, rng, n_random=3,
                                              start=(res.network.W1, res.network.W2)))
    assert res.certificate.dual <= best * (1 + RTOL)
    assert res.objective <= best * (1 + res.certificate.tol + RTOL)
    assert res.objective < 0.5 * float(np.sum(Y * Y))  # not the zero network


def test_spike_free_oracle_refuses_or_is_exact_on_identical_small_rows():
    """Eleven identical small rows beside one large row (the issue's spike-free case)."""
    X = np.vstack([[10.0, 0.0, 0.0], np.tile([[0.0, 1e-3, 1e-3]], (11, 1))])
    Z = np.vstack([[0.0], np.ones((11, 1))])
    ref, _ = adv.reference_omega(X, Z)
    try:
        res = cr.omega(X, Z, oracle="spike-free")
    except ValueError:
        return
    assert res.value >= ref * (1 - RTOL)


# =========================================================================== property (a)
@given(adv.problems(max_n=40))
@_settings(60)
def test_exact_oracle_is_at_least_every_sampled_direction(p):
    note(f"kind={p['kind']} seed={p['seed']} n={p['n']} c={p['c']} zkind={p['zkind']}")
    check_omega(p["X"], p["Z"], np.random.default_rng(0))


@given(adv.int_problems(max_n=8))
@_settings(200)
def test_exact_oracle_is_at_least_every_sampled_direction_small_integers(p):
    check_omega(p["X"], p["Z"], np.random.default_rng(0))


@pytest.mark.parametrize("kind", ["near_parallel", "mixed_scale", "lowrank"])
@given(data=st.data())
@_settings(15)
def test_exact_oracle_on_numerically_hard_generators(kind, data):
    p = data.draw(adv.problems(kinds=[kind], max_n=30))
    note(f"kind={p['kind']} seed={p['seed']} n={p['n']} c={p['c']} zkind={p['zkind']}")
    check_omega(p["X"], p["Z"], np.random.default_rng(0))


# =========================================================================== property (b)
BETA_FRACTIONS = [0.05, 0.2, 0.5, 0.8, 0.9, 0.95, 0.99]


def _beta(X, Y, frac):
    om, _ = adv.reference_omega(X, Y)
    return frac * om if om > 0 else None


def _certify_or_refusal(net, X, Y, beta):
    try:
        return cr.certify(net, X, Y, beta)
    except Exception as exc:  # noqa: BLE001
        if _refused(exc):
            note(f"certify refused: {exc}")
            return None
        raise


def check_certificates(X, Y, beta, rng, n_random=1):
    """Property (b) on one problem."""
    nets = adv.restarts(X, Y, beta, rng, n_random=n_random)
    best = min(f for f, _, _ in nets)
    _, W1, W2 = min(nets, key=lambda t: t[0])
    zero = cr.TwoLayerReLU.zeros(X.shape[1], Y.shape[1])
    for label, net in [("zero", zero), ("restart", cr.TwoLayerReLU(W1, W2))]:
        cert = _certify_or_refusal(net, X, Y, beta)
        if cert is None:
            continue
        note(f"{label}: primal={cert.primal!r} dual={cert.dual!r} is_global={cert.is_global} "
             f"omega={cert.omega!r} beta={beta!r} best restart={best!r}")
        _assert_not_beaten(label, cert, best)


def _assert_not_beaten(label, cert, best):
    """A proven dual never exceeds a restart's objective; a global certificate's network
    is never beaten by one (beyond its own tolerance)."""
    if cert.is_rigorous or cert.is_global:
        assert cert.dual <= best * (1 + RTOL), (
            f"{label}: certified dual {cert.dual!r} above a restart's objective {best!r}")
    if cert.is_global:
        assert cert.primal <= best * (1 + cert.tol + RTOL), (
            f"{label}: certified global at {cert.primal!r} but a restart reached {best!r}")


@given(adv.problems(max_n=20, max_c=2, zkinds=("teacher", "int", "gauss", "sign")),
       st.sampled_from(BETA_FRACTIONS))
@_settings(30)
def test_certified_dual_never_above_a_restart(p, frac):
    X, Y = p["X"], p["Z"]
    note(f"kind={p['kind']} seed={p['seed']} n={p['n']} c={p['c']} zkind={p['zkind']} "
         f"frac={frac}")
    beta = _beta(X, Y, frac)
    if beta is None:
        return
    check_certificates(X, Y, beta, np.random.default_rng(p["seed"] % 1000))


@given(adv.int_problems(max_n=6, max_c=1), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
@_settings(30)
def test_certified_dual_never_above_a_restart_small_integers(p, frac):
    X, Y = p["X"], p["Z"]
    beta = _beta(X, Y, frac)
    if beta is None:
        return
    check_certificates(X, Y, beta, np.random.default_rng(0))


# =========================================================================== property (c)
def check_fit(X, Y, beta, rng, n_random=1):
    try:
        res = cr.fit(X, Y, beta)
    except Exception as exc:  # noqa: BLE001
        if _refused(exc):
            note(f"fit refused: {exc}")
            return
        raise
    cert = res.certificate
    note(f"fit: status={res.status} objective={res.objective!r} dual={cert.dual!r} "
         f"is_global={cert.is_global}")
    if res.status == "optimal":
        assert cert.is_global, "status 'optimal' without a certificate"
    if not cert.is_global:
        return
    nets = adv.restarts(X, Y, beta, rng, n_random=n_random,
                        start=(res.network.W1, res.network.W2))
    best = min(f for f, _, _ in nets)
    note(f"best restart {best!r}")
    _assert_not_beaten("fit", cert, best)


@given(adv.problems(max_n=16, max_c=2, zkinds=("teacher", "int", "gauss")),
       st.sampled_from(BETA_FRACTIONS))
@_settings(25)
def test_certified_fit_is_never_beaten_by_restarts(p, frac):
    X, Y = p["X"], p["Z"]
    note(f"kind={p['kind']} seed={p['seed']} n={p['n']} c={p['c']} zkind={p['zkind']} "
         f"frac={frac}")
    beta = _beta(X, Y, frac)
    if beta is None:
        return
    check_fit(X, Y, beta, np.random.default_rng(p["seed"] % 1000))


# =========================================================================== slow sweeps
@pytest.mark.slow
@given(adv.problems(max_n=40))
@_settings(3000)
def test_slow_exact_oracle_sweep(p):
    check_omega(p["X"], p["Z"], np.random.default_rng(0))


@pytest.mark.slow
@given(adv.int_problems(max_n=12, max_abs=3, max_c=3))
@_settings(3000)
def test_slow_exact_oracle_small_integers(p):
    check_omega(p["X"], p["Z"], np.random.default_rng(0))


@pytest.mark.slow
@given(adv.problems(max_n=30, max_c=3, zkinds=("teacher", "int", "gauss", "sign")),
       st.sampled_from(BETA_FRACTIONS))
@_settings(500)
def test_slow_certified_dual_never_above_a_restart(p, frac):
    X, Y = p["X"], p["Z"]
    beta = _beta(X, Y, frac)
    if beta is None:
        return
    check_certificates(X, Y, beta, np.random.default_rng(p["seed"] % 1000), n_random=3)


@pytest.mark.slow
@given(adv.problems(max_n=30, max_c=3, zkinds=("teacher", "int", "gauss")),
       st.sampled_from(BETA_FRACTIONS))
@_settings(400)
def test_slow_certified_fit_is_never_beaten_by_restarts(p, frac):
    X, Y = p["X"], p["Z"]
    beta = _beta(X, Y, frac)
    if beta is None:
        return
    check_fit(X, Y, beta, np.random.default_rng(p["seed"] % 1000), n_random=3)
