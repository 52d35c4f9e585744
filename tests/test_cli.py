"""Tests of the ``convexrelu`` command line (in-process through ``main`` and as a process)."""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import convexrelu
from convexrelu import TwoLayerReLU, certify
from convexrelu.cli import EXIT_BAD_INPUT, EXIT_NOT_GLOBAL, EXIT_OK, main

from conftest import reference_path

REF_NAME = "planted_25x2x5_seed101_b0.01.npz"
JSON_KEYS = {"objective", "gap", "rel_gap", "is_global", "status", "time_s", "n_neurons"}


def _reference_path() -> pathlib.Path:
    return reference_path(REF_NAME)


@pytest.fixture(scope="module")
def ref():
    with np.load(_reference_path()) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture
def files(ref, tmp_path):
    """data.npz, the certified model, and the model minus its strongest neuron."""
    data = tmp_path / "data.npz"
    np.savez(data, X=ref["X"], Y=ref["Y"])
    net = TwoLayerReLU(ref["W1"], ref["W2"])
    model = tmp_path / "model.npz"
    net.save(model)
    strength = np.linalg.norm(net.W1, axis=0) * np.linalg.norm(net.W2, axis=1)
    keep = np.arange(net.n_neurons) != int(np.argmax(strength))
    worse = TwoLayerReLU(net.W1[:, keep], net.W2[keep])
    worse_path = tmp_path / "worse.npz"
    worse.save(worse_path)
    return {"data": data, "model": model, "worse": worse_path, "net": net, "worse_net": worse,
            "beta": float(ref["beta"]), "dir": tmp_path}


