"""Reading data sets for the command line: ``.npz`` with ``X`` and ``Y``/``y``, or CSV."""

from __future__ import annotations

import csv
import os
import zipfile

import numpy as np

from ._validation import check_XY

__all__ = ["load_dataset"]


def _load_npz(path: str):
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(
                f"data file {path!r} holds a single .npy array, not an .npz archive with X and Y"
            )
        with data:
            keys = set(data.files)
            if "X" not in keys:
                raise ValueError(
                    f"data file {path!r} has no array 'X' (found: {', '.join(sorted(keys)) or 'none'})"
                )
            ykey = "Y" if "Y" in keys else ("y" if "y" in keys else None)
            if ykey is None:
                raise ValueError(
                    f"data file {path!r} has no target array 'Y' or 'y' "
                    f"(found: {', '.join(sorted(keys))})"
                )
            return np.array(data["X"]), np.array(data[ykey])
    except ValueError as exc:
        if str(exc).startswith("data file"):
            raise
        raise ValueError(f"could not read data file {path!r}: {exc}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"could not read data file {path!r}: not a valid .npz file ({exc})") from None


def _load_csv(path: str, target):
    if not target:
        raise ValueError(
            f"CSV data {path!r} needs --target naming the target column(s) (comma-separated)"
        )
    if isinstance(target, str):
        target = [target]
    names = [t.strip() for item in target for t in item.split(",") if t.strip()]
    dup = sorted({t for t in names if names.count(t) > 1})
    if dup:
        raise ValueError(f"target column(s) named more than once: {', '.join(dup)}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise ValueError(f"could not read CSV data {path!r}: not a text file") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ValueError(f"CSV data {path!r} is empty")
    header = [h.strip() for h in rows[0]]
    ambiguous = sorted({t for t in names if header.count(t) > 1})
    if ambiguous:
        raise ValueError(
            f"CSV header of {path!r} has more than one column named {', '.join(ambiguous)}"
        )
    missing = [t for t in names if t not in header]
    if missing:
        raise ValueError(
            f"target column(s) {', '.join(missing)} not in the CSV header of {path!r} "
            f"(columns: {', '.join(header)})"
        )
    if len(rows) < 2:
        raise ValueError(f"CSV data {path!r} has a header but no data rows")
    values = np.empty((len(rows) - 1, len(header)))
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(
                f"CSV data {path!r}, line {i}: {len(row)} fields, expected {len(header)}"
            )
        for j, cell in enumerate(row):
            try:
                values[i - 2, j] = float(cell)
            except ValueError:
                raise ValueError(
                    f"CSV data {path!r}, line {i}, column {header[j]!r}: not a number: {cell!r}"
                ) from None
    tidx = [header.index(t) for t in names]
    fidx = [j for j in range(len(header)) if j not in tidx]
    if not fidx:
        raise ValueError(f"CSV data {path!r} has no feature columns besides the targets")
    return values[:, fidx], values[:, tidx]


def load_dataset(path, target=None):
    """Load ``(X, Y)`` from ``.npz`` (arrays ``X`` and ``Y`` or ``y``) or CSV.

    Parameters
    ----------
    path : str or path-like
    target : str or list of str, optional
        For CSV: the target column names (each item may hold comma-separated names);
        all other columns are features.

    Returns
    -------
    X : ndarray (n, d)
    Y : ndarray (n, c)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path!r}")
    lower = path.lower()
    if lower.endswith(".npz"):
        X, Y = _load_npz(path)
    elif lower.endswith(".csv"):
        X, Y = _load_csv(path, target)
    else:
        raise ValueError(f"unsupported data file {path!r}: expected a .npz or .csv file")
    return check_XY(X, Y)
