"""Matrix products callable from inside numba code: NumPy's own OpenBLAS, or a plain loop.

``matmul(a, b, out, beta)`` computes ``out = a @ b + beta * out`` for 2-D
float32 or float64 arrays whose rows or columns are contiguous (so ``a.T``
is fine, and so is a block of rows of a bigger matrix), like ``np.matmul``
but from a jitted function.

Why
---
Winograd and im2col are built on GEMMs. Called from Python, each thread of
a batch needs a Python thread (``np.matmul`` cannot run inside numba), and
handing work to one, waiting for it and for the GIL cost about as much as a
layer's whole GEMM work at batch 4: there two threads ran no faster than
one. Called from inside a numba ``prange`` loop, a GEMM runs on numba's
OpenMP threads like any other loop, and two threads nearly halve its time
(measurements: ``docs/performance.md``, "GEMMs on numba's threads").

How
---
The NumPy wheels carry OpenBLAS (``scipy_openblas64``, 64-bit integers)
and it is already loaded by the time this module runs. We look up its
``cblas_sgemm``/``cblas_dgemm`` with ctypes and give their addresses to
LLVM under names of our own (``llvmlite.binding.add_symbol``); the jitted
code calls those names as external functions. Calling the ctypes functions
themselves would work too, but numba then bakes their addresses into the
machine code and will not cache it on disk; a name is resolved each time
the cached code is loaded. (OpenBLAS runs each call on the calling thread
only: :mod:`numpy_cnn.cli.process_env` sets ``OPENBLAS_NUM_THREADS=1``.)

Where NumPy has no such library (a build against MKL or Accelerate, say),
the names point at :func:`_gemm_loops` instead, a plain triple loop compiled
as a C callback: correct, and several times slower. ``BLAS`` says which one
this process got.
"""

from __future__ import annotations

import ctypes
import glob
import os

import llvmlite.binding as llvm
import numpy as np
from numba import carray, cfunc, types

from numpy_cnn.kernels._jit import jit

__all__ = ["matmul", "BLAS"]

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112          # the CBLAS enum values

# cblas_?gemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc),
# with 64-bit integers; pointers are passed as integers (arr.ctypes.data).
_INT, _PTR = types.int64, types.uintp


def _signature(real, pointer):
    return types.void(types.intc, types.intc, types.intc, _INT, _INT, _INT,
                      real, pointer, _INT, pointer, _INT, real, pointer, _INT)


def _gemm_loops(real):
    """The fallback: cblas_?gemm's contract (row-major only) as plain loops, compiled as a C callback."""
    @cfunc(_signature(real, types.CPointer(real)), nopython=True, cache=True)
    def gemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        a_rows = k if trans_a == TRANS else m
        b_rows = n if trans_b == TRANS else k
        am = carray(a, (a_rows, lda))
        bm = carray(b, (b_rows, ldb))
        cm = carray(c, (m, ldc))
        for i in range(m):
            for j in range(n):
                cm[i, j] = cm[i, j] * beta if beta != 0 else 0
            for p in range(k):
                aip = alpha * (am[p, i] if trans_a == TRANS else am[i, p])
                for j in range(n):
                    cm[i, j] += aip * (bm[j, p] if trans_b == TRANS else bm[p, j])
    return gemm


def _numpy_openblas():
    """NumPy's bundled OpenBLAS (64-bit integers) as a ctypes library, or None."""
    root = os.path.dirname(os.path.dirname(np.__file__))
    for pattern in ("numpy.libs/*openblas64*", "numpy/.dylibs/*openblas64*"):
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    return None


def _register():
    """Point the names numpy_cnn_sgemm and numpy_cnn_dgemm at a GEMM; -> which one ("openblas" or "loops")."""
    lib = _numpy_openblas()
    for prefix in ("scipy_cblas_", "cblas_"):          # NumPy 2 wheels, then NumPy 1's
        try:
            found = {p: getattr(lib, f"{prefix}{p}gemm64_") for p in "sd"}
        except AttributeError:                         # also when lib is None
            continue
        for p, fn in found.items():
            llvm.add_symbol(f"numpy_cnn_{p}gemm", ctypes.cast(fn, ctypes.c_void_p).value)
        return "openblas"
    for p, real in (("s", types.float32), ("d", types.float64)):
        llvm.add_symbol(f"numpy_cnn_{p}gemm", _gemm_loops(real).address)
    return "loops"


BLAS = _register()
_sgemm = types.ExternalFunction("numpy_cnn_sgemm", _signature(types.float32, _PTR))
_dgemm = types.ExternalFunction("numpy_cnn_dgemm", _signature(types.float64, _PTR))


@jit()
def _operand(a):
    """(CBLAS trans flag, leading dimension) of a 2-D view whose rows or columns are contiguous."""
    size = a.itemsize
    if a.strides[1] == size:
        return NO_TRANS, max(a.strides[0] // size, a.shape[1], 1)
    return TRANS, max(a.strides[1] // size, a.shape[0], 1)


@jit()
def matmul(a, b, out, beta=0.0):
    """out = a @ b + beta * out.  a: (M, K), b: (K, N), out: (M, N), all float32 or all float64.

    a and b may be transposed views (either of their two strides may be the
    unit one); out's rows must be contiguous. beta = 0 ignores what out held.
    """
    m, k = a.shape
    n = b.shape[1]
    if m == 0 or n == 0:
        return
    trans_a, lda = _operand(a)
    trans_b, ldb = _operand(b)
    ldc = max(out.strides[0] // out.itemsize, n, 1)
    if out.itemsize == 4:
        _sgemm(ROW_MAJOR, trans_a, trans_b, m, n, k, np.float32(1.0), a.ctypes.data, lda,
               b.ctypes.data, ldb, np.float32(beta), out.ctypes.data, ldc)
    else:
        _dgemm(ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda,
               b.ctypes.data, ldb, np.float64(beta), out.ctypes.data, ldc)
