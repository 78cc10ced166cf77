"""How many threads the kernels use: ``use_threads(n)`` for all of them, ``threads_for(images, work)`` per GEMM-based call.

The Winograd and im2col kernels run their chunks of a batch in numba
``prange`` loops, one iteration per thread, and call OpenBLAS from inside
them (:mod:`numpy_cnn.kernels.blas`); so they use numba's thread count,
like every other loop here (``numba.set_num_threads`` sets it). The trainer,
tests and benchmarks set ``OPENBLAS_NUM_THREADS=1`` before NumPy loads
(:mod:`numpy_cnn.cli.process_env`): each of those threads runs its own GEMMs,
and OpenBLAS threads of its own would only compete with them.

A thread is worth waking only for enough work: one per WORK_PER_THREAD
multiply-adds. Waking numba's OpenMP workers costs a few microseconds, so
that is low: on Winograd layers two threads lost slightly to one below
about 0.2 M multiply-adds and won above (measurements: ``docs/performance.md``,
"GEMMs on numba's threads").
"""

from __future__ import annotations

import numba

from numpy_cnn.errors import UserError
from numpy_cnn.kernels._jit import jit

__all__ = ["threads_for", "share", "use_threads", "WORK_PER_THREAD"]

WORK_PER_THREAD = 200_000


def threads_for(n: int, work: float = float("inf")) -> int:
    """Threads for a call over ``n`` images doing ``work`` multiply-adds (or a like measure):
    at most numba's thread count, one per image, and one per ``WORK_PER_THREAD`` of work."""
    return int(max(1, min(numba.get_num_threads(), n, work / WORK_PER_THREAD)))


@jit()
def share(t, threads, n):
    """Thread t's contiguous share of n images, ``(lo, hi)``: the batch cut into ``threads`` near-equal runs."""
    return n * t // threads, n * (t + 1) // threads


def use_threads(threads: int | None = None) -> int:
    """Run numba's loops (so every kernel) on ``threads`` threads from now on, in this thread; return the count.

    ``None`` keeps the pool's size, ``NUMBA_NUM_THREADS``: the CPUs this process
    may use (:func:`numpy_cnn.cpus.available_cpus`, set by
    :mod:`numpy_cnn.cli.process_env`) unless the user set it. More than the pool
    is refused with one line: numba starts its pool once, when it loads.
    """
    pool = numba.config.NUMBA_NUM_THREADS
    if threads is None:
        threads = pool
    if not 1 <= threads <= pool:
        raise UserError(f"--threads {threads}: numba's pool has {pool} threads (NUMBA_NUM_THREADS, by default the "
                        f"CPUs this process may use); give 1 to {pool}, or set NUMBA_NUM_THREADS={threads} first")
    numba.set_num_threads(threads)
    return threads
