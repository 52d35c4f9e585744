"""convexrelu: certified global training of two-layer vector-output ReLU networks.

Implements the convex and copositive programs of Sahiner, Ergen, Pauly & Pilanci,
"Vector-output ReLU neural network problems are copositive programs" (ICLR 2021).
"""

import logging as _logging

from .api import fit, regularization_path
from .certificates import Certificate, LambdaMax, certify, dual_point, lambda_max
from .conv import TwoLayerReLUConv, extract_patches, fit_conv
from .losses import Loss, SquaredLoss, get_loss
from .network import TwoLayerReLU
from .oracles import (ExactOracle, HeuristicOracle, OracleResult, SDPOracle, SpectralOracle,
                      make_oracle, omega)
from .oracles.spike_free import is_spike_free
from .patterns import SignPatterns, TooManyPatternsError, pattern_bound
from .reconstruction import ConvexSolution
from .solvers.base import SolveResult
from .solvers.closed_form import ClosedFormNotApplicable, fit_linear

__version__ = "0.1.0"

__all__ = [
    "TwoLayerReLU",
    "Loss",
    "SquaredLoss",
    "get_loss",
    "SignPatterns",
    "TooManyPatternsError",
    "pattern_bound",
    "OracleResult",
    "ExactOracle",
    "SDPOracle",
    "HeuristicOracle",
    "make_oracle",
    "omega",
    "Certificate",
    "certify",
    "dual_point",
    "lambda_max",
    "LambdaMax",
    "fit",
    "regularization_path",
    "SolveResult",
    "ConvexSolution",
    "ZCAWhitener",
    "is_spike_free",
    "SpectralOracle",
    "ClosedFormNotApplicable",
    "fit_linear",
    "TwoLayerReLUConv",
    "extract_patches",
    "fit_conv",
    "ConvexReLUConvRegressor",
    "ConvexReLUConvClassifier",
    "ConvexReLURegressor",
    "ConvexReLUClassifier",
    "__version__",
]

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

# scikit-learn takes about a second to import: the estimators and the whitener (which
# subclass its base classes) are loaded on first use, not by ``import convexrelu``
_LAZY = {
    "ConvexReLURegressor": ".estimators",
    "ConvexReLUClassifier": ".estimators",
    "ConvexReLUConvRegressor": ".estimators",
    "ConvexReLUConvClassifier": ".estimators",
    "ZCAWhitener": ".preprocessing",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
