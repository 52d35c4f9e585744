"""Input checks shared by the whole package.

Every public entry point validates its arrays here, so that bad input (NaN, inf,
wrong shapes, empty data, mismatched rows, ``beta <= 0``) raises a clear
``ValueError`` naming the parameter, what is allowed and what was received.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_X", "check_XY", "check_beta", "check_choice", "check_Z"]


def _as_float_array(A, name: str) -> np.ndarray:
    try:
        arr = np.asarray(A, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a numeric array; could not convert it to float ({exc})"
        ) from None
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(
            f"{name} must contain only finite values; found {n_nan} NaN and {n_inf} inf"
        )


def check_X(X, name: str = "X") -> np.ndarray:
    """Return ``X`` as a finite float array of shape ``(n, d)`` with ``n, d >= 1``."""
    arr = _as_float_array(X, name)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); "
            f"got an array with shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one sample and one feature; got shape {arr.shape}"
        )
    _check_finite(arr, name)
    return arr


def check_Y(Y, n: int, name: str = "Y") -> np.ndarray:
    """Return ``Y`` as a finite float array of shape ``(n, c)`` (a 1-D ``y`` is ``c = 1``)."""
    arr = _as_float_array(Y, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 1-D array (n_samples,) or a 2-D array (n_samples, n_outputs); "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] != n:
        raise ValueError(
            f"X and {name} must have the same number of rows; X has {n} rows, "
            f"{name} has {arr.shape[0]}"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one output column; got shape {arr.shape}")
    _check_finite(arr, name)
    return arr


def check_XY(X, Y, x_name: str = "X", y_name: str = "Y") -> tuple[np.ndarray, np.ndarray]:
    """Validate a data set: ``X`` of shape ``(n, d)``, ``Y`` of shape ``(n, c)`` or ``(n,)``."""
    Xa = check_X(X, x_name)
    Ya = check_Y(Y, Xa.shape[0], y_name)
    return Xa, Ya


def check_Z(Z, n: int, name: str = "Z") -> np.ndarray:
    """Validate a dual variable of shape ``(n, c)`` (a 1-D ``z`` is ``c = 1``)."""
    arr = _as_float_array(Z, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(
            f"{name} must have shape (n_samples, n_outputs) with n_samples = {n}; "
            f"got shape {arr.shape}"
        )
    _check_finite(arr, name)
    return arr


def check_beta(beta, name: str = "beta") -> float:
    """Return ``beta`` as a positive finite float; only real scalars are accepted."""
    if isinstance(beta, np.ndarray) and beta.ndim == 0:
        beta = beta.item()
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be a positive real number; got {beta!r} ({type(beta).__name__})")
    beta = float(beta)
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"{name} must be a positive finite number (> 0); got {beta!r}")
    return beta


def check_max_patterns(value, name: str = "max_patterns") -> float:
    """A positive limit (``inf`` allowed: no limit)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be a positive number (inf for no limit); got {value!r}")
    v = float(value)
    if np.isnan(v) or v <= 0:
        raise ValueError(f"{name} must be a positive number (inf for no limit); got {value!r}")
    return v


def check_choice(value, allowed, name: str) -> str:
    """Check that ``value`` is one of the strings in ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}"
        )
    return value


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_positive_float(value, name: str, allowed: str = "a positive number",
                         allow_zero: bool = False) -> float:
    """A finite number ``> 0`` (``>= 0`` with ``allow_zero``); the error names ``allowed``."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {allowed}; got {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        raise ValueError(f"{name} must be {allowed}; got {value!r}")
    return f


def check_tol(tol, name: str = "tol") -> float:
    try:
        t = float(tol)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-negative finite number; got {tol!r}") from None
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"{name} must be a non-negative finite number; got {tol!r}")
    return t
