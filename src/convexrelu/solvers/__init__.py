"""Solvers. Each algorithm lives in its own module."""

from .base import STATUSES, SolveResult
from .cg import ConditionalGradient
from .frank_wolfe import FrankWolfe
from .reference import ScalarReferenceResult, solve_scalar_cvxpy

__all__ = ["ConditionalGradient", "FrankWolfe", "SolveResult", "STATUSES",
           "ScalarReferenceResult", "solve_scalar_cvxpy"]
