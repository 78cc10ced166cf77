"""Tests of split_work: the batch cut into one slice per thread, and threads only where the work pays for them."""

import numpy as np
import pytest

pytest.importorskip("numba")
from numpy_cnn.kernels.threads import WORK_PER_THREAD, split_work   # noqa: E402


@pytest.fixture
def two_threads(numba_threads):
    numba_threads(2)


def test_slices_cover_the_range_once_in_order(two_threads):
    assert split_work(lambda lo, hi: (lo, hi), 7) == [(0, 3), (3, 7)]
    assert split_work(lambda lo, hi: (lo, hi), 1) == [(0, 1)]       # never more slices than items


@pytest.mark.parametrize("work,slices", [(1, 1), (WORK_PER_THREAD - 1, 1), (2 * WORK_PER_THREAD, 2),
                                         (1e12, 2)])
def test_a_thread_is_added_per_work_per_thread(two_threads, work, slices):
    assert len(split_work(lambda lo, hi: hi - lo, 8, work)) == slices


def test_a_worker_exception_reaches_the_caller(two_threads):
    def fn(lo, hi):
        if lo > 0:
            raise ArithmeticError("from the worker")
        return np.zeros(1)

    with pytest.raises(ArithmeticError, match="from the worker"):
        split_work(fn, 4)
