"""What the reproductions and the benchmark share: machine info, atomic output files,
the time at which a run first came within a tolerance of a target."""

from __future__ import annotations

import json
import os
from pathlib import Path
import platform

import numpy as np

__all__ = ["machine_info", "write_text", "write_json", "save_figure", "first_time_within",
           "import_pyplot", "require_torch"]


def git_revision() -> str:
    """Commit of the checkout convexrelu is imported from (``+dirty`` when it has changes),
    or says that it is an installed copy."""
    import subprocess

    pkg = Path(__file__).resolve().parents[1]
    repo = pkg.parents[1]  # src/convexrelu -> the repository, for an editable install
    if not (repo / ".git").exists():
        return f"n/a (convexrelu imported from {pkg}, not a git checkout)"
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (rev or "unknown") + ("+dirty(src)" if dirty else "")
    except Exception:  # noqa: BLE001 - git missing: the record says so
        return "unknown (git not available)"


def machine_info() -> dict:
    """Platform, CPU count, library versions and BLAS threads (for every output file)."""
    from .. import __version__

    info = dict(platform=platform.platform(), processor=platform.processor() or platform.machine(),
                python=platform.python_version(), cpu_count=os.cpu_count(), numpy=np.__version__,
                convexrelu=__version__)
    for mod in ("scipy", "sklearn", "cvxpy", "torch"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{d.get('internal_api')} {d.get('version')} ({d.get('num_threads')} threads)"
                        for d in threadpool_info()]
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass
    return info


def _atomic(path, write):
    """Write through a temporary file in the same folder, then rename: never half-written,
    with the permissions ``open()`` would give (:func:`convexrelu.io.atomic_write`)."""
    from ..io import atomic_write

    return atomic_write(path, write)


def write_text(path, text: str) -> str:
    return _atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path, data) -> str:
    """JSON with NaN/inf written as null (strict JSON readers accept it)."""
    text = json.dumps(_clean(data), indent=2, default=_default, allow_nan=False)
    return write_text(path, text + "\n")


def _clean(o):
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    return o


def import_pyplot():
    """matplotlib's pyplot on the Agg back end, or an ImportError naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'convexrelu[plot]' "
                          "(or 'convexrelu[experiments]' for everything reproduce/bench need)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> str:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        return _atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=130, bbox_inches="tight"))
    finally:
        plt.close(fig)


def require_torch(what: str):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{what} needs PyTorch: pip install torch==2.13.0 (the CPU build), "
                          "or pip install 'convexrelu[experiments]'") from None
    return torch


def first_time_within(times, values, target, rtol):
    """First time at which ``values`` came within ``rtol`` (relative) of ``target``, or None.

    ``target`` is a lower bound or the optimum, so "within" is
    ``value - target <= rtol * |target|``.
    """
    v = np.asarray(values, dtype=float)
    t = np.asarray(times, dtype=float)
    idx = np.flatnonzero(v - target <= rtol * abs(target))
    return float(t[idx[0]]) if idx.size else None


def single_threaded():
    """A context in which the BLAS and OpenMP pools use one thread: the environment for
    what starts later, and ``threadpoolctl`` for the libraries already loaded (``convexrelu
    bench`` imports NumPy, with a thread per core, before a suite's ``main``)."""
    import os

    from threadpoolctl import threadpool_limits

    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(v, "1")
    return threadpool_limits(limits=1)


def write_page(out: str, result, markdown) -> None:
    """``out.json`` (the result) and ``out.md`` (``markdown(result)``), and say so."""
    write_json(out + ".json", result)
    write_text(out + ".md", markdown(result))
    print(f"wrote {out}.json and {out}.md", flush=True)
