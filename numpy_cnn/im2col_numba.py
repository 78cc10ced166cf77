"""numba kernels for im2col and col2im, the fast twins of :mod:`numpy_cnn.im2col`.

Same layout and same results as the NumPy reference (the tests prove it):
``cols[n, (c*kH + i)*kW + j, oy*W' + ox] = xpad[n, c, oy*s + i, ox*s + j]``.
The loops run in parallel over the batch, so no two threads ever write the
same element of ``dx`` in col2im: no locks, no races. Padding is never
copied: a tap that falls on the zero border writes 0 into ``cols`` (im2col)
or is skipped (col2im), its output range computed once per tap by ``_inside``.

Importing this module imports numba (slow, ~0.5 s), so layers import it only
on first use. The kernels are compiled with the package's shared settings
(:mod:`numpy_cnn.kernels._jit`: cached on disk, so a new process does not
compile again).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .im2col import conv_output_size
from .kernels._jit import jit


@jit()
def _inside(size, n_out, offset, stride):  # pragma: no cover - compiled
    """[lo, hi): the outputs o < n_out whose input o*stride + offset lies in [0, size)."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = 0 if offset >= size else min(n_out, (size - 1 - offset) // stride + 1)
    return min(lo, n_out), max(hi, min(lo, n_out))


@jit(parallel=True)
def _im2col_kernel(x, kh, kw, stride, pad, ho, wo, cols):  # pragma: no cover - compiled
    # Padding is read, not copied: outputs whose tap falls outside the image get 0.
    n_batch, n_chan, h, w = x.shape
    for n in prange(n_batch):
        for c in range(n_chan):
            for i in range(kh):
                y_lo, y_hi = _inside(h, ho, i - pad, stride)
                for j in range(kw):
                    x_lo, x_hi = _inside(w, wo, j - pad, stride)
                    row = cols[n, (c * kh + i) * kw + j]
                    for oy in range(ho):
                        out = row[oy * wo:(oy + 1) * wo]
                        if oy < y_lo or oy >= y_hi:
                            out[:] = 0
                            continue
                        src = x[n, c, oy * stride + i - pad]
                        for ox in range(x_lo):
                            out[ox] = 0
                        for ox in range(x_lo, x_hi):
                            out[ox] = src[ox * stride + j - pad]
                        for ox in range(x_hi, wo):
                            out[ox] = 0


@jit(parallel=True)
def _col2im_kernel(cols, kh, kw, stride, pad, ho, wo, dx):  # pragma: no cover - compiled
    # Taps that fell on the padding are dropped: their gradient belongs to no input.
    n_batch, n_chan, h, w = dx.shape
    for n in prange(n_batch):
        for c in range(n_chan):
            for i in range(kh):
                y_lo, y_hi = _inside(h, ho, i - pad, stride)
                for j in range(kw):
                    x_lo, x_hi = _inside(w, wo, j - pad, stride)
                    row = cols[n, (c * kh + i) * kw + j]
                    for oy in range(y_lo, y_hi):
                        dst = dx[n, c, oy * stride + i - pad]
                        for ox in range(x_lo, x_hi):
                            dst[ox * stride + j - pad] += row[oy * wo + ox]


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: int = 1, padding: int = 0) -> np.ndarray:
    """x: (N, C, H, W) -> cols: (N, C*kH*kW, H'*W'). See :func:`numpy_cnn.im2col.im2col_reference`."""
    n, c, h, w = x.shape
    kh, kw = kernel
    if (kh, kw, stride, padding) == (1, 1, 1, 0):
        return np.ascontiguousarray(x).reshape(n, c, h * w)   # a 1x1 kernel's columns are the image
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    cols = np.empty((n, c * kh * kw, ho * wo), dtype=x.dtype)
    _im2col_kernel(np.ascontiguousarray(x), kh, kw, stride, padding, ho, wo, cols)
    return cols


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel: tuple[int, int],
           stride: int = 1, padding: int = 0) -> np.ndarray:
    """cols: (N, C*kH*kW, H'*W') -> dx: (N, C, H, W). See :func:`numpy_cnn.im2col.col2im_reference`."""
    n, c, h, w = x_shape
    kh, kw = kernel
    if (kh, kw, stride, padding) == (1, 1, 1, 0):
        return cols.reshape(x_shape)                          # no overlaps to sum
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    dx = np.zeros((n, c, h, w), dtype=cols.dtype)
    _col2im_kernel(np.ascontiguousarray(cols), kh, kw, stride, padding, ho, wo, dx)
    return dx
