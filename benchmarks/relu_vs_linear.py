"""ReLU vs linear two-layer networks on whitened data (paper App. A.1.2, Fig. 5 shape).

scikit-learn digits: 50 training images (5 per class; n <= d = 64 so the whitened rows
are orthogonal and the data spike-free), whitened by an uncentred ZCA fitted on them; the
other 1747 images, transformed with the same mean and matrix, are the test set. Targets:
a random ReLU teacher (d -> 400 -> 10) applied to the whitened inputs. For each beta:
the ReLU network trained by ``cg`` with the spike-free oracle (eq. 15) and the linear
network (nuclear norm, ``fit_linear``); train and test mean squared error. Writes JSON, a
Markdown table and a plot.

Usage: python benchmarks/relu_vs_linear.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import warnings

import numpy as np
from sklearn.datasets import load_digits

import convexrelu as cr


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench_out")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    dig = load_digits()
    idx = np.concatenate([np.flatnonzero(dig.target == k)[:5] for k in range(10)])
    rest = np.setdiff1d(np.arange(len(dig.target)), idx)
    w = cr.ZCAWhitener(center=False).fit(dig.data[idx])
    X, Xt = w.transform(dig.data[idx]), w.transform(dig.data[rest])
    assert cr.is_spike_free(X)
    rng = np.random.default_rng(0)
    teacher = cr.TwoLayerReLU(rng.standard_normal((64, 400)) / 8.0,
                              rng.standard_normal((400, 10)) / 20.0)
    Y, Yt = teacher.predict(X), teacher.predict(Xt)
    rows = []
    for beta in np.geomspace(1e-2, 3.0, 8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            relu = cr.fit(X, Y, beta, oracle="spike-free", tol=1e-6, max_iter=300, time_limit=20)
        lin = cr.fit_linear(X, Y, beta)
        row = dict(beta=float(beta),
                   relu_train=float(np.mean((relu.network.predict(X) - Y) ** 2)),
                   relu_test=float(np.mean((relu.network.predict(Xt) - Yt) ** 2)),
                   lin_train=float(np.mean((lin.predict(X) - Y) ** 2)),
                   lin_test=float(np.mean((lin.predict(Xt) - Yt) ** 2)),
                   relu_rel_gap=relu.certificate.rel_gap, relu_oracle=relu.certificate.oracle_kind,
                   relu_neurons=relu.network.n_neurons)
        rows.append(row)
        print(f"beta={beta:.3g}: ReLU train {row['relu_train']:.4g} test {row['relu_test']:.4g} "
              f"(gap {row['relu_rel_gap']:.1e}, {row['relu_oracle']}); linear train "
              f"{row['lin_train']:.4g} test {row['lin_test']:.4g}", flush=True)
    with open(os.path.join(args.out, "relu_vs_linear.json"), "w") as fh:
        json.dump(rows, fh, indent=2)
    lines = ["# ReLU vs linear on whitened digits (ReLU teacher targets)", "",
             "| beta | ReLU train MSE | ReLU test MSE | linear train MSE | linear test MSE | ReLU rel_gap (oracle) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['beta']:.3g} | {r['relu_train']:.4g} | {r['relu_test']:.4g} | "
                     f"{r['lin_train']:.4g} | {r['lin_test']:.4g} | {r['relu_rel_gap']:.1e} ({r['relu_oracle']}) |")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "relu_vs_linear.md"), "w") as fh:
        fh.write(md)
    print(md)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib not installed")
        return 0
    b = [r["beta"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, key, title in ((axes[0], "train", "train MSE"), (axes[1], "test", "test MSE")):
        ax.plot(b, [r[f"relu_{key}"] for r in rows], "o-", label="ReLU (eq. 15)")
        ax.plot(b, [r[f"lin_{key}"] for r in rows], "s--", label="linear")
        ax.set_xscale("log")
        ax.set_xlabel("beta")
        ax.set_title(title)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "relu_vs_linear.png"), dpi=120)
    print(f"wrote {args.out}/relu_vs_linear.(json|md|png)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
