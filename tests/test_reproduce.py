"""``convexrelu reproduce``: every figure at toy size (seconds), its files and its findings."""

import json
import os

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from convexrelu.cli import main  # noqa: E402
from convexrelu.experiments import _common  # noqa: E402
from convexrelu.experiments.reproduce import FIGURES, reproduce  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def toy_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    lines = []
    results = reproduce("all", str(out), toy=True, progress=lines.append)
    return out, {r.name: r for r in results}, lines


def test_every_figure_writes_png_json_and_table(toy_all):
    out, res, lines = toy_all
    assert sorted(res) == sorted(FIGURES)
    for name, r in res.items():
        with open(r.paths["png"], "rb") as fh:
            assert fh.read(8) == PNG_MAGIC
        with open(r.paths["json"]) as fh:
            data = json.load(fh)
        assert data["figure"] == name and data["scale"] == "toy"
        assert {k: v["holds"] for k, v in data["findings"].items()} == \
            {k: v["holds"] for k, v in r.findings.items()}
        assert "machine" in data and data["machine"]["cpu_count"] >= 1
        with open(r.paths["md"]) as fh:
            md = fh.read()
        assert md.startswith("# ") and "|---|" in md and "## Findings" in md
    assert not [f for f in os.listdir(out) if f.startswith(".tmp_")]  # nothing half-written
    assert any(line.startswith("fig3: beta=") for line in lines)


def test_fig1_sgd_never_beats_the_certified_optimum(toy_all):
    d = toy_all[1]["fig1"].data
    assert d["optimum"]["is_global"]
    p = d["optimum"]["objective"]
    for run in d["runs"]:
        assert run["objective"] >= d["optimum"]["dual"] - 1e-9
        assert run["excess"] == pytest.approx((run["objective"] - p) / p)
        assert min(run["curve"]) >= d["optimum"]["dual"] - 1e-9
    narrow = [k for k in toy_all[1]["fig1"].findings if "stays above" in k]
    assert toy_all[1]["fig1"].findings[narrow[0]]["holds"]


def test_fig3_three_methods_coincide_with_the_certified_optimum(toy_all):
    r = toy_all[1]["fig3"]
    for row in r.data["rows"]:
        assert row["optimum_certified"]
        assert row["copositive"] <= row["optimum"] * (1 + 1e-7)  # a lower bound
        assert row["sgd"] >= row["optimum"] * (1 - 1e-9) and row["fw"] >= row["optimum"] * (1 - 1e-9)
    assert all(v["holds"] for v in r.findings.values())


def test_fig2_fig6_closed_form_is_the_optimum_and_shared(toy_all):
    f2, f6 = toy_all[1]["fig2"], toy_all[1]["fig6"]
    for row in f2.data["runs"]:
        assert row["closed_form_certified"] and row["sgd_objective"] >= row["closed_form_objective"] * (1 - 1e-9)
        assert row["n"] <= row["d"]
    # fig6 reuses fig2's runs: the same objectives, computed once
    assert [r["sgd_objective"] for r in f6.data["runs"]] == [r["sgd_objective"] for r in f2.data["runs"]]
    assert all(0 <= r["closed_form_test_acc"] <= 1 for r in f6.data["runs"])


def test_fig4_relaxation_is_below_sgd_and_fig5_relu_beats_linear(toy_all):
    f4, f5 = toy_all[1]["fig4"], toy_all[1]["fig5"]
    assert f4.data["settings"]["spike_free"]
    assert all(r["sgd_over_relaxation"] >= -1e-6 for r in f4.data["rows"])
    key = [k for k in f5.findings if "generalises" in k][0]
    best_relu = min(r["relu_test"] for r in f5.data["rows"])
    assert f5.findings[key]["holds"] == (best_relu < min(r["lin_test"] for r in f5.data["rows"]))


def test_user_data_file_runs_fig6(tmp_path):
    from sklearn.datasets import load_digits

    dig = load_digits()
    path = tmp_path / "imgs.npz"
    np.savez(path, X=dig.data[:400], y=dig.target[:400], X_test=dig.data[400:600],
             y_test=dig.target[400:600])
    (r,) = reproduce("fig6", str(tmp_path / "o"), toy=True, data=str(path))
    run = r.data["runs"][0]
    assert run["n"] <= run["d"] == 64 and run["n_test"] == 200


@pytest.mark.parametrize("arrays, match", [
    (dict(X=np.ones((5, 3))), "no array 'y'"),
    (dict(X=np.ones((5, 3)), y=np.ones(4)), "X must be"),
    (dict(X=np.full((5, 3), np.nan), y=np.ones(5)), "finite"),
    (dict(X=np.ones((5, 3)), y=np.ones(5), X_test=np.ones((2, 3))), "both X_test and y_test"),
])
def test_bad_user_data_is_refused_before_any_work(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        reproduce("fig2", str(tmp_path / "o"), toy=True, data=str(path))
    assert not (tmp_path / "o").exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="figure must be one of"):
        reproduce("fig9", str(tmp_path))
    with pytest.raises(ValueError, match="fig2 and fig6 only"):
        reproduce("fig1", str(tmp_path), data="x.npz")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="existing file"):
        reproduce("fig1", str(f))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not an .npz"):
        reproduce("fig2", str(tmp_path / "o"), data=str(junk))


def test_cli_reports_files_and_findings(tmp_path, capsys, monkeypatch):
    import convexrelu.experiments.reproduce as rep

    calls = {}
    real = rep.reproduce

    def fake(figure, out, **kw):
        calls.update(kw, figure=figure, out=out)
        return real(figure, out, toy=True, progress=kw["progress"])

    monkeypatch.setattr(rep, "reproduce", fake)
    rc = main(["reproduce", "fig5", "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and calls["quick"] is True and calls["figure"] == "fig5"
    assert "wrote" in out and "fig5.png" in out and ("holds" in out or "DOES NOT HOLD" in out)
    monkeypatch.undo()
    assert main(["reproduce", "fig1", "--data", "x.npz", "--out", str(tmp_path)]) == 2
    assert "fig2 and fig6 only" in capsys.readouterr().err


def test_atomic_writes_leave_nothing_behind(tmp_path):
    with pytest.raises(TypeError):
        _common.write_json(tmp_path / "a.json", {"x": object()})
    assert os.listdir(tmp_path) == []
    _common.write_json(tmp_path / "b.json", {"x": float("nan"), "y": np.float64(2.0)})
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": None, "y": 2.0}
    assert _common.first_time_within([0, 1, 2], [3.0, 1.0001, 1.0], 1.0, 1e-3) == 1.0
    assert _common.first_time_within([0, 1], [3.0, 2.0], 1.0, 1e-3) is None
