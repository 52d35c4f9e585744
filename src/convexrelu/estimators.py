"""scikit-learn estimators: ``ConvexReLURegressor`` and ``ConvexReLUClassifier``.

Both train the two-layer ReLU network of paper eq. 5 to its global optimum with
:func:`convexrelu.fit` and expose the certificate. ``fit_intercept=True`` appends a
constant column to ``X`` (a first-layer bias, as the paper's model has none); the
network then has ``n_features_in_ + 1`` inputs and its first-layer weight on the
constant is the bias.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .api import fit
from .oracles import DEFAULT_MAX_PATTERNS

__all__ = ["ConvexReLURegressor", "ConvexReLUClassifier"]


class _ConvexReLUBase(BaseEstimator):
    def __init__(self, beta=1e-3, *, solver="auto", patterns="auto", oracle="auto", tol=1e-6,
                 max_iter=None, time_limit=None, max_patterns=DEFAULT_MAX_PATTERNS,
                 fit_intercept=True, random_state=None, verbose=0):
        self.beta = beta
        self.solver = solver
        self.patterns = patterns
        self.oracle = oracle
        self.tol = tol
        self.max_iter = max_iter
        self.time_limit = time_limit
        self.max_patterns = max_patterns
        self.fit_intercept = fit_intercept
        self.random_state = random_state
        self.verbose = verbose

    def _augment(self, X):
        X = np.asarray(X, dtype=float)
        if self.fit_intercept:
            return np.hstack([X, np.ones((X.shape[0], 1))])
        return X

    def _fit_targets(self, X, Y):
        res = fit(self._augment(X), Y, self.beta, solver=self.solver, patterns=self.patterns,
                  oracle=self.oracle, tol=self.tol, max_iter=self.max_iter,
                  time_limit=self.time_limit, max_patterns=self.max_patterns,
                  random_state=self.random_state, verbose=self.verbose)
        self.result_ = res
        self.network_ = res.network
        self.certificate_ = res.certificate
        self.dual_gap_ = res.certificate.gap
        self.n_iter_ = res.n_iter
        return self

    def _output(self, X):
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.network_.predict(self._augment(X))


class ConvexReLURegressor(RegressorMixin, _ConvexReLUBase):
    """Globally optimal two-layer ReLU regression (squared loss, weight decay ``beta``).

    Parameters
    ----------
    beta : float, default 1e-3
        Weight decay of paper eq. 5.
    solver, patterns, oracle, tol, max_iter, time_limit, max_patterns, random_state, verbose
        Passed to :func:`convexrelu.fit`.
    fit_intercept : bool, default True
        Append a constant column to ``X`` (a first-layer bias).

    Attributes
    ----------
    network_ : TwoLayerReLU
    certificate_ : Certificate
        ``certificate_.is_global`` says whether global optimality is proven.
    dual_gap_ : float
    n_iter_ : int
    result_ : SolveResult
    n_features_in_ : int
    """

    def fit(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        self._single_output = y.ndim == 1
        Y = y[:, None] if y.ndim == 1 else y
        return self._fit_targets(X, Y)

    def predict(self, X):
        out = self._output(X)
        return out[:, 0] if self._single_output else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class ConvexReLUClassifier(ClassifierMixin, _ConvexReLUBase):
    """Globally optimal two-layer ReLU classifier: one-hot targets, squared loss (as in the paper).

    The network is fitted to one-hot targets; ``predict`` returns the class with the
    largest output. There is no ``predict_proba``: squared-loss outputs are not
    probabilities.

    Parameters and attributes as for :class:`ConvexReLURegressor`, plus ``classes_``.
    """

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        enc = LabelEncoder().fit(y)
        self.classes_ = enc.classes_
        idx = enc.transform(y)
        Y = np.zeros((X.shape[0], self.classes_.size))
        Y[np.arange(X.shape[0]), idx] = 1.0
        return self._fit_targets(X, Y)

    def decision_function(self, X):
        out = self._output(X)
        if self.classes_.size == 2:
            return out[:, 1] - out[:, 0]
        return out

    def predict(self, X):
        out = self._output(X)
        return self.classes_[np.argmax(out, axis=1)]