def _run(capsys, argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- certify
def test_certify_global_exit_0(files, capsys):
    code, out, err = _run(capsys, ["certify", files["model"], files["data"],
                                   "--beta", files["beta"], "--oracle", "exact"])
    assert code == EXIT_OK == 0
    assert "GLOBAL OPTIMUM" in out
    assert "100 neurons" in out
    assert err == ""


def test_certify_json_global(files, ref, capsys):
    code, out, _ = _run(capsys, ["certify", files["model"], files["data"],
                                 "--beta", files["beta"], "--oracle", "exact", "--json"])
    assert code == 0
    rec = json.loads(out)
    assert JSON_KEYS <= set(rec)
    assert rec["is_global"] is True
    assert rec["status"] == "global"
    assert rec["n_neurons"] == 100
    assert rec["objective"] == pytest.approx(float(ref["p_upper"]), rel=1e-12)
    assert rec["objective"] == pytest.approx(
        files["net"].objective(ref["X"], ref["Y"], files["beta"]), rel=1e-14)
    assert 0 <= rec["gap"] and rec["rel_gap"] <= 1e-6
    assert rec["gap"] == pytest.approx(rec["objective"] - rec["dual"], rel=1e-9, abs=1e-15)
    # the dual bound is a valid lower bound on the reference optimum
    assert rec["dual"] <= float(ref["p_upper"])
    assert rec["dual"] == pytest.approx(float(ref["p_lower"]), rel=1e-9)
    assert rec["oracle_kind"] == "exact" and rec["pattern_scope"] == "exact"
    assert isinstance(rec["time_s"], float) and rec["time_s"] >= 0


def test_certify_without_largest_neuron_exit_1(files, capsys):
    code, out, _ = _run(capsys, ["certify", files["worse"], files["data"],
                                 "--beta", files["beta"], "--oracle", "exact"])
    assert code == EXIT_NOT_GLOBAL == 1
    assert "GLOBAL OPTIMUM" not in out
    assert "not certified" in out
    code, out, _ = _run(capsys, ["certify", files["worse"], files["data"],
                                 "--beta", files["beta"], "--oracle", "exact", "--json"])
    assert code == 1
    rec = json.loads(out)
    assert JSON_KEYS <= set(rec)
    assert rec["is_global"] is False and rec["status"] == "not_global"
    assert rec["n_neurons"] == 99
    assert rec["rel_gap"] > 1e-3


def test_certify_heuristic_never_claims_global(files, capsys):
    """The optimal network, checked with sampled patterns and the heuristic oracle: no proof."""
    code, out, _ = _run(capsys, ["certify", files["model"], files["data"], "--beta", files["beta"],
                                 "--patterns", "sampled", "--oracle", "heuristic", "--seed", "0",
                                 "--json"])
    assert code == 1
    rec = json.loads(out)
    assert rec["is_global"] is False
    assert rec["oracle_kind"] == "heuristic"
    assert rec["is_rigorous"] is False


def test_certify_json_matches_library(files, ref, capsys):
    code, out, _ = _run(capsys, ["certify", files["worse"], files["data"],
                                 "--beta", files["beta"], "--json"])
    rec = json.loads(out)
    cert = certify(files["worse_net"], ref["X"], ref["Y"], files["beta"])
    assert code == 1
    assert rec["objective"] == cert.primal
    assert rec["dual"] == cert.dual
    assert rec["gap"] == cert.gap
    assert rec["rel_gap"] == cert.rel_gap


def _write_csv(path, X, Y):
    # targets first and interleaved, to check that features are "all other columns"
    cols = {"y0": Y[:, 0], "x0": X[:, 0], "y1": Y[:, 1], "y2": Y[:, 2], "x1": X[:, 1],
            "y3": Y[:, 3], "y4": Y[:, 4]}
    lines = [",".join(cols)]
    for i in range(X.shape[0]):
        lines.append(",".join(repr(float(c[i])) for c in cols.values()))
    path.write_text("\n".join(lines) + "\n")


def test_csv_with_target_gives_same_certificate_as_npz(files, ref, capsys):
    csv = files["dir"] / "data.csv"
    _write_csv(csv, ref["X"], ref["Y"])
    results = []
    for data, extra in [(files["data"], []),
                        (csv, ["--target", "y0,y1,y2", "--target", "y3,y4"])]:
        for model in (files["model"], files["worse"]):
            code, out, _ = _run(capsys, ["certify", model, data, "--beta", files["beta"],
                                         "--json", *extra])
            rec = json.loads(out)
            rec.pop("time_s")
            results.append((code, rec))
    assert results[0][0] == results[2][0] == 0
    assert results[1][0] == results[3][0] == 1
    assert results[0][1] == results[2][1]
    assert results[1][1] == results[3][1]


# --------------------------------------------------------------------------- exit 2
def _write_bad(files, kind):
    d = files["dir"]
    if kind == "missing model":
        return ["certify", d / "absent.npz", files["data"]], r"model file not found"
    if kind == "corrupt model":
        p = d / "corrupt.npz"
        p.write_bytes(b"PK\x03\x04 this is not really a zip file" * 10)
        return ["certify", p, files["data"]], r"could not read model file"
    if kind == "model with NaN":
        p = d / "nanmodel.npz"
        np.savez(p, W1=np.full((2, 2), np.nan), W2=np.ones((2, 5)))
        return ["certify", p, files["data"]], r"W1 must contain only finite"
    if kind == "missing data":
        return ["certify", files["model"], d / "absent.npz"], r"data file not found"
    if kind == "data with NaN":
        with np.load(files["data"]) as z:
            X, Y = z["X"].copy(), z["Y"]
        X[3, 1] = np.nan
        p = d / "nan.npz"
        np.savez(p, X=X, Y=Y)
        return ["certify", files["model"], p], r"X must contain only finite values"
    if kind == "csv without --target":
        p = d / "d.csv"
        p.write_text("x0,x1,y\n1,2,3\n")
        return ["certify", files["model"], p], r"needs --target"
    if kind == "csv non-numeric":
        p = d / "d.csv"
        p.write_text("x0,x1,y0,y1,y2,y3,y4\n1,2,3,4,5,6,7\n1,two,3,4,5,6,7\n")
        return (["certify", files["model"], p, "--target", "y0,y1,y2,y3,y4"],
                r"line 3, column 'x1': not a number: 'two'")
    if kind == "feature mismatch":
        p = d / "three.npz"
        np.savez(p, X=np.ones((4, 3)), Y=np.ones((4, 5)))
        return ["certify", files["model"], p], r"X has 3 features but the network expects 2"
    if kind == "output mismatch":
        p = d / "outs.npz"
        np.savez(p, X=np.ones((4, 2)), Y=np.ones((4, 2)))
        return ["certify", files["model"], p], r"Y has 2 output columns but the network has 5"
    if kind == "unsupported data":
        p = d / "data.json"
        p.write_text("{}")
        return ["certify", files["model"], p], r"unsupported data file"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "missing model", "corrupt model", "model with NaN", "missing data", "data with NaN",
    "csv without --target", "csv non-numeric", "feature mismatch", "output mismatch",
    "unsupported data",
])
def test_certify_bad_input_exit_2(files, capsys, kind):
    argv, match = _write_bad(files, kind)
    code, out, err = _run(capsys, argv + ["--beta", files["beta"]])
    assert code == EXIT_BAD_INPUT == 2
    assert out == ""
    assert err.startswith("convexrelu certify: error: ")
    assert re.search(match, err), err
    assert "Traceback" not in err


