"""Flip + rotate in numba: the paper's augmentation, one pass per output pixel.

(:func:`augment_images`, at the end, adds the optional shift and brightness and
contrast jitter to the same pass; :func:`flip_rotate`, which training runs by
default, is left exactly as it was.)

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

__all__ = ["flip_rotate", "augment_images"]


@jit(fastmath=())
def _pixel(x, n, c, r, s, flip):
    """Pixel (r, s) of the (optionally mirrored) image x[n, c], or 0 outside it."""
    H, W = x.shape[2], x.shape[3]
    if 0 <= r < H and 0 <= s < W:
        return x[n, c, r, W - 1 - s] if flip else x[n, c, r, s]
    return np.float32(0.0)


@jit(fastmath=())
def _source(i, j, cs, sn, cu, cv):
    """Where output pixel (i, j) of an image rotated by (cos, sin) = (cs, sn) samples its input:
    the top-left neighbour (r0, c0) and the four bilinear weights w00, w01, w10, w11.

    Both kernels below call it, so the paper's flip_rotate and the full augmentation
    compute the very same float32 operations, in the same order (fastmath off: no FMA).
    """
    one = np.float32(1.0)
    v = np.float32(i) - cv
    u = np.float32(j) - cu
    col = cs * u - sn * v + cu
    row = sn * u + cs * v + cv
    r0f, c0f = np.floor(row), np.floor(col)
    fr, fc = row - r0f, col - c0f
    return (int(r0f), int(c0f), (one - fr) * (one - fc), (one - fr) * fc, fr * (one - fc), fr * fc)


@jit(fastmath=(), parallel=True)
def _flip_rotate(x, flip, cos, sin, out):
    """x, out: (N, C, H, W) float32; flip: (N,) bool; cos, sin: (N,) float32."""
    N, C, H, W = x.shape
    cu = np.float32((W - 1) / 2)
    cv = np.float32((H - 1) / 2)
    for n in prange(N):
        cs, sn, fl = cos[n], sin[n], flip[n]
        for i in range(H):
            for j in range(W):
                r0, c0, w00, w01, w10, w11 = _source(i, j, cs, sn, cu, cv)
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


# -- flip, rotate, shift, brightness, contrast: the whole augmentation in one pass --------------


@jit(fastmath=(), parallel=True)
def _augment(x, flip, cos, sin, rotate, dy, dx, bright, use_bright, contrast, keep, use_contrast, out):
    """x, out: (N, C, H, W) float32; flip: (N,) bool; cos, sin, bright, contrast, keep: (N,) float32
    (keep = 1 - contrast); dy, dx: (N,) int64; rotate, use_bright, use_contrast: bool."""
    N, C, H, W = x.shape
    one, zero = np.float32(1.0), np.float32(0.0)
    cu = np.float32((W - 1) / 2)
    cv = np.float32((H - 1) / 2)
    for n in prange(N):
        cs, sn, fl, b = cos[n], sin[n], flip[n], bright[n]
        total = 0.0                                   # the image's sum, for the contrast's mean grey
        for i in range(H):
            si = i - dy[n]                            # the shift: (i, j) shows pixel (si, sj) of the rotated image
            for j in range(W):
                sj = j - dx[n]
                if not (0 <= si < H and 0 <= sj < W):
                    for c in range(C):
                        out[n, c, i, j] = zero        # brightness keeps 0 at 0
                    continue
                r0 = c0 = a = bb = 0                  # (set on every path: numba types them once)
                w00 = w01 = w10 = w11 = zero
                inside = False
                if rotate:                            # flip_rotate's arithmetic, at pixel (si, sj)
                    r0, c0, w00, w01, w10, w11 = _source(si, sj, cs, sn, cu, cv)
                    inside = 0 <= r0 and r0 + 1 < H and 0 <= c0 and c0 + 1 < W
                    a, bb = (W - 1 - c0, W - 2 - c0) if fl else (c0, c0 + 1)
                for c in range(C):
                    if not rotate:
                        value = x[n, c, si, W - 1 - sj] if fl else x[n, c, si, sj]
                    elif inside:
                        value = (x[n, c, r0, a] * w00 + x[n, c, r0, bb] * w01
                                 + x[n, c, r0 + 1, a] * w10 + x[n, c, r0 + 1, bb] * w11)
                    else:
                        value = (_pixel(x, n, c, r0, c0, fl) * w00 + _pixel(x, n, c, r0, c0 + 1, fl) * w01
                                 + _pixel(x, n, c, r0 + 1, c0, fl) * w10 + _pixel(x, n, c, r0 + 1, c0 + 1, fl) * w11)
                    if use_bright:
                        value = min(max(value * b, zero), one)
                    out[n, c, i, j] = value
                    total += value
        if use_contrast:
            mean = np.float32(total / (C * H * W))
            ck, kk = contrast[n], keep[n]
            for c in range(C):
                for i in range(H):
                    for j in range(W):
                        out[n, c, i, j] = min(max(ck * out[n, c, i, j] + kk * mean, zero), one)


def augment_images(x, flip, degrees, shift, brightness, contrast):
    """Flip, rotate, shift, then brightness and contrast jitter, in one pass per output pixel.

    The readable version is :func:`numpy_cnn.data.augment.apply_augmentation` with
    ``method="reference"`` (its module docstring defines each transform). Each
    output pixel (i, j) is the rotated image's pixel (i - dy, j - dx), or 0 when
    that lies outside; brightness multiplies and clips it where it is written.
    Contrast needs the image's mean, so it is a second pass over each finished
    image. The float32 arithmetic is the reference's, in its order; the mean is
    summed in float64 (the reference's NumPy sum adds pairwise, so the two can
    differ by a rounding).

    Args:
        x: (N, H, W) or (N, C, H, W) images (converted to float32).
        flip: (N,) bool or None.
        degrees: (N,) or None (no rotation).
        shift: (N, 2) int (rows down, columns right) or None.
        brightness: (N,) factors or None.
        contrast: (N,) factors or None.

    Returns:
        A new float32 array shaped like ``x``.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, (h, w) = x.shape[0], x.shape[-2:]
    theta = np.deg2rad(np.zeros(n) if degrees is None else np.asarray(degrees, np.float64))
    shift = np.zeros((n, 2), np.int64) if shift is None else np.asarray(shift, np.int64)
    bright = np.ones(n) if brightness is None else np.asarray(brightness, np.float64)
    c = np.ones(n) if contrast is None else np.asarray(contrast, np.float64)
    out = np.empty(x.shape, np.float32)
    _augment(x.reshape(n, -1, h, w), np.zeros(n, np.bool_) if flip is None else np.ascontiguousarray(flip, np.bool_),
             np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32), degrees is not None,
             np.ascontiguousarray(shift[:, 0]), np.ascontiguousarray(shift[:, 1]),
             bright.astype(np.float32), brightness is not None,
             c.astype(np.float32), (1 - c).astype(np.float32), contrast is not None, out.reshape(n, -1, h, w))
    return out
