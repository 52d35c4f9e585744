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
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import check_class_labels
from .api import fit
from .oracles import DEFAULT_MAX_PATTERNS

__all__ = ["ConvexReLURegressor", "ConvexReLUClassifier", "ConvexReLUConvRegressor",
           "ConvexReLUConvClassifier"]


def _loss_name(loss):
    return loss if isinstance(loss, str) else getattr(loss, "name", None)


def _store_result(est, res):
    """The fitted attributes shared by every estimator, from a ``SolveResult``."""
    est.result_ = res
    est.network_ = res.network
    est.certificate_ = res.certificate
    est.dual_gap_ = res.certificate.gap
    est.n_iter_ = res.n_iter
    return est


class _Outputs:
    """Network outputs for new data; subclasses define ``_inputs`` (what the network reads)."""

    def _output(self, X):
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.network_.predict(self._inputs(X))


class _Regression(RegressorMixin):
    """``fit``/``predict`` of the regressors: one or several real outputs."""

    def fit(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        self._single_output = y.ndim == 1
        return self._fit_targets(X, y[:, None] if y.ndim == 1 else y)

    def predict(self, X):
        out = self._output(X)
        return out[:, 0] if self._single_output else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class _ConvexReLUBase(_Outputs, BaseEstimator):
    def __init__(self, beta=1e-3, *, solver="auto", patterns="auto", oracle="auto", tol=1e-6,
                 max_iter=None, time_limit=None, max_patterns=DEFAULT_MAX_PATTERNS,
                 fit_intercept=True, random_state=None, verbose=0, loss="squared", device=None,
                 dtype=None):
        self.device = device
        self.dtype = dtype
        self.beta = beta
        self.loss = loss
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
                  random_state=self.random_state, verbose=self.verbose, loss=self.loss,
                  device=self.device, dtype=self.dtype)
        return _store_result(self, res)

    _inputs = _augment


class ConvexReLURegressor(_Regression, _ConvexReLUBase):
    """Globally optimal two-layer ReLU regression (squared loss, weight decay ``beta``).

    Parameters
    ----------
    beta : float, default 1e-3
        Weight decay of paper eq. 5.
    solver, patterns, oracle, tol, max_iter, time_limit, max_patterns, random_state, verbose, device, dtype
        Passed to :func:`convexrelu.fit` (``device="cuda"``: the default solver on a GPU).
    fit_intercept : bool, default True
        Append a constant column to ``X`` (a first-layer bias).

    Attributes
    ----------
    network_ : TwoLayerReLU
    certificate_ : Certificate
        ``certificate_.is_global`` says whether global optimality is proven;
        ``result_.status`` is ``"optimal"`` only then (``"estimate_converged"`` when only
        a gap *estimate* met ``tol``: heuristic oracle or sampled patterns).
    dual_gap_ : float
        ``certificate_.gap``: a bound when ``certificate_.is_rigorous``, else an estimate.
    n_iter_ : int
    result_ : SolveResult
    n_features_in_ : int
    """



