"""Run a function on slices of a batch in numba's thread count, from Python threads.

The trainer (and the tests and benchmarks) set ``OPENBLAS_NUM_THREADS=1``
before NumPy loads (:mod:`numpy_cnn.process_env`): small GEMMs with two OpenBLAS threads beside numba's run
several times slower on a 2-core machine, and NumPy cannot change its BLAS
thread count once loaded. A method built on GEMMs still wants every core.
NumPy releases the GIL inside ``matmul`` and our kernels are compiled with
``nogil=True``, so ``T`` Python threads, each running single-threaded BLAS
and numba calls on its own slice of the batch, use ``T`` cores with no new
dependency. ``T`` is ``numba.get_num_threads()``, so such a method uses
exactly the cores the numba loops use (``numba.set_num_threads`` sets both).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Callable, TypeVar

import numba

R = TypeVar("R")


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    """One pool per thread count, made on first use and kept (starting threads costs ~50 us)."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="numpy_cnn")


# Handing a slice to a pool thread and waiting for it costs ~50 us on the
# 2-core machine these kernels were tuned on (a futex wake-up each way, in a
# VM), and while both threads run, each numba or BLAS call that ends while
# the other thread holds the GIL waits to be woken again. A call adds a
# thread only for each WORK_PER_THREAD multiply-adds it has, so a small layer
# runs in the calling thread instead of waiting. Measured on Winograd and
# im2col layers at batch 4 to 16, two threads against one, by the work the
# kernel really does (Winograd: its GEMMs' multiply-adds, not the direct
# sum's, and its transforms): slower below about 7 M, 1.1-1.3x at 8-20 M,
# 1.4-1.75x at 20-40 M. So two threads from 7.5 M on.
WORK_PER_THREAD = 3_750_000


def split_work(fn: Callable[[int, int], R], n: int, work: float = float("inf")) -> list[R]:
    """``[fn(lo, hi) for each slice]``: [0, n) cut into one contiguous slice per thread.

    ``work`` is the call's multiply-adds (or a like measure): at most one
    thread per ``WORK_PER_THREAD`` of it. The first slice runs in the calling
    thread, the others in the pool; a worker's exception is re-raised here.
    """
    threads = int(max(1, min(numba.get_num_threads(), n, work / WORK_PER_THREAD)))
    cuts = [n * t // threads for t in range(threads + 1)]
    jobs = [_pool(threads).submit(fn, lo, hi) for lo, hi in zip(cuts[1:-1], cuts[2:])]
    first = fn(cuts[0], cuts[1])
    return [first] + [job.result() for job in jobs]
