import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE_CASES = SHARED / "reference_cases"


def load_reference(name):
    path = REFERENCE_CASES / f"{name}.npz"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference case {path} missing in CI: shared/ must be beside the repository")
        pytest.skip(f"reference case {path} not available (shared/ is not beside the repo)")
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
