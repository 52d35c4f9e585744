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
import time

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
        print(cert)
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
    info["oracles"] = ["exact", "upper_bound (SDP via cvxpy)", "heuristic"]
    info["solvers"] = ["cvxpy-scalar (reference, paper eq. 9, c = 1)"]
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


def _cmd_demo(args) -> int:
    from .certificates import certify, lambda_max
    from .network import TwoLayerReLU
    from .patterns import SignPatterns
    from .solvers.reference import solve_scalar_cvxpy

    rng = np.random.default_rng(args.seed)
    n, d, beta = 30, 2, 0.05
    X = rng.standard_normal((n, d))
    teacher = TwoLayerReLU(rng.standard_normal((d, 10)), rng.standard_normal((10, 1)))
    y = teacher.predict(X) + 0.1 * rng.standard_normal((n, 1))
    print(f"convexrelu {__version__} demo: scalar-output problem, X {n}x{d} ~ N(0,1), "
          f"y from a 10-neuron ReLU teacher + noise, beta = {beta}")
    t0 = time.perf_counter()
    pats = SignPatterns.enumerate(X)
    print(f"  sign patterns: {pats.n_patterns} (exact enumeration, "
          f"{1e3 * (time.perf_counter() - t0):.1f} ms)")
    ref = solve_scalar_cvxpy(X, y, beta, pats)
    print(f"  convex program (paper eq. 9) via CVXPY/{ref.solver}: status {ref.status}, "
          f"value {ref.objective:.8g} ({ref.time:.2f} s)")
    net = ref.network.prune(1e-10 * ref.network.path_norm())
    strength = np.linalg.norm(net.W1, axis=0) * np.abs(net.W2[:, 0])
    drop = int(np.argmax(strength))
    keep = np.arange(net.n_neurons) != drop
    worse = TwoLayerReLU(net.W1[:, keep], net.W2[keep])
    lam = lambda_max(X, y)
    rows = [
        ("convex optimum -> network", net, certify(net, X, y, beta, patterns=pats)),
        ("minus its largest neuron", worse, certify(worse, X, y, beta, patterns=pats)),
        (f"zero net, beta=lambda_max={lam:.4g}", TwoLayerReLU.zeros(d, 1),
         certify(TwoLayerReLU.zeros(d, 1), X, y, lam, patterns=pats)),
    ]
    head = f"  {'network':<34} {'neurons':>7} {'objective':>12} {'dual bound':>12} {'rel_gap':>9}  global"
    print(head)
    print("  " + "-" * (len(head) - 2))
    for name, nt, c in rows:
        print(f"  {name:<34} {nt.n_neurons:>7d} {c.primal:>12.8g} {c.dual:>12.8g} "
              f"{c.rel_gap:>9.1e}  {'yes' if c.is_global else 'no'}")
    ok = rows[0][2].is_global and not rows[1][2].is_global and rows[2][2].is_global
    print("  certificates: exact oracle over all sign patterns (rigorous dual bounds)")
    if args.out:
        net.save(args.out)
        print(f"  optimal network written to {args.out}")
    return EXIT_OK if ok else EXIT_NOT_GLOBAL


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
    c.add_argument("--oracle", choices=["auto", "exact", "upper_bound", "heuristic"], default="auto")
    c.add_argument("--tol", type=_nonneg_float, default=1e-6, help="relative gap for 'global'")
    c.add_argument("--max-patterns", type=_positive_float, default=1e9)
    c.add_argument("--seed", type=int, default=None, help="seed for sampled patterns")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=_cmd_certify)

    i = sub.add_parser("info", help="versions, extras, oracles and solvers")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_info)

    dm = sub.add_parser("demo", help="solve a small problem to a certified global optimum")
    dm.add_argument("--seed", type=int, default=0)
    dm.add_argument("--out", default=None, help="write the optimal network to this .npz")
    dm.set_defaults(func=_cmd_demo)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"convexrelu {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"convexrelu {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
