"""The verified SDP bound (issue 12, item 6): a bound on Omega(Z)^2 that does not rest on the solver.

Every reference value here is *attained* by some direction (computed from (Xu)_+), so it
is a lower bound on Omega(Z)^2; a valid upper bound must never fall below it.
"""

import math

import numpy as np
import pytest

cp = pytest.importorskip("cvxpy")

from convexrelu import sdp_bound as sb  # noqa: E402
from convexrelu.sdp_bound import SDPBound, SDPDuals, verified_sdp_bound, verify_duals  # noqa: E402

# attained values are computed in floating point: allow their own rounding only
REL = 1e-12


# ----------------------------------------------------------------------------------------
# Independent references (no code shared with the library)
# ----------------------------------------------------------------------------------------


def values_sq(X, Z, U):
    """||Z^T (X u)_+||^2 for each row u of U (normalised)."""
    U = np.atleast_2d(U)
    U = U / np.linalg.norm(U, axis=1, keepdims=True)
    G = Z.T @ np.maximum(X @ U.T, 0.0)
    return np.einsum("cq,cq->q", G, G)


def ascend(X, Z, U, iters=200):
    """Projected (sub)gradient ascent on the sphere with backtracking; returns the best rows."""
    U = U / np.linalg.norm(U, axis=1, keepdims=True)
    v = values_sq(X, Z, U)
    step = np.full(U.shape[0], 0.3)
    for _ in range(iters):
        A = X @ U.T
        act = A > 0
        g = (X.T @ (act * (Z @ (Z.T @ (act * A))))).T
        g -= np.sum(g * U, axis=1, keepdims=True) * U
        gn = np.linalg.norm(g, axis=1, keepdims=True)
        C = U + step[:, None] * g / np.maximum(gn, 1e-300)
        C /= np.linalg.norm(C, axis=1, keepdims=True)
        cv = values_sq(X, Z, C)
        better = cv > v
        U = np.where(better[:, None], C, U)
        v = np.where(better, cv, v)
        step = np.where(better, np.minimum(1.5 * step, 1.0), 0.5 * step)
    return U, v


def exact_omega_sq_2d(X, Z):
    """Exact max over the circle: every boundary ray, and on every arc both eigenvectors of its form.

    On an arc the active set D is fixed and the value is u^T M u with
    M = X^T D Z Z^T D X; an interior local maximum on the circle is an eigenvector of M.
    Candidates from all arcs (spurious slivers included) are evaluated exactly, so the
    result is attained; a fine grid is added for safety.
    """
    nz = np.linalg.norm(X, axis=1) > 0
    phi = np.arctan2(X[nz, 1], X[nz, 0])
    ang = np.sort(np.mod(np.concatenate([phi + np.pi / 2, phi - np.pi / 2]), 2 * np.pi))
    cands = [np.column_stack([np.cos(ang), np.sin(ang)])]
    nxt = np.concatenate([ang[1:], [ang[0] + 2 * np.pi]])
    for lo, hi in zip(ang, nxt):
        mid = 0.5 * (lo + hi)
        um = np.array([np.cos(mid), np.sin(mid)])
        D = (X @ um > 0).astype(float)
        B = Z.T @ (D[:, None] * X)
        _, V = np.linalg.eigh(B.T @ B)
        cands.append(np.vstack([V.T, -V.T]))
    th = np.linspace(0.0, 2 * np.pi, 20000, endpoint=False)
    cands.append(np.column_stack([np.cos(th), np.sin(th)]))
    return float(values_sq(X, Z, np.vstack(cands)).max())


def lower_omega_sq(X, Z, rng, n_dirs=20000):
    """Attained lower bound for any r: row directions, pairwise hyperplane rays, samples, ascent."""
    n, r = X.shape
    cands = [X, -X, rng.standard_normal((n_dirs, r))]
    if r == 3:
        P = np.cross(X[:, None, :], X[None, :, :]).reshape(-1, 3)
        P = P[np.linalg.norm(P, axis=1) > 1e-14 * max(np.linalg.norm(X) ** 2, 1e-300)]
        cands += [P, -P]
    C = np.vstack(cands)
    C = C[np.linalg.norm(C, axis=1) > 0]
    v = values_sq(X, Z, C)
    top = C[np.argsort(v)[-30:]]
    _, va = ascend(X, Z, top)
    return float(max(v.max(), va.max()))


def reference(X, Z, rng):
    X = np.asarray(X, float)
    return exact_omega_sq_2d(X, Z) if X.shape[1] == 2 else lower_omega_sq(X, Z, rng)