@pytest.mark.parametrize("beta", ["0", "-0.01", "nan", "inf", "abc"])
def test_certify_bad_beta_exit_2(files, capsys, beta):
    with pytest.raises(SystemExit) as info:
        main(["certify", str(files["model"]), str(files["data"]), f"--beta={beta}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--beta" in err and beta in err


def test_certify_missing_beta_exit_2(files, capsys):
    with pytest.raises(SystemExit) as info:
        main(["certify", str(files["model"]), str(files["data"])])
    assert info.value.code == 2
    assert "--beta" in capsys.readouterr().err


def test_certify_npy_model_exit_2(files, capsys):
    p = files["dir"] / "model_npy.npz"
    with open(p, "wb") as fh:
        np.save(fh, np.ones((2, 3)))
    code, _, err = _run(capsys, ["certify", p, files["data"], "--beta", files["beta"]])
    assert code == 2
    assert "error" in err


# --------------------------------------------------------------------------- info / demo / misc
def test_info_text(capsys):
    code, out, _ = _run(capsys, ["info"])
    assert code == 0
    assert out.splitlines()[0].split() == ["convexrelu", convexrelu.__version__]
    assert "numpy" in out and np.__version__ in out
    assert "oracles" in out


def test_info_json(capsys):
    code, out, _ = _run(capsys, ["info", "--json"])
    assert code == 0
    info = json.loads(out)
    assert info["convexrelu"] == convexrelu.__version__
    assert info["numpy"] == np.__version__
    assert isinstance(info["cvxpy_solvers"], list)
    assert set(info["extras"]) == {"torch", "plot"}
    assert any(o.startswith("exact") for o in info["oracles"])


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"convexrelu {convexrelu.__version__}"


def test_no_command_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_demo(capsys, tmp_path):
    out_path = tmp_path / "demo.npz"
    code, out, _ = _run(capsys, ["demo", "--out", out_path, "--out-dir", tmp_path,
                                 "--fw-seconds", "0.3"])
    assert code == 0
    lines = out.splitlines()
    header = [ln for ln in lines if "objective" in ln and "rel_gap" in ln]
    assert len(header) == 1 and header[0].split()[-1] == "certified"
    cg = next(ln for ln in lines if ln.strip().startswith("cg (default solver)"))
    fw = next(ln for ln in lines if ln.strip().startswith("frank-wolfe"))
    minus = next(ln for ln in lines if "minus largest neuron" in ln)
    zero = next(ln for ln in lines if "zero net" in ln)
    assert cg.split()[-1] == "yes"
    assert fw.split()[-1] == "no"  # 0.3 s of Algorithm 1 does not certify this problem
    assert minus.split()[-1] == "no"
    assert zero.split()[-1] == "yes"
    net = TwoLayerReLU.load(out_path)
    assert net.n_neurons == int(cg.split(")")[1].split()[0])
    assert int(minus.split("neuron")[1].split()[0]) == net.n_neurons - 1
    pytest.importorskip("matplotlib")
    assert (tmp_path / "convexrelu_demo.png").stat().st_size > 10000


# --------------------------------------------------------------------------- real processes
_ENTRY = "from convexrelu.cli import main; raise SystemExit(main())"


def test_subprocess_info_json():
    proc = subprocess.run([sys.executable, "-c", _ENTRY, "info", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["convexrelu"] == convexrelu.__version__


def test_subprocess_certify_exit_codes(files):
    base = [sys.executable, "-c", _ENTRY, "certify"]
    proc = subprocess.run(base + [str(files["worse"]), str(files["data"]),
                                  "--beta", str(files["beta"]), "--oracle", "exact"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "not certified" in proc.stdout
    proc = subprocess.run(base + [str(files["model"]), str(files["data"]), "--beta", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--beta" in proc.stderr


# --------------------------------------------------------------------------- fit
def test_fit_certifies_and_writes_model(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    Y = rng.standard_normal((20, 2))
    data = tmp_path / "d.npz"
    np.savez(data, X=X, Y=Y)
    model = tmp_path / "m.npz"
    code, out, _ = _run(capsys, ["fit", str(data), "--beta", "0.5", "--json", "--out", str(model)])
    assert code == 0
    rec = json.loads(out)
    for key in ("objective", "gap", "rel_gap", "is_global", "status", "time_s", "n_neurons"):
        assert key in rec
    assert rec["is_global"] is True and rec["status"] == "optimal"
    net = TwoLayerReLU.load(model)
    assert net.n_neurons == rec["n_neurons"]
    np.testing.assert_allclose(net.objective(X, Y, 0.5), rec["objective"], rtol=1e-12)
    # the written model certifies through the certify command
    code, out, _ = _run(capsys, ["certify", str(model), str(data), "--beta", "0.5", "--json"])
    assert code == 0 and json.loads(out)["is_global"] is True


def test_fit_not_certified_exit_1_and_bad_input_exit_2(capsys, tmp_path):
    rng = np.random.default_rng(1)
    data = tmp_path / "d.npz"
    np.savez(data, X=rng.standard_normal((30, 2)), Y=rng.standard_normal((30, 3)))
    code, out, _ = _run(capsys, ["fit", str(data), "--beta", "0.01", "--max-iter", "1", "--json"])
    assert code == 1 and json.loads(out)["status"] == "max_iter"
    code, _, err = _run(capsys, ["fit", str(tmp_path / "missing.npz"), "--beta", "1"])
    assert code == 2 and "not found" in err


def test_certify_with_the_streaming_and_branch_and_bound_oracles(tmp_path, capsys):
    # rank 4: the stored, streamed and branch-and-bound routes give the same verdict
    from convexrelu.datasets import planted

    X, Y, _ = planted(n=30, d=4, c=2, seed=0)
    net = convexrelu.fit(X, Y, 0.2, random_state=0, max_iter=30).network
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    net.save(tmp_path / "m.npz")
    recs = {}
    for oracle in ("exact", "stream", "bnb"):
        code, out, _ = _run(capsys, ["certify", tmp_path / "m.npz", tmp_path / "d.npz",
                                     "--beta", 0.2, "--oracle", oracle, "--tol", 1e-4, "--json"])
        recs[oracle] = json.loads(out)
        assert code in (EXIT_OK, EXIT_NOT_GLOBAL)
    assert recs["stream"]["is_global"] == recs["exact"]["is_global"]
    assert recs["stream"]["rel_gap"] == pytest.approx(recs["exact"]["rel_gap"], rel=1e-3, abs=1e-9)
    assert recs["bnb"]["is_global"] == recs["exact"]["is_global"]
    for rec in recs.values():  # weak duality
        assert rec["dual"] <= rec["objective"] * (1 + 1e-12)