class ConvexReLUClassifier(ClassifierMixin, _ConvexReLUBase):
    """Globally optimal two-layer ReLU classifier: one-hot targets, squared loss (as in the paper).

    The network is fitted to one-hot targets; ``predict`` returns the class with the
    largest output. With ``loss="squared"`` (the paper's) or ``"multiclass_hinge"`` there
    is no ``predict_proba``: those outputs are not probabilities. With
    ``loss="cross_entropy"`` (or ``"logistic"`` for two classes) ``predict_proba`` is the
    softmax (sigmoid) of the fitted outputs.

    Parameters and attributes as for :class:`ConvexReLURegressor`, plus ``classes_``.
    """

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_class_labels(y, "y", type(self).__name__)  # shared with the classification losses
        check_classification_targets(y)
        enc = LabelEncoder().fit(y)
        self.classes_ = enc.classes_
        idx = enc.transform(y)
        if _loss_name(self.loss) == "logistic":
            if self.classes_.size != 2:
                raise ValueError(f"loss='logistic' is binary; y has {self.classes_.size} classes "
                                 "(use loss='cross_entropy')")
            return self._fit_targets(X, idx)
        Y = np.zeros((X.shape[0], self.classes_.size))
        Y[np.arange(X.shape[0]), idx] = 1.0
        return self._fit_targets(X, Y)

    def decision_function(self, X):
        out = self._output(X)
        if _loss_name(self.loss) == "logistic":
            return out[:, 0]
        if self.classes_.size == 2:
            return out[:, 1] - out[:, 0]
        return out

    def predict(self, X):
        out = self._output(X)
        if _loss_name(self.loss) == "logistic":
            return self.classes_[(out[:, 0] > 0).astype(int)]
        return self.classes_[np.argmax(out, axis=1)]

    @available_if(lambda est: _loss_name(est.loss) in ("cross_entropy", "logistic"))
    def predict_proba(self, X):
        """Class probabilities: the softmax (cross-entropy) or sigmoid (logistic) of the
        outputs the loss was fitted to; not available for the squared and hinge losses."""
        out = self._output(X)
        if _loss_name(self.loss) == "logistic":
            p1 = 1.0 / (1.0 + np.exp(-out[:, 0]))
            return np.column_stack([1.0 - p1, p1])
        E = np.exp(out - out.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)


class _ConvBase(_Outputs, BaseEstimator):
    def __init__(self, beta=1e-3, *, input_shape=None, kernel_size=2, stride=1, padding=0,
                 oracle="auto", tol=1e-6, max_iter=100, random_state=None, verbose=0):
        self.beta = beta
        self.input_shape = input_shape
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.oracle = oracle
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose

    def _reshape(self, X):
        shape = (X.shape[1],) if self.input_shape is None else tuple(self.input_shape)
        if int(np.prod(shape)) != X.shape[1]:
            raise ValueError(f"input_shape {shape} has {int(np.prod(shape))} values; X rows have "
                             f"{X.shape[1]}")
        k = np.broadcast_to(np.asarray(self.kernel_size), (len(shape) - (len(shape) > 1),))
        if int(np.prod(k)) > X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} feature(s) per row, fewer than the kernel "
                             f"{tuple(int(v) for v in k)} needs")
        return X.reshape((X.shape[0],) + shape)

    def _fit_targets(self, X, Y):
        from .conv import fit_conv

        res = fit_conv(self._reshape(X), Y, self.beta, kernel_size=self.kernel_size,
                       stride=self.stride, padding=self.padding, oracle=self.oracle, tol=self.tol,
                       max_iter=self.max_iter, random_state=self.random_state, verbose=self.verbose)
        return _store_result(self, res)

    _inputs = _reshape


class ConvexReLUConvRegressor(_Regression, _ConvBase):
    """Two-layer CNN (filters, ReLU, global average pooling, linear) by the convex program eq. 50.

    ``X`` is 2-D (one flattened signal or image per row) and ``input_shape`` gives each
    row's shape: ``(L,)``, ``(C, L)`` or ``(C, H, W)`` (default: a 1-D signal of length
    ``n_features``). Exact patterns, and a certificate, when the stacked patch matrix
    has enumerable patterns (e.g. 1-D kernels of size 2); sampled otherwise (flagged in
    ``certificate_``).

    Attributes: ``network_`` (:class:`~convexrelu.conv.TwoLayerReLUConv`),
    ``certificate_``, ``dual_gap_``, ``n_iter_``, ``result_``.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # global average pooling without bias: a poor fit to generic tabular targets
        tags.regressor_tags.poor_score = True
        return tags


class ConvexReLUConvClassifier(ClassifierMixin, _ConvBase):
    """The CNN of :class:`ConvexReLUConvRegressor` fitted to one-hot targets (squared loss);
    ``predict`` returns the class with the largest output (no ``predict_proba``)."""

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_class_labels(y, "y", type(self).__name__)
        check_classification_targets(y)
        enc = LabelEncoder().fit(y)
        self.classes_ = enc.classes_
        Y = np.eye(self.classes_.size)[enc.transform(y)]
        return self._fit_targets(X, Y)

    def predict(self, X):
        return self.classes_[np.argmax(self._output(X), axis=1)]
