r"""A data-parallel fit on a local Dask cluster with less worker memory than data.

``convexrelu bench --suite dask`` generates planted data chunk by chunk **on the
workers** (``X ~ N(0, 1)`` per block of ``--chunk`` rows, block ``k`` from seed ``k``;
``Y = relu(X U0) V0`` from one random teacher of 100 neurons, seed 0: the paper's §5.1
model at scale), ``n = --n`` rows (default 10^7), ``d = 20``, ``c = 1`` (1.6 GB of
float64), on a ``LocalCluster`` of ``--workers`` processes (default 2, one thread each)
with ``--memory-limit`` bytes each (default 1.2e9, below the data's size), and fits it
with ``cr.fit(X, Y, beta, time_limit=--time-limit)`` (the default solver; with Dask input
its oracle is the heuristic one and its proven bound the spectral bound).

Reported: the seconds per iteration (median gap between iterations after the first),
the time breakdown, the peak resident memory of each worker process (``ru_maxrss``),
and the objective against an **in-memory** fit on the first ``--subsample`` rows (10^6),
given the same time (or ``--subsample-time-limit``): both networks are scored on the full data by ``cr.certify`` on the
cluster. ``beta`` is ``--beta-fraction`` (0.1) times a lower estimate of
:math:`\lambda_{\max}` on the subsample (``cr.omega(..., oracle="heuristic")``) times
``n / subsample`` (the loss grows with ``n``); the subsample fit uses ``beta`` times
``subsample / n``, the same balance per row.

Output: ``<out>/dask.json`` and ``<out>/dask.md``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

from .._common import git_revision, machine_info, write_json, write_text

M_TEACHER = 100


def teacher(d, c):
    rng = np.random.default_rng(0)
    return rng.standard_normal((d, M_TEACHER)), rng.standard_normal((M_TEACHER, c))


def block(k, rows, d, c, part):
    """Block ``k`` of the planted data: ``X`` (``part="X"``) or ``Y``."""
    X = np.random.default_rng(1000 + k).standard_normal((rows, d))
    if part == "X":
        return X
    U0, V0 = teacher(d, c)
    return np.maximum(X @ U0, 0.0) @ V0


def dask_data(n, d, c, chunk):
    """``X`` and ``Y`` as Dask arrays whose blocks are generated on the workers."""
    import dask
    import dask.array as da

    sizes = [min(chunk, n - s) for s in range(0, n, chunk)]
    Xs = [da.from_delayed(dask.delayed(block)(k, r, d, c, "X"), shape=(r, d), dtype=float)
          for k, r in enumerate(sizes)]
    Ys = [da.from_delayed(dask.delayed(block)(k, r, d, c, "Y"), shape=(r, c), dtype=float)
          for k, r in enumerate(sizes)]
    return da.concatenate(Xs), da.concatenate(Ys), sizes


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _fit(X, Y, beta, limit):
    import convexrelu as cr

    pts, t0 = [], time.perf_counter()
    res = cr.fit(X, Y, beta, time_limit=limit,
                 callback=lambda i: pts.append((time.perf_counter() - t0, float(i["objective"]))))
    gaps = np.diff([p[0] for p in pts])
    return res, dict(time=time.perf_counter() - t0, n_iter=int(res.n_iter), status=res.status,
                     objective=float(res.objective), dual=float(res.certificate.dual),
                     bound_source=res.certificate.bound_source,
                     n_neurons=int(res.network.n_neurons), points=pts,
                     sec_per_iter=float(np.median(gaps[1:])) if gaps.size > 1 else
                     (float(gaps[0]) if gaps.size else None),
                     time_breakdown=res.info.get("time_breakdown"))


def markdown(r):
    def g(v):
        return "—" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))

    dk, sub = r["dask_fit"], r["subsample_fit"]
    lines = ["# `convexrelu bench --suite dask`", "",
             f"n = {r['n']:,}, d = {r['d']}, c = {r['c']} ({r['data_gb']:.2f} GB of float64), "
             f"{r['workers']} worker processes x 1 thread, memory limit "
             f"{r['memory_limit'] / 1e9:.2f} GB each; time limit {r['time_limit']:g} s; "
             f"revision {r['revision']}.", "",
             "| fit | time (s) | iterations | s / iteration | neurons | objective on the full "
             "data | proven lower bound | peak worker memory (MB) |",
             "|---|---|---|---|---|---|---|---|",
             f"| Dask, all {r['n']:,} rows | {g(dk['time'])} | {dk['n_iter']} | "
             f"{g(dk['sec_per_iter'])} | {dk['n_neurons']} | {g(dk['objective'])} | "
             f"{g(dk['dual'])} ({dk['bound_source']}) | "
             f"{', '.join(f'{v:.0f}' for v in r['peak_worker_mb'])} |",
             f"| in memory, first {r['subsample']:,} rows | {g(sub['time'])} | {sub['n_iter']} | "
             f"{g(sub['sec_per_iter'])} | {sub['n_neurons']} | {g(r['subsample_net_full_objective'])}"
             f" | — | (client) {g(r['client_peak_mb'])} |"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="convexrelu bench --suite dask",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=float, default=1e7)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--c", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=250_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", type=float, default=1.2e9)
    ap.add_argument("--time-limit", type=float, default=600.0)
    ap.add_argument("--subsample", type=float, default=1e6)
    ap.add_argument("--subsample-time-limit", type=float, default=None,
                    help="seconds for the in-memory fit (default: --time-limit)")
    ap.add_argument("--beta-fraction", type=float, default=0.1)
    ap.add_argument("--quick", action="store_true", help="n = 2e5, chunk 5e4, 60 s (a smoke test)")
    ap.add_argument("--out", default="bench_out")
    args = ap.parse_args(argv)
    try:
        import distributed
    except ImportError:
        print("dask: this suite needs pip install 'convexrelu[dask]'", file=sys.stderr)
        return 2
    import convexrelu as cr

    if args.quick:
        args.n, args.chunk, args.time_limit, args.subsample = 2e5, 50_000, 60.0, 5e4
    n, d, c, nsub = int(args.n), args.d, args.c, int(args.subsample)
    out = Path(args.out)
    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                       processes=True, memory_limit=int(args.memory_limit),
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        X, Y, sizes = dask_data(n, d, c, args.chunk)
        # the subsample: the same first blocks, generated here
        Xs = np.vstack([block(k, r, d, c, "X") for k, r in enumerate(sizes)])[:nsub] \
            if nsub >= n else None
        if Xs is None:
            parts, got = [], 0
            for k, r in enumerate(sizes):
                if got >= nsub:
                    break
                parts.append((block(k, r, d, c, "X"), block(k, r, d, c, "Y")))
                got += r
            Xs = np.vstack([p[0] for p in parts])[:nsub]
            Ys = np.vstack([p[1] for p in parts])[:nsub]
        else:
            Ys = np.vstack([block(k, r, d, c, "Y") for k, r in enumerate(sizes)])[:nsub]
        lam = float(cr.omega(Xs, Ys, oracle="heuristic", random_state=0).attained)
        beta = args.beta_fraction * lam * n / nsub
        print(f"n={n} d={d} c={c}: beta = {beta:.6g} ({args.beta_fraction} x lambda_max "
              f"estimate {lam:.6g} on {nsub} rows, x n/{nsub})", flush=True)
        t = time.perf_counter()
        res, dk = _fit(X, Y, beta, args.time_limit)
        print(f"  Dask fit: {dk['n_iter']} iterations in {dk['time']:.1f} s, objective "
              f"{dk['objective']:.8g}, {dk['sec_per_iter']} s/iteration", flush=True)
        peaks = sorted(client.run(_peak_rss_mb).values())
        sres, sub = _fit(Xs, Ys, beta * nsub / n, args.subsample_time_limit or args.time_limit)
        full = float(cr.certify(sres.network, X, Y, beta).primal)
        print(f"  in-memory fit on {nsub} rows: objective on the full data {full:.8g}", flush=True)
        result = dict(n=n, d=d, c=c, data_gb=n * d * 8 / 1e9, chunk=args.chunk,
                      workers=args.workers, memory_limit=args.memory_limit,
                      time_limit=args.time_limit, subsample=nsub, beta=beta, lambda_max_est=lam,
                      dask_fit=dk, subsample_fit=sub, subsample_net_full_objective=full,
                      peak_worker_mb=peaks, client_peak_mb=_peak_rss_mb(),
                      total_s=time.perf_counter() - t, machine=machine_info(),
                      revision=git_revision(),
                      command="convexrelu bench --suite dask -- " + " ".join(argv or []))
        write_json(out / "dask.json", result)
        write_text(out / "dask.md", markdown(result))
        print(markdown(result))
    finally:
        client.close()
        cluster.close()
    return 0
