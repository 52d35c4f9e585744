import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

import convexrelu as cr
from convexrelu.estimators import ConvexReLUClassifier, ConvexReLURegressor


# scikit-learn's estimator checks: small budgets keep them fast (they test the API, not
# optimality: with an appended intercept column their data are rank >= 3 and their fits
# use sampled patterns and the heuristic oracle, which the estimators report honestly).
@parametrize_with_checks([ConvexReLURegressor(max_patterns=1e4, max_iter=3),
                          ConvexReLUClassifier(max_patterns=1e4, max_iter=3)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_regressor_is_certified_global_without_intercept():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2))
    y = np.maximum(X @ [1.0, -2.0], 0) - np.maximum(X @ [0.5, 1.0], 0)
    est = ConvexReLURegressor(beta=0.05, fit_intercept=False).fit(X, y)
    assert est.certificate_.is_global
    assert est.dual_gap_ == est.certificate_.gap
    assert est.n_iter_ >= 1
    assert est.predict(X).shape == (30,)
    # the estimator's network is the certified global optimum of fit()
    res = cr.fit(X, y, 0.05)
    np.testing.assert_allclose(est.certificate_.primal, res.objective, rtol=1e-6)
    assert est.score(X, y) > 0.99


def test_regressor_intercept_is_an_appended_constant_column():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((25, 1))
    y = np.maximum(X[:, 0] + 1.0, 0)  # needs a bias
    est = ConvexReLURegressor(beta=0.01).fit(X, y)
    assert est.network_.n_features == 2
    Xa = np.hstack([X, np.ones((25, 1))])
    np.testing.assert_allclose(est.predict(X), est.network_.predict(Xa)[:, 0])
    assert est.certificate_.is_global  # rank 2 after the constant column: exact patterns
    no_bias = ConvexReLURegressor(beta=0.01, fit_intercept=False).fit(X, y)
    assert est.score(X, y) > no_bias.score(X, y)


def test_regressor_multioutput():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((20, 2))
    Y = rng.standard_normal((20, 3))
    est = ConvexReLURegressor(beta=0.5, fit_intercept=False).fit(X, Y)
    assert est.predict(X).shape == (20, 3)
    assert est.certificate_.is_global


def test_classifier_one_hot_and_no_fake_proba():
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(-2, 0.5, (15, 2)), rng.normal(2, 0.5, (15, 2)),
                   rng.normal([2, -2], 0.5, (15, 2))])
    y = np.repeat(["a", "b", "c"], 15)
    clf = ConvexReLUClassifier(beta=0.1, fit_intercept=False).fit(X, y)
    assert list(clf.classes_) == ["a", "b", "c"]
    assert clf.network_.n_outputs == 3
    assert clf.certificate_.is_global
    assert clf.score(X, y) == 1.0
    assert not hasattr(clf, "predict_proba")
    assert clf.decision_function(X).shape == (45, 3)
