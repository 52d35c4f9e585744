"""The ``real`` benchmark suite: default fit vs tuned Adam and sgd at equal wall time.

The smoke test runs two one-second runs in child processes (about 10 s); the criteria
and the data preparation are checked on synthetic records, without child processes.
"""

import importlib.util
import json
import math

import numpy as np
import pytest

from convexrelu.experiments.suites import real

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="the suite's Adam competitor needs PyTorch")


def _check_outputs(tmp_path, methods, n_cases):
    data = json.loads((tmp_path / "real.json").read_text())
    for key in ("machine", "git_revision", "command", "budget_s", "problems", "flags", "jobs"):
        assert key in data
    assert data["budget_s"] == 1.0
    assert len(data["problems"]) == n_cases
    for p in data["problems"]:
        assert set(p["runs"]) == set(methods) == set(p["summary"]) == set(p["trajectories"])
        assert set(p["criteria"]) == {"a", "b", "c"}
        assert p["lambda_max_est"] > 0 and math.isclose(p["beta"], p["beta_fraction"] * p["lambda_max_est"])
        for m in methods:
            s, t = p["summary"][m], p["trajectories"][m]
            for key in ("excess_half", "excess_final", "time_to_rtol", "peak_rss_mb", "wall_s"):
                assert key in s
            assert len(t["time"]) == len(t["objective"]) <= real.MAX_POINTS
            assert p["runs"][m]["status"] not in ("error", "crashed"), p["runs"][m]
            assert s["peak_rss_mb"] > 0
        d = p["runs"]["default"]
        for key in ("status", "is_global", "is_rigorous", "dual", "rel_gap"):
            assert key in d
        assert p["best"] is not None
        assert p["criteria"]["c"]["passed"] in (True, False)
    md = (tmp_path / "real.md").read_text()
    for word in ("| problem |", "(a)", "(b)", "(c)", "linnerud", "estimated"):
        assert word in md
    assert "PASS" in md or "FAIL" in md
    return data, md


@needs_torch
def test_quick_run_writes_json_and_markdown(tmp_path, capsys):
    methods = ["default", "adam-w100-lr1e-2"]  # every method: the slow test below
    rc = real.main(["--out", str(tmp_path), "--quick", "--budget", "1", "--problems", "linnerud",
                    "--fractions", "0.1", "--methods", ",".join(methods), "--jobs", "2",
                    "--small-repeats", "2"])
    assert rc == 0
    data, md = _check_outputs(tmp_path, methods, 1)
    out = capsys.readouterr().out
    assert "[2/2]" in out and "| problem |" in out and "perturbs the timings" in out
    # criterion (d): the small exact cases, timed after the runs, certified
    assert [r["name"] for r in data["small"]] == [c[0] for c in real.SMALL_CASES]
    for r in data["small"]:
        assert len(r["times_s"]) == 2 and r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["status"] == "optimal" and r["is_global"] and r["rel_gap"] <= 1e-6
        assert r["passed"] == (r["median_s"] <= real.SMALL_LIMIT)
    assert "Small exact cases (d)" in md and "small exact case spiral" in out
    # linnerud has rank 3: the exact oracle certifies the default's result
    assert data["problems"][0]["runs"]["default"]["is_rigorous"] is True


@needs_torch
@pytest.mark.slow
def test_quick_run_every_method(tmp_path):
    rc = real.main(["--out", str(tmp_path), "--quick", "--budget", "1", "--problems", "linnerud"])
    assert rc == 0
    _check_outputs(tmp_path, list(real.METHODS), 2)


def test_bad_small_repeats_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="small-repeats"):
        real.main(["--out", str(tmp_path), "--small-repeats", "-1"])


def test_unknown_problem_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown problem"):
        real.main(["--out", str(tmp_path), "--problems", "mnist"])


def test_missing_torch_names_the_extra(tmp_path, monkeypatch, capsys):
    import convexrelu.experiments._common as common

    def no_torch(what):
        raise ImportError(f"{what} needs PyTorch: pip install 'convexrelu[experiments]'")

    monkeypatch.setattr(common, "require_torch", no_torch)
    assert real.main(["--out", str(tmp_path), "--quick"]) == 2
    assert "convexrelu[experiments]" in capsys.readouterr().err


def test_preparation():
    X, Y, _ = real.load_problem("digits")  # has constant pixel columns
    sd = X.std(axis=0)
    assert np.allclose(X.mean(axis=0), 0) and np.all(np.isclose(sd, 1) | (sd == 0))
    assert np.any(sd == 0) and np.all(X[:, sd == 0] == 0)
    assert Y.shape == (1797, 10) and np.all(Y.sum(axis=1) == 1) and Y.dtype == float
    X, Y, _ = real.load_problem("diabetes")
    assert Y.shape == (442, 1) and np.isclose(Y.std(), 1) and np.isclose(Y.mean(), 0)


def _run(times, values, **kw):
    return dict(times=list(times), values=list(values), wall_s=1.0, peak_rss_mb=100.0, **kw)


def test_criteria_on_synthetic_trajectories():
    budget = 10.0
    cert = dict(status="optimal", is_global=True, is_rigorous=True, dual=0.99, lower_bound=None,
                has_lower_bound_field=False, oracle_kind="exact", pattern_scope="exact")
    runs = {"default": _run([0.5, 1.0, 20.0], [1.5, 1.0, 0.5], **cert)}  # the 20 s point is late
    for i, m in enumerate(real.ADAM_METHODS):
        runs[m] = _run(np.linspace(0.1, 10, 100), np.linspace(3, 1.0005 + i, 100), status="time_limit")
    runs["sgd"] = _run([], [], status="killed", killed="late")
    best, best_method, summary, crit = real.summarize(runs, budget)
    assert best == 1.0 and best_method == "default"
    assert summary["default"]["excess_final"] == 0 and summary["sgd"]["excess_final"] is None
    assert summary["default"]["time_to_rtol"] == 1.0
    assert crit["a"]["passed"] and crit["b"]["passed"] and crit["c"]["passed"]
    assert crit["b"]["adam_method"] == real.ADAM_METHODS[0]
    # no point by budget/2: (a) fails; an estimate without lower_bound: (c) fails
    runs["default"] = _run([6.0], [1.0], **dict(cert, is_rigorous=False, status="time_limit",
                                               is_global=False))
    _, _, _, crit = real.summarize(runs, budget)
    assert not crit["a"]["passed"] and not crit["b"]["passed"] and not crit["c"]["passed"]
    runs["default"]["lower_bound"] = 0.9  # a finite lower_bound field is a proven bound
    assert real.summarize(runs, budget)[3]["c"]["passed"]
    # a killed default: no result at all
    runs["default"] = _run([], [], status="killed", killed="late")
    _, _, _, crit = real.summarize(runs, budget)
    assert not any(crit[k]["passed"] for k in "abc") and "no result" in crit["c"]["why"]
    # the flag that must never fire
    assert real.flags_of({"default": dict(status="optimal", is_global=False)}, "p")
    assert not real.flags_of({"default": dict(status="optimal", is_global=True)}, "p")


def test_thin_keeps_first_last_and_best():
    t = list(np.arange(1000.0))
    v = [5.0] * 1000
    v[517] = 1.0
    th = real.thin(t, v)
    assert len(th["time"]) <= real.MAX_POINTS
    assert th["time"][0] == 0 and th["time"][-1] == 999 and 1.0 in th["objective"]
