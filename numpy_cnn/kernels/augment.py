"""Flip + rotate in numba: the paper's augmentation, one pass per output pixel.

The readable version is :mod:`numpy_cnn.data.augment` (``method="reference"``):
NumPy builds the (N, H, W) source coordinates, four neighbour index arrays and
four weight arrays, then gathers with ``take_along_axis``; about a dozen
temporaries of the batch's size. Here each output pixel is computed where it
is written, so nothing but the output is allocated::

    for each image n (prange: images are independent), row i, column j:
        u, v   = j - (W-1)/2, i - (H-1)/2                  centred, y down
        col    = cos(t) u - sin(t) v + (W-1)/2              where (i, j) comes from
        row    = sin(t) u + cos(t) v + (H-1)/2
        r0, c0 = floor(row), floor(col);  fr, fc = row - r0, col - c0
        out    = (1-fr)(1-fc) x[r0, c0] + (1-fr) fc x[r0, c0+1]
               + fr (1-fc) x[r0+1, c0] + fr fc x[r0+1, c0+1]     (0 outside the image)

A flipped image reads column ``W-1-c`` instead of ``c`` (flip first, then rotate).

Same numbers as the NumPy version: all arithmetic is float32 in the same
order, cos and sin are computed in float64 and rounded once, and
``fastmath`` is off so nothing is fused into an FMA. The tests compare the two.

Measured on 540 48x48 images, one thread: ~10 ms, against ~20-35 ms for the
NumPy version. Most pixels take the interior path, which reads the four
neighbours directly; checking each neighbour through ``_pixel`` for every
pixel (and slicing ``x[n, c]`` per pixel) was 2.7x slower.
"""

import numpy as np
from numba import prange

from numpy_cnn.kernels._jit import jit

__all__ = ["flip_rotate"]


@jit(fastmath=())
def _pixel(x, n, c, r, s, flip):
    """Pixel (r, s) of the (optionally mirrored) image x[n, c], or 0 outside it."""
    H, W = x.shape[2], x.shape[3]
    if 0 <= r < H and 0 <= s < W:
        return x[n, c, r, W - 1 - s] if flip else x[n, c, r, s]
    return np.float32(0.0)


@jit(fastmath=(), parallel=True)
def _flip_rotate(x, flip, cos, sin, out):
    """x, out: (N, C, H, W) float32; flip: (N,) bool; cos, sin: (N,) float32."""
    N, C, H, W = x.shape
    one = np.float32(1.0)
    cu = np.float32((W - 1) / 2)
    cv = np.float32((H - 1) / 2)
    for n in prange(N):
        cs, sn, fl = cos[n], sin[n], flip[n]
        for i in range(H):
            v = np.float32(i) - cv
            for j in range(W):
                u = np.float32(j) - cu
                col = cs * u - sn * v + cu
                row = sn * u + cs * v + cv
                r0f, c0f = np.floor(row), np.floor(col)
                fr, fc = row - r0f, col - c0f
                r0, c0 = int(r0f), int(c0f)
                w00 = (one - fr) * (one - fc)
                w01 = (one - fr) * fc
                w10 = fr * (one - fc)
                w11 = fr * fc
                if 0 <= r0 and r0 + 1 < H and 0 <= c0 and c0 + 1 < W:
                    # All four neighbours inside (most pixels): plain reads.
                    a, b = (W - 1 - c0, W - 2 - c0) if fl else (c0, c0 + 1)
                    for c in range(C):
                        out[n, c, i, j] = (x[n, c, r0, a] * w00 + x[n, c, r0, b] * w01
                                           + x[n, c, r0 + 1, a] * w10 + x[n, c, r0 + 1, b] * w11)
                else:
                    for c in range(C):
                        out[n, c, i, j] = (_pixel(x, n, c, r0, c0, fl) * w00
                                           + _pixel(x, n, c, r0, c0 + 1, fl) * w01
                                           + _pixel(x, n, c, r0 + 1, c0, fl) * w10
                                           + _pixel(x, n, c, r0 + 1, c0 + 1, fl) * w11)


def flip_rotate(x, flip, degrees):
    """Mirror the images where ``flip`` is True, then rotate each by its angle.

    Args:
        x: (N, H, W) or (N, C, H, W) images (converted to float32).
        flip: (N,) bool, which images to mirror left-right.
        degrees: (N,) angles, counter-clockwise.

    Returns:
        A new float32 array shaped like ``x``.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, (h, w) = x.shape[0], x.shape[-2:]
    theta = np.deg2rad(np.asarray(degrees, np.float64))
    out = np.empty(x.shape, np.float32)
    _flip_rotate(x.reshape(n, -1, h, w), np.ascontiguousarray(flip, dtype=np.bool_),
                 np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32), out.reshape(n, -1, h, w))
    return out
