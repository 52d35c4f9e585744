"""Every public entry point rejects bad input with a ValueError that names the parameter."""

import numpy as np
import pytest

from convexrelu import (
    ExactOracle,
    SignPatterns,
    TooManyPatternsError,
    TwoLayerReLU,
    certify,
    lambda_max,
    make_oracle,
    omega,
)
from convexrelu.io import load_dataset

_g = np.random.default_rng(2024)
N, D, C = 8, 2, 2
X0 = _g.standard_normal((N, D))
Y0 = _g.standard_normal((N, C))
Z0 = _g.standard_normal((N, C))
NET = TwoLayerReLU(_g.standard_normal((D, 3)), _g.standard_normal((3, C)))


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def _with_nan(A, where=(1, 1)):
    A = np.array(A, dtype=float)
    A[where] = np.nan
    return A


def _with_inf(A, where=(0, 0), sign=1.0):
    A = np.array(A, dtype=float)
    A[where] = sign * np.inf
    return A


# --------------------------------------------------------------------------- bad X
X_ENTRY_POINTS = {
    "predict": lambda X, tmp: NET.predict(X),
    "hidden": lambda X, tmp: NET.hidden(X),
    "objective": lambda X, tmp: NET.objective(X, Y0, 0.1),
    "SignPatterns.enumerate": lambda X, tmp: SignPatterns.enumerate(X),
    "SignPatterns.sample": lambda X, tmp: SignPatterns.sample(X, 10, random_state=0),
    "ExactOracle": lambda X, tmp: ExactOracle(X),
    "make_oracle": lambda X, tmp: make_oracle(X),
    "omega": lambda X, tmp: omega(X, Z0),
    "certify": lambda X, tmp: certify(NET, X, Y0, 0.1),
    "lambda_max": lambda X, tmp: lambda_max(X, Y0),
    "load_dataset": lambda X, tmp: load_dataset(_npz(tmp, X=X, Y=Y0)),
}

BAD_X = {
    "nan": (_with_nan(X0), r"X must contain only finite values; found 1 NaN and 0 inf"),
    "inf": (_with_inf(X0), r"X must contain only finite values; found 0 NaN and 1 inf"),
    "-inf": (_with_inf(X0, sign=-1.0), r"X must contain only finite values; found 0 NaN and 1 inf"),
    "1-D": (X0[:, 0], r"X must be a 2-D array .*shape \(8,\)"),
    "3-D": (X0[:, :, None], r"X must be a 2-D array .*shape \(8, 2, 1\)"),
    "0-D": (np.array(1.0), r"X must be a 2-D array"),
    "0 rows": (np.zeros((0, D)), r"X must have at least one sample and one feature; got shape \(0, 2\)"),
    "0 cols": (np.zeros((N, 0)), r"X must have at least one sample and one feature; got shape \(8, 0\)"),
    "strings": (np.full((N, D), "a"), r"X must be a numeric array"),
}


@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("entry", list(X_ENTRY_POINTS))
def test_bad_X(entry, case, tmp_path):
    X, match = BAD_X[case]
    with pytest.raises(ValueError, match=match):
        X_ENTRY_POINTS[entry](X, tmp_path)


# --------------------------------------------------------------------------- bad Y
Y_ENTRY_POINTS = {
    "objective": lambda Y, tmp: NET.objective(X0, Y, 0.1),
    "certify": lambda Y, tmp: certify(NET, X0, Y, 0.1),
    "lambda_max": lambda Y, tmp: lambda_max(X0, Y),
    "load_dataset": lambda Y, tmp: load_dataset(_npz(tmp, X=X0, Y=Y)),
}

BAD_Y = {
    "nan": (_with_nan(Y0), r"Y must contain only finite values; found 1 NaN"),
    "inf": (_with_inf(Y0), r"Y must contain only finite values; found 0 NaN and 1 inf"),
    "3-D": (Y0[:, :, None], r"Y must be a 1-D array .* or a 2-D array .*got shape \(8, 2, 1\)"),
    "rows": (Y0[:-1], r"X and Y must have the same number of rows; X has 8 rows, Y has 7"),
    "more rows": (np.vstack([Y0, Y0]), r"X and Y must have the same number of rows; X has 8 rows, Y has 16"),
    "0 cols": (np.zeros((N, 0)), r"Y must have at least one output column"),
    "strings": (np.full((N, C), "b"), r"Y must be a numeric array"),
}


