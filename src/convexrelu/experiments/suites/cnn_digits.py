"""CNN with global average pooling on 8x8 digits: the convex program (sampled patterns)
against non-convex training of the same CNN, side by side.

scikit-learn digits scaled to [0, 1], 3x3 kernels with padding 1; ``--n-train`` images
for training, the rest for testing. The convex CNN (``ConvexReLUConvClassifier``, eq. 50 by
column generation with the heuristic oracle on sampled patterns of the 9-column patch
matrix: not a certificate, flagged) and a PyTorch CNN of the same width (Conv2d, ReLU,
average pool, Linear; squared loss on one-hot targets plus the same weight decay; full-
batch Adam), 3 seeds. Writes JSON and a Markdown table.

Usage: convexrelu bench --suite cnn-digits [--n-train N] [--beta B] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits

import convexrelu as cr


def torch_cnn(Xtr, Ytr, Xte, width, beta, seed, epochs):
    import torch

    torch.manual_seed(seed)
    net = cr.TwoLayerReLUConv(np.zeros((9, width)), np.zeros((width, Ytr.shape[1])),
                              cr.extract_patches(Xtr[:1], 3, 1, 1)[1]).to_torch()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    Xt, Yt = torch.tensor(Xtr), torch.tensor(Ytr)
    for _ in range(epochs):
        opt.zero_grad()
        loss = 0.5 * ((net(Xt) - Yt) ** 2).sum() + 0.5 * beta * sum((p**2).sum() for p in net.parameters())
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(loss), net(torch.tensor(Xte)).numpy()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench_out")
    p.add_argument("--n-train", type=int, default=300)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=1000)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    dig = load_digits()
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(dig.target))
    tr, te = perm[: args.n_train], perm[args.n_train:]
    X = (dig.data / 16.0).reshape(-1, 1, 8, 8)
    Y = np.eye(10)[dig.target]
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = cr.ConvexReLUConvClassifier(beta=args.beta, input_shape=(1, 8, 8), kernel_size=3,
                                          padding=1, oracle="heuristic", max_iter=60,
                                          random_state=0).fit(X[tr].reshape(len(tr), -1), dig.target[tr])
    t_cvx = time.perf_counter() - t
    acc_cvx = clf.score(X[te].reshape(len(te), -1), dig.target[te])
    obj_cvx = clf.result_.objective
    width = clf.network_.n_neurons
    rows = [dict(model="convex (eq. 50, sampled)", width=width, train_objective=obj_cvx,
                 test_accuracy=acc_cvx, time=t_cvx, rel_gap_estimate=clf.certificate_.rel_gap,
                 oracle=clf.certificate_.oracle_kind)]
    print(f"convex: width {width}, objective {obj_cvx:.5g}, test accuracy {acc_cvx:.3f}, {t_cvx:.1f} s, "
          f"gap estimate {clf.certificate_.rel_gap:.1e} ({clf.certificate_.oracle_kind})", flush=True)
    try:
        import torch  # noqa: F401

        for seed in range(3):
            t = time.perf_counter()
            obj, out = torch_cnn(X[tr], Y[tr], X[te], width, args.beta, seed, args.epochs)
            acc = float(np.mean(np.argmax(out, axis=1) == dig.target[te]))
            rows.append(dict(model=f"PyTorch Adam seed {seed}", width=width, train_objective=obj,
                             test_accuracy=acc, time=time.perf_counter() - t))
            print(f"torch seed {seed}: objective {obj:.5g}, test accuracy {acc:.3f}", flush=True)
    except ImportError:
        print("PyTorch not installed: non-convex baseline skipped (pip install torch==2.13.0)")
    with open(os.path.join(args.out, "cnn_digits.json"), "w") as fh:
        json.dump(rows, fh, indent=2, default=float)
    lines = [f"# CNN (3x3, GAP) on digits: {len(tr)} train / {len(te)} test, beta = {args.beta}", "",
             "| model | width | train objective | test accuracy | time s |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['width']} | {r['train_objective']:.5g} | "
                     f"{r['test_accuracy']:.3f} | {r['time']:.1f} |")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "cnn_digits.md"), "w") as fh:
        fh.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
