"""Solvers. Each algorithm lives in its own module; :class:`~.base.Solver` is the contract."""

from .base import COMMON_OPTIONS, STATUSES, Solver, SolveResult
from .cg import ConditionalGradient
from .closed_form import ClosedForm, ClosedFormNotApplicable, fit_linear
from .copositive import CopositiveRelaxation
from .copositive_fo import CopositiveFO
from .cutting_plane import CuttingPlane
from .frank_wolfe import FrankWolfe
from .sgd import SGD
from .reference import ScalarReferenceResult, solve_scalar_cvxpy

#: Every solver class by its ``name`` (what ``fit(solver=...)`` accepts besides "auto").
SOLVER_CLASSES = {cls.name: cls for cls in (ConditionalGradient, FrankWolfe, CopositiveRelaxation,
                                            CopositiveFO, CuttingPlane, ClosedForm, SGD)}

__all__ = ["ClosedForm", "ClosedFormNotApplicable", "fit_linear", "ConditionalGradient", "CopositiveRelaxation", "CopositiveFO", "CuttingPlane",
           "FrankWolfe", "SGD", "Solver", "SolveResult", "STATUSES", "COMMON_OPTIONS", "SOLVER_CLASSES",
           "ScalarReferenceResult", "solve_scalar_cvxpy"]