def assert_bounds(b: SDPBound, ref: float):
    assert math.isfinite(b.value_sq)
    assert b.value_sq >= ref * (1 - REL), (b.value_sq, ref)
    assert b.value >= math.sqrt(b.value_sq)


# ----------------------------------------------------------------------------------------
# (1) random small problems
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,r,c,seed", [(5, 2, 1, 0), (8, 2, 2, 1), (12, 2, 1, 2), (7, 3, 1, 3),
                                        (10, 3, 2, 4), (12, 3, 1, 5)])
def test_random_bound_is_above_the_maximum_and_close_to_the_solver(n, r, c, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, r))
    Z = rng.standard_normal((n, c))
    b = verified_sdp_bound(X, Z)
    ref = reference(X, Z, rng)
    assert_bounds(b, ref)
    assert b.status in ("optimal", "optimal_inaccurate")
    # the verification costs little: well below SDPOracle's former 1e-4 inflation
    assert b.margin >= 0
    assert b.value_sq <= b.primal_value_sq * (1 + 1e-5), (b.value_sq, b.primal_value_sq)
    assert b.margin <= 1e-5 * b.value_sq
    # the relaxation is not wildly loose on such data
    assert b.value_sq <= 2.0 * ref
    # candidate directions for rounding come back in Xr's coordinates
    C = b.candidates()
    assert C.ndim == 2 and C.shape[1] == r


def test_bound_scales_with_the_data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 2))
    Z = rng.standard_normal((8, 2))
    b1 = verified_sdp_bound(X, Z)
    b2 = verified_sdp_bound(1e3 * X, 1e-2 * Z)
    ref = exact_omega_sq_2d(X, Z)
    assert_bounds(b1, ref)
    assert_bounds(b2, ref * 1e2)
    assert b2.value_sq == pytest.approx(b1.value_sq * 1e2, rel=1e-6)


def test_trivial_inputs_give_zero():
    b = verified_sdp_bound(np.ones((4, 2)), np.zeros((4, 1)))
    assert b.value_sq == 0.0 and b.status == "trivial"
    b = verified_sdp_bound(np.zeros((4, 2)), np.ones(4))
    assert b.value_sq == 0.0


# ----------------------------------------------------------------------------------------
# (2) degenerate data
# ----------------------------------------------------------------------------------------


def _degenerate_cases():
    rng = np.random.default_rng(11)
    cases = {}
    # issue 12's smallest case: opposite rows 0 and 2; u = (1, 0) attains 6
    cases["issue-opposite"] = (np.array([[1.0, -2.0], [2.0, 2.0], [-1.0, 2.0]]), np.array([[-2.0], [-2.0], [2.0]]))
    A = rng.standard_normal((5, 2))
    cases["duplicates"] = (np.vstack([A, A[:3]]), rng.standard_normal((8, 1)))
    cases["opposite"] = (np.vstack([A, -A]), rng.standard_normal((10, 2)))
    B = rng.integers(-2, 3, size=(9, 2)).astype(float)
    cases["intercept"] = (np.column_stack([B, np.ones(9)]), rng.standard_normal((9, 1)))
    C = rng.standard_normal((8, 3)) * np.array([1e6, 1.0, 1e-6])
    cases["scales-1e6-1e-6"] = (C, rng.standard_normal((8, 2)))
    D = rng.standard_normal((6, 2)) * np.array([1e6, 1e-6])
    cases["scales-2d"] = (D, rng.standard_normal((6, 1)))
    t = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    cases["circle-with-opposites"] = (np.column_stack([np.cos(t), np.sin(t)]), rng.standard_normal((8, 1)))
    E = rng.integers(-1, 2, size=(7, 3)).astype(float)
    cases["grid-3d-dups"] = (np.vstack([E, E[:2], -E[:2]]), rng.standard_normal((11, 1)))
    return cases


@pytest.mark.parametrize("name", list(_degenerate_cases()))
def test_degenerate_data_bound_is_still_above_the_attained_maximum(name):
    X, Z = _degenerate_cases()[name]
    rng = np.random.default_rng(3)
    b = verified_sdp_bound(X, Z)
    ref = reference(X, Z, rng)
    assert_bounds(b, ref)
    if name == "issue-opposite":
        assert b.value >= 6.0


# ----------------------------------------------------------------------------------------
# (3) bad multipliers only ever loosen the bound
# ----------------------------------------------------------------------------------------


def _solved(n=8, r=2, c=1, seed=21):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, r))
    Z = rng.standard_normal((n, c))
    Xn = X / np.linalg.norm(X, 2)
    Zn = Z / np.linalg.norm(Z)
    prob, W, cons = sb.build_relaxation(Xn, Zn)
    prob.solve(solver="CLARABEL")
    return Xn, Zn, sb.duals_from_cvxpy(cons, n, r), float(prob.value)


