"""Reading data sets for the command line (``.npz`` with ``X`` and ``Y``/``y``, or CSV),
and the atomic file writes every output of the package goes through."""

from __future__ import annotations

import csv
import errno
import os
import secrets
import zipfile

import numpy as np

from ._validation import check_XY

__all__ = ["load_dataset", "atomic_write", "npz_signature_error"]

#: First bytes of a zip archive (``.npz``): a local file header, or an empty archive.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


def npz_signature_error(path: str, what: str) -> str | None:
    """Why the file at ``path`` cannot be an ``.npz`` archive (None if it may be one):
    ``"it is not WHAT: it is a text file, not an .npz archive (it starts with ...)"``.

    ``np.load`` on a file that is neither a zip archive nor an ``.npy`` array treats it as
    a pickle and, with ``allow_pickle=False``, says only that pickled data are not allowed;
    this looks at the first bytes instead and names what the file is not.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None  # np.load reports the problem
    if head.startswith(_ZIP_MAGIC) or head.startswith(_NPY_MAGIC):
        return None
    kind = "an empty file" if not head else (
        "a text file" if all(32 <= b < 127 or b in (9, 10, 13) for b in head) else "binary data")
    return f"it is not {what}: it is {kind}, not an .npz archive (it starts with {head[:8]!r})"


def _new_file_mode(path: str) -> int | None:
    """Permission bits of the file ``open(path, "w")`` would leave: those of an existing
    regular file (open keeps them), else None (a new file: 0o666 less the umask)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    import stat

    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def atomic_write(path, write, *, suffix: str | None = None, make_dirs: bool = True) -> str:
    """Write ``path`` through a temporary file in the same folder, then rename it into place.

    ``write(fh)`` writes to a binary file object. The file is never left half-written, and
    it gets the permissions a plain ``open(path, "wb")`` would give: ``0o666`` less the
    umask for a new file, the existing mode when replacing one (``tempfile.mkstemp`` would
    give ``0o600`` whatever the umask). The folder is created if needed (``make_dirs``;
    otherwise a missing folder is a ``FileNotFoundError``). Returns ``path``.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if make_dirs:
        os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    keep_mode = _new_file_mode(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp_{secrets.token_hex(6)}{suffix}")
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask, as open() does
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            if keep_mode is not None:
                os.chmod(tmp, keep_mode)
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _load_npz(path: str):
    reason = npz_signature_error(path, "a data file (an .npz archive with arrays X and Y)")
    if reason is not None:
        raise ValueError(f"could not read data file {path!r}: {reason}")
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