@pytest.mark.parametrize("case", list(BAD_Y))
@pytest.mark.parametrize("entry", list(Y_ENTRY_POINTS))
def test_bad_Y(entry, case, tmp_path):
    Y, match = BAD_Y[case]
    with pytest.raises(ValueError, match=match):
        Y_ENTRY_POINTS[entry](Y, tmp_path)


# --------------------------------------------------------------------------- bad Z
Z_ENTRY_POINTS = {
    "omega": lambda Z: omega(X0, Z),
    "ExactOracle.__call__": lambda Z: ExactOracle(X0)(Z),
    "make_oracle(heuristic).__call__": lambda Z: make_oracle(X0, "heuristic", random_state=0)(Z),
}

BAD_Z = {
    "nan": (_with_nan(Z0), r"Z must contain only finite values; found 1 NaN"),
    "inf": (_with_inf(Z0), r"Z must contain only finite values; found 0 NaN and 1 inf"),
    "rows": (Z0[:-2], r"Z must have shape \(n_samples, n_outputs\) with n_samples = 8; got shape \(6, 2\)"),
    "3-D": (Z0[:, :, None], r"Z must have shape .*got shape \(8, 2, 1\)"),
}


@pytest.mark.parametrize("case", list(BAD_Z))
@pytest.mark.parametrize("entry", list(Z_ENTRY_POINTS))
def test_bad_Z(entry, case):
    Z, match = BAD_Z[case]
    with pytest.raises(ValueError, match=match):
        Z_ENTRY_POINTS[entry](Z)


# --------------------------------------------------------------------------- bad beta
BETA_ENTRY_POINTS = {
    "objective": lambda b: NET.objective(X0, Y0, b),
    "certify": lambda b: certify(NET, X0, Y0, b),
}

BAD_BETA = {
    "zero": 0.0,
    "int zero": 0,
    "negative": -0.5,
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": -float("inf"),
    "numpy nan": np.float64("nan"),
    "string": "abc",
    "None": None,
    "complex": 1j,
}


@pytest.mark.parametrize("case", list(BAD_BETA))
@pytest.mark.parametrize("entry", list(BETA_ENTRY_POINTS))
def test_bad_beta(entry, case):
    with pytest.raises(ValueError, match=r"^beta must be a positive"):
        BETA_ENTRY_POINTS[entry](BAD_BETA[case])


@pytest.mark.parametrize("good", [0.1, 1, np.float32(0.5), np.int64(2), np.array(0.3)])
def test_good_beta_accepted(good):
    expected = NET.objective(X0, Y0, float(good))
    assert NET.objective(X0, Y0, good) == expected


@pytest.mark.parametrize("case", ["0.5", True, [0.5]], ids=["numeric-string", "bool", "list"])
def test_beta_non_number_types_rejected(case):
    with pytest.raises(ValueError, match=r"beta"):
        NET.objective(X0, Y0, case)


# --------------------------------------------------------------------------- unknown names
NAME_CASES = {
    "make_oracle oracle": (lambda: make_oracle(X0, oracle="exactly"), r"oracle must be one of .*got 'exactly'"),
    "make_oracle patterns": (lambda: make_oracle(X0, patterns="all"), r"patterns must be one of .*got 'all'"),
    "make_oracle oracle None": (lambda: make_oracle(X0, oracle=None), r"oracle must be one of"),
    "make_oracle patterns None": (lambda: make_oracle(X0, patterns=None), r"patterns must be one of"),
    "omega oracle": (lambda: omega(X0, Z0, oracle="sdp"), r"oracle must be one of .*got 'sdp'"),
    "omega patterns": (lambda: omega(X0, Z0, patterns="sample"), r"patterns must be one of .*got 'sample'"),
    "certify oracle": (lambda: certify(NET, X0, Y0, 0.1, oracle="brute"), r"oracle must be one of .*got 'brute'"),
    "certify patterns": (lambda: certify(NET, X0, Y0, 0.1, patterns="exhaustive"), r"patterns must be one of .*got 'exhaustive'"),
    "certify loss": (lambda: certify(NET, X0, Y0, 0.1, loss="hinge"), r"loss must be one of .*got 'hinge'"),
    "lambda_max oracle": (lambda: lambda_max(X0, Y0, oracle="EXACT"), r"oracle must be one of .*got 'EXACT'"),
    "lambda_max patterns": (lambda: lambda_max(X0, Y0, patterns="x"), r"patterns must be one of .*got 'x'"),
    "lambda_max loss": (lambda: lambda_max(X0, Y0, loss="l1"), r"loss must be one of .*got 'l1'"),
    "objective loss": (lambda: NET.objective(X0, Y0, 0.1, loss="mse"), r"loss must be one of .*got 'mse'"),
    "ExactOracle patterns str": (lambda: ExactOracle(X0, "exact"), r"patterns must be a SignPatterns object"),
}


