"""Solvers. Each algorithm lives in its own module."""

from .reference import ScalarReferenceResult, solve_scalar_cvxpy

__all__ = ["ScalarReferenceResult", "solve_scalar_cvxpy"]
