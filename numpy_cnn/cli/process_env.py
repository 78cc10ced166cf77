"""Thread settings for the whole process, set before NumPy and numba start their threads.

``python train_numpy.py``, the tests and the benchmarks call
:func:`set_thread_defaults` before anything imports NumPy. A script of your
own that trains with numpy_cnn can do the same, first thing. Each variable
is only set if it is not set already, so your own choice wins.

* ``OPENBLAS_NUM_THREADS=1``, ``OMP_NUM_THREADS=1``: small GEMMs with two
  OpenBLAS threads beside numba's threads oversubscribe a 2-core machine and
  run several times slower. The kernels that are GEMMs spread their batch
  over numba's threads themselves (:mod:`numpy_cnn.kernels.blas`). NumPy reads
  these once, when it loads.
* ``GOMP_SPINCOUNT=30000``: after each parallel loop, numba's OpenMP workers
  (GNU libgomp) spin for a while before they sleep, so the next loop starts
  at once; by default 300,000 times, milliseconds here. A Winograd or im2col
  layer that follows runs its second thread on a core a worker is still
  spinning on. 30,000 sped up a network of 3x3 layers and left the paper's
  network as it was; far fewer spins made the paper's many short loops wait
  to wake the workers. libgomp reads it when numba first starts its threads.
  Since the GEMM kernels run on numba's own threads
  (:mod:`numpy_cnn.kernels.blas`) it matters less (measurements:
  ``docs/performance.md``, "Thread settings of the process").
* ``NUMBA_NUM_THREADS``: the size of numba's thread pool, the most threads a
  run can use (``--threads`` picks fewer). numba's own default counts the
  CPUs in the affinity mask; :func:`numpy_cnn.cpus.available_cpus` also
  honours a container's CPU quota, where more threads than the quota only
  take turns being stopped.
"""

from __future__ import annotations

import os

from numpy_cnn.cpus import available_cpus

DEFAULTS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "GOMP_SPINCOUNT": "30000"}


def set_thread_defaults() -> None:
    """Set each of :data:`DEFAULTS`, and ``NUMBA_NUM_THREADS`` to the CPUs available, in ``os.environ``
    unless it is set already."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(available_cpus()))
