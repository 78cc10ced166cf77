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
pool: 8x smaller than int64 indices, so it stays in cache), else int32. It is
signed so that -1 can mean "no gradient" (see ``relu=True`` below).
Ties go to the FIRST max in that order, as in PyTorch, and a NaN counts as a
maximum (it propagates, again as in PyTorch).

Backward adds ``grad_y`` into the recorded positions. When windows overlap
(stride < kernel), one input can be the max of several windows, and its
gradient is the sum: hence ``+=`` into a zeroed dx.

Loop layout: ``prange`` over images; each thread writes only its own images
of y, argmax and dx, so there are no races. Inside, plain loops over channel,
output row and column, then the window. The network's 2x2, stride-2 pool has
its own written-out pair of kernels (see their docstrings for why, and
``docs/performance.md``, "Max-pooling", for by how much); every other
window and stride uses the general pair.
"""

import numpy as np
from numba import prange

from numpy_cnn.shapes import pair
from numpy_cnn.kernels._jit import CONTRACT, jit

__all__ = ["maxpool2d_forward", "maxpool2d_backward", "pool_output_size", "argmax_dtype"]


@jit(fastmath=CONTRACT, parallel=True)
def _maxpool_forward(x, KH, KW, SH, SW, relu, y, arg):
    """Any window and stride. The compare is written as a select, not an
    ``if``: on random data the max is anywhere in its window, an ``if``
    mispredicts about half the time, and the select form was 2x faster."""
    N, C = x.shape[0], x.shape[1]
    HO, WO = y.shape[2], y.shape[3]
    for n in prange(N):
        for c in range(C):
            xc = x[n, c]
            for oy in range(HO):
                yr = y[n, c, oy]
                ar = arg[n, c, oy]
                for ox in range(WO):
                    best = xc[oy * SH, ox * SW]
                    where = 0
                    for ky in range(KH):
                        for kx in range(KW):
                            v = xc[oy * SH + ky, ox * SW + kx]
                            take = (v > best) | ((v != v) & (best == best))   # v != v: v is NaN
                            best = v if take else best
                            where = ky * KW + kx if take else where
                    if relu and best <= 0:
                        best = best * 0                      # 0 of x's dtype
                        where = -1
                    yr[ox] = best
                    ar[ox] = where


@jit(fastmath=CONTRACT, parallel=True)
def _maxpool_forward_2x2(x, relu, y, arg):
    """The network's pool (2x2 window, stride 2), written out: the four
    values of a window come from two input rows, and with no inner window
    loops LLVM turns the compares into vector selects: about 25x faster
    than the general loop above. Every element is indexed in full
    (``x[n, c, r, q]``) rather than through a view of its row: on Zen 1
    (AVX2) the row views made the batch-64 forward 3x slower."""
    N, C = x.shape[0], x.shape[1]
    HO, WO = y.shape[2], y.shape[3]
    for n in prange(N):
        for c in range(C):
            for oy in range(HO):
                r = 2 * oy
                for ox in range(WO):
                    q = 2 * ox
                    m = x[n, c, r, q]
                    k = 0
                    v = x[n, c, r, q + 1]
                    if v > m or (v != v and m == m):
                        m = v
                        k = 1
                    v = x[n, c, r + 1, q]
                    if v > m or (v != v and m == m):
                        m = v
                        k = 2
                    v = x[n, c, r + 1, q + 1]
                    if v > m or (v != v and m == m):
                        m = v
                        k = 3
                    if relu and m <= 0:
                        m = m * 0
                        k = -1
                    y[n, c, oy, ox] = m
                    arg[n, c, oy, ox] = k


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
                    if a >= 0:                               # -1: ReLU cut this window
                        r = oy * SH + a // KW
                        q = ox * SW + a % KW
                        dxc[r, q] += gy[n, c, oy, ox]


@jit(fastmath=CONTRACT, parallel=True)
def _maxpool_backward_2x2(gy, arg, dx):
    """2x2 windows, stride 2: the windows tile the input, so every dx value
    is written exactly once (the gradient or zero) and no zeroing pass over
    dx is needed. Rows and columns left over by the floor are zeroed.
    An offset of -1 (ReLU cut the window) matches none of 0..3: all zero.
    Indexed in full, as the forward (no row views)."""
    N, C = gy.shape[0], gy.shape[1]
    HO, WO = gy.shape[2], gy.shape[3]
    H, W = dx.shape[2], dx.shape[3]
    for n in prange(N):
        for c in range(C):
            for oy in range(HO):
                r = 2 * oy
                for ox in range(WO):
                    q = 2 * ox
                    k = arg[n, c, oy, ox]
                    v = gy[n, c, oy, ox]
                    zero = v * 0
                    dx[n, c, r, q] = v if k == 0 else zero
                    dx[n, c, r, q + 1] = v if k == 1 else zero
                    dx[n, c, r + 1, q] = v if k == 2 else zero
                    dx[n, c, r + 1, q + 1] = v if k == 3 else zero
                for q in range(2 * WO, W):
                    dx[n, c, r, q] = 0
                    dx[n, c, r + 1, q] = 0
            for r in range(2 * HO, H):
                for q in range(W):
                    dx[n, c, r, q] = 0


def pool_output_size(size, k, stride):
    """Output length along one axis: ``(size - k) // stride + 1`` (floors, as PyTorch)."""
    return (size - k) // stride + 1