def _corruptions(d: SDPDuals, rng):
    noise = {k: (None if v is None else np.asarray(v) + 1e-3 * rng.standard_normal(np.shape(v)))
             for k, v in d.arrays()}
    noise["y0"] = float(noise["y0"])
    noise["z_tr"] = float(noise["z_tr"])
    flipped = {k: (None if v is None else -np.asarray(v)) for k, v in d.arrays()}
    flipped["y0"] = float(flipped["y0"])
    flipped["z_tr"] = float(flipped["z_tr"])
    zero = d.scaled(0.0)
    return {
        "half": d.scaled(0.5),
        "double": d.scaled(2.0),
        "noise": SDPDuals(**noise),
        "flipped": SDPDuals(**flipped),
        "zero": zero,
        "huge": d.scaled(1e6),
        "no-cones": SDPDuals(**{**dict(d.arrays()), "t1": None, "S1": None, "t2": None, "S2": None}),
        "y0-only-lowered": SDPDuals(**{**dict(d.arrays()), "y0": d.y0 - 0.05}),
    }


def test_corrupted_multipliers_never_give_a_bound_below_the_maximum():
    Xn, Zn, d, primal = _solved()
    rng = np.random.default_rng(0)
    ref = exact_omega_sq_2d(Xn, Zn)
    good = verify_duals(Xn, Zn, d)
    assert good.value >= ref * (1 - REL)
    assert good.value <= primal * (1 + 1e-5)
    for name, bad in _corruptions(d, rng).items():
        chk = verify_duals(Xn, Zn, bad)
        assert chk.value >= ref * (1 - REL), (name, chk.value, ref)
        # the solver's multipliers are near-optimal: corruption can only make it grow
        assert chk.value >= good.value * (1 - 1e-6), (name, chk.value, good.value)
        if name in ("half", "zero", "y0-only-lowered"):
            # the dual objective alone dropped below the maximum: the eigenvalue
            # correction is what keeps the bound valid
            assert chk.dual_objective < ref
            assert chk.lambda_min < 0 and chk.correction > 0


def test_corrupted_multipliers_rank3():
    Xn, Zn, d, _ = _solved(n=9, r=3, c=2, seed=5)
    ref = lower_omega_sq(Xn, Zn, np.random.default_rng(1))
    for name, bad in _corruptions(d, np.random.default_rng(2)).items():
        assert verify_duals(Xn, Zn, bad).value >= ref * (1 - REL), name


def test_nonfinite_multipliers_are_refused():
    Xn, Zn, d, _ = _solved(n=5)
    bad = SDPDuals(**{**dict(d.arrays()), "y0": float("nan")})
    with pytest.raises(ValueError, match="NaN or inf"):
        verify_duals(Xn, Zn, bad)


# ----------------------------------------------------------------------------------------
# The pieces of the verification, independent of any solver
# ----------------------------------------------------------------------------------------


def _random_duals(n, r, rng, soc=True):
    kw = dict(y0=float(rng.standard_normal()), z_tr=float(rng.random()), z_a=rng.random(n),
              z_ax=rng.random(n), y_diag=rng.standard_normal(n), Z_aa=rng.random((n, n)),
              Z_aax=rng.random((n, n)), Z_prod=rng.random((n, n)))
    if soc:
        kw.update(t1=rng.random(n) + 2.0, S1=rng.standard_normal((n, r)) * 0.3,
                  t2=rng.random(n) + 2.0, S2=rng.standard_normal((n, r)) * 0.3)
    return SDPDuals(**kw)


