"""Adversarial sweep of the exact oracle and the certificate (issue 12, item 7; not CI).

For each of ``--n-problems`` problems (default 10,000), drawn round-robin from the
adversarial generators of :mod:`convexrelu.experiments.adversarial` (duplicates, opposite rows, integer
grids in 2-D and 3-D, collinear points, points on a circle, an intercept column,
near-parallel rows, column scales 1e-8..1e8, low rank embedded in d = 5..10, Gaussian as
a control) plus the fixed cases of the issue:

* the exact oracle ``cr.omega(X, Z, oracle="exact")`` on a random, integer, sign, teacher,
  residual or masked ``Z``;
* an independent lower reference (``adversarial.reference_omega``: random and structured
  directions, an enumeration of the arrangement written from scratch, projected ascent;
  every value is attained by a unit direction, so it never overstates Omega);
* a **false claim** when the exact value is below the reference by more than
  ``1e-9`` relative (plus ``1e-13 * sum_i |z_i| |x_i|`` for rounding); also reported:
  how far the value is above the reference (tightness), the oracle's own margin
  ``value - attained``, and whether the returned ``u`` attains ``attained``.

Then ``--n-fit`` end-to-end runs (default ``n_problems // 50``): ``cr.fit(X, Y, beta)``
with ``beta`` a fraction of the reference Omega(Y); when certified (``is_global``),
non-convex restarts (the fitted network plus the best neuron along the reference
maximiser of its residual, polished by L-BFGS; the zero network plus such a neuron; one
random start) must not reach an objective below the certified dual (a **false
certificate**), and the certificate's scaled dual point must be feasible against the
reference (``scale * Omega_ref(G) <= beta (1 + 1e-9)``). ``status == "optimal"`` without
``is_global`` is counted too.

Writes ``<out>/certificate_sweep.json`` and ``<out>/certificate_sweep.md`` atomically;
progress on stderr; exit status 1 when any false claim or false certificate was found.

Usage::

    convexrelu bench --suite certificate-sweep [--n-problems 10000] [--seed 0]
        [--out bench_out] [--n-fit N] [--max-n 30] [--jobs 2] [--generators a,b,...]

Problem ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` whatever ``--jobs``,
so a reported index replays exactly (``problem(seed, i, max_n)`` in this file).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

# one BLAS thread per worker process (set before numpy is imported)
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402


from convexrelu.experiments import adversarial as adv  # noqa: E402

import convexrelu as cr  # noqa: E402

RTOL = 1e-9
ATOL_SCALE = 1e-13
FIXED = "fixed"
MAX_EXAMPLES = 10  # failing examples kept per generator in the JSON
BETA_FRACTIONS = (0.05, 0.2, 0.5, 0.8, 0.9, 0.95, 0.99)


# =========================================================================== problems
def problem(seed, i, max_n, generators):
    """Problem ``i``: ``(generator, X, Z, zkind)`` from ``default_rng([seed, i])``."""
    rng = np.random.default_rng([seed, i])
    names = list(generators) + [FIXED]
    gname = names[i % len(names)]
    if gname == FIXED:
        fixed = sorted(adv.FIXED_CASES)
        case = adv.FIXED_CASES[fixed[(i // len(names)) % len(fixed)]]
        X = case["X"]
        if rng.random() < 0.5:
            return gname, X, case["Y"], "fixed"
        zkind = str(rng.choice(adv.Z_KINDS))
        return gname, X, adv.make_Z(rng, X, int(rng.integers(1, 4)), zkind), zkind
    n = int(rng.integers(3, max_n + 1))
    X = adv.GENERATORS[gname](rng, n)
    zkind = str(rng.choice(adv.Z_KINDS))
    Z = adv.make_Z(rng, X, int(rng.integers(1, 4)), zkind)
    return gname, X, Z, zkind


def fit_problem(seed, i, max_n, generators):
    """End-to-end problem ``i``: ``(generator, X, Y, beta, frac)``."""
    rng = np.random.default_rng([seed, 1_000_003, i])
    names = list(generators) + [FIXED]
    gname = names[i % len(names)]
    if gname == FIXED:
        fixed = sorted(adv.FIXED_CASES)
        case = adv.FIXED_CASES[fixed[(i // len(names)) % len(fixed)]]
        return gname, case["X"], case["Y"], case["beta"], None
    n = int(rng.integers(3, max_n + 1))
    X = adv.GENERATORS[gname](rng, n)
    Y = adv.make_Z(rng, X, int(rng.integers(1, 3)), str(rng.choice(["teacher", "int", "gauss"])))
    om, _ = adv.reference_omega(X, Y, rng)
    frac = float(rng.choice(BETA_FRACTIONS))
    return gname, X, Y, (frac * om if om > 0 else None), frac


def _scale(X, Z):
    return float(np.sum(np.linalg.norm(Z, axis=1) * np.linalg.norm(X, axis=1)))


def _lst(A):
    return np.asarray(A).tolist()


# =========================================================================== one oracle problem
def run_oracle(args):
    seed, i, max_n, generators = args
    gname, X, Z, zkind = problem(seed, i, max_n, generators)
    out = dict(i=i, gen=gname, n=X.shape[0], d=X.shape[1], c=Z.shape[1], zkind=zkind,
               status="ok", under=0.0, t_exact=0.0, t_ref=0.0)
    t = time.perf_counter()
    try:
        res = cr.omega(X, Z, oracle="exact")
        out["t_exact"] = time.perf_counter() - t
    except Exception as exc:  # noqa: BLE001 - recorded, not hidden
        out["t_exact"] = time.perf_counter() - t
        out["status"] = "refused" if isinstance(exc, ValueError) else "error"
        out["message"] = f"{type(exc).__name__}: {exc}"[:300]
        return out
    t = time.perf_counter()
    ref, u_ref = adv.reference_omega(X, Z, np.random.default_rng([seed, i, 7]))
    out["t_ref"] = time.perf_counter() - t
    atol = ATOL_SCALE * _scale(X, Z)
    # relative comparisons mean nothing at rounding level (Z almost orthogonal to every
    # (Xu)_+): those problems are counted as "tiny" and checked against atol only
    out["tiny"] = bool(ref <= 1e3 * atol)
    out["under"] = 0.0 if out["tiny"] or ref <= 0 else float((ref - res.value) / ref)
    attained = float(getattr(res, "attained", res.value))
    out["margin"] = (float((res.value - attained) / res.value)
                     if res.value > 0 and not out["tiny"] else 0.0)
    f_u = adv.f_value(X, Z, res.u)
    if res.kind != "exact" or res.pattern_scope != "exact":
        out["status"] = f"not exact ({res.kind}/{res.pattern_scope})"
    elif ref - res.value > RTOL * ref + atol:
        out["status"] = "false"
    elif abs(f_u - attained) > RTOL * attained + atol or res.value < attained - atol:
        out["status"] = "u mismatch"
    if out["status"] in ("false", "u mismatch"):
        out.update(X=_lst(X), Z=_lst(Z), exact=float(res.value), attained=attained,
                   exact_u=_lst(res.u), f_u=float(f_u), reference=float(ref),
                   reference_u=_lst(u_ref))
    return out


# =========================================================================== one fit problem
def run_fit(args):
    seed, i, max_n, generators = args
    gname, X, Y, beta, frac = fit_problem(seed, i, max_n, generators)
    out = dict(i=i, gen=gname, n=X.shape[0], d=X.shape[1], c=Y.shape[1], frac=frac,
               status="ok", t_fit=0.0, t_check=0.0)
    if beta is None:
        out["status"] = "skipped (Omega(Y) = 0)"
        return out
    t = time.perf_counter()
    try:
        res = cr.fit(X, Y, beta)
    except Exception as exc:  # noqa: BLE001
        out["t_fit"] = time.perf_counter() - t
        out["status"] = "refused" if isinstance(exc, ValueError) else "error"
        out["message"] = f"{type(exc).__name__}: {exc}"[:300]
        return out
    out["t_fit"] = time.perf_counter() - t
    cert = res.certificate
    out.update(is_global=bool(cert.is_global), fit_status=res.status)
    t = time.perf_counter()
    problems = []
    if res.status == "optimal" and not cert.is_global:
        problems.append("status 'optimal' without is_global")
    if cert.is_global:
        rng = np.random.default_rng([seed, i, 11])
        nets = adv.restarts(X, Y, beta, rng, n_random=1, start=(res.network.W1, res.network.W2))
        best = min(f for f, _, _ in nets)
        G = res.network.predict(X) - Y
        om_ref, _ = adv.reference_omega(X, G, rng)
        out.update(objective=float(res.objective), dual=float(cert.dual), best_restart=float(best),
                   omega_ref=float(om_ref), scale=float(cert.scale), beta=float(beta))
        if cert.dual > best * (1 + RTOL):
            problems.append("beaten: a restart is below the certified dual")
        if cert.scale * om_ref > beta * (1 + RTOL) + ATOL_SCALE * _scale(X, G):
            problems.append("infeasible dual point: scale * Omega_ref(G) > beta")
    out["t_check"] = time.perf_counter() - t
    if problems:
        out["status"] = "false"
        out["problems"] = problems
        out.update(X=_lst(X), Y=_lst(Y), beta=float(beta))
    return out


# =========================================================================== driver
def _map(fn, tasks, jobs, label, total):
    t0 = time.perf_counter()
    results = []
    bad = 0
    last = 0.0

    def progress(done, final=False):
        nonlocal last
        now = time.perf_counter()
        if not final and now - last < 0.5:
            return
        last = now
        el = now - t0
        eta = el / done * (total - done) if done else float("nan")
        sys.stderr.write(f"\r[{label}] {done}/{total}  false={bad}  elapsed {el:6.1f}s  "
                         f"eta {eta:6.1f}s   ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()

    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(jobs) as pool:
            for r in pool.imap_unordered(fn, tasks, chunksize=8):
                results.append(r)
                bad += r["status"] == "false"
                progress(len(results))
    else:
        for task in tasks:
            r = fn(task)
            results.append(r)
            bad += r["status"] == "false"
            progress(len(results))
    progress(len(results), final=True)
    results.sort(key=lambda r: r["i"])
    return results, time.perf_counter() - t0


def _summarise_oracle(results, names):
    rows = []
    for g in names:
        rs = [r for r in results if r["gen"] == g]
        if not rs:
            continue
        tried = sum(r["status"] not in ("refused", "error") for r in rs)
        rows.append(dict(
            generator=g, problems=len(rs), tried=tried,
            false_claims=sum(r["status"] == "false" for r in rs),
            max_underestimate=max((r["under"] for r in rs), default=0.0),
            max_overshoot=max((-r["under"] for r in rs), default=0.0),
            max_margin=max((r.get("margin", 0.0) for r in rs), default=0.0),
            u_mismatch=sum(r["status"] == "u mismatch" for r in rs),
            tiny=sum(bool(r.get("tiny")) for r in rs),
            refused=sum(r["status"] == "refused" for r in rs),
            errors=sum(r["status"] == "error" for r in rs),
            not_exact=sum(r["status"].startswith("not exact") for r in rs),
            time_exact=sum(r["t_exact"] for r in rs), time_reference=sum(r["t_ref"] for r in rs),
            max_n=max(r["n"] for r in rs),
            examples=[r for r in rs if r["status"] in ("false", "u mismatch", "error")][:MAX_EXAMPLES],
        ))
    return rows


def _summarise_fit(results, names):
    rows = []
    for g in names:
        rs = [r for r in results if r["gen"] == g]
        if not rs:
            continue
        rows.append(dict(
            generator=g, fits=len(rs), certified=sum(bool(r.get("is_global")) for r in rs),
            false_certificates=sum(r["status"] == "false" for r in rs),
            beaten=sum(any(p.startswith("beaten") for p in r.get("problems", [])) for r in rs),
            infeasible_dual=sum(any(p.startswith("infeasible") for p in r.get("problems", []))
                                for r in rs),
            optimal_without_proof=sum(any(p.startswith("status") for p in r.get("problems", []))
                                      for r in rs),
            refused=sum(r["status"] == "refused" for r in rs),
            errors=sum(r["status"] == "error" for r in rs),
            time_fit=sum(r["t_fit"] for r in rs), time_check=sum(r["t_check"] for r in rs),
            examples=[r for r in rs if r["status"] in ("false", "error")][:MAX_EXAMPLES],
        ))
    return rows


def _orow(r):
    return (f"| {r['generator']} | {r['problems']} | {r['tried']} | {r['false_claims']} | "
            f"{r['max_underestimate']:.3g} | {r['max_overshoot']:.3g} | {r['max_margin']:.3g} | "
            f"{r['u_mismatch']} | {r['tiny']} | {r['refused']} | {r['errors']} | {r['max_n']} | "
            f"{r['time_exact']:.2f} | {r['time_reference']:.2f} |")


def _markdown(meta, orows, frows):
    L = [f"# Certificate sweep ({meta['n_problems']} oracle problems, {meta['n_fit']} fits)", "",
         f"Command: `{meta['command']}`  ", f"convexrelu {meta['convexrelu']} from "
         f"`{meta['convexrelu_path']}`, git {meta['git']}; {meta['machine']}; "
         f"{meta['jobs']} job(s); wall {meta['wall_oracle']:.1f} s (oracle) + "
         f"{meta['wall_fit']:.1f} s (fits).", "",
         "## Exact oracle vs independent lower reference", "",
         "A false claim: exact Omega below the reference by more than 1e-9 relative. "
         "Underestimate = (reference - exact) / reference (<= 0: not below); overshoot = "
         "(exact - reference) / reference (how far the bound is above the best attained "
         "value found: tightness, not soundness); margin = (value - attained) / value, the "
         "rigorous allowance the oracle adds; *u mismatch*: the direction returned does "
         "not attain `attained`; *tiny*: Omega at rounding level (<= 1e-10 sum_i "
         "|z_i||x_i|), checked absolutely and left out of the relative columns. An "
         "underestimate above 1e-9 that is not a false claim lies within the absolute "
         "rounding slack 1e-13 sum_i |z_i||x_i| (Omega far below the size of its terms).", "",
         "| generator | problems | tried | false claims | max underestimate | max overshoot | "
         "max margin | u mismatch | tiny | refused | errors | max n | exact time (s) | "
         "reference time (s) |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    tot = dict(problems=0, tried=0, false_claims=0, u_mismatch=0, tiny=0, refused=0, errors=0,
               time_exact=0.0, time_reference=0.0, max_underestimate=-np.inf,
               max_overshoot=-np.inf, max_margin=0.0, max_n=0)
    maxkeys = ("max_underestimate", "max_overshoot", "max_margin", "max_n")
    for r in orows:
        L.append(_orow(r))
        for k in tot:
            tot[k] = max(tot[k], r[k]) if k in maxkeys else tot[k] + r[k]
    L.append(_orow(dict(tot, generator="**all**")))
    L += ["", "## End-to-end `fit` + `certify` vs non-convex restarts", "",
          "A false certificate: `is_global` and a restart below the certified dual, or the "
          "scaled dual point infeasible against the reference Omega; also `status='optimal'` "
          "without `is_global`.", "",
          "| generator | fits | certified | false certificates | beaten | infeasible dual | "
          "optimal w/o proof | refused | errors | fit time (s) | check time (s) |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ft = dict(fits=0, certified=0, false_certificates=0, beaten=0, infeasible_dual=0,
              optimal_without_proof=0, refused=0, errors=0, time_fit=0.0, time_check=0.0)
    for r in frows:
        L.append(f"| {r['generator']} | {r['fits']} | {r['certified']} | "
                 f"{r['false_certificates']} | {r['beaten']} | {r['infeasible_dual']} | "
                 f"{r['optimal_without_proof']} | {r['refused']} | {r['errors']} | "
                 f"{r['time_fit']:.2f} | {r['time_check']:.2f} |")
        for k in ft:
            ft[k] += r[k]
    L.append(f"| **all** | {ft['fits']} | {ft['certified']} | {ft['false_certificates']} | "
             f"{ft['beaten']} | {ft['infeasible_dual']} | {ft['optimal_without_proof']} | "
             f"{ft['refused']} | {ft['errors']} | {ft['time_fit']:.2f} | {ft['time_check']:.2f} |")
    L += ["", "Failing examples (X, Z, values, directions) are in the JSON; problem `i` of "
          "generator `g` replays with `problem(seed, i, max_n, generators)` / "
          "`fit_problem(...)` in `convexrelu.experiments.suites.certificate_sweep`.", ""]
    return "\n".join(L), tot, ft


def _write_atomic(path, text):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _git_rev():
    from convexrelu.experiments._common import git_revision

    return git_revision()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-problems", type=int, default=10000, help="oracle problems (default 10000)")
    p.add_argument("--n-fit", type=int, default=None,
                   help="end-to-end fit + certify runs (default n_problems // 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench_out", help="output folder (default bench_out/)")
    p.add_argument("--max-n", type=int, default=30, help="largest n of an oracle problem (<= 40)")
    p.add_argument("--max-n-fit", type=int, default=16, help="largest n of a fit problem")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (default 2)")
    p.add_argument("--generators", default=None,
                   help="comma-separated subset of: " + ", ".join(sorted(adv.GENERATORS)))
    a = p.parse_args(argv)
    if a.n_problems < 1 or a.max_n < 3 or a.max_n_fit < 3 or a.jobs < 1:
        p.error("--n-problems, --jobs must be >= 1 and --max-n, --max-n-fit >= 3")
    gens = sorted(adv.GENERATORS) if a.generators is None else a.generators.split(",")
    unknown = [g for g in gens if g not in adv.GENERATORS]
    if unknown:
        p.error(f"unknown generator(s) {unknown}; choose from {sorted(adv.GENERATORS)}")
    n_fit = a.n_problems // 50 if a.n_fit is None else a.n_fit
    names = gens + [FIXED]

    import warnings

    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("convexrelu").setLevel(logging.ERROR)

    t0 = time.time()
    ores, wall_o = _map(run_oracle, [(a.seed, i, a.max_n, tuple(gens)) for i in range(a.n_problems)],
                        a.jobs, "oracle", a.n_problems)
    fres, wall_f = ([], 0.0)
    if n_fit > 0:
        fres, wall_f = _map(run_fit, [(a.seed, i, a.max_n_fit, tuple(gens)) for i in range(n_fit)],
                            a.jobs, "fit", n_fit)
    orows = _summarise_oracle(ores, names)
    frows = _summarise_fit(fres, names)
    meta = dict(
        command="convexrelu bench --suite certificate-sweep " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        n_problems=a.n_problems, n_fit=n_fit, seed=a.seed, max_n=a.max_n, max_n_fit=a.max_n_fit,
        jobs=a.jobs, generators=gens, rtol=RTOL, atol_scale=ATOL_SCALE,
        convexrelu=getattr(cr, "__version__", "?"), convexrelu_path=str(pathlib.Path(cr.__file__).parent),
        git=_git_rev(), numpy=np.__version__, python=platform.python_version(),
        machine=f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs",
        wall_oracle=wall_o, wall_fit=wall_f, started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0)),
    )
    md, tot, ft = _markdown(meta, orows, frows)
    doc = dict(meta=meta, oracle=orows, fit=frows, totals=dict(oracle=tot, fit=ft))
    out = pathlib.Path(a.out)
    _write_atomic(out / "certificate_sweep.json", json.dumps(doc, indent=1, default=float) + "\n")
    _write_atomic(out / "certificate_sweep.md", md)
    print(md)
    print(f"wrote {out / 'certificate_sweep.json'} and {out / 'certificate_sweep.md'}", file=sys.stderr)
    failed = tot["false_claims"] + ft["false_certificates"]
    if failed:
        print(f"FAIL: {tot['false_claims']} false oracle claims, {ft['false_certificates']} "
              "false certificates", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
