"""The exact Omega per oracle call: time and memory, route by route (issue 15, deliverable 1).

For each problem the default solver runs for ``--fit-time`` seconds with its proof step off
(as in ``--suite proofs``); at the residual ``Z`` of its network the exact
:math:`\\Omega(Z)` is computed by

``stream``
    :class:`~convexrelu.oracles.StreamingExactOracle` (ranks 3 to 5: every cell visited
    from its rays, nothing stored per cell), its first floor from the network's neurons;
``bnb``
    :class:`~convexrelu.oracles.BranchAndBoundOracle` with ``rtol=1e-9`` and no target
    (its regions crossed by few rows solved exactly), hinted the same way; exact when
    its search closes (``kind="exact"``), a proven upper bound otherwise;
``stored`` (``--stored``)
    :class:`~convexrelu.oracles.ExactOracle`, which builds and keeps every cell first.

Each in a child process forked after the imports and the fit, killed at ``--budget``
seconds: the set-up (the constructor) and the call are timed apart, and the memory is the
child's peak resident set (``ru_maxrss``: the imports, the data and the oracle) with,
beside it, the part above the child's resident set before the oracle was built (what the
oracle itself used). Single-threaded. Writes JSON and
a Markdown table.

Run: ``convexrelu bench --suite exact-calls``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time

from convexrelu.experiments._common import (
    git_revision,
    machine_info,
    single_threaded,
    write_page,
)

PROBLEMS = ("iris", "planted5")
#: ``--quick``: one small rank-3 problem (a smoke run: seconds)
QUICK = "planted3"
ROUTES = ("stream", "bnb")


def load(name):
    """``(X, Y, note)``."""
    if name == QUICK:
        from convexrelu.datasets import planted

        X, Y, _ = planted(n=25, d=3, c=2, seed=0)
        return X, Y, "planted(n=25, d=3, c=2, seed=0)"
    if name == "planted5":
        from convexrelu.datasets import planted

        X, Y, _ = planted(n=80, d=5, c=3, seed=0)
        return X, Y, "planted(n=80, d=5, c=3, seed=0)"
    from convexrelu.experiments.suites.real import load_problem

    X, Y, prep = load_problem(name)
    return X, Y, prep


def _rss_mb() -> float:
    """This process's resident set now, in MB (Linux ``/proc``; NaN elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return float("nan")


def _child(route, X, G, W1, q):
    from convexrelu.oracles import BranchAndBoundOracle, ExactOracle, StreamingExactOracle

    base = _rss_mb()  # the child's resident set before the oracle
    try:
        t = time.perf_counter()
        if route == "stream":
            orc = StreamingExactOracle(X)
        elif route == "bnb":
            orc = BranchAndBoundOracle(X, rtol=1e-9, time_limit=1e9)
        else:
            orc = ExactOracle(X, max_patterns=1e12)
        if hasattr(orc, "hint") and route != "stored":
            orc.hint(W1)
        t1 = time.perf_counter()
        res = orc(G)
        t2 = time.perf_counter()
    except Exception as exc:  # the refusal is the result
        q.put(dict(error=f"{type(exc).__name__}: {exc}"[:200]))
        return
    st = getattr(orc, "last_stats", {}) or {}
    q.put(dict(value=res.value, attained=res.attained, margin=res.margin, kind=res.kind,
               setup=t1 - t, call=t2 - t1,
               peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, base_mb=base,
               cells=st.get("cells"), regions=st.get("regions"), exact=st.get("exact")))