@pytest.mark.parametrize("case", list(NAME_CASES))
def test_unknown_names(case):
    fn, match = NAME_CASES[case]
    with pytest.raises(ValueError, match=match):
        fn()


# --------------------------------------------------------------------------- shape mismatch
X3 = _g.standard_normal((N, 3))


@pytest.mark.parametrize("fn", [
    lambda: NET.predict(X3),
    lambda: NET.hidden(X3),
    lambda: NET.objective(X3, Y0, 0.1),
    lambda: certify(NET, X3, Y0, 0.1),
], ids=["predict", "hidden", "objective", "certify"])
def test_feature_count_mismatch(fn):
    with pytest.raises(ValueError, match=r"X has 3 features but the network expects 2"):
        fn()


@pytest.mark.parametrize("fn", [
    lambda: NET.objective(X0, np.ones((N, 3)), 0.1),
    lambda: certify(NET, X0, np.ones((N, 3)), 0.1),
    lambda: certify(NET, X0, np.ones(N), 0.1),
], ids=["objective", "certify", "certify-1d"])
def test_output_count_mismatch(fn):
    with pytest.raises(ValueError, match=r"Y has \d output columns but the network has 2 outputs"):
        fn()


def test_certify_rejects_non_network():
    with pytest.raises(ValueError, match=r"network must be a TwoLayerReLU; got dict"):
        certify({"W1": 1}, X0, Y0, 0.1)


@pytest.mark.parametrize("tol", [-1e-3, float("nan"), float("inf"), "x"])
def test_certify_and_prune_reject_bad_tol(tol):
    with pytest.raises(ValueError, match=r"tol must be a non-negative finite number"):
        certify(NET, X0, Y0, 0.1, tol=tol)
    with pytest.raises(ValueError, match=r"tol must be a non-negative finite number"):
        NET.prune(tol)


# --------------------------------------------------------------------------- network weights
BAD_WEIGHTS = {
    "W1 nan": (lambda: TwoLayerReLU(_with_nan(np.ones((2, 2))), np.ones((2, 1))), r"W1 must contain only finite"),
    "W1 inf": (lambda: TwoLayerReLU(_with_inf(np.ones((2, 2))), np.ones((2, 1))), r"W1 must contain only finite"),
    "W2 nan": (lambda: TwoLayerReLU(np.ones((2, 2)), _with_nan(np.ones((2, 2)))), r"W2 must contain only finite"),
    "W2 inf 1-D": (lambda: TwoLayerReLU(np.ones((2, 2)), np.array([1.0, np.inf])), r"W2 must contain only finite"),
    "W1 1-D": (lambda: TwoLayerReLU(np.ones(2), np.ones((2, 1))), r"W1 must be a 2-D array"),
    "W1 3-D": (lambda: TwoLayerReLU(np.ones((2, 2, 2)), np.ones((2, 1))), r"W1 must be a 2-D array"),
    "W2 3-D": (lambda: TwoLayerReLU(np.ones((2, 2)), np.ones((2, 1, 1))), r"W2 must be a 2-D array"),
    "W2 0-D": (lambda: TwoLayerReLU(np.ones((2, 1)), 3.0), r"W2 must be a 2-D array"),
    "W1 strings": (lambda: TwoLayerReLU([["a", "b"]], np.ones((2, 1))), r"W1 must be a numeric"),
    "W1 ragged": (lambda: TwoLayerReLU([[1.0, 2.0], [3.0]], np.ones((2, 1))), r"W1 must be a numeric"),
    "W1 no features": (lambda: TwoLayerReLU(np.ones((0, 2)), np.ones((2, 1))), r"W1 must have at least one input feature"),
    "W2 no outputs": (lambda: TwoLayerReLU(np.ones((2, 2)), np.ones((2, 0))), r"W2 must have at least one output"),
}


