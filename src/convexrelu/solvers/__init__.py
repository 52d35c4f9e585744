"""Solvers. Each algorithm lives in its own module."""

from .base import STATUSES, SolveResult
from .cg import ConditionalGradient
from .closed_form import ClosedForm, ClosedFormNotApplicable, fit_linear
from .copositive import CopositiveRelaxation
from .copositive_fo import CopositiveFO
from .cutting_plane import CuttingPlane
from .frank_wolfe import FrankWolfe
from .sgd import SGD
from .reference import ScalarReferenceResult, solve_scalar_cvxpy

__all__ = ["ClosedForm", "ClosedFormNotApplicable", "fit_linear", "ConditionalGradient", "CopositiveRelaxation", "CopositiveFO", "CuttingPlane",
           "FrankWolfe", "SGD", "SolveResult", "STATUSES", "ScalarReferenceResult", "solve_scalar_cvxpy"]