def run_route(route, X, G, W1, budget):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(route, X, G, W1, q))
    p.start()
    p.join(budget)
    if p.is_alive():
        p.kill()
        p.join()
        return dict(route=route, status=f"no result within {budget:.0f} s")
    if q.empty():
        return dict(route=route, status="failed (no result; memory?)")
    r = q.get()
    if "error" in r:
        return dict(route=route, status="refused (" + r["error"] + ")")
    return dict(r, route=route, status=r["kind"], above_mb=r["peak_mb"] - r["base_mb"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="convexrelu bench --suite exact-calls", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=120.0,
                    help="seconds per route and problem before the child is killed (default 120)")
    ap.add_argument("--fit-time", type=float, default=15.0,
                    help="seconds of the default solver before the routes (default 15)")
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--fractions", default="0.1,0.01")
    ap.add_argument("--stored", action="store_true", help="also the stored ExactOracle")
    ap.add_argument("--quick", action="store_true",
                    help=f"one small rank-3 problem ({QUICK}) with a 2 s fit, instead of "
                         "--problems")
    ap.add_argument("--out", default="docs/bench/exact_calls")
    args = ap.parse_args(argv)
    with single_threaded():
        return _run(args, ap)


def _run(args, ap) -> int:
    problems = [p for p in args.problems.split(",") if p]
    if args.quick:
        problems, args.fit_time = [QUICK], min(args.fit_time, 2.0)
    for p in problems:
        if args.quick:
            break
        if p not in PROBLEMS:
            ap.error(f"unknown problem {p!r}; choose from {', '.join(PROBLEMS)}")
    import warnings

    import convexrelu as cr
    from convexrelu.experiments.suites.real import estimate_lambda_max
    from convexrelu.solvers import ConditionalGradient

    routes = list(ROUTES) + (["stored"] if args.stored else [])
    rows = []
    t_all = time.perf_counter()
    for name in problems:
        X, Y, note = load(name)
        lam = estimate_lambda_max(X, Y)
        for frac in [float(f) for f in args.fractions.split(",") if f]:
            beta = frac * lam
            solver = ConditionalGradient(prove=False, time_limit=args.fit_time, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = cr.fit(X, Y, beta, solver=solver).network
            G = net.predict(X) - Y
            row = dict(problem=name, fraction=frac, beta=beta, n=X.shape[0], d=X.shape[1],
                       c=Y.shape[1], note=note, neurons=net.n_neurons, routes={})
            print(f"{name} {frac} lambda_max: {net.n_neurons} neurons", flush=True)
            for route in routes:
                out = run_route(route, X, G, net.W1, args.budget)
                row["routes"][route] = out
                print(f"   {route:7s} {out['status']}: "
                      + (f"Omega/beta {out['value'] / beta:.12f}, set-up {out['setup']:.2f} s, "
                         f"call {out['call']:.2f} s, peak {out['peak_mb']:.0f} MB "
                         f"({out['above_mb']:.0f} above its start)" if "value" in out else ""),
                      flush=True)
            vals = [o["value"] for o in row["routes"].values() if "value" in o]
            if len(vals) > 1:
                row["spread"] = (max(vals) - min(vals)) / max(vals)
            rows.append(row)
    result = dict(suite="exact-calls", budget=args.budget, fit_time=args.fit_time,
                  revision=git_revision(), machine=machine_info(), rows=rows,
                  total_seconds=time.perf_counter() - t_all)
    write_page(args.out, result, markdown)
    return 0


def _cell(o):
    if o is None:
        return "—"
    if "value" not in o:
        return o["status"]
    work = ""
    if o.get("cells") is not None:
        work = f"; {o['cells']:,} cells"
    elif o.get("regions") is not None:
        work = f"; {o['regions']:,} regions, {o.get('exact') or 0:,} solved exactly"
    kind = "" if o["kind"] == "exact" else f" ({o['kind']})"
    return (f"{o['call']:.2f} s{kind} (+{o['setup']:.2f} s set-up), {o['peak_mb']:.0f} MB "
            f"({o['above_mb']:.0f} above){work}")


def markdown(result) -> str:
    routes = []
    for row in result["rows"]:
        routes += [r for r in row["routes"] if r not in routes]
    names = {"stream": "streamed enumeration", "bnb": "branch and bound, rtol 1e-9",
             "stored": "stored enumeration"}
    lines = [
        "# The exact Omega per oracle call (issue 15, deliverable 1)", "",
        f"Revision {result['revision']}; the network is the default solver's after "
        f"{result['fit_time']:.0f} s (its proof step off); each route in a child process "
        f"forked after the fit, killed at {result['budget']:.0f} s. Cells: the call's seconds "
        "(the constructor's beside it), the child's peak resident set and the part above its "
        "resident set before the oracle, the work done. `spread`: the largest relative difference "
        "between the routes' values (each an outward-rounded upper bound). Single-threaded.",
        "",
        "| problem | n × d, c | β | " + " | ".join(names.get(r, r) for r in routes)
        + " | spread |",
        "|---|---|---|" + "---|" * len(routes) + "---|",
    ]
    for row in result["rows"]:
        sp = row.get("spread")
        lines.append(f"| {row['problem']} | {row['n']} × {row['d']}, {row['c']} | "
                     f"{row['fraction']} λmax | "
                     + " | ".join(_cell(row["routes"].get(r)) for r in routes)
                     + f" | {'—' if sp is None else f'{sp:.1e}'} |")
    import json

    lines += ["", f"Total {result['total_seconds']:.0f} s. Machine: "
              f"{json.dumps(result['machine'])}", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
