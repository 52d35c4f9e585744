"""Solver benchmark: ``cg`` (default) against ``frank-wolfe`` (the paper's Algorithm 1).

Side by side in one run, on the paper's §5.1 planted problem (3 seeds, beta = 1e-2) and a
3-class spiral (n = 60, 20 per class) for beta in {1e-3, 1e-2, 1e-1, 1}:

* time for ``cg`` to reach a certified rel_gap <= 1e-6 (and when it first had <= 1e-3);
* time for ``frank-wolfe`` to reach rel_gap <= 1e-3 (it runs until then, for at most
  ``max(100 x cg's time, --fw-cap)`` seconds), and the gap it had reached at 100 times
  cg's 1e-6 time;
* ratios, machine info; writes JSON, a Markdown table and a plot.

Usage: convexrelu bench --suite solvers [--quick] [--out DIR] [--fw-cap SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import convexrelu as cr
from convexrelu.datasets import planted, spiral


def first_time_below(hist, level):
    """First time at which the best network's relative gap was <= level (None if never)."""
    best = np.minimum.accumulate(hist["rel_gap"])
    idx = np.flatnonzero(best <= level)
    return float(hist["time"][idx[0]]) if idx.size else None


def run_case(name, X, Y, beta, fw_cap):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cg = cr.fit(X, Y, beta, solver="cg", tol=1e-6, max_iter=300)
        t6 = cg.time if cg.certificate.rel_gap <= 1e-6 else None
        # one Frank-Wolfe run serves both measurements: the gap at 100x cg's time, and the
        # time to 1e-3 (run on until then, at most max(100x cg, fw_cap) seconds)
        budget = 100.0 * cg.time
        fw = cr.fit(X, Y, beta, solver="frank-wolfe", tol=1e-3, time_limit=max(budget, fw_cap),
                    max_iter=10**8)
    fw_t3 = first_time_below(fw.history, 1e-3)
    ht = np.asarray(fw.history["time"])
    at_budget = np.asarray(fw.history["rel_gap"])[ht <= budget]
    fw_gap_budget = float(np.min(at_budget)) if at_budget.size else 1.0
    cg_t3 = first_time_below(cg.history, 1e-3)
    row = dict(
        case=name, n=X.shape[0], c=Y.shape[1], beta=beta,
        cg_time_1e6=t6, cg_rel_gap=cg.certificate.rel_gap, cg_global=cg.certificate.is_global,
        cg_iters=cg.n_iter, cg_neurons=cg.network.n_neurons, cg_objective=cg.objective,
        cg_time_1e3=cg_t3, cg_ms_per_iter=1e3 * cg.time / max(cg.n_iter, 1),
        fw_budget=budget, fw_time_1e3=fw_t3, fw_rel_gap=fw_gap_budget,
        fw_rel_gap_final=fw.certificate.rel_gap, fw_time=fw.time,
        fw_steps=fw.n_iter, fw_ms_per_step=1e3 * fw.time / max(fw.n_iter, 1),
        fw_objective=fw.objective,
        ratio_fw_cg_1e3=(fw_t3 / cg_t3) if (fw_t3 and cg_t3) else None,
        objective_agreement=abs(fw.objective - cg.objective) / cg.objective,
    )
    return row, cg, fw


def machine():
    info = dict(platform=platform.platform(), python=platform.python_version(),
                cpu_count=os.cpu_count(), numpy=np.__version__, convexrelu=cr.__version__)
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{d.get('internal_api')} {d.get('version')} ({d.get('num_threads')} threads)"
                        for d in threadpool_info()]
    except ImportError:
        pass
    return info


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench_out")
    p.add_argument("--quick", action="store_true", help="one planted seed, two spiral betas")
    p.add_argument("--fw-cap", type=float, default=30.0,
                   help="seconds Frank-Wolfe may run to reach 1e-3 (default 30)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    cases = []
    for seed in ([0] if args.quick else [0, 1, 2]):
        X, Y, _ = planted(seed=seed)
        cases.append((f"planted §5.1 seed {seed}", X, Y, 1e-2))
    Xs, Ys, _ = spiral(seed=0)
    for beta in ([1e-2, 1e-1] if args.quick else [1e-3, 1e-2, 1e-1, 1.0]):
        cases.append((f"spiral beta={beta:g}", Xs, Ys, beta))
    rows, curves = [], []
    t0 = time.perf_counter()
    for name, X, Y, beta in cases:
        row, cg, fw = run_case(name, X, Y, beta, args.fw_cap)
        rows.append(row)
        curves.append((name, cg.history, fw.history))
        print(f"{name}: cg {fmt(row['cg_time_1e6'], '.3f')} s to 1e-6 ({row['cg_iters']} it), "
              f"fw rel_gap {row['fw_rel_gap']:.2e} after {row['fw_budget']:.1f} s", flush=True)
    total = time.perf_counter() - t0
    result = dict(machine=machine(), total_s=total, rows=rows, fw_cap_s=args.fw_cap)
    with open(os.path.join(args.out, "solvers.json"), "w") as fh:
        json.dump(result, fh, indent=2, default=float)
    head = ("| case | n | c | beta | cg s to 1e-6 | cg global | cg iters | cg ms/iter | neurons "
            "| cg s to 1e-3 | fw s to 1e-3 | fw/cg to 1e-3 | fw budget s | fw rel_gap at budget "
            "| fw ms/step |")
    head = head.replace("fw rel_gap at budget", "fw rel_gap at 100x cg")
    lines = [f"# Solver benchmark ({'quick' if args.quick else 'full'})", "",
             f"total {total:.1f} s; machine: {result['machine']}", "", head,
             "|" + "---|" * 15]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['n']} | {r['c']} | {r['beta']:g} | {fmt(r['cg_time_1e6'], '.3f')} "
            f"| {r['cg_global']} | {r['cg_iters']} | {r['cg_ms_per_iter']:.0f} | {r['cg_neurons']} "
            f"| {fmt(r['cg_time_1e3'], '.3f')} | {fmt(r['fw_time_1e3'], '.2f')} "
            f"| {fmt(r['ratio_fw_cg_1e3'], '.0f')} | {r['fw_budget']:.1f} | {r['fw_rel_gap']:.2e} "
            f"| {r['fw_ms_per_step']:.2f} |")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "solvers.md"), "w") as fh:
        fh.write(md)
    print(md)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib not installed")
        return 0
    k = len(curves)
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 3.2), squeeze=False)
    for ax, (name, hc, hf) in zip(axes[0], curves):
        ax.plot(hc["time"], np.minimum.accumulate(hc["rel_gap"]), label="cg")
        ax.plot(hf["time"], np.minimum.accumulate(hf["rel_gap"]), label="frank-wolfe")
        ax.set_xscale("symlog", linthresh=1e-2)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("time (s)")
        ax.axhline(1e-6, color="k", ls=":", lw=0.8)
    axes[0][0].set_ylabel("certified relative gap")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "solvers.png"), dpi=100)
    print(f"wrote {args.out}/solvers.json, solvers.md, solvers.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
