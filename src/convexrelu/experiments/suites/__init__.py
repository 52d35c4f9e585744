"""The benchmark suites of ``convexrelu bench --suite NAME`` (one module each, one place).

Every suite module has ``main(argv) -> int`` with its own options (``--out`` always;
``--quick`` where the suite has reduced sizes) and writes JSON and a Markdown table. The
``default`` suite is :func:`convexrelu.experiments.bench.run_bench`.
"""

from __future__ import annotations

import importlib

#: name -> (module, takes --quick, one line on what it measures)
SUITES = {
    "solvers": ("solvers", True, "cg against the paper's Algorithm 1 (frank-wolfe)"),
    "foundation": ("foundation", True, "sign-pattern enumeration and the oracle, exact vs cheap"),
    "copositive": ("copositive", True, "the relaxation solvers; how often eq. 19 is tight"),
    "closed-form": ("closed_form", True, "Theorem 2's closed form against X^T Y + a thin SVD"),
    "losses": ("losses", False, "time to a certified optimum per loss (cg)"),
    "cnn-digits": ("cnn_digits", False, "the convex CNN next to PyTorch on 8x8 digits"),
    "certificate-sweep": ("certificate_sweep", False,
                          "adversarial sweep of the oracle and the certificate (10,000 problems)"),
    "real": ("real", True, "default fit vs tuned Adam and sgd on scikit-learn datasets and "
                           "planted data, equal wall time"),
    "device": ("device", True, "the default solver on a PyTorch device (GPU) against Adam on "
                               "the same device, equal wall time"),
    "dask": ("dask_scale", True, "a data-parallel fit on a local Dask cluster with less worker "
                                 "memory than data (n = 10^7)"),
    "exact-calls": ("exact_calls", True, "the exact Omega per oracle call: streamed "
                                         "enumeration against exact branch and bound, time "
                                         "and memory"),
    "proofs": ("proofs", False, "proven optimality on real tabular data: enumeration, branch "
                                "and bound and SCIP, route by route"),
}


def run_suite(name: str, argv: list[str]) -> int:
    """Run suite ``name`` with its own command-line arguments ``argv``."""
    if name not in SUITES:
        raise ValueError(f"unknown benchmark suite {name!r}; choose from "
                         f"{', '.join(['default', *SUITES])}")
    module = importlib.import_module(f"{__name__}.{SUITES[name][0]}")
    return int(module.main(argv) or 0)
