"""How many threads the kernels use, and how a batch is cut so that no result depends on that number.

``use_threads(n)`` sets the threads of every kernel, ``threads_for(images, work)``
how many a GEMM-based call uses; ``chunk_count``, ``lanes`` and ``lane_sum``
make the sums over a batch add up in one order whatever the thread count
(see "Sums in an order fixed by the batch" below).

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
import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.kernels._jit import jit

__all__ = ["threads_for", "share", "use_threads", "WORK_PER_THREAD", "LANES", "chunk_count", "lanes", "lane_sum"]

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


# ----------------------------------------------------------------------------
# Sums in an order fixed by the batch, not by the threads
# ----------------------------------------------------------------------------
#
# A backward pass sums each weight's gradient over the whole batch. Floating-
# point addition is not associative, so if each thread summed its own share
# and the shares were added at the end, the last bits of dW would depend on
# how many threads ran, and so would every trained network's weights. So the
# order is fixed by the batch alone:
#
#     dW = sum over lanes l (in lane order) of  [ sum over the chunks k of lane l (in order) of dW_k ]
#
# * chunks: the batch cut into chunk_count(N, most) near-equal runs of
#   images (share(k, chunks, N)), ``most`` being the layer's cache budget;
# * lanes: the chunks grouped into L = min(LANES, chunks) near-equal runs
#   (share(l, L, chunks)), each summed in order into its own partial dW;
# * threads: thread t runs whole lanes, share(t, T, L), T <= L;
# * lane_sum adds the L partials in lane order.
#
# Which thread runs a lane changes nothing, so one thread, two or sixteen give
# the same bits (tests/test_thread_independence.py). That is also what keeps
# later changes safe: the lanes may run in parallel, in any order, or in one
# serial loop on a fallback path, and the partials may be folded by any code,
# as long as each lane adds its chunks in order and lane_sum adds the lanes
# in order. (The forward passes sum nothing across chunks, but a GEMM's row
# count must not follow the threads either, so conv_gemm and winograd cut
# their forward's chunks the same way; conv_direct's forward may follow the
# threads: each of its outputs adds its taps in one order however the batch
# is cut.)

# Partial sums per reduction. More lanes let more threads share a backward
# pass (at most LANES run at once) but cost a dW-sized partial each to zero
# and add up, and cut small batches finer (at least a chunk a lane). On a
# 64-channel 3x3 Winograd layer at batch 64 (forward + backward, 2 threads)
# 8 lanes cost about 1% over the 2 per-thread parts of before, 16 about 1.5-2%
# (docs/performance.md, "Thread-count-independent sums"). Changing LANES
# changes the order of the sums, and so the last bits of trained weights.
LANES = 8


def chunk_count(n: int, most: int) -> int:
    """How many chunks a batch of ``n`` images is cut into: enough that none holds
    more than ``most`` images (the cache budget), and at least one per lane
    (``min(n, LANES)``) so that up to LANES threads find work. A function of
    ``n`` and ``most`` only: never of the thread count."""
    if n <= 0:
        return 0
    return max(-(-n // max(1, most)), min(n, LANES))


def lanes(chunks: int, threads: int) -> tuple[int, int]:
    """``(L, T)`` for a sum over ``chunks`` chunks on at most ``threads`` threads:
    L = min(LANES, chunks) lanes (at least 1), run by T = min(threads, L) threads."""
    n_lanes = max(1, min(LANES, chunks))
    return n_lanes, max(1, min(threads, n_lanes))


def lane_sum(parts: np.ndarray) -> np.ndarray:
    """``parts[0] + parts[1] + ...``: the lanes' partial sums (L, ...) added in lane order, a new array."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total
