"""The ``convexrelu`` command line.

Exit codes: ``certify`` returns 0 only if the certificate proves global optimality, 1
if it does not, 2 on bad input; other commands return 0 on success and 2 on bad input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import platform
import sys

import numpy as np

from . import __version__

EXIT_OK, EXIT_NOT_GLOBAL, EXIT_BAD_INPUT = 0, 1, 2


class _BadInput(Exception):
    pass


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}") from None
    if not np.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative finite number, got {text!r}")
    return v


def _cert_json(cert, network, status: str) -> dict:
    out = {
        "objective": cert.primal,
        "dual": cert.dual,
        "gap": cert.gap,
        "rel_gap": cert.rel_gap,
        "is_global": cert.is_global,
        "is_rigorous": cert.is_rigorous,
        # dual, gap and rel_gap are proven; the oracle's estimates are separate
        "gap_is_estimate": False,
        "dual_estimate": cert.dual_estimate,
        "gap_estimate": cert.gap_estimate,
        "rel_gap_estimate": cert.rel_gap_estimate,
        "omega_bound": cert.omega_bound,
        "status": status,
        "time_s": cert.time,
        "n_neurons": network.n_neurons,
        "pattern_scope": cert.pattern_scope,
        "oracle_kind": cert.oracle_kind,
        "n_patterns": cert.n_patterns,
        "omega": cert.omega,
        "beta": cert.beta,
        "tol": cert.tol,
        "loss": cert.loss,
    }
    return out


def _cert_text(cert) -> str:
    """The certificate as printed (it labels the proven bounds and the estimates)."""
    return str(cert)


def _status_note(res) -> str | None:
    """One line on what the status claims, when it is not a proof."""
    c = res.certificate
    if res.status == "estimate_converged":
        why = (f"the {c.oracle_kind} oracle on {c.pattern_scope} patterns gives an estimate, "
               "not a bound" if not c.is_rigorous else "the certificate is not a proof")
        return (f"status estimate_converged: the gap estimate ({c.rel_gap_estimate:.2e} relative) met tol "
                f"{c.tol:.1e}, but {why}; the network may not be optimal")
    return None


# --------------------------------------------------------------------------- commands
def _cmd_certify(args) -> int:
    from .certificates import certify
    from .io import load_dataset
    from .network import TwoLayerReLU

    net = TwoLayerReLU.load(args.model)
    X, Y = load_dataset(args.data, args.target)
    cert = certify(net, X, Y, args.beta, patterns=args.patterns, oracle=args.oracle,
                   tol=args.tol, max_patterns=args.max_patterns, random_state=args.seed)
    status = "global" if cert.is_global else "not_global"
    if args.json:
        print(json.dumps(_cert_json(cert, net, status)))
    else:
        print(f"model {args.model}: {net.n_neurons} neurons; data {args.data}: "
              f"n={X.shape[0]}, d={X.shape[1]}, c={Y.shape[1]}; beta={args.beta:g}")
        print(_cert_text(cert))
    return EXIT_OK if cert.is_global else EXIT_NOT_GLOBAL


def _version_of(mod: str) -> str:
    try:
        m = importlib.import_module(mod)
    except ImportError:
        return "not installed"
    return getattr(m, "__version__", "unknown")


def _cmd_info(args) -> int:
    info = {
        "convexrelu": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": _version_of("numpy"),
        "scipy": _version_of("scipy"),
        "scikit-learn": _version_of("sklearn"),
        "cvxpy": _version_of("cvxpy"),
    }
    try:
        import cvxpy

        info["cvxpy_solvers"] = sorted(cvxpy.installed_solvers())
    except ImportError:
        info["cvxpy_solvers"] = []
    extras = {
        "torch": ("torch", "pip install 'convexrelu[torch]' (pin torch==2.13.0 for the CPU build)"),
        "plot": ("matplotlib", "pip install 'convexrelu[plot]'"),
    }
    info["extras"] = {}
    for extra, (mod, how) in extras.items():
        v = _version_of(mod)
        info["extras"][extra] = v if v != "not installed" else f"not installed ({how})"
    info["oracles"] = ["exact", "stream (exact for ranks 3-5, streamed: nothing stored per cell)",
                       "bnb (branch and bound: a proven bound at any rank)",
                       "upper_bound (SDP via cvxpy)", "heuristic"]
    info["solvers"] = ["cg (default)", "frank-wolfe (paper Algorithm 1)",
                       "copositive (relaxation eq. 19/20 via cvxpy, with recovery)",
                       "copositive-fo (Burer-Monteiro + augmented Lagrangian for eq. 19/20)",
                       "cutting-plane (ACCPM on the dual, App. A.5)",
                       "closed-form (Theorem 2, whitened data with n <= d)",
                       "sgd (non-convex baseline, PyTorch, App. A.1 protocol; needs the torch extra)",
                       "cvxpy-scalar (reference, paper eq. 9, c = 1)"]
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    width = max(len(k) for k in info)
    for k, v in info.items():
        if isinstance(v, dict):
            print(f"{k:<{width}}")
            for kk, vv in v.items():
                print(f"  {kk:<{width - 2}}  {vv}")
        elif isinstance(v, list):
            print(f"{k:<{width}}  {', '.join(v) if v else 'none'}")
        else:
            print(f"{k:<{width}}  {v}")
    return EXIT_OK


def _cmd_fit(args) -> int:
    from .api import fit
    from .io import load_dataset

    X, Y = load_dataset(args.data, args.target)
    res = fit(X, Y, args.beta, solver=args.solver, patterns=args.patterns, oracle=args.oracle,
              loss=args.loss,
              tol=args.tol, max_iter=args.max_iter, time_limit=args.time_limit,
              max_patterns=args.max_patterns, random_state=args.seed, verbose=args.verbose,
              device=args.device, dtype=args.dtype)
    if args.out:
        res.network.save(args.out)
    if args.json:
        print(json.dumps(dict(res.to_dict(), beta=args.beta, out=args.out)))
    else:
        print(f"data {args.data}: n={X.shape[0]}, d={X.shape[1]}, c={Y.shape[1]}; beta={args.beta:g}")
        print(res)
        note = _status_note(res)
        if note:
            print(note)
        print(_cert_text(res.certificate))
        for key in ("relaxation_value", "relaxation_status", "lower_bound", "lower_bound_reason",
                    "relaxation_exact", "exact_reason", "recovery", "n_cuts"):
            if key in res.info:
                print(f"  {key}: {res.info[key]}")
        if args.out:
            print(f"network written to {args.out}")
    return EXIT_OK if res.certificate.is_global else EXIT_NOT_GLOBAL


def _cmd_reproduce(args) -> int:
    from .experiments.reproduce import reproduce

    results = reproduce(args.figure, args.out, quick=args.quick, data=args.data, device=args.device,
                        progress=lambda line: print(line, flush=True))
    print()
    for r in results:
        print(f"{r.name} ({r.scale}, {r.time:.1f} s): {r.title}")
        for path in r.paths.values():
            print(f"  wrote {path}")
        for claim, v in r.findings.items():
            nums = ", ".join(f"{k}={v_:.3g}" if isinstance(v_, float) else f"{k}={v_}"
                             for k, v_ in v.items() if k != "holds")
            print(f"  {'holds        ' if v['holds'] else 'DOES NOT HOLD'}  {claim}"
                  + (f" ({nums})" if nums else ""))
    return EXIT_OK


def _cmd_bench(args) -> int:
    extra = list(args.extra or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    if args.device is not None:
        # the device suite: the default solver on a PyTorch device against Adam there
        if args.suite not in ("default", "device"):
            raise ValueError(f"--device runs the 'device' suite; it does not combine with "
                             f"--suite {args.suite}")
        args.suite = "device"
        extra = ["--device", args.device] + extra
    if args.suite != "default":
        from .experiments.suites import SUITES, run_suite

        _, has_quick, _ = SUITES[args.suite]
        if args.quick and not has_quick:
            raise ValueError(f"the {args.suite!r} suite has no --quick sizes; see "
                             f"'convexrelu bench --suite {args.suite} -- --help'")
        argv = ["--out", args.out] + (["--quick"] if args.quick else []) + extra
        return run_suite(args.suite, argv)
    if extra:
        raise ValueError(f"the default suite takes no extra arguments; got {' '.join(extra)}")
    from .experiments.bench import run_bench

    res = run_bench(args.out, quick=args.quick, progress=lambda line: print(line, flush=True))
    print()
    with open(res["paths"]["md"], encoding="utf-8") as fh:
        print(fh.read())
    for path in res["paths"].values():
        print(f"wrote {path}")
    return EXIT_OK


def planted_problem(seed=0):
    """The paper's §5.1 problem (see :func:`convexrelu.datasets.planted`)."""
    from .datasets import planted

    X, Y, _ = planted(seed=seed)
    return X, Y


