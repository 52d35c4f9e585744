"""Every public entry point rejects bad input with a ValueError that names the parameter."""

import os
import stat
import warnings

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


def test_lambda_max_with_a_heuristic_oracle_is_a_named_estimate():
    # no refusal at any d: the value says what it is, beside a proven upper bound
    est = lambda_max(X0, Y0, oracle="heuristic")
    exact = lambda_max(X0, Y0)
    assert est.kind == "estimate" and exact.kind == "exact"
    assert float(est) <= float(exact) * (1 + 1e-9) <= est.upper_bound * (1 + 1e-9)


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


# --------------------------------------------------------------------------- issue 12, item 8
# NaN/inf targets of the regression losses: the message names NaN/inf, not the row count
@pytest.mark.parametrize("loss", ["huber", "absolute"])
@pytest.mark.parametrize("bad, match", [
    (_with_nan(Y0[:, :1], (3, 0)), r"Y must contain only finite values; found 1 NaN and 0 inf"),
    (_with_inf(Y0[:, :1], (3, 0)), r"Y must contain only finite values; found 0 NaN and 1 inf"),
], ids=["nan", "inf"])
@pytest.mark.parametrize("entry", ["fit", "certify"])
def test_nonfinite_targets_of_regression_losses(loss, bad, match, entry):
    from convexrelu import fit

    net = TwoLayerReLU.zeros(D, 1)
    with pytest.raises(ValueError, match=match) as info:
        if entry == "fit":
            fit(X0, bad, 0.1, loss=loss)
        else:
            certify(net, X0, bad, 0.1, loss=loss)
    assert "rows" not in str(info.value)


# class labels for the classification losses: refused as ConvexReLUClassifier refuses them
LABELS_NAN = np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0, np.nan])
LABELS_INF = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, np.inf])
LABELS_CONT = _g.standard_normal(N)


@pytest.mark.parametrize("loss", ["cross_entropy", "multiclass_hinge", "logistic"])
@pytest.mark.parametrize("labels, match", [
    (LABELS_NAN, r"class labels for loss='\w+'\) must be finite; found 1 NaN and 0 inf"),
    (LABELS_INF, r"class labels for loss='\w+'\) must be finite; found 0 NaN and 1 inf"),
    (LABELS_CONT, r"Unknown label type: continuous; loss='\w+' needs class labels, but Y has "
                  r"non-integer values"),
], ids=["nan", "inf", "continuous"])
@pytest.mark.parametrize("entry", ["fit", "certify"])
def test_bad_labels_of_classification_losses(loss, labels, match, entry):
    from convexrelu import fit

    with pytest.raises(ValueError, match=match):
        if entry == "fit":
            fit(X0, labels, 0.1, loss=loss)
        else:
            certify(TwoLayerReLU.zeros(D, 1 if loss == "logistic" else 3), X0, labels, 0.1, loss=loss)


def test_classifier_shares_the_label_check():
    from convexrelu import ConvexReLUClassifier

    with pytest.raises(ValueError, match=r"Unknown label type: continuous; ConvexReLUClassifier "
                                         r"needs class labels, but y has non-integer values"):
        ConvexReLUClassifier().fit(X0, LABELS_CONT)


def test_integer_valued_float_and_string_labels_still_accepted():
    y = np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0, 1.0])
    cert = certify(TwoLayerReLU.zeros(D, 3), X0, y, 0.1, loss="cross_entropy")
    assert np.isfinite(cert.primal)
    cert_s = certify(TwoLayerReLU.zeros(D, 3), X0, y.astype(int).astype(str), 0.1,
                     loss="cross_entropy")
    assert cert_s.primal == cert.primal
    cert_l = certify(TwoLayerReLU.zeros(D, 1), X0, (y > 0).astype(float), 0.1, loss="logistic")
    assert np.isfinite(cert_l.primal)


# values whose squares overflow: refused, naming X or Y and saying to rescale
@pytest.mark.parametrize("entry", ["fit", "certify", "certify-huber", "lambda_max", "load_dataset"])
@pytest.mark.parametrize("which", ["X", "Y"])
def test_huge_values_refused_with_rescale_hint(entry, which, tmp_path):
    from convexrelu import fit

    X = X0 * 1e200 if which == "X" else X0
    Y = Y0 * 1e200 if which == "Y" else Y0
    match = rf"{which} has values as large as .*e\+200.*Rescale {which}"
    with pytest.raises(ValueError, match=match):
        if entry == "fit":
            fit(X, Y, 0.1)
        elif entry == "certify":
            certify(NET, X, Y, 0.1)
        elif entry == "certify-huber":
            certify(NET, X, Y, 0.1, loss="huber")
        elif entry == "lambda_max":
            lambda_max(X, Y)
        else:
            load_dataset(_npz(tmp_path, X=X, Y=Y))


def test_large_but_safe_values_accepted():
    from convexrelu._validation import check_X, check_Y

    assert check_X(X0 * 1e140).shape == X0.shape
    assert check_Y(Y0 * 1e140, N).shape == Y0.shape


