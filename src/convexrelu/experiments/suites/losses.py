"""Time to a certified optimum per loss on the 3-class spiral (n = 60), cg, one run.

Usage: convexrelu bench --suite losses [--out DIR] [--beta B]
"""

from __future__ import annotations

import argparse
import json
import os

import convexrelu as cr
from convexrelu.datasets import spiral


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench_out")
    p.add_argument("--beta", type=float, default=0.1)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    X, Y, labels = spiral()
    rows = []
    for loss in ("squared", "cross_entropy", "logistic", "multiclass_hinge", "huber", "absolute"):
        target = {"cross_entropy": labels, "multiclass_hinge": labels,
                  "logistic": (labels == 0).astype(int)}.get(loss, Y)
        res = cr.fit(X, target, args.beta, loss=loss, max_iter=200)
        rows.append(dict(loss=loss, time=res.time, n_iter=res.n_iter, rel_gap=res.certificate.rel_gap,
                         is_global=res.certificate.is_global, objective=res.objective,
                         neurons=res.network.n_neurons))
        print(f"{loss}: {res.time:.3f} s, {res.n_iter} it, rel_gap {res.certificate.rel_gap:.1e}, "
              f"global {res.certificate.is_global}", flush=True)
    with open(os.path.join(args.out, "losses.json"), "w") as fh:
        json.dump(rows, fh, indent=2)
    lines = [f"# Time to a certified optimum per loss (spiral n = 60, beta = {args.beta})", "",
             "| loss | time s | iterations | rel_gap | global | neurons |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['loss']} | {r['time']:.3f} | {r['n_iter']} | {r['rel_gap']:.1e} | {r['is_global']} "
              f"| {r['neurons']} |" for r in rows]
    md = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "losses.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