def _cmd_demo(args) -> int:
    import os
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from .api import fit
    from .certificates import certify, lambda_max
    from .network import TwoLayerReLU

    X, Y = planted_problem(args.seed)
    beta = 1e-2
    n, d = X.shape
    print(f"convexrelu {__version__} demo: the paper's §5.1 planted problem: X {n}x{d} ~ N(0,1), "
          f"Y from a random 100-neuron ReLU teacher with {Y.shape[1]} outputs, beta = {beta}")
    res = fit(X, Y, beta, solver="cg")
    net = res.network
    strength = np.linalg.norm(net.W1, axis=0) * np.linalg.norm(net.W2, axis=1)
    keep = np.arange(net.n_neurons) != int(np.argmax(strength))
    worse = TwoLayerReLU(net.W1[:, keep], net.W2[keep])
    lam = lambda_max(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fw = fit(X, Y, beta, solver="frank-wolfe", time_limit=args.fw_seconds)
    rows = [
        ("cg (default solver)", net, res.certificate, res.time),
        (f"frank-wolfe, {args.fw_seconds:g} s budget", fw.network, fw.certificate, fw.time),
        ("cg optimum minus largest neuron", worse, certify(worse, X, Y, beta), None),
        (f"zero net at beta=lambda_max={lam:.3g}", TwoLayerReLU.zeros(d, Y.shape[1]),
         certify(TwoLayerReLU.zeros(d, Y.shape[1]), X, Y, lam), None),
    ]
    head = (f"  {'network':<34} {'neurons':>7} {'objective':>12} {'dual bound':>12} "
            f"{'rel_gap':>9} {'time':>8}  certified")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for name, nt, c, t in rows:
        ts = f"{t:.2f}s" if t is not None else "-"
        print(f"  {name:<34} {nt.n_neurons:>7d} {c.primal:>12.8g} {c.dual:>12.8g} "
              f"{c.rel_gap:>9.1e} {ts:>8}  {'yes' if c.is_global else 'no'}")
    print(f"  cg: {res.n_iter} iterations, status {res.status}; certificates use the exact "
          f"oracle over all {res.certificate.n_patterns} sign patterns")
    if args.out:
        net.save(args.out)
        print(f"  certified network written to {args.out}")
    out_dir = args.out_dir
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  plot skipped: matplotlib is not installed (pip install 'convexrelu[plot]')")
    else:
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "convexrelu_demo.png")
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        best_dual = max(res.certificate.dual, fw.certificate.dual)
        for r_, label in ((res, "cg"), (fw, "frank-wolfe")):
            h = r_.history
            best_obj = np.minimum.accumulate(h["objective"])
            axes[0].plot(h["time"], np.maximum(best_obj - best_dual, 1e-16), label=label)
            axes[1].plot(h["time"], np.maximum(np.minimum.accumulate(h["rel_gap"]), 1e-16), label=label)
        axes[0].set_yscale("log")
        axes[1].set_yscale("log")
        axes[0].set_xlabel("time (s)")
        axes[0].set_ylabel("best objective minus the best dual bound")
        axes[1].axhline(1e-6, color="k", ls=":", label="tol 1e-6")
        axes[1].set_xlabel("time (s)")
        axes[1].set_ylabel("relative duality gap of the best network")
        for ax in axes:
            ax.legend()
            ax.grid(alpha=0.3)
        fig.suptitle("convexrelu demo: paper §5.1 planted problem, beta = 1e-2")
        fig.tight_layout()
        tmp = path + ".tmp.png"
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        os.replace(tmp, path)
        print(f"  plot of objective and gap per iteration: {path}")
    return EXIT_OK if res.certificate.is_global and not rows[2][2].is_global else EXIT_NOT_GLOBAL


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convexrelu",
        description="Certified global training of two-layer ReLU networks "
                    "(Sahiner et al., ICLR 2021).",
    )
    p.add_argument("--version", action="version", version=f"convexrelu {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log progress (-vv: debug)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("certify", help="certify a saved network on a data set",
                       description="Duality-gap certificate of a saved network. Exit status: "
                                   "0 certified global, 1 not certified, 2 bad input.")
    c.add_argument("model", help="network file (.npz written by TwoLayerReLU.save)")
    c.add_argument("data", help="data: .npz with X and Y (or y), or CSV with --target")
    c.add_argument("--beta", type=_positive_float, required=True, help="weight decay (> 0)")
    c.add_argument("--target", action="append", help="CSV target column(s), comma-separated")
    c.add_argument("--patterns", choices=["auto", "exact", "sampled"], default="auto")
    c.add_argument("--oracle", choices=["auto", "exact", "stream", "bnb", "upper_bound", "heuristic"],
                   default="auto",
                   help="exact: stored enumeration; stream: exact for ranks 3-5, nothing stored; "
                        "bnb: branch and bound (a proven bound at any rank)")
    c.add_argument("--tol", type=_nonneg_float, default=1e-6, help="relative gap for 'global'")
    c.add_argument("--max-patterns", type=_positive_float, default=1e9)
    c.add_argument("--seed", type=int, default=None, help="seed for sampled patterns")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=_cmd_certify)

    i = sub.add_parser("info", help="versions, extras, oracles and solvers")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_info)

    f = sub.add_parser("fit", help="train to a certified global optimum",
                       description="Solve the convex program of the data set. Exit status: "
                                   "0 certified global, 1 not certified, 2 bad input.")
    f.add_argument("data", help="data: .npz with X and Y (or y), or CSV with --target")
    f.add_argument("--beta", type=_positive_float, required=True, help="weight decay (> 0)")
    from .api import SOLVERS

    f.add_argument("--solver", choices=list(SOLVERS), default="auto")
    f.add_argument("--tol", type=_nonneg_float, default=1e-6, help="target relative gap")
    f.add_argument("--loss", default="squared",
                   choices=["squared", "cross_entropy", "logistic", "multiclass_hinge", "huber",
                            "absolute"],
                   help="training loss (classification losses take labels or one-hot targets)")
    f.add_argument("--max-iter", type=int, default=None)
    f.add_argument("--time-limit", type=_positive_float, default=None, help="seconds")
    f.add_argument("--device", default=None,
                   help="a PyTorch device (cuda, cuda:1, cpu) for the default solver's dense "
                        "work (needs the torch extra); default: NumPy")
    f.add_argument("--dtype", choices=("float64", "float32"), default=None,
                   help="with --device: float32 for the searches only (the certificate "
                        "stays float64)")
    f.add_argument("--target", action="append", help="CSV target column(s), comma-separated")
    f.add_argument("--patterns", choices=["auto", "exact", "sampled"], default="auto")
    f.add_argument("--oracle", choices=["auto", "exact", "upper_bound", "heuristic"], default="auto")
    f.add_argument("--max-patterns", type=_positive_float, default=1e9)
    f.add_argument("--seed", type=int, default=None, help="seed for sampled patterns")
    f.add_argument("--out", default=None, help="write the network to this .npz")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.set_defaults(func=_cmd_fit)

    dm = sub.add_parser("demo", help="train the paper's §5.1 problem to a certified optimum")
    dm.add_argument("--seed", type=int, default=0)
    dm.add_argument("--out-dir", default=".", help="folder for the plot (default: .)")
    dm.add_argument("--out", default=None, help="write the certified network to this .npz")
    dm.add_argument("--fw-seconds", type=_positive_float, default=3.0,
                    help="time budget of the Frank-Wolfe comparison row")
    dm.set_defaults(func=_cmd_demo)

    from .experiments.reproduce import FIGURES

    rp = sub.add_parser("reproduce", help="reproduce a figure of the paper (PNG, JSON, Markdown)",
                        description="Run one of the paper's experiments, or all of them, and write "
                                    "FIG.png, FIG.json and FIG.md into --out. --quick runs in "
                                    "minutes on a laptop CPU.")
    rp.add_argument("figure", choices=[*FIGURES, "all"])
    rp.add_argument("--quick", action="store_true", help="reduced sizes (minutes)")
    rp.add_argument("--out", default="reproduce_out", help="output folder (default reproduce_out)")
    rp.add_argument("--data", default=None,
                    help="fig2/fig6: .npz with X (n, d) images and y labels (optionally X_test, "
                         "y_test), e.g. CIFAR-10 as in the paper")
    rp.add_argument("--device", default="cpu", help="PyTorch device for SGD (cpu or cuda)")
    rp.set_defaults(func=_cmd_reproduce)

    bn = sub.add_parser("bench", help="side-by-side timings of the solvers and baselines",
                        description="cg vs frank-wolfe vs CVXPY vs PyTorch GD/Adam (and pyscnn "
                                    "when installed) in one run; writes bench.json, bench.md and "
                                    "bench.png into --out.")
    from .experiments.suites import SUITES

    bn.add_argument("--suite", default="default", choices=["default", *SUITES],
                    help="which benchmark: default (the side-by-side run above); "
                         + "; ".join(f"{k}: {v[2]}" for k, v in SUITES.items()))
    bn.add_argument("--quick", action="store_true", help="reduced grid (minutes)")
    bn.add_argument("--device", default=None,
                    help="a PyTorch device (cuda, cpu): run the device suite, the default "
                         "solver there against Adam on the same device")
    bn.add_argument("--out", default="bench_out", help="output folder (default bench_out)")
    bn.add_argument("extra", nargs=argparse.REMAINDER,
                    help="after --: the suite's own options (see --suite NAME -- --help)")
    bn.set_defaults(func=_cmd_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError, ImportError) as exc:
        print(f"convexrelu {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RuntimeError as exc:  # a numerical solver failed (reported, not hidden)
        print(f"convexrelu {args.command}: solver failure: {exc}", file=sys.stderr)
        return EXIT_NOT_GLOBAL
    except KeyboardInterrupt:
        print(f"convexrelu {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