@pytest.mark.parametrize("soc", [True, False])
def test_dual_slack_is_the_adjoint_of_the_constraints(soc):
    """<S, W> = sum y <A, W> - sum z <G, W> - sum f(W) - <C, W> for an arbitrary symmetric W."""
    rng = np.random.default_rng(4)
    n, r, c = 6, 3, 2
    X = rng.standard_normal((n, r))
    Zn = rng.standard_normal((n, c))
    d = _random_duals(n, r, rng, soc)
    N = 1 + r + n
    M = rng.standard_normal((N, N))
    W = M + M.T
    u0, a0 = W[1:1 + r, 0], W[1 + r:, 0]
    Wuu, Wau, Waa = W[1:1 + r, 1:1 + r], W[1 + r:, 1:1 + r], W[1 + r:, 1 + r:]
    XWua = X @ Wau.T
    lin = d.y0 * W[0, 0] + d.y_diag @ (np.diag(Waa) - np.sum(Wau * X, axis=1))
    lin -= d.z_tr * (-np.trace(Wuu))
    lin -= d.z_a @ a0 + d.z_ax @ (a0 - X @ u0)
    lin -= np.sum(d.Z_aa * Waa) + np.sum(d.Z_aax * (Waa - XWua))
    lin -= np.sum(d.Z_prod * (Waa - XWua - XWua.T + X @ Wuu @ X.T))
    if soc:
        lin -= d.t1 @ a0 + np.sum(d.S1 * Wau)
        lin -= d.t2 @ (a0 - X @ u0) + np.sum(d.S2 * (Wau - X @ Wuu))
    lin -= np.sum((Zn @ Zn.T) * Waa)
    S = sb._assemble(X, Zn, d)
    assert np.array_equal(S, S.T)
    assert np.sum(S * W) == pytest.approx(lin, rel=1e-12, abs=1e-10)


def test_weak_duality_on_lifts_with_random_multipliers():
    """For random cone-feasible multipliers the verified bound is above every lift's value."""
    rng = np.random.default_rng(9)
    n, r, c = 7, 3, 2
    X = rng.standard_normal((n, r))
    X /= np.linalg.norm(X, 2)
    Zn = rng.standard_normal((n, c))
    Zn /= np.linalg.norm(Zn)
    best = lower_omega_sq(X, Zn, rng, n_dirs=5000)
    for _ in range(5):
        chk = verify_duals(X, Zn, _random_duals(n, r, rng))
        assert chk.value >= best


def test_lambda_min_lower_is_a_lower_bound_and_tight():
    rng = np.random.default_rng(2)
    for N in (1, 5, 40):
        M = rng.standard_normal((N, N))
        S = M + M.T
        lam = np.linalg.eigvalsh(S)[0]
        lo = sb.lambda_min_lower(S)
        assert lo <= lam and lam - lo <= 1e-11 * np.linalg.norm(S)
    # exact eigenvalues known: diag(1, 2, ...) rotated by an exact permutation
    S = np.diag(np.arange(1.0, 7.0))[::-1]
    S = S[:, ::-1].copy()
    assert sb.lambda_min_lower(S) <= 1.0
    # a singular PSD matrix: the bound is <= 0, and tiny
    v = rng.standard_normal(10)
    S = np.outer(v, v)
    lo = sb.lambda_min_lower(S)
    assert lo <= 0 and lo > -1e-12 * (v @ v)
    # err2 is subtracted; the Gershgorin fallback is also a valid lower bound
    assert sb.lambda_min_lower(S, 1e-3) <= -1e-3
    M = rng.standard_normal((6, 6))
    S = M + M.T
    assert sb.lambda_min_lower(S, max_tries=0) <= np.linalg.eigvalsh(S)[0]


def test_trace_bound_covers_every_lift():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((9, 3))
    X /= np.linalg.norm(X, 2)
    T = sb.trace_bound(X)
    assert 3.0 <= T <= 3.0 + 1e-12
    U = rng.standard_normal((2000, 3))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    A = np.maximum(X @ U.T, 0.0)
    assert np.all(1.0 + 1.0 + np.sum(A * A, axis=0) <= T)


# ----------------------------------------------------------------------------------------
# (4) solver failure
# ----------------------------------------------------------------------------------------


def test_solver_error_gives_a_clear_runtime_error(monkeypatch):
    def boom(self, *a, **k):
        raise cp.error.SolverError("simulated failure")

    monkeypatch.setattr(cp.Problem, "solve", boom)
    with pytest.raises(RuntimeError, match="CLARABEL: error .*simulated failure"):
        verified_sdp_bound(np.eye(3)[:, :2], np.ones(3))


def test_bad_status_gives_a_clear_runtime_error(monkeypatch):
    def infeasible(self, *a, **k):
        self._status = "infeasible"

    monkeypatch.setattr(cp.Problem, "solve", infeasible)
    with pytest.raises(RuntimeError, match="status 'infeasible'.*no bound"):
        verified_sdp_bound(np.eye(3)[:, :2], np.ones(3))


def test_unknown_solver_gives_a_runtime_error():
    with pytest.raises(RuntimeError, match="NO_SUCH_SOLVER"):
        verified_sdp_bound(np.eye(3)[:, :2], np.ones(3), solver="NO_SUCH_SOLVER")


def test_malformed_input_is_refused():
    with pytest.raises(ValueError, match="Xr must be"):
        verified_sdp_bound(np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="finite"):
        verified_sdp_bound(np.array([[np.nan, 1.0]]), np.ones(1))
