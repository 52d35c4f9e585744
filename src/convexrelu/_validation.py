"""Input checks shared by the whole package.

Every public entry point validates its arrays here, so that bad input (NaN, inf,
wrong shapes, empty data, mismatched rows, ``beta <= 0``, complex numbers, values so large
that their squares overflow, class labels that are not labels) raises a clear
``ValueError`` naming the parameter, what is allowed and what was received.

``scipy.sparse`` matrices are accepted and densified when the dense array has at most
:data:`MAX_DENSE_ENTRIES` entries (the solvers work on dense arrays); larger ones are
refused with the reason.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_X", "check_XY", "check_Y", "check_beta", "check_choice", "check_Z",
           "check_targets", "check_class_labels", "MAX_DENSE_ENTRIES", "MAX_ABS_VALUE"]

#: A ``scipy.sparse`` input is densified when it has at most this many entries (8e8 bytes).
MAX_DENSE_ENTRIES = 10**8

#: Largest absolute value accepted in data arrays: the solvers square and sum entries
#: (norms, Gram matrices, the squared loss), which overflows float64 (max ~1.8e308) above
#: about 1e154; the limit keeps a margin for sums over many entries.
MAX_ABS_VALUE = 1e150


def _densify(A, name: str):
    """A ``scipy.sparse`` matrix/array as a dense ndarray, if it is small enough."""
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy is a dependency
        return A
    if not sp.issparse(A):
        return A
    size = int(np.prod(A.shape, dtype=float)) if len(A.shape) else 0
    if size > MAX_DENSE_ENTRIES:
        raise ValueError(
            f"{name} is a scipy.sparse matrix of shape {A.shape}: sparse input is not supported "
            f"beyond densifying it, and its dense form would have {size:.3g} entries (limit "
            f"{MAX_DENSE_ENTRIES:.0e}); reduce the data (e.g. fewer rows or a TruncatedSVD of X)"
        )
    return A.toarray()


def _as_float_array(A, name: str) -> np.ndarray:
    A = _densify(A, name)
    if np.iscomplexobj(A):
        raise ValueError(
            f"complex data not supported: {name} must be real-valued; got a complex array (dtype "
            f"{np.asarray(A).dtype}). Pass the real part (np.real) explicitly if the imaginary "
            "part is zero, or split real and imaginary parts into separate columns"
        )
    try:
        arr = np.asarray(A, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a numeric array; could not convert it to float ({exc})"
        ) from None
    return arr


def _check_magnitude(arr: np.ndarray, name: str) -> None:
    """Refuse finite values whose squares (summed) would overflow float64."""
    if arr.size == 0:
        return
    big = float(np.max(np.abs(arr)))
    limit = min(MAX_ABS_VALUE, 0.1 * float(np.sqrt(np.finfo(float).max / arr.size)))
    if big > limit:
        raise ValueError(
            f"{name} has values as large as {big:.3g} in absolute value; values above {limit:.3g} "
            f"overflow float64 when squared and summed in the solvers. Rescale {name} (e.g. "
            f"divide it by its largest absolute value, or standardise its columns)"
        )


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
    _check_magnitude(arr, name)
    return arr


def check_Y(Y, n: int, name: str = "Y") -> np.ndarray:
    """Return ``Y`` as a finite float array of shape ``(n, c)`` (a 1-D ``y`` is ``c = 1``)."""
    arr = _as_2d_targets(Y, name)
    if arr.shape[0] != n:
        raise ValueError(
            f"X and {name} must have the same number of rows; X has {n} rows, "
            f"{name} has {arr.shape[0]}"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one output column; got shape {arr.shape}")
    _check_finite(arr, name)
    _check_magnitude(arr, name)
    return arr


def check_targets(Y, name: str = "Y") -> np.ndarray:
    """Real-valued targets (regression losses) as a finite float ``(n, c)`` array.

    The row count is checked against ``X`` by the caller; this refuses what no row count
    explains: NaN/inf, complex values, values whose squares overflow, bad dimensions.
    """
    arr = _as_2d_targets(Y, name)
    _check_finite(arr, name)
    _check_magnitude(arr, name)
    return arr


def _as_2d_targets(Y, name: str) -> np.ndarray:
    """``Y`` as a float array of shape ``(n, c)`` (a 1-D ``y`` is ``c = 1``)."""
    arr = _as_float_array(Y, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 1-D array (n_samples,) or a 2-D array (n_samples, n_outputs); "
            f"got shape {arr.shape}"
        )
    return arr


def check_class_labels(y, name: str = "y", what: str = "a classifier") -> np.ndarray:
    """Class labels ``(n,)`` for classification: finite, discrete (not continuous floats).

    Shared by the classification losses (``cross_entropy``, ``multiclass_hinge``,
    ``logistic``) and :class:`~convexrelu.ConvexReLUClassifier`, so that every way in
    refuses the same labels: NaN/inf (which would otherwise become a class of its own),
    complex numbers, and float labels with non-integer values (continuous targets, which
    would otherwise become one class per distinct value). Returns ``y`` as an array.
    """
    y = _densify(y, name)
    if np.iscomplexobj(y):
        raise ValueError(f"complex data not supported: {name} (class labels for {what}) must not "
                         f"be complex; got dtype "
                        f"{np.asarray(y).dtype}")
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} (class labels for {what}) must be 1-D (n_samples,); got shape "
                         f"{arr.shape}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if np.any(bad):
            raise ValueError(
                f"{name} (class labels for {what}) must be finite; found "
                f"{int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} inf"
            )
        frac = arr != np.round(arr)
        if np.any(frac):
            raise ValueError(
                f"Unknown label type: continuous; {what} needs class "
                f"labels, but {name} has non-integer values (e.g. {float(arr[frac][0]):.6g}; "
                f"{np.unique(arr).size} distinct values); for continuous targets use a "
                "regression loss ('squared', 'huber', 'absolute') or ConvexReLURegressor"
            )
    elif arr.dtype.kind == "O":
        for v in arr:
            if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
                raise ValueError(f"{name} (class labels for {what}) must not contain missing "
                                 f"values (None, NaN or inf); found {v!r}")
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


def check_device(device, dtype="float64", max_memory=None) -> None:
    """``device``: None (NumPy) or a PyTorch device given as a string (``"cpu"``,
    ``"cuda"``, ``"cuda:1"``) or ``torch.device``; ``dtype``: ``"float64"`` or
    ``"float32"`` (float32 needs a device); ``max_memory``: None or positive bytes.
    Whether the device exists is checked when the solve starts."""
    if device is not None and not isinstance(device, str) and not hasattr(device, "type"):
        raise ValueError(f"device must be None, a string such as 'cuda' or 'cpu', or a "
                         f"torch.device; got {device!r}")
    if isinstance(device, str) and not device.split(":")[0] in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N' (a PyTorch device); "
                         f"got {device!r}")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
    if dtype == "float32" and device is None:
        raise ValueError("dtype='float32' needs a PyTorch device (device='cuda' or 'cpu'); "
                         "the NumPy back end computes in float64")
    if max_memory is not None:
        try:
            ok = float(max_memory) > 0 and np.isfinite(float(max_memory))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"max_memory must be None or a positive number of bytes; "
                             f"got {max_memory!r}")


def check_time_limit(value, name: str = "time_limit") -> float | None:
    """None (no limit) or a positive number of seconds (wall time, set-up included)."""
    if value is None:
        return None
    return check_positive_float(value, name, "None or a positive number of seconds")


def check_verbose(value, name: str = "verbose") -> int:
    """A verbosity level: an integer >= 0 (a bool counts as 0/1)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return check_positive_int(value, name, minimum=0)


def check_callback(value, name: str = "callback"):
    """None or a callable."""
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be None or a callable; got {type(value).__name__}")
    return value


def check_random_state(value, name: str = "random_state"):
    """None, a non-negative integer or a ``numpy.random.Generator``."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < 0:
        raise ValueError(f"{name} must be None, a non-negative integer or a numpy Generator; "
                         f"got {value!r}")
    return int(value)
