"""The proofs suite's ``--merge``: runs of different budgets and routes on one page."""

import json

import pytest

from convexrelu.experiments.suites import proofs


def _run(budget, routes, revision="abc1234", problem="iris", gap=1e-3):
    row = dict(problem=problem, fraction=0.1, beta=1.0, n=150, d=4, c=3, note="",
               fit_status="x", objective=1.0, neurons=3, spectral_rel_gap=0.5,
               spectral_omega_over_beta=3.0, estimate_rel_gap=1e-6,
               routes={r: dict(route=r, status="bound", time=1.0, rel_gap=gap,
                               is_global=False, attained_over_beta=0.99) for r in routes})
    return dict(suite="proofs", budget=budget, fit_time=15.0, tol=1e-4, revision=revision,
                machine={}, rows=[row], total_seconds=10.0)


def test_merge_makes_one_table_per_budget_and_marks_rows_from_separate_runs(tmp_path):
    files = []
    for i, run in enumerate([_run(60, ["enumeration", "bnb", "scip"]),
                             _run(600, ["scip"], gap=2e-3),
                             _run(600, ["bnb"], revision="def5678", gap=3e-3)]):
        f = tmp_path / f"r{i}.json"
        f.write_text(json.dumps(run))
        files.append(str(f))
    out = tmp_path / "page"
    assert proofs.main(["--merge", *files, "--out", str(out)]) == 0
    data = json.loads((tmp_path / "page.json").read_text())
    assert [t["budget"] for t in data["tables"]] == [60, 600]
    t600 = data["tables"][1]
    assert len(t600["rows"]) == 1
    routes = t600["rows"][0]["routes"]
    assert routes["scip"]["rel_gap"] == 2e-3 and routes["scip"]["run"] == 0
    assert routes["bnb"]["rel_gap"] == 3e-3 and routes["bnb"]["run"] == 1
    assert t600["revision"] == "abc1234, def5678"
    md = (tmp_path / "page.md").read_text()
    assert "## Budget 600 s per route" in md
    # the 600 s row mixes two runs (two networks): marked and explained; the 60 s row is not
    assert md.count("| iris† |") == 1 and "† The routes of this row" in md
    assert "gap 3.0e-03" in md and "gap 2.0e-03" in md


def test_merge_refuses_a_file_that_is_not_a_run(tmp_path, capsys):
    f = tmp_path / "other.json"
    f.write_text(json.dumps({"suite": "real", "rows": []}))
    with pytest.raises(SystemExit):
        proofs.main(["--merge", str(f), "--out", str(tmp_path / "x")])
    assert "not the JSON of one run" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_exact_calls_suite_quick_run_agrees(tmp_path):
    """The exact-calls benchmark on its small problem: both routes give the exact Omega
    (kind exact), agree to rounding, and the table names them."""
    from convexrelu.experiments.suites import exact_calls

    out = tmp_path / "ec"
    assert exact_calls.main(["--quick", "--fractions", "0.1", "--budget", "60",
                             "--out", str(out)]) == 0
    data = json.loads((tmp_path / "ec.json").read_text())
    row = data["rows"][0]
    for route in ("stream", "bnb"):
        o = row["routes"][route]
        assert o["kind"] == "exact" and o["call"] >= 0 and o["peak_mb"] > 0, o
    assert row["spread"] < 1e-9
    md = (tmp_path / "ec.md").read_text()
    assert "streamed enumeration" in md and "branch and bound, rtol 1e-9" in md