@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
def test_bad_weights(case):
    fn, match = BAD_WEIGHTS[case]
    with pytest.raises(ValueError, match=match):
        fn()


@pytest.mark.parametrize("W2", ["abc", [[1.0], [2.0, 3.0]]], ids=["string", "ragged"])
def test_non_numeric_W2_message_names_W2(W2):
    with pytest.raises(ValueError, match=r"W2"):
        TwoLayerReLU(np.ones((2, 2)), W2)


# --------------------------------------------------------------------------- patterns / oracles
SAMPLED = SignPatterns.sample(X0, 5, random_state=0)


@pytest.mark.parametrize("fn", [
    lambda: ExactOracle(X0, SAMPLED),
    lambda: make_oracle(X0, "exact", SAMPLED),
    lambda: omega(X0, Z0, oracle="exact", patterns=SAMPLED),
    lambda: certify(NET, X0, Y0, 0.1, oracle="exact", patterns=SAMPLED),
    lambda: lambda_max(X0, Y0, oracle="exact", patterns=SAMPLED),
], ids=["ExactOracle", "make_oracle", "omega", "certify", "lambda_max"])
def test_exact_oracle_refuses_sampled_patterns(fn):
    assert SAMPLED.scope == "sampled"
    with pytest.raises(ValueError, match=r"exhaustive"):
        fn()


def test_exact_oracle_refuses_patterns_of_other_data():
    other = SignPatterns.enumerate(X0[:5])
    with pytest.raises(ValueError, match=r"patterns were computed for 5 rows but X has 8"):
        ExactOracle(X0, other)


# rank-3 data: every oracle has to enumerate the patterns of such data (for rank <= 2
# the exact oracle may sweep the arrangement without enumerating them)
XR3 = _g.standard_normal((N, 3))
ZR3 = _g.standard_normal((N, C))
NET3 = TwoLayerReLU(_g.standard_normal((3, 2)), _g.standard_normal((2, C)))


@pytest.mark.parametrize("fn", [
    lambda: SignPatterns.enumerate(XR3, max_patterns=1),
    lambda: SignPatterns.enumerate(X0, max_patterns=1),
    lambda: ExactOracle(XR3, max_patterns=1),
    lambda: make_oracle(XR3, patterns="exact", max_patterns=1),
    lambda: omega(XR3, ZR3, patterns="exact", max_patterns=1),
    lambda: certify(NET3, XR3, Y0, 0.1, patterns="exact", max_patterns=1),
    lambda: lambda_max(XR3, Y0, patterns="exact", max_patterns=1),
], ids=["enumerate", "enumerate-rank2", "ExactOracle", "make_oracle", "omega", "certify",
        "lambda_max"])
def test_too_many_patterns(fn):
    with pytest.raises(TooManyPatternsError, match=r"max_patterns=1\b") as info:
        fn()
    assert isinstance(info.value, ValueError)
    assert "n=8" in str(info.value)


def test_exact_oracle_with_auto_patterns_and_small_limit_says_raise_max_patterns():
    with pytest.raises(ValueError, match=r"max_patterns"):
        make_oracle(XR3, "exact", max_patterns=1)
    with pytest.raises(ValueError, match=r"max_patterns"):
        certify(NET3, XR3, Y0, 0.1, oracle="exact", max_patterns=1)


def test_lambda_max_refuses_heuristic_oracle():
    with pytest.raises(ValueError, match=r"lambda_max needs an exact or upper-bounding oracle"):
        lambda_max(X0, Y0, oracle="heuristic")


