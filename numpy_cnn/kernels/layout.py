"""Copies between NCHW and channels-last chunks, and per-thread scratch memory.

Shared by the kernels that work on chunks of images laid out channels last
(:mod:`numpy_cnn.kernels.winograd`, :mod:`numpy_cnn.kernels.conv_gemm`)::

    channels_last:  src (N, C, H, W)  ->  dst (n, H + 2p.., W + 2p.., C), zeros around
    channels_first: src (n, rows, cols, C)  ->  dst (N, C, H, W), an offset cropped off

``scratch(name, shape, dtype)`` hands out the calling thread's buffer
``name``, kept from call to call, starting on a 64-byte cache line.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from numpy_cnn.kernels._jit import jit

__all__ = ["U", "channels_last", "channels_first", "scratch"]

# Indexing. numba checks every signed index for "negative: count from the
# end", and those checks stop LLVM from vectorising the channel loops. The
# layout copies here, winograd's forward transforms and conv_gemm's unfold
# therefore index 2-D arrays (one row per pixel, plane or tile) with
# unsigned integers (U = np.uint64: nothing to check), so the loop over
# channels runs over contiguous memory from two base pointers. (Sixteen 1-D
# views per tile are the other way to have no negative index, but LLVM must
# then prove the views apart at run time.) Of the backward transforms,
# _grad_tiles still uses views and _input_grad_tiles unsigned integers (it
# indexed plainly once, and compiled to scalar code). The gains:
# docs/performance.md, "Layout copies and scratch memory".
U = np.uint64


@jit()
def channels_last(src, n0, n1, off, dst):
    """dst[i, off + r, off + s, c] = src[n0 + i, c, r, s], and 0 everywhere else in dst[:n1 - n0].

    The zeros are the padding (and the half-empty tile of an odd output size):
    dst is reused from call to call, so its border is written every time.
    """
    N, C, H, W = src.shape
    n, rows, cols, _ = dst.shape
    planes = src.reshape(N * C, H * W)               # one row per (image, channel)
    pixels = dst.reshape(n * rows * cols, C)         # one row per pixel
    for i in range(n1 - n0):
        first = U((n0 + i) * C)
        for r in range(rows):
            for s in range(cols):
                p = U((i * rows + r) * cols + s)
                if off <= r < off + H and off <= s < off + W:
                    q = U((r - off) * W + (s - off))
                    for c in range(U(C)):
                        pixels[p, c] = planes[first + c, q]
                else:
                    for c in range(U(C)):
                        pixels[p, c] = 0


@jit()
def channels_first(src, n0, off, dst):
    """dst[n0 + i, c, r, s] = src[i, off + r, off + s, c] for every i < len(src), r < H, s < W of dst."""
    N, C, H, W = dst.shape
    n, rows, cols, _ = src.shape
    planes = dst.reshape(N * C, H * W)
    pixels = src.reshape(n * rows * cols, C)
    for i in range(n):
        first = U((n0 + i) * C)
        for r in range(H):
            for s in range(W):
                p = U((i * rows + r + off) * cols + s + off)
                q = U(r * W + s)
                for c in range(U(C)):
                    planes[first + c, q] = pixels[p, c]


# Scratch memory lives on between calls, one set per thread: a fresh array of
# a few MB is given its pages by the OS on first touch, one fault per 4 KB,
# and with Winograd's V, M and tile buffers made anew on every call those
# faults cost as much as its transforms (docs/performance.md, "Layout
# copies and scratch memory").
_THREAD_SCRATCH = threading.local()

# Every scratch buffer starts on a 64-byte cache line. NumPy's own arrays
# start 16 or 48 bytes into one, and the transforms' rows (C or F floats,
# often a multiple of 16) are then whole lines apart: every 512-bit load and
# store of those loops would straddle two lines, which costs two on Intel's
# AVX-512 cores (docs/performance.md, "Intel: what limits each kernel").
LINE = 64


def _line_aligned(size: int, dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised 1-D array of ``size`` items of ``dtype`` that starts on a LINE-byte boundary."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(size * itemsize + LINE, np.uint8)    # LINE bytes spare to slide into place
    first = -raw.ctypes.data % LINE
    return raw[first:first + size * itemsize].view(dtype)


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised array of ``shape`` that is this thread's ``name`` buffer,
    grown when too small and otherwise reused from call to call.

    Valid until this thread asks for ``name`` again: a kernel takes each of
    its buffers under a name of its own (``"gemm_cols"``, ``"v"``, ...). It
    starts on a 64-byte cache line (LINE); where a number sits in memory
    does not change how it is computed, so no result changes with it.
    """
    store = _THREAD_SCRATCH.__dict__
    size = math.prod(shape)
    buf = store.get((name, dtype))
    if buf is None or buf.size < size:
        buf = store[(name, dtype)] = _line_aligned(size, dtype)
    return buf[:size].reshape(shape)
