r"""The default solver on a PyTorch device against Adam on the same device, equal wall time.

``convexrelu bench --device cuda`` (or ``--suite device -- --device cuda``) runs, for
each planted problem ``convexrelu.datasets.planted(n, d, c=10, seed=0)`` (``n`` in
``--sizes``, ``d`` in ``--dims``; nothing is downloaded):

* ``cg-<device>``: ``cr.fit(X, Y, beta, device=..., time_limit=B)`` for each budget
  ``B`` in ``--budgets`` (a fit plans with its limit, so each budget is its own run);
  its objective trajectory (one point per iteration) and seconds per iteration (the
  median gap between iterations after the first);
* ``cg-numpy``: the same fit on the NumPy back end, the CPU limited to
  ``--cpu-threads`` threads (default 2: the issue's 2-core CPU) for ``--cpu-budget``
  seconds: the per-iteration baseline;
* ``adam-w{100,1000}-lr{1e-3,1e-2}``: full-batch ``torch.optim.Adam`` on eq. 5 on the
  same device and dtype (float64), one run of the largest budget each, read at every
  budget.

``beta`` is ``--beta-fraction`` (default 0.1) times a **lower estimate** of
:math:`\lambda_{\max}`: the largest :math:`\|Y^\top (Xu)_+\|` over 256 random unit
directions and the unit directions of the 256 rows with the largest targets (evaluated
on the device). The host side of every run is single-threaded
(``threadpoolctl``, ``torch.set_num_threads(1)``) except the CPU baseline.

Per problem: the default's objective at each budget against the best Adam configuration
at the same time (``ok`` when at or below), and the per-iteration speed-up of the device
over the CPU baseline. Output: ``<out>/device.json`` (machine, device name, git
revision, command line, trajectories, summaries) and ``<out>/device.md``, rewritten
after each problem. Everything runs in this process, one method after another.

Usage::

    convexrelu bench --device cuda [--out DIR] -- [--sizes 100000,1000000]
        [--dims 50,784] [--budgets 60,300] [--cpu-budget 60] [--cpu-threads 2]
    convexrelu bench --suite device --quick   # tiny sizes on the CPU (a smoke test)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from .._common import git_revision, machine_info, require_torch, write_json, write_text

ADAM_CONFIGS = [(100, 1e-3), (100, 1e-2), (1000, 1e-3), (1000, 1e-2)]


def estimate_lambda_max(X, Y, rng, k=256):
    """A lower estimate of :math:`\\lambda_{\\max} = \\Omega(Y)` (values of unit directions)."""
    from ...kernels import relu_values

    d = X.shape[1]
    U = rng.standard_normal((k, d))
    top = np.argsort(np.linalg.norm(Y, axis=1))[::-1][:k]
    U = np.vstack([U, X[top], -X[top]])
    U = U[np.linalg.norm(U, axis=1) > 0]
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    return float(np.sqrt(np.max(relu_values(X, Y, U))))


def _run_cg(X, Y, beta, budget, device):
    import convexrelu as cr

    pts, its, t0 = [], [], time.perf_counter()

    def cb(info):
        pts.append((time.perf_counter() - t0, float(info["objective"])))
        if info.get("stage", "iteration") == "iteration":  # not the reports between them
            its.append(pts[-1][0])

    res = cr.fit(X, Y, beta, time_limit=budget, device=device, callback=cb)
    wall = time.perf_counter() - t0
    pts.append((wall, float(res.objective)))
    gaps = np.diff(its)
    return dict(points=pts, wall=wall, status=res.status, objective=float(res.objective),
                dual=float(res.certificate.dual), rel_gap=float(res.certificate.rel_gap),
                is_global=bool(res.certificate.is_global), n_iter=int(res.n_iter),
                n_neurons=int(res.network.n_neurons),
                sec_per_iter=float(np.median(gaps)) if gaps.size else None,
                time_breakdown=res.info.get("time_breakdown"))


def _run_adam(torch, X, Y, beta, budget, device, width, lr, seed=0):
    dev, dt = torch.device(device), torch.float64
    g = torch.Generator().manual_seed(seed)
    Xt = torch.as_tensor(X, dtype=dt).to(dev)
    Yt = torch.as_tensor(Y, dtype=dt).to(dev)
    d, c = X.shape[1], Y.shape[1]
    W1 = ((torch.rand((d, width), generator=g, dtype=dt) * 2 - 1) * math.sqrt(6.0 / d)).to(dev)
    W2 = ((torch.rand((width, c), generator=g, dtype=dt) * 2 - 1) / math.sqrt(width)).to(dev)
    W1.requires_grad_(True)
    W2.requires_grad_(True)
    opt = torch.optim.Adam([W1, W2], lr=lr)
    pts, steps, t0 = [], 0, time.perf_counter()
    while time.perf_counter() - t0 < budget:
        opt.zero_grad(set_to_none=True)
        R = torch.relu(Xt @ W1) @ W2 - Yt
        obj = 0.5 * torch.sum(R * R) + 0.5 * beta * (torch.sum(W1 * W1) + torch.sum(W2 * W2))
        val = float(obj.detach())  # synchronises the device: the time is the work's
        if not math.isfinite(val):
            break
        pts.append((time.perf_counter() - t0, val))
        obj.backward()
        opt.step()
        steps += 1
    del Xt, Yt
    return dict(points=_thin(pts), steps=steps, width=width, lr=lr,
                sec_per_step=(pts[-1][0] / max(steps - 1, 1)) if pts else None)


def _thin(pts, k=400):
    if len(pts) <= k:
        return pts
    idx = np.unique(np.linspace(0, len(pts) - 1, k).astype(int))
    return [pts[i] for i in idx]


def best_at(points, t):
    """The lowest objective reached by time ``t`` (None before the first point)."""
    vals = [v for (s, v) in points if s <= t]
    return min(vals) if vals else None


def summarize(runs, budgets):
    out = {}
    adam = {k: v for k, v in runs.items() if k.startswith("adam")}
    for B in budgets:
        cg = runs.get(f"cg-device-{B:g}")
        if cg is None:
            continue
        mine = best_at(cg["points"], B)
        theirs = {k: best_at(v["points"], B) for k, v in adam.items()}
        theirs = {k: v for k, v in theirs.items() if v is not None}
        best_k = min(theirs, key=theirs.get) if theirs else None
        out[f"{B:g}"] = dict(default=mine, best_adam=theirs.get(best_k), best_adam_config=best_k,
                             ok=(mine is not None and best_k is not None
                                 and mine <= theirs[best_k]))
    dev = [runs[k]["sec_per_iter"] for k in runs if k.startswith("cg-device")
           and runs[k].get("sec_per_iter")]
    cpu = runs.get("cg-numpy", {}).get("sec_per_iter")
    out["sec_per_iter_device"] = min(dev) if dev else None
    out["sec_per_iter_cpu"] = cpu
    out["speedup_per_iter"] = (cpu / min(dev)) if (dev and cpu) else None
    return out


def markdown(result):
    lines = [f"# `convexrelu bench --device {result['device']}`", "",
             f"Device: {result['device_name']}; CPU baseline: {result['cpu_threads']} thread(s). "
             f"Command: `{result['command']}`; revision {result['revision']}.", "",
             "| problem | budget | default | best Adam (config) | ok | s/iter device | "
             "s/iter CPU | speed-up |", "|---|---|---|---|---|---|---|---|"]
    for p in result["problems"]:
        s = p["summary"]
        for B in result["budgets"]:
            row = s.get(f"{B:g}")
            if row is None:
                continue

            def g(v):
                return "—" if v is None else f"{v:.6g}"

            lines.append(f"| {p['name']} | {B:g} s | {g(row['default'])} | {g(row['best_adam'])} "
                         f"({row['best_adam_config']}) | {'yes' if row['ok'] else 'NO'} | "
                         f"{g(s['sec_per_iter_device'])} | {g(s['sec_per_iter_cpu'])} | "
                         f"{g(s['speedup_per_iter'])} |")
    return "\n".join(lines) + "\n"


def _ints(text):
    return [int(float(v)) for v in text.split(",") if v.strip()]


def _floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="convexrelu bench --suite device",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--dims", default="50,784")
    ap.add_argument("--budgets", default="60,300")
    ap.add_argument("--cpu-budget", type=float, default=60.0)
    ap.add_argument("--cpu-threads", type=int, default=2)
    ap.add_argument("--beta-fraction", type=float, default=0.1)
    ap.add_argument("--methods", default="cg-device,cg-numpy,adam")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and budgets (smoke test)")
    ap.add_argument("--out", default="bench_out")
    args = ap.parse_args(argv)
    torch = require_torch("the device benchmark")
    from threadpoolctl import threadpool_limits

    from ...datasets import planted
    from ...kernels import make_backend, use_backend

    if args.quick:
        args.sizes, args.dims, args.budgets, args.cpu_budget = "2000", "10", "3", 3.0
    sizes, dims, budgets = _ints(args.sizes), _ints(args.dims), _floats(args.budgets)
    methods = set(args.methods.split(","))
    kern = make_backend(args.device)  # a missing device fails here, before any work
    dev_name = torch.cuda.get_device_name(kern.device) if kern.device.type == "cuda" else "CPU"
    torch.set_num_threads(1)
    out = Path(args.out)
    result = dict(device=args.device, device_name=dev_name, cpu_threads=args.cpu_threads,
                  machine=machine_info(), revision=git_revision(),
                  command="convexrelu bench --suite device -- " + " ".join(argv or sys.argv[1:]),
                  budgets=budgets, beta_fraction=args.beta_fraction, problems=[])
    for n in sizes:
        for d in dims:
            name = f"planted n={n} d={d} c=10"
            t = time.perf_counter()
            X, Y = planted(n, d, c=10, seed=0)[:2]
            with use_backend(kern), threadpool_limits(1):
                lam = estimate_lambda_max(X, Y, np.random.default_rng(0))
            beta = args.beta_fraction * lam
            print(f"{name}: generated in {time.perf_counter() - t:.1f} s; beta = "
                  f"{args.beta_fraction} x {lam:.6g} (lambda_max lower estimate)", flush=True)
            runs = {}
            with threadpool_limits(1):
                if "cg-device" in methods:
                    for B in budgets:
                        runs[f"cg-device-{B:g}"] = r = _run_cg(X, Y, beta, B, args.device)
                        print(f"  cg on {args.device}, {B:g} s: objective {r['objective']:.8g}, "
                              f"{r['n_iter']} iterations, {r['sec_per_iter']} s/iter", flush=True)
                if "adam" in methods:
                    for w, lr in ADAM_CONFIGS:
                        r = _run_adam(torch, X, Y, beta, max(budgets), args.device, w, lr)
                        runs[f"adam-w{w}-lr{lr:g}"] = r
                        last = r["points"][-1][1] if r["points"] else float("nan")
                        print(f"  adam w={w} lr={lr:g}: {r['steps']} steps, final {last:.8g}",
                              flush=True)
            if "cg-numpy" in methods:
                with threadpool_limits(args.cpu_threads):
                    runs["cg-numpy"] = r = _run_cg(X, Y, beta, args.cpu_budget, None)
                print(f"  cg on NumPy ({args.cpu_threads} threads), {args.cpu_budget:g} s: "
                      f"{r['n_iter']} iterations, {r['sec_per_iter']} s/iter", flush=True)
            result["problems"].append(dict(name=name, n=n, d=d, c=10, beta=beta,
                                           lambda_max_estimate=lam, runs=runs,
                                           summary=summarize(runs, budgets)))
            del X, Y
            write_json(out / "device.json", result)
            write_text(out / "device.md", markdown(result))
    print(markdown(result))
    print(f"wrote {out / 'device.json'} and {out / 'device.md'}")
    return 0
