"""Theorem 2's closed form against its floor, side by side in one run.

Random whitened data ``X`` (3000 x 3072, rows orthonormal: ``X X^T = I``) and one-hot
targets with c = 10 and c = 100. For each: the closed form (``closed_form_solution``: the
whitening probe, ``X^T Y``, a thin SVD, the cone check, the network), its floor (``X^T Y``
plus the thin SVD alone), the ratio, and, separately, the certificate (spectral bound,
which needs ``|X|_2``). Median of ``--repeat`` runs. Writes JSON and a Markdown table.

Usage: convexrelu bench --suite closed-form [--quick] [--out DIR] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

import convexrelu as cr
from convexrelu.solvers.closed_form import closed_form_solution


def median_time(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench_out")
    p.add_argument("--quick", action="store_true", help="1000 x 1024 instead of 3000 x 3072")
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    n, d = (1000, 1024) if args.quick else (3000, 3072)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    G = rng.standard_normal((n, d))
    U, _, Vt = np.linalg.svd(G, full_matrices=False)
    X = np.ascontiguousarray(U @ Vt)
    del G, U, Vt
    setup = time.perf_counter() - t
    rows = []
    for c in (10, 100):
        Y = np.eye(c)[rng.integers(0, c, n)]
        beta = 0.5
        cf = closed_form_solution(X, Y, beta)  # warm-up and a correctness check

        def floor():
            M = X.T @ Y
            np.linalg.svd(M, full_matrices=False)

        t_cf = median_time(lambda: closed_form_solution(X, Y, beta), args.repeat)
        t_floor = median_time(floor, args.repeat)
        t = time.perf_counter()
        cert = cr.certify(cf.network, X, Y, beta, oracle=cr.SpectralOracle(X))
        t_cert = time.perf_counter() - t
        rows.append(dict(n=n, d=d, c=c, closed_form_s=t_cf, floor_s=t_floor,
                         ratio=t_cf / t_floor, certificate_s=t_cert, rel_gap=cert.rel_gap,
                         is_global=cert.is_global, n_active=cf.n_active))
        print(f"c={c}: closed form {t_cf * 1e3:.1f} ms, floor {t_floor * 1e3:.1f} ms "
              f"(ratio {t_cf / t_floor:.2f}); certificate {t_cert:.2f} s, rel_gap {cert.rel_gap:.1e}, "
              f"global {cert.is_global}", flush=True)
    result = dict(rows=rows, setup_s=setup, paper_s={"c=10": 0.018, "c=100": 0.36},
                  machine=dict(platform=platform.platform(), cpu_count=os.cpu_count(),
                               numpy=np.__version__))
    with open(os.path.join(args.out, "closed_form.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    lines = [f"# Closed form (Theorem 2), {n} x {d} whitened, one-hot targets", "",
             "| c | closed form ms | floor (X^T Y + SVD) ms | ratio | paper s | certificate s | rel_gap | global |",
             "|---|---|---|---|---|---|---|---|"]
    for r, paper in zip(rows, (0.018, 0.36)):
        lines.append(f"| {r['c']} | {r['closed_form_s'] * 1e3:.1f} | {r['floor_s'] * 1e3:.1f} | "
                     f"{r['ratio']:.2f} | {paper} | {r['certificate_s']:.2f} | {r['rel_gap']:.1e} | "
                     f"{r['is_global']} |")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "closed_form.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
