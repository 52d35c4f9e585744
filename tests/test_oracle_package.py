"""The layout of ``convexrelu.oracles``: no import circle, one contract, old paths kept."""

import ast
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import convexrelu
import convexrelu.preprocessing as pre
from convexrelu import oracles
from convexrelu.oracles import (CandidateOracle, ExactOracle, HeuristicOracle, Oracle, OracleBase,
                                OracleResult,
                                SDPOracle, SpectralOracle, SpikeFreeOracle, make_oracle)

PKG = pathlib.Path(oracles.__file__).parent
MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")


def _module_level_imports(path):
    """Relative imports at module level (not inside functions), as dotted names."""
    tree = ast.parse(path.read_text())
    out = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = "convexrelu.oracles" if node.level == 1 else "convexrelu"
            out.append(f"{base}.{node.module}" if node.module else base)
    return out


def test_no_import_circle_in_the_package():
    graph = {f"convexrelu.oracles.{m}": [i for i in _module_level_imports(PKG / f"{m}.py")
                                         if i.startswith("convexrelu.oracles.")]
             for m in MODULES}
    done, active = set(), set()

    def visit(m, path):
        assert m not in active, f"import circle: {' -> '.join(path + [m])}"
        if m in done:
            return
        active.add(m)
        for n in graph.get(m, []):
            visit(n, path + [m])
        active.discard(m)
        done.add(m)

    for m in graph:
        visit(m, [])


def test_the_package_imports_nothing_above_it():
    # the oracles sit on the problem object (and what it sits on), nothing higher
    allowed = {"convexrelu._validation", "convexrelu.patterns", "convexrelu.problem",
               "convexrelu.kernels"}
    for p in PKG.glob("*.py"):
        outside = {i for i in _module_level_imports(p) if not i.startswith("convexrelu.oracles")}
        assert outside <= allowed, (p.name, outside - allowed)


@pytest.mark.parametrize("module", ["convexrelu.oracles"]
                         + [f"convexrelu.oracles.{m}" for m in MODULES] + ["convexrelu.preprocessing"])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    # a bare package stub stands in for convexrelu/__init__, so only the module's own
    # import chain runs
    code = ("import importlib, sys, types; s = types.ModuleType('convexrelu'); "
            f"s.__path__ = [{str(PKG.parent)!r}]; sys.modules['convexrelu'] = s; "
            f"importlib.import_module({module!r})")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_oracle_honours_the_protocol():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 3))
    Z = rng.standard_normal((8, 2))
    Xw = np.linalg.qr(rng.standard_normal((10, 6)))[0].T  # orthonormal rows: spike-free
    Zw = rng.standard_normal((6, 2))
    built = [(ExactOracle(X), Z), (HeuristicOracle(X, random_state=0), Z), (SDPOracle(X), None),
             (SpectralOracle(X), Z), (SpikeFreeOracle(Xw), Zw)]
    for orc, Zi in built:
        assert isinstance(orc, Oracle), type(orc).__name__
        if Zi is None:
            continue  # calling the SDP oracle needs a conic solver; the contract is structural
        res = orc(Zi)
        assert isinstance(res, OracleResult)
        assert res.kind in oracles.ORACLE_KINDS
    # every built-in oracle has the whole contract (OracleBase), so no solver probes it
    for orc, Zi in built:
        assert isinstance(orc, OracleBase) and isinstance(orc, CandidateOracle)
        assert orc.problem.X.shape == orc.problem.X.shape and orc.fingerprint
        if Zi is not None:
            vals, U = orc.candidates(Zi, 0.0, 3)
            assert 1 <= len(vals) <= 3 and U.shape == (len(vals), orc.problem.d)
            assert np.allclose(np.linalg.norm(U, axis=1), 1.0)
            attained = [np.linalg.norm(Zi.T @ np.maximum(orc.problem.X @ u, 0)) for u in U]
            assert np.allclose(attained, vals)
    assert built[0][0].arrangement_2d() is None  # rank 3: no 2-D sweep
    assert SpectralOracle(X).arrangement_2d() is None


def test_old_import_paths_still_work():
    assert pre.SpectralOracle is SpectralOracle and pre.SpikeFreeOracle is SpikeFreeOracle
    assert pre.is_spike_free is oracles.spike_free.is_spike_free
    assert convexrelu.SpectralOracle is SpectralOracle
    for name in ("OracleResult", "ExactOracle", "SDPOracle", "HeuristicOracle", "make_oracle",
                 "omega", "ORACLE_KINDS", "DEFAULT_MAX_PATTERNS", "_Sweep2D", "_ascent",
                 "_relu_values", "_whitened_values", "_Evaluator", "row_groups"):
        assert hasattr(oracles, name), name
    Xw = np.linalg.qr(np.random.default_rng(1).standard_normal((10, 6)))[0].T
    assert isinstance(make_oracle(Xw, "spike-free"), SpikeFreeOracle)
