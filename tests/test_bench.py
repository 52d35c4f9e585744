"""The benchmark suite (``convexrelu bench``) on its toy grid: files, consistency, honesty.

No timing assertions: speed is measured by the benchmark itself, never in tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("cvxpy")

from convexrelu.experiments.bench import METHODS, TimedOracle, run_bench  # noqa: E402


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    lines = []
    res = run_bench(out, toy=True, progress=lines.append)
    return out, res, lines


def test_writes_three_valid_files(toy):
    out, res, _ = toy
    assert set(res) >= {"paths", "rows", "skipped", "machine", "total_s", "cg_breakdown"}
    with open(res["paths"]["json"]) as fh:
        data = json.load(fh)
    assert data["rows"] and data["machine"]["cpu_count"]
    with open(res["paths"]["png"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    md = open(res["paths"]["md"]).read()
    for method in {r["method"] for r in res["rows"]}:
        assert f"| {method} |" in md
    assert "## Skipped" in md and "## Where cg's time goes" in md


def test_every_method_has_a_row_or_a_reason(toy):
    _, res, lines = toy
    methods = {r["method"] for r in res["rows"]}
    assert methods >= {"cg", "frank-wolfe", "cvxpy-eq19", "cvxpy-eq9", "pytorch-gd", "pytorch-adam",
                       "pyscnn"}
    assert methods <= set(METHODS)
    assert lines, "progress was not called"


def test_time_to_target_consistent_with_excess(toy):
    _, res, _ = toy
    for r in res["rows"]:
        if r["t_1e4"] is not None:
            assert r["excess"] is not None and r["excess"] <= 1e-4 + 1e-12, r
            assert r["t_1e4"] <= r["total_s"] + 1e-9, r
        if r["skipped"]:
            assert r["note"], r


def test_reference_certified_for_d2(toy):
    _, res, _ = toy
    for cs in res["cases"]:
        assert cs["d"] == 2
        assert cs["reference_is_global"] is True, cs
        assert cs["reference_certified"].startswith("yes")
        assert cs["reference_dual"] <= cs["reference"] + 1e-9 * abs(cs["reference"])
    cg = [r for r in res["rows"] if r["method"] == "cg"]
    assert len(cg) == len(res["cases"]) and all(r["t_1e4"] is not None for r in cg)


def test_no_method_beats_a_certified_optimum(toy):
    """A certified reference is within rel_gap of p*: nobody may go below its dual bound."""
    _, res, _ = toy
    dual = {cs["name"]: cs["reference_dual"] for cs in res["cases"]}
    for r in res["rows"]:
        if r["skipped"] or r["objective"] is None or r["method"] == "cvxpy-eq19":
            continue  # eq. 19 is a relaxation: its value is itself a lower bound
        assert r["objective"] >= dual[r["case"]] * (1 - 1e-6), r


def test_skipped_have_reasons(toy):
    _, res, _ = toy
    for s in res["skipped"]:
        assert s["reason"] and s["case"] and s["method"]
    peers = [s for s in res["skipped"] if s["method"] == "pyscnn"]
    pys_rows = [r for r in res["rows"] if r["method"] == "pyscnn"]
    # either pyscnn ran, or it is listed as skipped with a reason
    assert peers or all(not r["skipped"] for r in pys_rows)
    md = open(res["paths"]["md"]).read()
    for s in res["skipped"]:
        assert s["reason"][:40] in md


def test_cg_breakdown_adds_up(toy):
    _, res, _ = toy
    for b in res["cg_breakdown"]:
        parts = b["oracle_s"] + b["master_s"] + b["merge_s"] + b["refine_s"] + b["other_s"]
        assert parts == pytest.approx(b["total_s"], rel=0.05, abs=0.05)
        assert b["oracle_calls"] >= 1


def test_timed_oracle_preserves_attributes():
    import convexrelu as cr
    from convexrelu.datasets import planted
    from convexrelu.oracles import make_oracle

    X, Y, _ = planted(n=20, d=2, c=2, seed=1)
    orc = make_oracle(X)
    t = TimedOracle(orc)
    assert t.kind == orc.kind and t.fingerprint == orc.fingerprint
    assert hasattr(t, "candidates") == hasattr(orc, "candidates")
    assert not hasattr(t, "no_such_attribute")
    assert t(Y).value == pytest.approx(orc(Y).value)
    assert t.calls == 1 and t.seconds >= 0
    r1 = cr.fit(X, Y, 0.5, oracle=t)
    r2 = cr.fit(X, Y, 0.5, oracle=orc)
    assert r1.objective == pytest.approx(r2.objective, rel=1e-8)
    assert r1.certificate.is_global


@pytest.mark.parametrize("kwargs, match", [
    (dict(time_budget=-1.0), "time_budget"),
    (dict(time_budget=0), "time_budget"),
    (dict(time_budget="soon"), "time_budget"),
    (dict(time_budget=float("nan")), "time_budget"),
    (dict(quick="yes"), "quick"),
    (dict(progress=3), "progress"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_bench(tmp_path / "o", toy=True, **kwargs)
    assert not (tmp_path / "o").exists()


def test_out_must_not_be_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="out"):
        run_bench(f, toy=True)
    with pytest.raises(ValueError, match="out"):
        run_bench(None, toy=True)


def test_time_budget_skips_cases_with_a_reason(tmp_path):
    res = run_bench(tmp_path, toy=True, time_budget=1e-9)
    assert res["rows"] == []
    assert res["skipped"] and all("time_budget" in s["reason"] for s in res["skipped"])
    assert json.load(open(res["paths"]["json"]))["skipped"]
    assert np.isfinite(res["total_s"])


def test_interrupt_writes_the_finished_cases(tmp_path, monkeypatch):
    """Ctrl-C during a case: the files are written for the cases before it, and say so."""
    import convexrelu.experiments.bench as bench

    real = bench._run_case
    calls = []

    def run_case(name, *a, **kw):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(name, *a, **kw)

    monkeypatch.setattr(bench, "_run_case", run_case)
    res = bench.run_bench(str(tmp_path / "o"), toy=True)
    assert res["interrupted_at"] == calls[1] and len(res["cases"]) == 1
    assert "Interrupted" in open(res["paths"]["md"]).read()
    assert json.load(open(res["paths"]["json"]))["interrupted_at"] == calls[1]
    assert not (tmp_path / "o" / "bench.partial.json").exists()


def _slow(x):
    import time as _t

    _t.sleep(x)
    return x


def _boom(x):
    raise ValueError("bad x")


def test_call_with_timeout_stops_a_peer_without_its_own_time_limit():
    from convexrelu.experiments.bench import _call_with_timeout

    assert _call_with_timeout(_slow, (0.01,), {}, 30, "peer") == 0.01
    with pytest.raises(TimeoutError, match="peer ran past its cap of 0.5 s"):
        _call_with_timeout(_slow, (60,), {}, 0.5, "peer")
    with pytest.raises(RuntimeError, match="peer failed: ValueError: bad x"):
        _call_with_timeout(_boom, (1,), {}, 30, "peer")
