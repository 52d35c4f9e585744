import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
#: Reference cases with a certified optimum, vendored from ``shared/reference_cases`` (see
#: the README there) so that a clone runs every test without ``../shared``.
REFERENCE_CASES = pathlib.Path(__file__).resolve().parent / "data" / "reference_cases"


def reference_path(name):
    """Path of the vendored reference case ``name`` (with or without ``.npz``); a missing
    file is a test failure, never a skip."""
    fname = name if name.endswith(".npz") else f"{name}.npz"
    path = REFERENCE_CASES / fname
    if not path.is_file():
        pytest.fail(f"reference case {path} is missing: tests/data/reference_cases/ is part of "
                    "the repository (restore it from version control)")
    return path


def load_reference(name):
    with np.load(reference_path(name)) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
