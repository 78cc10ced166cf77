from numpy_cnn.process_env import set_thread_defaults

# Before NumPy loads: BLAS at one thread, as the trainer runs (numpy_cnn/process_env.py).
set_thread_defaults()

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
