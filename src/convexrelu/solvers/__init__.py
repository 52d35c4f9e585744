"""Solvers. Each algorithm lives in its own module."""

from .base import STATUSES, SolveResult
from .cg import ConditionalGradient
from .copositive import CopositiveRelaxation
from .copositive_fo import CopositiveFO
from .cutting_plane import CuttingPlane
from .frank_wolfe import FrankWolfe
from .reference import ScalarReferenceResult, solve_scalar_cvxpy

__all__ = ["ConditionalGradient", "CopositiveRelaxation", "CopositiveFO", "CuttingPlane",
           "FrankWolfe", "SolveResult", "STATUSES", "ScalarReferenceResult", "solve_scalar_cvxpy"]
