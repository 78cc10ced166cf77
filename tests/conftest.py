import os

# Small GEMMs with 2 OpenBLAS threads next to numba's 2 threads oversubscribe this
# 2-core machine and can be ~10x slower; the library is meant to run with BLAS at 1.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
