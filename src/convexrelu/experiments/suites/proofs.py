"""Issue 15's table: proven optimality on real tabular data, route by route.

For each problem (scikit-learn's iris, diabetes, wine and breast cancer, standardised as in
``--suite real``, at beta = 0.1 and 0.01 x the estimated lambda_max; a planted d = 6,
n = 500 problem; the paper's §5.1 problem and the spiral) the default solver is run for
``--fit-time`` seconds with its own proof step switched off (``prove=False``), and the
residual of the network it returns is then handed to each route, each with ``--budget``
seconds, one at a time, single-threaded:

``enumeration``
    exact enumeration, in a child process killed at the budget: for ranks 3 to 5
    :class:`~convexrelu.oracles.StreamingExactOracle` (cells visited from their rays,
    nothing stored; the network's neurons set its first floor), for ranks 1 and 2
    :class:`~convexrelu.oracles.ExactOracle` (one angular sweep), refused above rank 5;
``bnb``
    :class:`~convexrelu.oracles.BranchAndBoundOracle` with ``target`` the largest bound on
    Omega that still certifies at ``--tol`` (:func:`~convexrelu.certificates.omega_for_tol`,
    a little above beta: the question is whether the gap is within ``--tol``);
``scip``
    :class:`~convexrelu.oracles.scip.SCIPOracle` (when ``pyscipopt`` is installed).

``--routes fit`` adds the user's view: the default ``fit`` from scratch, with its own
proof step, ``time_limit = --budget`` and ``tol = --tol``: its status, proven gap and time.

Each cell: the proven relative gap of the network's certificate from that route's bound
(``certificate_from_oracle``), the seconds it took, whether it proved optimality at
``--tol``, and the regions (bnb) or nodes (SCIP) explored; beside them the spectral bound's
proven gap. Writes JSON and a Markdown table.

Run: ``convexrelu bench --suite proofs -- --budget 60``. Runs with other budgets, routes or
problems (``--out`` to separate files) are put on one page, a table per budget, with
``convexrelu bench --suite proofs -- --merge A.json B.json ... --out docs/bench/proofs``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import numpy as np

from convexrelu.experiments._common import (
    git_revision,
    machine_info,
    single_threaded,
    write_page,
)

PROBLEMS = ("iris", "diabetes", "wine", "breast_cancer", "planted6", "sec5.1", "spiral")
ROUTES = ("enumeration", "bnb", "scip")
#: Not a route on the fixed network: the default ``fit`` from scratch with its own proof
#: step (branch and bound, which adds the directions the estimate missed), ``--budget``
#: as its ``time_limit``.
FIT_ROUTE = "fit"


def load(name):
    """``(X, Y, beta_or_None, note)``; None: beta is a fraction of lambda_max."""
    from convexrelu.datasets import planted, spiral

    if name == "planted6":
        X, Y, _ = planted(n=500, d=6, c=3, seed=0)
        return X, Y, None, "planted(n=500, d=6, c=3, seed=0)"
    if name == "sec5.1":
        X, Y, _ = planted(seed=0)
        return X, Y, 1e-2, "paper §5.1: planted n=25, d=2, c=5, beta=1e-2"
    if name == "spiral":
        X, Y, _ = spiral(n_per_class=20, seed=0)
        return X, Y, 1e-2, "3-class spiral, 20 per class, beta=1e-2"
    from convexrelu.experiments.suites.real import load_problem

    X, Y, prep = load_problem(name)
    return X, Y, None, prep


def _exact_child(X, G, q, W1=None):
    from convexrelu.oracles import ExactOracle, StreamingExactOracle
    from convexrelu.problem import as_problem

    t = time.perf_counter()
    try:
        r = as_problem(X).rank
        if 3 <= r <= 5:
            orc = StreamingExactOracle(X)
            if W1 is not None:
                orc.hint(W1)
        elif r > 5:
            raise ValueError(f"rank {r} is above 5, the largest that is streamed")
        else:
            orc = ExactOracle(X, max_patterns=1e12)
        res = orc(G)
    except Exception as exc:  # the refusal (too many patterns) is the result
        q.put(dict(error=f"{type(exc).__name__}: {str(exc).split(':')[0]}"))
        return
    q.put(dict(value=res.value, attained=res.attained, margin=res.margin, u=list(res.u),
               time=time.perf_counter() - t, patterns=orc.n_patterns,
               cells=getattr(orc, "last_stats", {}).get("cells")))


def run_route(route, X, Y, G, beta, net, budget, tol):
    import convexrelu as cr
    from convexrelu.certificates import certificate_from_oracle
    from convexrelu.losses import get_loss
    from convexrelu.oracles import BranchAndBoundOracle, OracleResult

    loss = get_loss("squared")
    primal = float(net.objective(X, Y, beta))
    t0 = time.perf_counter()
    out = dict(route=route)
    if route == "enumeration":
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_exact_child, args=(X, G, q, net.W1))
        p.start()
        p.join(budget)
        if p.is_alive():
            p.kill()
            p.join()
            return dict(out, status=f"no result within {budget:.0f} s", time=None)
        if q.empty():
            return dict(out, status="failed (no result; memory?)", time=None)
        r = q.get()
        if "error" in r:
            return dict(out, status="refused (" + r["error"] + ")", time=None)
        res = OracleResult(r["value"], np.array(r["u"]), r["attained"], "exact", "exact",
                           r["patterns"], r["time"], r["margin"])
        out.update(patterns=r["patterns"])
        if r.get("cells") is not None:
            out.update(cells=r["cells"])
    elif route == "bnb":
        from convexrelu.certificates import omega_for_tol

        # regions below the Omega that certifies at tol need no refinement
        target = omega_for_tol(primal, G, Y, beta, loss, tol)
        out.update(target_over_beta=target / beta)
        orc = BranchAndBoundOracle(X, time_limit=budget, target=target, rtol=1e-7)
        orc.hint(net.W1)
        res = orc(G)
        out.update(regions=orc.last_stats["regions"], stopped=orc.last_stats["stopped"])
    elif route == FIT_ROUTE:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = cr.fit(X, Y, beta, time_limit=budget, tol=tol, random_state=0)
        c = fit.certificate
        return dict(out, status="proved" if c.is_global else fit.status, time=fit.time,
                    rel_gap=c.rel_gap, is_global=bool(c.is_global), fit_status=fit.status,
                    objective=fit.objective, bound_source=c.bound_source,
                    prove_seconds=fit.info.get("time_breakdown", {}).get("prove"))
    elif route == "scip":
        try:
            from convexrelu.oracles.scip import SCIPOracle
        except ImportError:
            return dict(out, status="pyscipopt not installed", time=None)
        orc = SCIPOracle(X, time_limit=budget)
        res = orc(G)
        out.update(nodes=orc.last_stats["nodes"], scip_status=orc.last_stats["status"],
                   source=res.source)
    else:
        raise ValueError(route)
    elapsed = time.perf_counter() - t0
    cert = certificate_from_oracle(primal, G, Y, beta, loss, res, tol, t0, X=X)
    out.update(status="proved" if cert.is_global else "bound", time=elapsed,
               omega_over_beta=res.value / beta, attained_over_beta=res.attained / beta,
               rel_gap=cert.rel_gap, is_global=bool(cert.is_global), margin=res.margin)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="convexrelu bench --suite proofs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per route (default 60)")
    ap.add_argument("--fit-time", type=float, default=20.0,
                    help="seconds of the default solver before the routes (default 20)")
    ap.add_argument("--tol", type=float, default=1e-4, help="rel_gap that counts as a proof")
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--routes", default=",".join(ROUTES))
    ap.add_argument("--fractions", default="0.1,0.01")
    ap.add_argument("--out", default="docs/bench/proofs")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="run nothing: combine the JSON files of earlier runs into one page "
                         "(one table per budget; where two runs have the same problem, beta "
                         "and route, the later file's result is kept)")
    args = ap.parse_args(argv)
    if args.merge:
        try:
            merged = merge([_read_run(f) for f in args.merge], args.merge)
        except ValueError as exc:
            ap.error(str(exc))
        write_page(args.out, merged, markdown)
        return 0
    with single_threaded():
        return _run(args, ap)


def _run(args, ap) -> int:
    import convexrelu as cr
    from convexrelu.certificates import certificate_from_oracle, spectral_bound
    from convexrelu.experiments.suites.real import estimate_lambda_max
    from convexrelu.kernels import spectral_norm
    from convexrelu.losses import get_loss
    from convexrelu.oracles import OracleResult
    from convexrelu.solvers import ConditionalGradient

    problems = [p for p in args.problems.split(",") if p]
    routes = [r for r in args.routes.split(",") if r]
    for p in problems:
        if p not in PROBLEMS:
            ap.error(f"unknown problem {p!r}; choose from {', '.join(PROBLEMS)}")
    for r in routes:
        if r not in ROUTES + (FIT_ROUTE,):
            ap.error(f"unknown route {r!r}; choose from {', '.join(ROUTES + (FIT_ROUTE,))}")
    fracs = [float(f) for f in args.fractions.split(",")]
    rows = []
    t_all = time.perf_counter()
    for name in problems:
        X, Y, beta0, note = load(name)
        cases = [(None, beta0)] if beta0 is not None else \
            [(f, f * estimate_lambda_max(X, Y)) for f in fracs]
        for frac, beta in cases:
            solver = ConditionalGradient(prove=False, time_limit=args.fit_time, random_state=0)
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = cr.fit(X, Y, beta, solver=solver)
            net = fit.network
            G = net.predict(X) - Y
            primal = float(net.objective(X, Y, beta))
            spec = spectral_bound(G, spectral_norm(X))
            res_s = OracleResult(spec, np.eye(X.shape[1])[0], 0.0, "upper_bound", "exact", None, 0.0)
            cs = certificate_from_oracle(primal, G, Y, beta, get_loss("squared"), res_s,
                                         args.tol, time.perf_counter(), X=X)
            row = dict(problem=name, fraction=frac, beta=beta, n=X.shape[0], d=X.shape[1],
                       c=Y.shape[1], note=note, fit_status=fit.status, objective=primal,
                       neurons=net.n_neurons, spectral_rel_gap=cs.rel_gap,
                       spectral_omega_over_beta=spec / beta,
                       estimate_rel_gap=fit.certificate.rel_gap_estimate, routes={})
            print(f"{name} beta={'%.3g' % beta}: fit {fit.status}, objective {primal:.10g}, "
                  f"spectral rel_gap {cs.rel_gap:.2e}", flush=True)
            for route in routes:
                out = run_route(route, X, Y, G, beta, net, args.budget, args.tol)
                row["routes"][route] = out
                print(f"   {route:12s} {out.get('status')}: rel_gap "
                      f"{out.get('rel_gap', float('nan')):.2e}, "
                      f"{out.get('time') or float('nan'):.1f} s, "
                      f"regions {out.get('regions', '-')}, nodes {out.get('nodes', '-')}",
                      flush=True)
            rows.append(row)
    result = dict(suite="proofs", budget=args.budget, fit_time=args.fit_time, tol=args.tol,
                  revision=git_revision(), machine=machine_info(), rows=rows,
                  total_seconds=time.perf_counter() - t_all)
    write_page(args.out, result, markdown)
    return 0


def _read_run(path):
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--merge: cannot read {path}: {exc}") from None
    if data.get("suite") != "proofs" or "rows" not in data:
        raise ValueError(f"--merge: {path} is not the JSON of one run of --suite proofs")
    return data


def merge(runs, names=None):
    """One result per budget from several runs (``tables``, sorted by budget). Rows are
    keyed by (problem, fraction); each route's result keeps the index of the run it came
    from (``run``, into the table's ``runs``), since every run fits its own network."""
    names = list(names) if names is not None else [f"run {i}" for i in range(len(runs))]
    tables = {}
    for name, run in zip(names, runs):
        key = (float(run["budget"]), float(run["fit_time"]), float(run["tol"]))
        t = tables.setdefault(key, dict(suite="proofs", budget=run["budget"],
                                        fit_time=run["fit_time"], tol=run["tol"], runs=[],
                                        rows=[], total_seconds=0.0, machine=run["machine"]))
        k = len(t["runs"])
        t["runs"].append(dict(file=os.path.basename(str(name)), revision=run["revision"],
                              total_seconds=run["total_seconds"]))
        t["total_seconds"] += run["total_seconds"]
        index = {(r["problem"], r["fraction"]): r for r in t["rows"]}
        for row in run["rows"]:
            routes = {name_: dict(res, run=k) for name_, res in row["routes"].items()}
            have = index.get((row["problem"], row["fraction"]))
            if have is None:
                new = dict(row, routes=routes, run=k)
                t["rows"].append(new)
                index[(row["problem"], row["fraction"])] = new
            else:
                have["routes"].update(routes)
    out = [tables[k] for k in sorted(tables)]
    for t in out:
        revs = sorted({r["revision"] for r in t["runs"]})
        t["revision"] = ", ".join(revs)
    return dict(suite="proofs", merged=True, tables=out)


def _cell(r, tol=1e-4):
    if r is None:
        return "—"
    if r.get("rel_gap") is None:
        return r.get("status", "—")
    what = ("**proved**" if r.get("is_global") else "gap") + f" {r['rel_gap']:.1e}"
    t = r.get("time")
    extra = []
    if "regions" in r:
        extra.append(f"{r['regions']:,} regions")
    if "nodes" in r:
        extra.append(f"{r['nodes']:,} nodes")
    if "patterns" in r and r["patterns"] is not None:
        extra.append(f"{r['patterns']:,} patterns")
    if r.get("cells") is not None:
        extra.append(f"{r['cells']:,} cells visited")
    cell = f"{what}, {t:.1f} s" + (f" ({', '.join(extra)})" if extra else "")
    if r.get("attained_over_beta", 0.0) > 1.0 + tol and not r.get("is_global"):
        # a direction above beta: the network itself is not optimal, no route can prove it
        cell += f"; not optimal: Ω ≥ {r['attained_over_beta']:.5f} β"
    return cell


def markdown(result) -> str:
    if result.get("merged"):
        parts = [_table(t, i == 0) for i, t in enumerate(result["tables"])]
        return "\n".join(parts)
    return _table(result, True)


def _table(result, first) -> str:
    title = "# Proven optimality, route by route (issue 15)" if first else \
        f"## Budget {result['budget']:.0f} s per route"
    lines = [
        title, "",
        f"Revision {result['revision']}; budget {result['budget']:.0f} s per route; the network "
        f"is the default solver's after {result['fit_time']:.0f} s (its own proof step off); "
        f"a proof is a proven rel_gap <= {result['tol']:.0e}. Single-threaded.", "",
        "Cells: proven relative gap of the network's certificate from the route's bound, "
        "seconds, work done. `spectral`: the gap from ||Z|| ||X|| alone. `estimate`: the "
        "heuristic oracle's gap estimate (not a bound). \"not optimal\": the route attained "
        "a direction above beta, so the network itself is not optimal and no route can "
        "prove it; the gap is then the proven distance from the optimum.", "",
        "| problem | n × d, c | β | spectral | estimate | enumeration | branch and bound | SCIP "
        "| default fit with its proof step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    mixed = False
    for row in result["rows"]:
        b = f"{row['fraction']} λmax" if row["fraction"] is not None else f"{row['beta']:.0e}"
        R = row["routes"]
        mark = ""
        if len({v.get("run", row.get("run")) for v in R.values()} | {row.get("run")}) > 1:
            mark, mixed = "†", True
        lines.append(
            f"| {row['problem']}{mark} | {row['n']} × {row['d']}, {row['c']} | {b} | "
            f"{row['spectral_rel_gap']:.1e} | {row['estimate_rel_gap']:.1e} | "
            f"{_cell(R.get('enumeration'), result['tol'])} | {_cell(R.get('bnb'), result['tol'])} | "
            f"{_cell(R.get('scip'), result['tol'])} | {_cell(R.get('fit'), result['tol'])} |")
    lines += [""]
    if mixed:
        lines += ["† The routes of this row come from separate runs (listed below), each on "
                  "its own network fitted by the same protocol; `spectral` and `estimate` are "
                  "from the network of the row's first run.", ""]
    if result.get("runs"):
        lines += ["Runs: " + "; ".join(f"`{r['file']}` (revision {r['revision']}, "
                                       f"{r['total_seconds']:.0f} s)" for r in result["runs"])
                  + ".", ""]
    lines += [f"Total {result['total_seconds']:.0f} s. Machine: "
              f"{json.dumps(result['machine'])}", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
