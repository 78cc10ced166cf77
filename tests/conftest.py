from numpy_cnn.cli.process_env import set_thread_defaults

# Before NumPy loads: BLAS at one thread, as the trainer runs (numpy_cnn/cli/process_env.py).
set_thread_defaults()

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def numba_threads():
    """``numba_threads(n)``: numba (and the kernels that follow its count) runs on n threads
    for the rest of the test; skips the test on a machine with fewer."""
    numba = pytest.importorskip("numba")
    old = numba.get_num_threads()

    def use(threads: int) -> None:
        if threads > numba.config.NUMBA_NUM_THREADS:
            pytest.skip(f"machine has fewer than {threads} threads")
        numba.set_num_threads(threads)

    yield use
    numba.set_num_threads(old)


@pytest.fixture
def keep_threads():
    """A test that runs ``--threads N`` (or a fold on a worker's share) in this process leaves numba's
    thread count as it found it, for the tests that follow."""
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


@pytest.fixture
def no_pooled_plot(monkeypatch):
    """A K-fold run's pooled confusion plot is not drawn (matplotlib costs ~1 s); the folds' own
    plots are drawn in the workers, which a test cannot patch."""
    from numpy_cnn.train import kfold

    monkeypatch.setattr(kfold, "_plot_pooled", lambda *args: None)
