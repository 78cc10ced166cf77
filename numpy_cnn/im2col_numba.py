"""numba kernels for im2col and col2im, the fast twins of :mod:`numpy_cnn.im2col`.

Same layout and same results as the NumPy reference (the tests prove it):
``cols[n, (c*kH + i)*kW + j, oy*W' + ox] = xpad[n, c, oy*s + i, ox*s + j]``.
The loops run in parallel over the batch, so no two threads ever write the
same element of ``dx`` in col2im: no locks, no races.

Importing this module imports numba (slow, ~0.5 s), so layers import it only
on first use. ``cache=True`` keeps the compiled code on disk, so a new process
does not compile again.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .im2col import conv_output_size


@njit(parallel=True, cache=True)
def _im2col_kernel(xp, kh, kw, stride, ho, wo, cols):  # pragma: no cover - compiled
    n_batch, n_chan = xp.shape[0], xp.shape[1]
    for n in prange(n_batch):
        for c in range(n_chan):
            for i in range(kh):
                for j in range(kw):
                    row = cols[n, (c * kh + i) * kw + j]
                    for oy in range(ho):
                        src = xp[n, c, oy * stride + i]
                        for ox in range(wo):
                            row[oy * wo + ox] = src[ox * stride + j]


@njit(parallel=True, cache=True)
def _col2im_kernel(cols, kh, kw, stride, ho, wo, dxp):  # pragma: no cover - compiled
    n_batch, n_chan = dxp.shape[0], dxp.shape[1]
    for n in prange(n_batch):
        for c in range(n_chan):
            for i in range(kh):
                for j in range(kw):
                    row = cols[n, (c * kh + i) * kw + j]
                    for oy in range(ho):
                        dst = dxp[n, c, oy * stride + i]
                        for ox in range(wo):
                            dst[ox * stride + j] += row[oy * wo + ox]


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: int = 1, padding: int = 0) -> np.ndarray:
    """x: (N, C, H, W) -> cols: (N, C*kH*kW, H'*W'). See :func:`numpy_cnn.im2col.im2col_reference`."""
    n, c, h, w = x.shape
    kh, kw = kernel
    if (kh, kw, stride, padding) == (1, 1, 1, 0):
        return np.ascontiguousarray(x).reshape(n, c, h * w)   # a 1x1 kernel's columns are the image
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))) if padding else x
    cols = np.empty((n, c * kh * kw, ho * wo), dtype=x.dtype)
    _im2col_kernel(np.ascontiguousarray(xp), kh, kw, stride, ho, wo, cols)
    return cols


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel: tuple[int, int],
           stride: int = 1, padding: int = 0) -> np.ndarray:
    """cols: (N, C*kH*kW, H'*W') -> dx: (N, C, H, W). See :func:`numpy_cnn.im2col.col2im_reference`."""
    n, c, h, w = x_shape
    kh, kw = kernel
    if (kh, kw, stride, padding) == (1, 1, 1, 0):
        return cols.reshape(x_shape)                          # no overlaps to sum
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    _col2im_kernel(np.ascontiguousarray(cols), kh, kw, stride, ho, wo, dxp)
    return dxp[:, :, padding:padding + h, padding:padding + w] if padding else dxp
