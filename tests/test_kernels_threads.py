"""Tests of threads_for: threads only where the work pays for them, never more than images or numba's threads."""

import pytest

pytest.importorskip("numba")
from numpy_cnn.kernels.threads import WORK_PER_THREAD, threads_for   # noqa: E402


@pytest.mark.parametrize("work,threads", [(1, 1), (WORK_PER_THREAD - 1, 1), (2 * WORK_PER_THREAD, 2),
                                          (1e12, 2)])
def test_a_thread_is_added_per_work_per_thread(numba_threads, work, threads):
    numba_threads(2)
    assert threads_for(8, work) == threads


def test_never_more_threads_than_images_or_numba_threads(numba_threads):
    numba_threads(2)
    assert threads_for(1) == 1
    numba_threads(1)
    assert threads_for(8) == 1
