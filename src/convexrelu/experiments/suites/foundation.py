#!/usr/bin/env python
r"""Benchmark of the foundation layer: sign patterns and the cone-constrained PCA oracle.

Two sections, each comparing the exact method with its cheap alternative in the same run:

1. **Sign patterns.** Exact enumeration ``SignPatterns.enumerate(X)`` for Gaussian ``X``
   against random sampling ``SignPatterns.sample(X, 10 * P)`` (``P`` = exact count):
   time, count, the bound :math:`2r(e(n-1)/r)^r`, the general-position count
   :math:`2\sum_{k<r}\binom{n-1}{k}`, and how many exact patterns sampling found.
2. **Oracle.** :math:`\Omega(Z) = \max_{\|u\|\le 1}\|Z^\top (Xu)_+\|` by
   ``ExactOracle`` (setup and per-call time), ``HeuristicOracle`` (per-call time,
   value relative to exact) and brute force over many unit directions (d = 2: an
   angle grid; d = 3: random directions). The exact value is a maximum over all ``u``,
   so it must never be below the brute-force value (``(exact - brute)/exact >= -1e-12``)
   nor below the heuristic value (which is attained by a direction).

Writes ``<out>/foundation.json`` and ``<out>/foundation.md`` (default ``bench_out/``)
and prints the Markdown tables. Usage::

    convexrelu bench --suite foundation            # full sizes
    convexrelu bench --suite foundation --quick    # smaller sizes
    convexrelu bench --suite foundation --out DIR --seed 0
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy

import convexrelu
from convexrelu.experiments._common import git_revision
from convexrelu.oracles import ExactOracle, HeuristicOracle
from convexrelu.patterns import SignPatterns, pattern_bound

# --------------------------------------------------------------------------- settings
FULL_PATTERN_CASES = [(100, 2), (1000, 2), (10000, 2), (50, 3), (200, 3)]
QUICK_PATTERN_CASES = [(100, 2), (1000, 2), (50, 3)]
# the largest case of each dimension is timed once
LARGEST_PATTERN_CASES = {(10000, 2), (200, 3)}
FULL_ORACLE_CASES = [(1000, 2, 10), (200, 3, 5)]
QUICK_ORACLE_CASES = [(1000, 2, 10), (50, 3, 5)]

PATTERN_REPEATS = 5  # enumerate / sample repeats when cheap
CHEAP_S = 1.0  # a first run longer than this is not repeated
ORACLE_CALLS = 5  # per-call timings (median of these)
BRUTE_ANGLES_2D = 100_000
BRUTE_DIRS_3D = 200_000
BRUTE_CHUNK = 10_000
NONNEG_TOL = -1e-12  # (exact - brute)/exact must be >= this


# --------------------------------------------------------------------------- helpers
def _timed(fn, repeats: int, cheap_s: float = CHEAP_S):
    """Run ``fn`` up to ``repeats`` times (once if the first run exceeds ``cheap_s``).

    Returns (last result, list of wall times in seconds).
    """
    times = []
    out = None
    for i in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if i == 0 and times[0] > cheap_s:
            break
    return out, times


def _general_position_count(n: int, r: int) -> int:
    """Cells of ``n`` central hyperplanes in general position in R^r: 2 sum_{k<r} C(n-1, k)."""
    return 2 * sum(math.comb(n - 1, k) for k in range(r))


def _pattern_keys(pats: np.ndarray) -> set[bytes]:
    packed = np.packbits(pats, axis=1)
    return {row.tobytes() for row in packed}


def _sample_patterns(X, n_samples: int, rng, mem_budget_bytes: int):
    """``SignPatterns.sample`` in as few calls as the memory budget allows; union of patterns.

    ``SignPatterns.sample`` materialises an ``(n_samples, n)`` float64 matrix (plus a
    bool copy), so very large requests are split into chunks drawn from the same
    generator (the union has the same distribution as one call). Returns
    (packed unique patterns (k, ceil(n/8)) uint8, number of calls).
    """
    n = X.shape[0]
    per_sample = 9 * n + 16  # float64 product + bool patterns + slack
    chunk = max(1, min(n_samples, mem_budget_bytes // per_sample))
    packed = []
    calls = 0
    done = 0
    while done < n_samples:
        k = min(chunk, n_samples - done)
        sp = SignPatterns.sample(X, k, random_state=rng)
        packed.append(np.packbits(sp.patterns, axis=1))
        done += k
        calls += 1
    allp = packed[0] if calls == 1 else np.unique(np.concatenate(packed), axis=0)
    return allp, calls


def _relu_omega_sq(X, Z, U):
    """``||Z^T (X u)_+||^2`` for each row ``u`` of ``U`` (shape (q, d))."""
    A = X @ U.T
    np.maximum(A, 0.0, out=A)
    G = Z.T @ A
    return np.einsum("cq,cq->q", G, G)


def _brute_force(X, Z, d: int, rng, chunk: int = BRUTE_CHUNK):
    """Max of ``||Z^T (X u)_+||`` over a fixed set of unit directions, vectorised in chunks."""
    if d == 2:
        q = BRUTE_ANGLES_2D
        desc = f"grid of {q} angles"
        theta = np.arange(q) * (2.0 * np.pi / q)
        U_all = np.column_stack([np.cos(theta), np.sin(theta)])
    elif d == 3:
        q = BRUTE_DIRS_3D
        desc = f"{q} random unit directions"
        U_all = rng.standard_normal((q, d))
        U_all /= np.linalg.norm(U_all, axis=1, keepdims=True)
    else:
        raise ValueError(f"brute force is defined here for d in (2, 3); got d={d}")

    def run():
        best = -1.0
        best_u = None
        for start in range(0, q, chunk):
            U = U_all[start:start + chunk]
            vals = _relu_omega_sq(X, Z, U)
            j = int(np.argmax(vals))
            if vals[j] > best:
                best, best_u = float(vals[j]), U[j]
        return math.sqrt(max(best, 0.0)), best_u

    return run, desc, q


def _med(ts):
    return float(statistics.median(ts))



def machine_info() -> dict:
    info = {
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "convexrelu": getattr(convexrelu, "__version__", None),
        "git": git_revision(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import threadpoolctl

        info["threadpoolctl"] = [
            {k: v for k, v in lib.items() if k in ("user_api", "internal_api", "prefix", "version",
                                                     "num_threads", "threading_layer", "architecture")}
            for lib in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        info["threadpoolctl"] = None
    return info


# --------------------------------------------------------------------------- sections
def bench_patterns(cases, seed: int, mem_budget_bytes: int, log) -> list[dict]:
    # data and sampling seeds depend on (seed, n, d) only: --quick and full runs agree
    rows = []
    for n, d in cases:
        rng = np.random.default_rng([seed, 1, n, d])
        X = rng.standard_normal((n, d))
        reps = 1 if (n, d) in LARGEST_PATTERN_CASES else PATTERN_REPEATS
        sp, t_enum = _timed(lambda: SignPatterns.enumerate(X), reps)
        P = sp.n_patterns
        r = sp.rank
        exact_keys = _pattern_keys(sp.patterns)
        n_samples = 10 * P
        sample_rng_seed = [seed, 2, n, d]
        last = {}

        def do_sample():
            packed, calls = _sample_patterns(X, n_samples, np.random.default_rng(sample_rng_seed),
                                             mem_budget_bytes)
            last["calls"] = calls
            return packed

        packed, t_samp = _timed(do_sample, reps)
        samp_keys = {row.tobytes() for row in packed}
        found = len(samp_keys & exact_keys)
        extra = len(samp_keys - exact_keys)
        row = {
            "n": n, "d": d, "rank": r,
            "exact_count": P,
            "general_position_count": _general_position_count(n, r),
            "bound": pattern_bound(n, r),
            "enum_time_s": _med(t_enum), "enum_times_s": t_enum,
            "n_samples": n_samples,
            "sample_calls": last["calls"],
            "sample_time_s": _med(t_samp), "sample_times_s": t_samp,
            "sampled_distinct": len(samp_keys),
            "sampled_found_exact": found,
            "sampled_found_frac": found / P if P else float("nan"),
            "sampled_not_in_exact": extra,
            "time_ratio_sample_over_enum": _med(t_samp) / _med(t_enum),
        }
        rows.append(row)
        log(f"  patterns n={n} d={d}: P={P} enum {row['enum_time_s']:.4g}s x{len(t_enum)}; "
            f"sample {n_samples} in {row['sample_time_s']:.4g}s x{len(t_samp)} "
            f"({last['calls']} call(s)), found {found}/{P}, not-in-exact {extra}")
    return rows


def bench_oracles(cases, seed: int, log) -> list[dict]:
    rows = []
    for n, d, c in cases:
        rng = np.random.default_rng([seed, 3, n, d, c])
        X = rng.standard_normal((n, d))
        Z = rng.standard_normal((n, c))

        # exact: setup (includes enumeration) and per-call
        ex, t_setup = _timed(lambda: ExactOracle(X), 3)
        t_calls, t_internal = [], []
        res = None
        for _ in range(ORACLE_CALLS):
            t0 = time.perf_counter()
            res = ex(Z)
            t_calls.append(time.perf_counter() - t0)
            t_internal.append(res.time)
        exact_val = res.value
        u = np.asarray(res.u, dtype=float)
        recomputed = math.sqrt(float(_relu_omega_sq(X, Z, u[None, :] / np.linalg.norm(u))[0]))

        # heuristic: setup and per-call
        ho, t_hsetup = _timed(lambda: HeuristicOracle(X, random_state=0), 3)
        t_hcalls = []
        hres = None
        for _ in range(ORACLE_CALLS):
            ho._last = None  # the oracle caches its last residual: time a fresh search
            t0 = time.perf_counter()
            hres = ho(Z)
            t_hcalls.append(time.perf_counter() - t0)
        heur_val = hres.value

        # brute force
        brute_run, brute_desc, q = _brute_force(X, Z, d, np.random.default_rng([seed, 4, n, d, c]))
        (brute_val, _), t_brute = _timed(brute_run, 3)

        rel_brute = (exact_val - brute_val) / exact_val
        rel_heur = (exact_val - heur_val) / exact_val
        row = {
            "n": n, "d": d, "c": c,
            "n_patterns": ex.n_patterns,
            "n_regions": ex.n_regions,
            "exact_setup_s": _med(t_setup), "exact_setup_times_s": t_setup,
            "exact_call_s": _med(t_calls), "exact_call_times_s": t_calls,
            "exact_call_internal_s": _med(t_internal),
            "exact_value": exact_val,
            "exact_attained": res.attained,
            "exact_value_recomputed_from_u": recomputed,
            "heuristic_setup_s": _med(t_hsetup),
            "heuristic_call_s": _med(t_hcalls), "heuristic_call_times_s": t_hcalls,
            "heuristic_value": heur_val,
            "heuristic_n_patterns": ho.n_patterns,
            "heuristic_over_exact": heur_val / exact_val,
            "rel_exact_minus_heuristic": rel_heur,
            "brute_method": brute_desc,
            "brute_n_directions": q,
            "brute_time_s": _med(t_brute), "brute_times_s": t_brute,
            "brute_value": brute_val,
            "rel_exact_minus_brute": rel_brute,
            "exact_ge_brute": rel_brute >= NONNEG_TOL,
            "exact_ge_heuristic": rel_heur >= NONNEG_TOL,
            "ratio_brute_over_exact_call": _med(t_brute) / _med(t_calls),
            "ratio_brute_over_exact_setup_plus_call": _med(t_brute) / (_med(t_setup) + _med(t_calls)),
            "ratio_heuristic_over_exact_call": _med(t_hcalls) / _med(t_calls),
        }
        rows.append(row)
        log(f"  oracle n={n} d={d} c={c}: exact {exact_val:.10g} (setup {row['exact_setup_s']:.4g}s, "
            f"call {row['exact_call_s']:.4g}s); heuristic {heur_val:.10g} ({row['heuristic_call_s']:.4g}s); "
            f"brute {brute_val:.10g} ({row['brute_time_s']:.4g}s); (exact-brute)/exact = {rel_brute:.3e}")
        if not row["exact_ge_brute"] or not row["exact_ge_heuristic"]:
            log(f"  !! EXACT ORACLE BELOW A LOWER ESTIMATE for n={n} d={d} c={c} seed={seed}: "
                f"exact={exact_val!r} brute={brute_val!r} heuristic={heur_val!r}")
    return rows


# --------------------------------------------------------------------------- output
def _fmt_t(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(result: dict) -> str:
    m = result["machine"]
    out = [f"# convexrelu foundation benchmark ({'quick' if result['quick'] else 'full'})", ""]
    out.append(f"seed {result['seed']}, total wall time {result['wall_time_s']:.2f} s, "
               f"{m['timestamp']}, git {m['git'].get('commit', '?')}"
               f"{' (dirty)' if m['git'].get('dirty') else ''}")
    out.append("")
    out.append("## 1. Sign patterns: exact enumeration vs sampling (X ~ N(0,1), sampling uses 10 x P directions)")
    out.append("")
    hdr = ["n", "d", "r", "P exact", "P gen. pos.", "bound 2r(e(n-1)/r)^r", "enumerate", "reps",
           "n_samples", "sample", "calls", "found / P", "not in exact", "sample / enumerate"]
    rows = []
    for r in result["patterns"]:
        rows.append([r["n"], r["d"], r["rank"], r["exact_count"], r["general_position_count"],
                     f"{r['bound']:.4g}", _fmt_t(r["enum_time_s"]), len(r["enum_times_s"]),
                     r["n_samples"], _fmt_t(r["sample_time_s"]), r["sample_calls"],
                     f"{r['sampled_found_exact']} ({100 * r['sampled_found_frac']:.2f} %)",
                     r["sampled_not_in_exact"], f"{r['time_ratio_sample_over_enum']:.2f}"])
    out.append(_table(hdr, rows))
    out.append("")
    out.append("## 2. Oracle Omega(Z) = max_{|u|<=1} |Z^T (Xu)_+|: exact vs heuristic vs brute force "
               f"(X, Z ~ N(0,1); per-call = median of {ORACLE_CALLS})")
    out.append("")
    hdr = ["n", "d", "c", "P", "cells+faces+rays", "exact setup", "exact call", "exact value",
           "heur. call", "(exact-heur.)/exact", "brute", "brute time", "(exact-brute)/exact",
           "brute / exact call", "brute / (setup+call)", "heur. / exact call"]
    rows = []
    for r in result["oracles"]:
        rows.append([r["n"], r["d"], r["c"], r["n_patterns"], r["n_regions"],
                     _fmt_t(r["exact_setup_s"]), _fmt_t(r["exact_call_s"]), f"{r['exact_value']:.10g}",
                     _fmt_t(r["heuristic_call_s"]),
                     f"{r['rel_exact_minus_heuristic']:.3e}" + ("" if r["exact_ge_heuristic"] else " **BUG**"),
                     r["brute_method"], _fmt_t(r["brute_time_s"]),
                     f"{r['rel_exact_minus_brute']:.3e}" + ("" if r["exact_ge_brute"] else " **BUG**"),
                     f"{r['ratio_brute_over_exact_call']:.1f}",
                     f"{r['ratio_brute_over_exact_setup_plus_call']:.2f}",
                     f"{r['ratio_heuristic_over_exact_call']:.2f}"])
    out.append(_table(hdr, rows))
    out.append("")
    out.append("## 3. Machine")
    out.append("")
    rows = [[k, m.get(k)] for k in ("platform", "cpu_model", "cpu_count", "cpu_affinity", "python",
                                    "numpy", "scipy", "convexrelu", "loadavg_at_start", "loadavg")]
    for lib in m.get("threadpoolctl") or []:
        rows.append([f"threadpool {lib.get('internal_api')}",
                     f"{lib.get('num_threads')} threads, {lib.get('version')}, {lib.get('prefix')}"])
    out.append(_table(["item", "value"], rows))
    out.append("")
    return "\n".join(out)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    return obj


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_out", help="output folder (default: bench_out)")
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes: skip n=10000 (d=2) and n=200 (d=3); oracle d=3 at n=50")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--sample-mem-mb", type=int, default=1024,
                   help="memory budget per SignPatterns.sample call; larger requests are split "
                        "into several calls (default 1024)")
    args = p.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    # warm-up (imports, BLAS threads, first-call overheads), untimed
    Xw = np.random.default_rng(12345).standard_normal((20, 2))
    ExactOracle(Xw)(np.ones((20, 1)))
    HeuristicOracle(Xw, random_state=0)(np.ones((20, 1)))
    SignPatterns.sample(Xw, 10, random_state=0)

    log("section 1: sign patterns")
    pat = bench_patterns(QUICK_PATTERN_CASES if args.quick else FULL_PATTERN_CASES, args.seed,
                         args.sample_mem_mb << 20, log)
    log("section 2: oracles")
    orc = bench_oracles(QUICK_ORACLE_CASES if args.quick else FULL_ORACLE_CASES, args.seed, log)
    wall = time.perf_counter() - t_start

    result = {
        "benchmark": "foundation",
        "quick": bool(args.quick),
        "seed": args.seed,
        "argv": sys.argv,
        "wall_time_s": wall,
        "settings": {
            "pattern_repeats": PATTERN_REPEATS, "cheap_s": CHEAP_S, "oracle_calls": ORACLE_CALLS,
            "brute_angles_2d": BRUTE_ANGLES_2D, "brute_dirs_3d": BRUTE_DIRS_3D,
            "sample_mem_mb": args.sample_mem_mb, "nonneg_tol": NONNEG_TOL,
        },
        "machine": {**machine_info(), "loadavg_at_start": load_start},
        "patterns": pat,
        "oracles": orc,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "foundation.json").write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    md = to_markdown(result)
    (out / "foundation.md").write_text(md)
    print(md)
    log(f"wrote {out / 'foundation.json'} and {out / 'foundation.md'} ({wall:.1f} s)")
    bad = [r for r in orc if not (r["exact_ge_brute"] and r["exact_ge_heuristic"])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