def argmax_dtype(kernel_size):
    """The dtype maxpool2d_forward uses for argmax: int8 if the window has <= 127 positions, else int32."""
    kH, kW = pair(kernel_size, "kernel_size", "maxpool2d")
    return np.dtype(np.int8) if kH * kW <= 127 else np.dtype(np.int32)


def maxpool2d_forward(x, kernel_size, stride=None, relu=False):
    """Max-pool ``x (N, C, H, W) -> (y (N, C, H', W'), argmax (N, C, H', W'))``.

    ``H' = (H - kH) // sH + 1`` (no padding). kernel_size and stride are an
    int or a (vertical, horizontal) pair; stride defaults to kernel_size.
    y has x's dtype; argmax holds each max's offset in its window
    (``ky*kW + kx``, dtype from :func:`argmax_dtype`), first max on ties.

    ``relu=True`` computes ``maxpool(relu(x))`` in the same pass, exactly as
    the two layers would (ReLU is non-decreasing, so it commutes with max):
    a window whose max is <= 0 gives 0 and argmax -1, which backward reads as
    "no gradient". This saves a full-size ReLU pass forward and backward,
    about 5% of a training epoch (``docs/performance.md``, "Max-pooling").
    The network does not use it yet: it would need a layer option that keeps
    the layers one idea each.
    """
    x = np.ascontiguousarray(x)
    if x.ndim != 4:
        raise ValueError(f"maxpool2d wants x of shape (N, C, H, W), got {x.shape}")
    kH, kW = pair(kernel_size, "kernel_size", "maxpool2d")
    sH, sW = pair(kernel_size if stride is None else stride, "stride", "maxpool2d")
    N, C, H, W = x.shape
    if H < kH or W < kW:
        raise ValueError(f"maxpool2d: window {kH}x{kW} is larger than the input {H}x{W}")
    HO, WO = pool_output_size(H, kH, sH), pool_output_size(W, kW, sW)
    y = np.empty((N, C, HO, WO), dtype=x.dtype)
    arg = np.empty((N, C, HO, WO), dtype=argmax_dtype((kH, kW)))
    if kH == kW == sH == sW == 2:
        _maxpool_forward_2x2(x, bool(relu), y, arg)
    else:
        _maxpool_forward(x, kH, kW, sH, sW, bool(relu), y, arg)
    return y, arg


def maxpool2d_backward(grad_y, argmax, x_shape, kernel_size, stride=None):
    """Gradient of maxpool2d_forward: ``grad_y (N, C, H', W'), argmax -> dx x_shape``.

    Each grad_y value goes to the input position that was its window's max;
    with overlapping windows the contributions add up; an argmax of -1 (from
    ``relu=True``) sends nothing. Returns a new array.
    """
    kH, kW = pair(kernel_size, "kernel_size", "maxpool2d")
    sH, sW = pair(kernel_size if stride is None else stride, "stride", "maxpool2d")
    N, C, H, W = x_shape
    out_shape = (N, C, pool_output_size(H, kH, sH), pool_output_size(W, kW, sW))
    grad_y = np.ascontiguousarray(grad_y)
    argmax = np.ascontiguousarray(argmax)
    if grad_y.shape != out_shape or argmax.shape != out_shape:
        raise ValueError(f"maxpool2d_backward: grad_y {grad_y.shape} and argmax {argmax.shape} must both be {out_shape}")
    if kH == kW == sH == sW == 2:
        dx = np.empty(x_shape, dtype=grad_y.dtype)
        _maxpool_backward_2x2(grad_y, argmax, dx)
    else:
        dx = np.zeros(x_shape, dtype=grad_y.dtype)
        _maxpool_backward(grad_y, argmax, kW, sH, sW, dx)
    return dx