# complex input: refused, never silently cast (no ComplexWarning)
@pytest.mark.parametrize("imag", [1.0, 0.0], ids=["imaginary-part", "zero-imaginary-part"])
@pytest.mark.parametrize("entry", ["fit", "certify", "lambda_max", "predict", "ExactOracle"])
def test_complex_X_refused(entry, imag):
    from convexrelu import fit

    Xc = X0 + 1j * imag * X0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning would be an error here
        with pytest.raises(ValueError, match=r"complex data not supported: X must be real-valued"):
            if entry == "fit":
                fit(Xc, Y0, 0.1)
            elif entry == "certify":
                certify(NET, Xc, Y0, 0.1)
            elif entry == "lambda_max":
                lambda_max(Xc, Y0)
            elif entry == "predict":
                NET.predict(Xc)
            else:
                ExactOracle(Xc)


@pytest.mark.parametrize("loss", ["squared", "huber"])
def test_complex_Y_refused(loss):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"complex data not supported: Y must be real-valued"):
            certify(NET, X0, Y0 + 1j, 0.1, loss=loss)


# scipy.sparse X: densified below a size limit, refused with the reason above it
def test_sparse_X_is_densified_for_fit_and_certify():
    import scipy.sparse as sp

    from convexrelu import fit

    Xs = sp.csr_matrix(X0)
    dense = certify(NET, X0, Y0, 0.1)
    sparse = certify(NET, Xs, Y0, 0.1)
    assert sparse.primal == dense.primal and sparse.dual == dense.dual
    r_dense, r_sparse = fit(X0, Y0, 0.5), fit(Xs, Y0, 0.5)
    assert r_sparse.objective == pytest.approx(r_dense.objective, rel=1e-9)
    assert r_sparse.status == r_dense.status
    r_huber = fit(sp.csc_matrix(X0), Y0[:, 0], 0.5, loss="huber")
    assert np.isfinite(r_huber.objective)


def test_sparse_X_certify_with_other_loss():
    import scipy.sparse as sp

    cert = certify(TwoLayerReLU.zeros(D, 1), sp.csr_matrix(X0), Y0[:, 0], 0.1, loss="huber")
    assert np.isfinite(cert.primal)


def test_sparse_X_too_large_to_densify_is_refused(monkeypatch):
    import scipy.sparse as sp

    from convexrelu import _validation, fit

    monkeypatch.setattr(_validation, "MAX_DENSE_ENTRIES", 10)
    for call in (lambda: fit(sp.csr_matrix(X0), Y0, 0.1), lambda: certify(NET, sp.csr_matrix(X0), Y0, 0.1)):
        with pytest.raises(ValueError, match=r"X is a scipy.sparse matrix of shape \(8, 2\): sparse "
                                             r"input is not supported beyond densifying it.*16 entries"):
            call()


# a file that is not an .npz given as a model or as data
@pytest.mark.parametrize("content", [b"W1 = [[1, 2]]\nW2 = [[3]]\n", b"", b"\x00\x01garbage" * 10],
                         ids=["text", "empty", "binary"])
def test_non_npz_model_file_says_so(content, tmp_path, capsys):
    from convexrelu.cli import main

    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"could not read model file .*: it is not a convexrelu "
                                         r"model file .*: it is [a-z ]+, not an \.npz archive"
                       ) as info:
        TwoLayerReLU.load(path)
    assert "allow_pickle" not in str(info.value) and str(path) in str(info.value)
    data = _npz(tmp_path, X=X0, Y=Y0)
    assert main(["certify", str(path), str(data), "--beta", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "is not a convexrelu model file" in err and "allow_pickle" not in err


def test_text_file_as_npz_data_says_so(tmp_path):
    path = tmp_path / "data.npz"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match=r"could not read data file .*: it is not a data file .*: "
                                         r"it is a text file, not an \.npz archive") as info:
        load_dataset(path)
    assert "allow_pickle" not in str(info.value)


# written files get the permissions open() gives (0o666 less the umask), atomically
@pytest.fixture
def umask():
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    old = os.umask(0o022)
    os.umask(old)

    def set_(mask):
        os.umask(mask)

    yield set_
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_saved_files_follow_the_umask(mask, umask, tmp_path, capsys):
    from convexrelu.cli import main
    from convexrelu.experiments._common import write_json, write_text

    umask(mask)
    expected = 0o666 & ~mask
    NET.save(tmp_path / "net.npz")
    assert stat.S_IMODE(os.stat(tmp_path / "net.npz").st_mode) == expected
    data = _npz(tmp_path, X=X0, Y=Y0)
    out = tmp_path / "fit.npz"
    assert main(["fit", str(data), "--beta", "1", "--out", str(out), "--json"]) in (0, 1)
    capsys.readouterr()
    assert stat.S_IMODE(os.stat(out).st_mode) == expected
    write_text(tmp_path / "a.md", "x")
    write_json(tmp_path / "a.json", {"a": 1})
    for name in ("a.md", "a.json"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == expected
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp_")]  # no leftovers
    assert TwoLayerReLU.load(out).n_features == D


def test_overwriting_keeps_the_existing_mode(umask, tmp_path):
    umask(0o022)
    path = tmp_path / "net.npz"
    NET.save(path)
    os.chmod(path, 0o640)
    NET.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    np.testing.assert_array_equal(TwoLayerReLU.load(path).W1, NET.W1)


def test_failed_write_leaves_no_file(tmp_path):
    from convexrelu.io import atomic_write

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "x.bin", boom)
    assert os.listdir(tmp_path) == []
