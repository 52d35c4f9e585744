r"""``convexrelu bench``: every solver side by side, in one run, on one objective.

For each case (the paper's §5.1 planted problem, the 3-class spiral, planted problems
``n in {1e3, 1e4, 1e5}``, ``d in {2, 10, 50}``, ``c = 10``, and scalar-output problems)
the benchmark

1. computes a **reference optimum** with ``cg`` (``tol=1e-6``, capped in time). Where the
   sign patterns are enumerable (``rank(X) <= 2``, or few patterns) the oracle is exact
   and the reference carries a rigorous certificate: ``p* >= dual``, so the reference is
   within ``rel_gap`` of the optimum, and it is *certified* when that gap reached the
   tolerance. Elsewhere cg runs on sampled patterns with the heuristic oracle: its
   objective is only the best value found and the row says **NOT certified**;
2. runs every competitor on the same objective
   :math:`p = \tfrac12\|f(X)-Y\|_F^2 + \tfrac\beta2(\|W_1\|_F^2+\|W_2\|_F^2)`, each under a
   time cap: ``frank-wolfe`` (the paper's Algorithm 1), CVXPY (eq. 19 lifted for vector
   outputs on the small cases; eq. 9 for scalar outputs), PyTorch full-batch GD with
   momentum 0.95 and automatic learning rate (the paper's App. A.1 protocol) and Adam,
   and the peer library ``pyscnn`` on scalar outputs when it is importable;
3. reports for each method the first time its objective came within ``1e-4`` (relative)
   of the reference (:func:`first_time_within`), the relative excess of its best
   objective over the reference at the end (the gap it stalls at), its total time, and
   the ratio of its time to 1e-4 to cg's. For cg it also reports the time to a certified
   ``rel_gap <= 1e-4`` and ``<= 1e-6`` from its own history, and where cg's time goes
   (oracle, restricted master, merging, local refinement, other: ``cg_breakdown``, read
   from the ``info["time_breakdown"]`` cg reports itself).

Choices (recorded in the output):

* ``beta`` for the planted ``c = 10`` problems is ``BETA_FRACTION = 0.1`` times
  :math:`\lambda_{\max} = \Omega(Y)`, the smallest ``beta`` whose optimum is the zero
  network: exact (:func:`convexrelu.lambda_max`) when the oracle is exact, otherwise the
  heuristic oracle's value of :math:`\Omega(Y)` (an attained value, so a lower estimate of
  :math:`\lambda_{\max}`). Scale-free: rescaling ``Y`` rescales ``beta`` with it.
* The non-convex networks have ``max(10, 2 m_cg)`` neurons, twice the width of cg's
  reference network, seeded with ``random_state=0``.
* The CVXPY relaxation (eq. 19) has one PSD block of size ``r + c`` per sign pattern; it
  runs only on the small cases (§5.1, spiral) and is skipped elsewhere with the reason.
  Its value is a lower bound on ``p*`` (exact for ``d = 2``), so "within 1e-4" is
  measured in absolute value for it.
* eq. 9 (scalar outputs) has ``2 d P`` variables and ``2 P n`` cone constraints; it runs
  on every pattern when ``P n <= EQ9_MAX_PN``, else on ``EQ9_SAMPLED`` sampled patterns
  (a restriction: an upper bound on ``p*``, not certified) when that fits, else is skipped.
* pyscnn's objective is mapped to ours by the adapter
  (:mod:`convexrelu.experiments.peers`); the benchmark recomputes the objective of the
  network it returns with :meth:`TwoLayerReLU.objective`, so every row is on eq. 5.

Speed is measured here, never in unit tests.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
import traceback
import warnings

import numpy as np

from ._common import (first_time_within, import_pyplot, machine_info, require_torch,
                      save_figure, write_json, write_text)

__all__ = ["run_bench", "TimedOracle", "CAPS", "BETA_FRACTION"]

logger = logging.getLogger(__name__)

#: beta = BETA_FRACTION * lambda_max (estimate) on the planted c = 10 problems.
BETA_FRACTION = 0.1
#: Largest P * n (patterns times samples) for eq. 9 on every pattern.
EQ9_MAX_PN = 3e5
#: Sampled patterns for eq. 9 when the exact patterns are too many.
EQ9_SAMPLED = 100
#: Largest number of sign patterns for the eq. 19 relaxation (one PSD block each).
EQ19_MAX_PATTERNS = 400
#: Sampled directions of the heuristic oracle for large problems.
HEURISTIC_SAMPLES = 1000
#: Time to 1e-4 of the reference.
RTOL = 1e-4

#: Per-solver time caps (seconds) per mode.
CAPS = {
    "toy": dict(cg=10.0, fw=1.0, sgd=1.0, adam=1.0, cvxpy=60.0, pyscnn=10.0),
    "quick": dict(cg=30.0, fw=12.0, sgd=12.0, adam=12.0, cvxpy=120.0, pyscnn=30.0),
    "full": dict(cg=90.0, fw=40.0, sgd=40.0, adam=40.0, cvxpy=300.0, pyscnn=60.0),
}

METHODS = ("cg", "frank-wolfe", "cvxpy-eq19", "cvxpy-eq9", "pytorch-gd", "pytorch-adam", "pyscnn")


# --------------------------------------------------------------------------------------
# timing of an oracle (cg reports its own time breakdown: ``result.info["time_breakdown"]``)
# --------------------------------------------------------------------------------------
class TimedOracle:
    """Wraps an oracle, timing its calls; every other attribute is the wrapped oracle's.

    ``fit(..., oracle=TimedOracle(make_oracle(X)))`` works like the plain oracle
    (``kind`` and ``fingerprint`` are delegated); ``seconds`` and ``calls`` accumulate
    the time spent in ``__call__``, ``candidates`` and ``arrangement_2d``.
    """

    def __init__(self, oracle):
        self._inner = oracle
        self.seconds = 0.0
        self.calls = 0

    def __getattr__(self, name):
        attr = getattr(self._inner, name)  # AttributeError preserved: hasattr() still works
        if name in ("candidates", "arrangement_2d") and callable(attr):
            def timed(*args, **kwargs):
                t = time.perf_counter()
                try:
                    return attr(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - t
            return timed
        return attr

    def __call__(self, Z):
        t = time.perf_counter()
        try:
            return self._inner(Z)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1


# --------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------
def _cases(mode):
    """(name, kind, builder) where builder() -> (X, Y, beta or None, note)."""
    from ..datasets import planted, spiral

    out = []

    def p51():
        X, Y, _ = planted(seed=0)
        return X, Y, 1e-2, "paper §5.1: n=25, d=2, c=5, teacher 100 neurons, beta=1e-2"

    def spi(npc):
        def b():
            X, Y, _ = spiral(n_per_class=npc, seed=0)
            return X, Y, 1e-2, f"3-class spiral, {npc} per class, one-hot targets, beta=1e-2"
        return b

    def pl(n, d, c):
        def b():
            X, Y, _ = planted(n=n, d=d, c=c, seed=0)
            return X, Y, None, f"planted n={n}, d={d}, c={c}, beta={BETA_FRACTION}*lambda_max"
        return b

    out.append(("§5.1 planted", "small", p51))
    if mode == "toy":
        out.append(("spiral n=30", "small", spi(10)))
        out.append(("scalar n=30 d=2", "scalar", pl(30, 2, 1)))
        return out
    out.append(("spiral n=60", "small", spi(20)))
    if mode == "quick":
        grid = [(1000, 2), (1000, 10)]
        scalar = [(100, 2)]
    else:
        grid = [(n, d) for n in (1000, 10000, 100000) for d in (2, 10, 50)]
        scalar = [(100, 2), (1000, 2), (1000, 10)]
    for n, d in grid:
        out.append((f"planted n={n} d={d} c=10", "planted", pl(n, d, 10)))
    for n, d in scalar:
        out.append((f"scalar n={n} d={d}", "scalar", pl(n, d, 1)))
    return out


def _beta_for(X, Y, oracle):
    """BETA_FRACTION * lambda_max: exact with an exact oracle, else the heuristic estimate."""
    val = float(oracle(Y).value)
    exact = getattr(oracle, "kind", None) == "exact"
    how = ("exact lambda_max (exact oracle on Y)" if exact else
           "heuristic estimate of lambda_max = Omega(Y) (attained value, a lower estimate)")
    return BETA_FRACTION * val, val, how


# --------------------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------------------
def _excess(obj, ref):
    return None if obj is None or ref is None else float((obj - ref) / max(abs(ref), 1e-300))


def _row(method, case, ref, *, times=None, values=None, objective=None, total=None,
         status=None, note="", symmetric=False, cg_t=None, skipped=False):
    t_hit = None
    if not skipped and times is not None and len(times):
        v = np.asarray(values, float)
        if symmetric:  # a bound: within 1e-4 in absolute value
            idx = np.flatnonzero(np.abs(v - ref) <= RTOL * abs(ref))
            t_hit = float(np.asarray(times, float)[idx[0]]) if idx.size else None
        else:
            t_hit = first_time_within(times, v, ref, RTOL)
    best = None if objective is None else float(objective)
    exc = _excess(best, ref)
    if t_hit is not None and exc is not None and not (abs(exc) <= RTOL if symmetric else exc <= RTOL):
        # the history hit 1e-4 but the reported objective is the final network's: use the best
        hist_best = float(np.min(values))
        best, exc = hist_best, _excess(hist_best, ref)
    ratio = (t_hit / cg_t) if (t_hit is not None and cg_t) else None
    return dict(method=method, case=case, t_1e4=t_hit, excess=exc, objective=best,
                total_s=total, ratio=ratio, status=status, note=note, skipped=skipped)


def _run_cg(X, Y, beta, oracle, cap):
    """cg on the case, with where its time went from its own ``info["time_breakdown"]``."""
    from .. import fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(X, Y, beta, solver="cg", oracle=oracle, tol=1e-6, max_iter=100000,
                  time_limit=cap)
    total = res.time
    tb = res.info["time_breakdown"]
    br = dict(total_s=total, oracle_s=tb["oracle"], oracle_calls=len(res.history["omega"]),
              master_s=tb["master"], merge_s=tb["merge"], refine_s=tb["refine"],
              n_iter=res.n_iter, n_neurons=res.network.n_neurons)
    br["other_s"] = max(0.0, total - br["oracle_s"] - br["master_s"] - br["merge_s"] - br["refine_s"])
    return res, br


def _child(conn, fn, args, kwargs):  # pragma: no cover - runs in the child process
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _call_with_timeout(fn, args, kwargs, timeout, what):
    """``fn(*args, **kwargs)`` in a child process, stopped after ``timeout`` seconds (for a
    peer that has no time limit of its own). Raises ``TimeoutError`` naming ``what``."""
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise TimeoutError(f"{what} ran past its cap of {timeout:g} s (it has no time limit "
                               "option) and was stopped")
        kind, value = parent.recv()
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(5)
        parent.close()
    if kind == "error":
        raise RuntimeError(f"{what} failed: {value}")
    return value


def _cert_time(hist, level):
    best = np.minimum.accumulate(np.asarray(hist["rel_gap"], float))
    idx = np.flatnonzero(best <= level)
    return float(hist["time"][idx[0]]) if idx.size else None


def _try(fn, method, case, ref, skipped, cg_t=None):
    """Run ``fn() -> row``; an exception becomes a row with the error as its reason."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - recorded, the benchmark continues
        reason = f"error: {type(exc).__name__}: {exc}".strip()[:400]
        logger.warning("bench: %s on %s failed: %s", method, case, reason)
        logger.debug("%s", traceback.format_exc())
        skipped.append(dict(method=method, case=case, reason=reason))
        return _row(method, case, ref, status="error", note=reason, skipped=True)