@pytest.mark.parametrize("bad", ["many", float("nan")], ids=["string", "nan"])
def test_bad_max_patterns_rejected(bad):
    with pytest.raises(ValueError, match=r"max_patterns"):
        SignPatterns.enumerate(X0, max_patterns=bad)
    with pytest.raises(ValueError, match=r"max_patterns"):
        certify(NET, X0, Y0, 0.1, max_patterns=bad)


@pytest.mark.parametrize("n_samples", [0, -3, 2.5, "10", True, None])
def test_sample_rejects_bad_n_samples(n_samples):
    with pytest.raises(ValueError, match=r"n_samples must be an integer >= 1"):
        SignPatterns.sample(X0, n_samples)


# --------------------------------------------------------------------------- load_dataset
def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_dataset_accepts_good_files(tmp_path):
    X, Y = load_dataset(_npz(tmp_path, X=X0, y=Y0[:, 0]))
    assert np.array_equal(X, X0) and np.array_equal(Y, Y0[:, :1])
    X, Y = load_dataset(_csv(tmp_path, "a,t,b\n1,2,3\n4,5,6\n"), ["t"])
    np.testing.assert_array_equal(X, [[1, 3], [4, 6]])
    np.testing.assert_array_equal(Y, [[2], [5]])


LOAD_CASES = {
    "npz missing X": (lambda p: _npz(p, Y=Y0), None, r"has no array 'X'"),
    "npz missing Y": (lambda p: _npz(p, X=X0), None, r"has no target array 'Y' or 'y'"),
    "npz object array": (lambda p: _npz(p, X=np.array([None] * N, dtype=object), Y=Y0), None,
                         r"could not read data file"),
    "npz random bytes": (lambda p: (p / "d.npz").write_bytes(b"\x00garbage" * 50) and p / "d.npz", None,
                         r"could not read data file"),
    "unsupported extension": (lambda p: _csv(p, "a,b\n1,2\n", "data.txt"), ["b"],
                              r"unsupported data file .*expected a \.npz or \.csv"),
    "csv no target": (lambda p: _csv(p, "a,b\n1,2\n"), None, r"needs --target"),
    "csv non-numeric": (lambda p: _csv(p, "a,b\n1,2\n3,abc\n"), ["b"],
                        r"line 3, column 'b': not a number: 'abc'"),
    "csv empty cell": (lambda p: _csv(p, "a,b\n1,\n"), ["b"], r"line 2, column 'b': not a number"),
    "csv missing target column": (lambda p: _csv(p, "a,b\n1,2\n"), ["z"],
                                  r"target column\(s\) z not in the CSV header"),
    "csv ragged row": (lambda p: _csv(p, "a,b\n1,2\n3\n"), ["b"], r"line 3: 1 fields, expected 2"),
    "csv header only": (lambda p: _csv(p, "a,b\n"), ["b"], r"has a header but no data rows"),
    "csv empty": (lambda p: _csv(p, ""), ["b"], r"is empty"),
    "csv only targets": (lambda p: _csv(p, "b\n1\n"), ["b"], r"no feature columns"),
    "csv nan": (lambda p: _csv(p, "a,b\nnan,2\n"), ["b"], r"X must contain only finite values"),
    "csv inf target": (lambda p: _csv(p, "a,b\n1,inf\n"), ["b"], r"Y must contain only finite values"),
    "csv binary": (lambda p: (p / "b.csv").write_bytes(bytes(range(128, 256)) * 4) and p / "b.csv", ["b"],
                   r"not a text file"),
}


@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_load_dataset_errors(case, tmp_path):
    make, target, match = LOAD_CASES[case]
    path = make(tmp_path)
    with pytest.raises(ValueError, match=match) as info:
        load_dataset(path, target)
    if case not in ("csv nan", "csv inf target"):
        assert str(path) in str(info.value)


def test_load_dataset_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data file not found"):
        load_dataset(tmp_path / "none.npz")


def test_load_dataset_npy_content_raises_value_error(tmp_path):
    path = tmp_path / "data.npz"
    with open(path, "wb") as fh:
        np.save(fh, X0)
    with pytest.raises(ValueError, match=r"data file"):
        load_dataset(path)
