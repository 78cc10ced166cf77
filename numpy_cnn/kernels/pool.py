"""Max-pooling in numba: forward records where each max came from, backward routes the gradient there.

Shapes (NCHW, no padding, sizes floor as in PyTorch)::

    x: (N, C, H, W)  ->  y: (N, C, H', W'),  argmax: (N, C, H', W')
    H' = (H - kH) // sH + 1,   W' = (W - kW) // sW + 1

``argmax[n, c, oy, ox]`` is the offset of the max inside its window, in
row-major window order::

    window kH x kW = 2 x 3      offsets   0 1 2
                                          3 4 5      input row = sH*oy + offset // kW
                                                     input col = sW*ox + offset %  kW

It is int8 when the window has at most 127 positions (every practical
pool: 4x smaller than int64 indices, so it stays in cache), else int32.
Ties go to the FIRST max in that order, as in PyTorch, and a NaN counts as a
maximum (it propagates, again as in PyTorch).

Backward adds ``grad_y`` into the recorded positions. When windows overlap
(stride < kernel), one input can be the max of several windows, and its
gradient is the sum: hence ``+=`` into a zeroed dx.

Loop layout: ``prange`` over images; each thread writes only its own images
of y, argmax and dx, so there are no races. Inside, plain loops over channel,
output row and column, then the window. Pooling is memory-bound and the loops
are cheap; nothing clever is needed to beat the framework here.
"""

import numpy as np
from numba import prange

from numpy_cnn.kernels._jit import CONTRACT, jit

__all__ = ["maxpool2d_forward", "maxpool2d_backward", "pool_output_size", "argmax_dtype"]


@jit(fastmath=CONTRACT, parallel=True)
def _maxpool_forward(x, KH, KW, SH, SW, y, arg):
    N, C = x.shape[0], x.shape[1]
    HO, WO = y.shape[2], y.shape[3]
    for n in prange(N):
        for c in range(C):
            xc = x[n, c]
            for oy in range(HO):
                for ox in range(WO):
                    r0 = oy * SH
                    c0 = ox * SW
                    best = xc[r0, c0]
                    where = 0
                    for ky in range(KH):
                        for kx in range(KW):
                            v = xc[r0 + ky, c0 + kx]
                            if v > best or (v != v and best == best):   # v != v: NaN
                                best = v
                                where = ky * KW + kx
                    y[n, c, oy, ox] = best
                    arg[n, c, oy, ox] = where


@jit(fastmath=CONTRACT, parallel=True)
def _maxpool_backward(gy, arg, KW, SH, SW, dx):
    N, C = gy.shape[0], gy.shape[1]
    HO, WO = gy.shape[2], gy.shape[3]
    for n in prange(N):
        for c in range(C):
            dxc = dx[n, c]
            for oy in range(HO):
                for ox in range(WO):
                    a = arg[n, c, oy, ox]
                    r = oy * SH + a // KW
                    q = ox * SW + a % KW
                    dxc[r, q] += gy[n, c, oy, ox]


def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        a, b = int(v[0]), int(v[1])
    else:
        a = b = int(v)
    if a < 1 or b < 1:
        raise ValueError(f"{name} must be >= 1, got {v!r}")
    return a, b


def pool_output_size(size, k, stride):
    """Output length along one axis: ``(size - k) // stride + 1`` (floors, as PyTorch)."""
    return (size - k) // stride + 1


def argmax_dtype(kernel_size):
    """The dtype maxpool2d_forward uses for argmax: int8 if the window has <= 127 positions, else int32."""
    kH, kW = _pair(kernel_size, "kernel_size")
    return np.dtype(np.int8) if kH * kW <= 127 else np.dtype(np.int32)


def maxpool2d_forward(x, kernel_size, stride=None):
    """Max-pool ``x (N, C, H, W) -> (y (N, C, H', W'), argmax (N, C, H', W'))``.

    ``H' = (H - kH) // sH + 1`` (no padding). kernel_size and stride are an
    int or a (vertical, horizontal) pair; stride defaults to kernel_size.
    y has x's dtype; argmax holds each max's offset in its window
    (``ky*kW + kx``, dtype from :func:`argmax_dtype`), first max on ties.
    """
    x = np.ascontiguousarray(x)
    if x.ndim != 4:
        raise ValueError(f"maxpool2d wants x of shape (N, C, H, W), got {x.shape}")
    kH, kW = _pair(kernel_size, "kernel_size")
    sH, sW = _pair(kernel_size if stride is None else stride, "stride")
    N, C, H, W = x.shape
    if H < kH or W < kW:
        raise ValueError(f"maxpool2d: window {kH}x{kW} is larger than the input {H}x{W}")
    HO, WO = pool_output_size(H, kH, sH), pool_output_size(W, kW, sW)
    y = np.empty((N, C, HO, WO), dtype=x.dtype)
    arg = np.empty((N, C, HO, WO), dtype=argmax_dtype((kH, kW)))
    _maxpool_forward(x, kH, kW, sH, sW, y, arg)
    return y, arg


def maxpool2d_backward(grad_y, argmax, x_shape, kernel_size, stride=None):
    """Gradient of maxpool2d_forward: ``grad_y (N, C, H', W'), argmax -> dx x_shape``.

    Each grad_y value goes to the input position that was its window's max;
    with overlapping windows the contributions add up. Returns a new array.
    """
    kH, kW = _pair(kernel_size, "kernel_size")
    sH, sW = _pair(kernel_size if stride is None else stride, "stride")
    N, C, H, W = x_shape
    out_shape = (N, C, pool_output_size(H, kH, sH), pool_output_size(W, kW, sW))
    grad_y = np.ascontiguousarray(grad_y)
    argmax = np.ascontiguousarray(argmax)
    if grad_y.shape != out_shape or argmax.shape != out_shape:
        raise ValueError(f"maxpool2d_backward: grad_y {grad_y.shape} and argmax {argmax.shape} must both be {out_shape}")
    dx = np.zeros(x_shape, dtype=grad_y.dtype)
    _maxpool_backward(grad_y, argmax, kW, sH, sW, dx)
    return dx