def _skip(method, case, ref, reason, skipped):
    skipped.append(dict(method=method, case=case, reason=reason))
    return _row(method, case, ref, status="skipped", note=reason, skipped=True)


def _peer_status():
    try:
        from . import peers  # noqa: PLC0415 - optional, written separately
    except ImportError as exc:
        return None, f"convexrelu.experiments.peers is not available ({exc})"
    try:
        ok, reason = peers.pyscnn_status()
    except Exception as exc:  # noqa: BLE001
        return None, f"peers.pyscnn_status() failed: {type(exc).__name__}: {exc}"
    return (peers if ok else None), (reason or ("pyscnn is importable" if ok else "unavailable"))


def _run_case(name, kind, build, caps, skipped, progress, peer):
    import convexrelu as cr
    from ..oracles import make_oracle
    from ..patterns import SignPatterns

    t_case = time.perf_counter()
    X, Y, beta, note = build()
    n, d = X.shape
    c = Y.shape[1]
    oracle = make_oracle(X, n_samples=HEURISTIC_SAMPLES, random_state=0)
    case = dict(name=name, kind=kind, n=n, d=d, c=c, note=note, oracle_kind=oracle.kind,
                n_patterns=getattr(oracle, "n_patterns", None))
    if beta is None:
        beta, lam, how = _beta_for(X, Y, oracle)
        case.update(lambda_max=lam, beta_rule=f"beta = {BETA_FRACTION} x {how}")
    else:
        case.update(lambda_max=None, beta_rule="fixed")
    case["beta"] = beta
    _say(progress, f"[{name}] n={n} d={d} c={c} beta={beta:.4g} oracle={oracle.kind} "
                   f"patterns={case['n_patterns']}")

    # -- reference: cg --------------------------------------------------------------
    res, br = _run_cg(X, Y, beta, oracle, caps["cg"])
    cert = res.certificate
    ref = float(res.objective)
    t6, t4 = _cert_time(res.history, 1e-6), _cert_time(res.history, 1e-4)
    if cert.is_global:
        certified = f"yes: certified global, rel_gap {cert.rel_gap:.1e}"
    elif cert.is_rigorous:
        certified = (f"NO: rigorous bound, but rel_gap {cert.rel_gap:.1e} > 1e-6 at the cap "
                     f"(p* >= {cert.dual:.8g})")
    else:
        certified = (f"NO: {cert.oracle_kind} oracle on {cert.pattern_scope} patterns "
                     f"(gap estimate {cert.rel_gap:.1e} is not a bound)")
    case.update(reference=ref, reference_dual=float(cert.dual), reference_rel_gap=float(cert.rel_gap),
                reference_is_global=bool(cert.is_global), reference_is_rigorous=bool(cert.is_rigorous),
                reference_certified=certified, cg_status=res.status,
                cg_time_cert_1e4=t4, cg_time_cert_1e6=t6, cg_neurons=res.network.n_neurons)
    br = dict(case=name, n=n, d=d, c=c, **br)
    cg_hist = res.history
    cg_t = first_time_within(cg_hist["time"], cg_hist["objective"], ref, RTOL)
    rows = [_row("cg", name, ref, times=cg_hist["time"], values=cg_hist["objective"],
                 objective=ref, total=res.time, status=res.status, cg_t=cg_t,
                 note=(f"reference; {'certified rel_gap' if cert.is_rigorous else 'gap ESTIMATE (not a bound)'}"
                       f" <=1e-4 {'never' if t4 is None else f'at {t4:.3g} s'}, <=1e-6 "
                       f"{'never' if t6 is None else f'at {t6:.3g} s'}"))]
    curves = {"cg": (np.asarray(cg_hist["time"]), np.asarray(cg_hist["objective"]))}
    _say(progress, f"  cg: {res.status} obj {ref:.10g} rel_gap{'' if cert.is_rigorous else ' (estimate)'} "
                   f"{cert.rel_gap:.2e} "
                   f"{res.time:.1f}s ({certified})")

    # -- frank-wolfe ----------------------------------------------------------------
    def fw():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = cr.fit(X, Y, beta, solver="frank-wolfe", oracle=oracle, tol=1e-6,
                       max_iter=10**8, time_limit=caps["fw"])
        curves["frank-wolfe"] = (np.asarray(r.history["time"]), np.asarray(r.history["objective"]))
        st = r.status + (" (cap)" if r.status == "time_limit" else "")
        return _row("frank-wolfe", name, ref, times=r.history["time"], values=r.history["objective"],
                    objective=float(np.min(r.history["objective"])), total=r.time, status=st,
                    cg_t=cg_t, note=f"{r.n_iter} steps")
    rows.append(_try(fw, "frank-wolfe", name, ref, skipped))

    # -- CVXPY ------------------------------------------------------------------------
    if c > 1:
        P = case["n_patterns"]
        if kind != "small":
            rows.append(_skip("cvxpy-eq19", name, ref,
                              f"eq. 19 lifted needs one PSD block of size r+c={min(d, n) + c} per "
                              f"sign pattern ({'sampled/unknown' if oracle.kind != 'exact' else P} "
                              f"patterns, n={n}): run only on the small cases", skipped))
        elif P is None or P > EQ19_MAX_PATTERNS or oracle.kind != "exact":
            rows.append(_skip("cvxpy-eq19", name, ref,
                              f"{P} patterns > {EQ19_MAX_PATTERNS} PSD blocks", skipped))
        else:
            def eq19():
                from ..solvers.copositive import solve_relaxation

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the status is reported in the row
                    rel = solve_relaxation(X, Y, beta, form="eq19", formulation="lifted")
                curves["cvxpy-eq19"] = (np.array([rel.time]), np.array([rel.value]))
                exact = "exact for d=2 (simplicial cones)" if d <= 2 else "not proven exact"
                return _row("cvxpy-eq19", name, ref, times=[rel.time], values=[rel.value],
                            objective=rel.value, total=rel.time, status=rel.status, cg_t=cg_t,
                            symmetric=True,
                            note=f"lower bound on p* ({exact}); {rel.patterns.shape[0]} PSD blocks")
            rows.append(_try(eq19, "cvxpy-eq19", name, ref, skipped))
    else:
        def eq9():
            from ..patterns import pattern_bound, rank_reduce
            from ..solvers.reference import solve_scalar_cvxpy

            pats, scope = None, "every pattern"
            P = case["n_patterns"] if oracle.kind == "exact" else None
            if P is None:
                _, r = rank_reduce(X)
                P = pattern_bound(n, r)
            if oracle.kind != "exact" or P * n > EQ9_MAX_PN:
                if EQ9_SAMPLED * n > EQ9_MAX_PN:
                    return _skip("cvxpy-eq9", name, ref,
                                 f"eq. 9 has 2*P*n cone constraints: even {EQ9_SAMPLED} sampled "
                                 f"patterns x n={n} > {EQ9_MAX_PN:.0e}", skipped)
                pats = SignPatterns.sample(X, EQ9_SAMPLED, random_state=0)
                scope = (f"{pats.n_patterns} sampled patterns (restriction: an upper bound on "
                         f"p*, not certified; all {P:.3g} patterns x n too large)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the status is reported in the row
                r = solve_scalar_cvxpy(X, Y, beta, patterns=pats, time_limit=caps["cvxpy"])
            obj = float(r.network.objective(X, Y, beta))
            curves["cvxpy-eq9"] = (np.array([r.time]), np.array([obj]))
            return _row("cvxpy-eq9", name, ref, times=[r.time], values=[obj], objective=obj,
                        total=r.time, status=r.status, cg_t=cg_t,
                        note=f"{scope}; conic value {r.objective:.10g}; network objective shown")
        rows.append(_try(eq9, "cvxpy-eq9", name, ref, skipped))

    # -- PyTorch ----------------------------------------------------------------------
    width = max(10, 2 * res.network.n_neurons)
    for method, opt in (("pytorch-gd", "sgd"), ("pytorch-adam", "adam")):
        def sgd(method=method, opt=opt):
            require_torch("the PyTorch baseline")
            from ..solvers.sgd import SGD

            s = SGD(width, optimizer=opt, max_epochs=10**9, time_limit=caps["sgd" if opt == "sgd" else "adam"],
                    random_state=0, tol=1e-6)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = cr.fit(X, Y, beta, solver=s, oracle=oracle)
            curves[method] = (np.asarray(r.history["time"]), np.asarray(r.history["objective"]))
            st = r.status + (" (cap)" if r.status == "time_limit" else "")
            best = min(float(r.objective), float(np.min(r.history["objective"])))
            return _row(method, name, ref, times=r.history["time"], values=r.history["objective"],
                        objective=best, total=r.time, status=st, cg_t=cg_t,
                        note=f"width {width}, {r.n_iter} epochs, lr0 {r.info.get('lr0', float('nan')):.3g}")
        rows.append(_try(sgd, method, name, ref, skipped))

    # -- pyscnn (scalar outputs) ----------------------------------------------------
    if c == 1:
        mod, reason = peer
        if mod is None:
            rows.append(_skip("pyscnn", name, ref, reason, skipped))
        else:
            def pys():
                fn = mod.fit_pyscnn
                kw = {}
                params = inspect.signature(fn).parameters
                if "time_limit" in params:
                    kw["time_limit"] = caps["pyscnn"]
                t = time.perf_counter()
                if "time_limit" in kw:
                    pr = fn(X, Y[:, 0], beta, **kw)
                else:  # pyscnn has no time limit of its own: a child process, stopped at the cap
                    pr = _call_with_timeout(fn, (X, Y[:, 0], beta), kw, caps["pyscnn"], "pyscnn")
                wall = time.perf_counter() - t
                tt = float(getattr(pr, "time", None) or wall)
                net = getattr(pr, "network", None)
                obj = float(net.objective(X, Y, beta)) if net is not None else float(pr.objective)
                curves["pyscnn"] = (np.array([tt]), np.array([obj]))
                info = getattr(pr, "info", {}) or {}
                scal = info.get("regulariser_scaling") or info.get("scaling") or ""
                return _row("pyscnn", name, ref, times=[tt], values=[obj], objective=obj, total=tt,
                            status=str(info.get("status", "done")), cg_t=cg_t,
                            note=("objective recomputed on eq. 5 from the returned network"
                                  + (f"; {scal}" if scal else "")))
            rows.append(_try(pys, "pyscnn", name, ref, skipped))
    # best objective of any network found (relaxation values are bounds, not networks)
    best_m, best_v = "cg", ref
    for r in rows:
        if not r["skipped"] and r["objective"] is not None and r["method"] != "cvxpy-eq19" \
                and r["objective"] < best_v:
            best_m, best_v = r["method"], float(r["objective"])
    case.update(best_known=best_v, best_known_method=best_m,
                best_known_excess=_excess(best_v, ref))
    case["seconds"] = time.perf_counter() - t_case
    for r in rows:
        if not r["skipped"]:
            _say(progress, f"  {r['method']}: t_1e-4 {_f(r['t_1e4'], '.3g')} s, excess "
                           f"{_f(r['excess'], '.2e')}, {r['status']}")
    return case, rows, br, curves


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------
def _say(progress, msg):
    logger.info("%s", msg)
    if progress is not None:
        progress(msg)


def _f(v, spec):
    return "—" if v is None else format(v, spec)


def _best_known_text(cs):
    if cs["best_known_method"] == "cg":
        return "cg (the reference)"
    txt = f"{cs['best_known_method']}: {cs['best_known']:.10g} ({cs['best_known_excess']:.1e} vs the reference"
    if cs["reference_is_rigorous"] and -cs["best_known_excess"] <= cs["reference_rel_gap"]:
        return txt + ", within cg's certified gap)"
    return txt + ": cg's reference is NOT the optimum)"


def _markdown(result):
    m = result["machine"]
    lines = [f"# convexrelu bench ({result['mode']})", "",
             f"Total {result['total_s']:.1f} s. Machine: {m.get('platform')}, {m.get('cpu_count')} CPUs, "
             f"Python {m.get('python')}, numpy {m.get('numpy')}, torch {m.get('torch')}, "
             f"cvxpy {m.get('cvxpy')}, convexrelu {m.get('convexrelu')}; BLAS: "
             f"{'; '.join(m.get('blas', []) or ['?'])}.", "",
             "Time caps per solver run (s): " + ", ".join(f"{k} {v:g}" for k, v in result["caps"].items())
             + ". Objective: 1/2||f(X)-Y||_F^2 + beta/2(||W1||^2+||W2||^2) for every method.", "",
             "`t to 1e-4`: first time the objective came within 1e-4 (relative) of the reference; "
             "`excess`: (best objective - reference)/reference at the end (the gap a method stalls "
             "at; negative = below cg's reference); `ratio`: t to 1e-4 / cg's t to 1e-4. "
             "PyTorch times include the learning-rate probe; networks have max(10, 2 m_cg) neurons."
             + (f" **Interrupted** (Ctrl-C) in case {result['interrupted_at']!r}: only the cases "
                "before it are shown." if result.get("interrupted_at") else ""),
             "", "## Cases", "",
             "| case | n | d | c | beta | beta rule | oracle | reference (cg) | certified | best network found |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for cs in result["cases"]:
        lines.append(f"| {cs['name']} | {cs['n']} | {cs['d']} | {cs['c']} | {cs['beta']:.4g} | "
                     f"{cs['beta_rule']} | {cs['oracle_kind']} | {cs['reference']:.10g} | "
                     f"{cs['reference_certified']} | "
                     + _best_known_text(cs) + " |")
    lines += ["", "## Results", "",
              "| case | method | t to 1e-4 (s) | excess at end | total (s) | ratio vs cg | status | note |",
              "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["skipped"]:
            lines.append(f"| {r['case']} | {r['method']} | — | — | — | — | {r['status']} | {r['note']} |")
            continue
        t = _f(r["t_1e4"], ".3g") if r["t_1e4"] is not None else "never (within cap)"
        lines.append(f"| {r['case']} | {r['method']} | {t} | {_f(r['excess'], '.2e')} | "
                     f"{_f(r['total_s'], '.3g')} | {_f(r['ratio'], '.3g')} | {r['status']} | {r['note']} |")
    lines += ["", "## Where cg's time goes", "",
              "| case | total (s) | oracle (s) | calls | master (s) | merge (s) | refine (s) | other (s) | iters | neurons |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for b in result["cg_breakdown"]:
        lines.append(f"| {b['case']} | {b['total_s']:.3g} | {b['oracle_s']:.3g} | {b['oracle_calls']} | "
                     f"{b['master_s']:.3g} | {b['merge_s']:.3g} | {b['refine_s']:.3g} | "
                     f"{b['other_s']:.3g} | {b['n_iter']} | {b['n_neurons']} |")
    lines += ["", "## Skipped", ""]
    if result["skipped"]:
        for s in result["skipped"]:
            lines.append(f"- {s['method']} on {s['case']}: {s['reason']}")
    else:
        lines.append("- nothing")
    return "\n".join(lines) + "\n"


_COLORS = {"cg": "C0", "frank-wolfe": "C1", "cvxpy-eq19": "C2", "cvxpy-eq9": "C2",
           "pytorch-gd": "C3", "pytorch-adam": "C4", "pyscnn": "C5"}


def _plot(result, all_curves, path):
    plt = import_pyplot()
    cases = result["cases"]
    k = max(len(cases), 1)
    ncol = min(4, k)
    nrow = -(-k // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False)
    floor = 1e-10
    for ax, cs in zip(axes.ravel(), cases):
        ref = cs["best_known"]
        for method, (t, v) in all_curves.get(cs["name"], {}).items():
            if len(t) == 0:
                continue
            # relaxation values are lower bounds: their distance in absolute value
            ex = np.abs(np.minimum.accumulate(v) - ref) / max(abs(ref), 1e-300)
            ex = np.maximum(ex, floor)
            t = np.maximum(np.asarray(t, float), 1e-4)
            if len(t) == 1:
                ax.plot(t, ex, "o", color=_COLORS.get(method), label=method, ms=6)
            else:
                ax.step(t, ex, where="post", color=_COLORS.get(method), label=method, lw=1.3)
        ax.axhline(RTOL, color="k", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        cert = "cg certified" if cs["reference_is_global"] else "NOT certified"
        ax.set_title(f"{cs['name']}\n(best known: {cs['best_known_method']}; {cert})", fontsize=8)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("(best obj - best known) / best known", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower left")
    for ax in axes.ravel()[len(cases):]:
        ax.axis("off")
    fig.suptitle(f"convexrelu bench ({result['mode']}): relative excess over the best known "
                 f"objective vs time (dotted: 1e-4; floor {floor:g}; dots: CVXPY, |value - best|)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------
def run_bench(out="bench_out", *, quick=False, toy=False, time_budget=None, progress=None) -> dict:
    """Run the benchmark and write ``out/bench.json``, ``out/bench.md``, ``out/bench.png``.

    While it runs, ``out/bench.partial.json`` holds the finished cases (removed at the end);
    Ctrl-C stops after writing the three files for the cases finished so far
    (``interrupted_at`` names the case it stopped in).

    Parameters
    ----------
    out : str or path, default "bench_out"
        Output folder (created; must not be an existing file).
    quick : bool, default False
        A few-minute version: §5.1, spiral, planted ``n = 1000, d in {2, 10}``, a scalar case.
    toy : bool, default False
        A seconds-long version for the unit tests (tiny cases only; overrides ``quick``).
    time_budget : float, optional
        Seconds for the whole run: the per-solver caps are scaled down so that their sum
        over the grid fits, and no new case starts once it is spent (the remaining cases
        are listed as skipped).
    progress : callable, optional
        Called with one line of text per step (the CLI passes ``print``).

    Returns
    -------
    dict
        ``paths`` (json, md, png), ``rows``, ``skipped``, ``cases``, ``cg_breakdown``,
        ``machine``, ``caps``, ``mode``, ``total_s``.
    """
    if out is None or not isinstance(out, (str, os.PathLike)):
        raise ValueError(f"out must be a folder path (str or os.PathLike); got {out!r}")
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out must be a folder; {out!r} is an existing file")
    for nm, v in (("quick", quick), ("toy", toy)):
        if not isinstance(v, (bool, np.bool_)):
            raise ValueError(f"{nm} must be True or False; got {v!r}")
    if time_budget is not None:
        try:
            tb = float(time_budget)
        except (TypeError, ValueError):
            raise ValueError(f"time_budget must be a positive number of seconds or None; "
                             f"got {time_budget!r}") from None
        if isinstance(time_budget, bool) or not np.isfinite(tb) or tb <= 0:
            raise ValueError(f"time_budget must be a positive number of seconds or None; "
                             f"got {time_budget!r}")
        time_budget = tb
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be a callable taking one string, or None; got {progress!r}")

    mode = "toy" if toy else ("quick" if quick else "full")
    caps = dict(CAPS[mode])
    cases = _cases(mode)
    if time_budget is not None:
        per_case = caps["cg"] + caps["fw"] + caps["sgd"] + caps["adam"]
        scale = min(1.0, time_budget / (per_case * len(cases)))
        caps = {k: max(0.5, v * scale) for k, v in caps.items()}
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    peer = _peer_status()
    _say(progress, f"bench ({mode}): {len(cases)} cases, caps {caps}; pyscnn: {peer[1]}")
    all_rows, skipped, case_info, breakdown, curves = [], [], [], [], {}
    interrupted = None
    for name, kind, build in cases:
        if time_budget is not None and time.perf_counter() - t0 >= time_budget:
            reason = f"time_budget of {time_budget:g} s spent before this case started"
            skipped.append(dict(method="all", case=name, reason=reason))
            _say(progress, f"[{name}] skipped: {reason}")
            continue
        try:
            cs, rows, br, cv = _run_case(name, kind, build, caps, skipped, progress, peer)
        except KeyboardInterrupt:
            # Ctrl-C: keep the finished cases, write the files, say where it stopped
            interrupted = name
            skipped.append(dict(method="all", case=name, reason="interrupted (Ctrl-C) during this case"))
            _say(progress, f"[{name}] interrupted: writing the {len(case_info)} finished case(s)")
            break
        except Exception as exc:  # noqa: BLE001 - the reference itself failed: record, continue
            reason = f"error: {type(exc).__name__}: {exc}"[:400]
            logger.warning("bench: case %s failed: %s", name, reason)
            skipped.append(dict(method="cg (reference)", case=name, reason=reason))
            continue
        case_info.append(cs)
        all_rows.extend(rows)
        breakdown.append(br)
        curves[name] = cv
        # after every case: the rows so far, so that a long run killed midway leaves data
        write_json(os.path.join(out, "bench.partial.json"),
                   dict(mode=mode, caps=caps, elapsed_s=time.perf_counter() - t0, cases=case_info,
                        rows=all_rows, skipped=skipped, cg_breakdown=breakdown))
    total = time.perf_counter() - t0
    result = dict(mode=mode, machine=machine_info(), caps=caps, rtol=RTOL, interrupted_at=interrupted,
                  beta_fraction=BETA_FRACTION, total_s=total, cases=case_info, rows=all_rows,
                  skipped=skipped, cg_breakdown=breakdown,
                  peer=dict(pyscnn_available=peer[0] is not None, reason=peer[1]),
                  settings=dict(heuristic_samples=HEURISTIC_SAMPLES, eq9_max_pn=EQ9_MAX_PN,
                                eq9_sampled=EQ9_SAMPLED, eq19_max_patterns=EQ19_MAX_PATTERNS,
                                nonconvex_width="max(10, 2 * cg neurons)", cg_tol=1e-6))
    paths = dict(json=os.path.join(out, "bench.json"), md=os.path.join(out, "bench.md"),
                 png=os.path.join(out, "bench.png"))
    result["paths"] = paths
    try:
        _plot(result, curves, paths["png"])
    except ImportError as exc:
        paths["png"] = None
        skipped.append(dict(method="plot", case="all", reason=str(exc)))
    write_text(paths["md"], _markdown(result))
    write_json(paths["json"], result)
    partial = os.path.join(out, "bench.partial.json")
    if os.path.exists(partial):  # superseded by bench.json
        os.unlink(partial)
    _say(progress, f"bench done in {total:.1f} s: {paths['json']}, {paths['md']}, {paths['png']}")
    return result
