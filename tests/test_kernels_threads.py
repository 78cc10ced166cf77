"""Tests of numpy_cnn.kernels.threads: threads_for (threads only where the work pays for them, never
more than images or numba's threads) and the fixed-order sums (chunk_count, lanes, lane_sum)."""

import numpy as np
import pytest

pytest.importorskip("numba")
from numpy_cnn.kernels.threads import (LANES, WORK_PER_THREAD, chunk_count, lane_sum, lanes, share,  # noqa: E402
                                       threads_for)


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


# -- sums in an order fixed by the batch (chunk_count, lanes, lane_sum) ------------------------


@pytest.mark.parametrize("n,most,chunks", [(0, 4, 0), (1, 4, 1), (4, 4, 4), (7, 100, 7), (64, 4, 16),
                                           (64, 100, LANES), (64, 1, 64), (65, 9, 8), (5, 0, 5)])
def test_chunk_count_keeps_the_budget_and_gives_every_lane_a_chunk(n, most, chunks):
    assert chunk_count(n, most) == chunks
    if n:
        assert -(-n // chunks) <= max(1, most) or chunks == min(n, LANES)


def test_chunk_count_does_not_follow_the_threads(numba_threads):
    counts = []
    for threads in (1, 2):
        numba_threads(threads)
        counts.append([chunk_count(n, most) for n in (1, 4, 7, 64) for most in (1, 3, 100)])
    assert counts[0] == counts[1]


@pytest.mark.parametrize("chunks,threads,want", [(0, 2, (1, 1)), (1, 2, (1, 1)), (3, 2, (3, 2)), (7, 3, (7, 3)),
                                                 (64, 2, (LANES, 2)), (64, 100, (LANES, LANES))])
def test_lanes_are_at_most_LANES_and_threads_at_most_lanes(chunks, threads, want):
    assert lanes(chunks, threads) == want


@pytest.mark.parametrize("chunks", [1, 5, 8, 23])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_run_whole_lanes_and_lanes_whole_runs_of_chunks(chunks, threads):
    """Thread t's lanes share(t, T, L), lane l's chunks share(l, L, K): every chunk once, in order."""
    n_lanes, threads = lanes(chunks, threads)
    order = [k for t in range(threads) for lane in range(*share(t, threads, n_lanes))
             for k in range(*share(lane, n_lanes, chunks))]
    assert order == list(range(chunks))


def test_lane_sum_adds_in_lane_order():
    """((a + b) + c), not a + (b + c): with a = 1, b = c = 2**-24 in float32, only the first
    order keeps 1 (each tiny part rounds away); a new array, the parts untouched."""
    parts = np.array([[1.0], [2.0 ** -24], [2.0 ** -24]], np.float32)
    total = lane_sum(parts)
    assert total[0] == np.float32(1.0) and total.dtype == np.float32
    assert not np.shares_memory(total, parts) and parts[0, 0] == 1.0
