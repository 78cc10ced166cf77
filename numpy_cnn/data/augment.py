"""Training-time augmentation: random horizontal flip and random rotation.

Same semantics as torchvision's ``RandomHorizontalFlip(p=0.5)`` and
``RandomRotation(degrees)`` with bilinear interpolation and zero fill, but
vectorised over the batch: one set of NumPy index operations transforms all
N images, each with its own random angle. Randomness comes only from the
``numpy.random.Generator`` passed in.

Apply it to the [0, 1] images *before* mean subtraction, so the zero fill is
black, as in the torchvision pipeline (rotate the picture, then normalise).

This file is the readable version (``augment(..., method="reference")``).
Training runs ``method="numba"`` (the default): the same random draws and
the same float32 arithmetic in one numba pass
(:mod:`numpy_cnn.kernels.augment`), about 3x faster; the tests prove the
outputs equal.
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.nn._fast import kernels


def hflip(x: np.ndarray) -> np.ndarray:
    """Mirror left-right: (..., H, W) -> (..., H, W), as a new array."""
    return x[..., ::-1].copy()


def rotate(x: np.ndarray, degrees: np.ndarray | float) -> np.ndarray:
    """Rotate each image counter-clockwise about its centre, bilinear, zero fill outside.

    Args:
        x: (N, H, W) or (N, C, H, W) images; all channels of an image turn together.
        degrees: (N,) angles, or one angle for all images.

    Returns:
        float32 array shaped like ``x``.

    Each output pixel (row i, column j) samples the input at the point that the
    rotation carries onto it. With (u, v) = (j, i) minus the centre
    ((W - 1) / 2, (H - 1) / 2), and y pointing down,

        u_src = cos(t) u - sin(t) v,    v_src = sin(t) u + cos(t) v,

    and bilinear interpolation blends the 4 pixels around (u_src, v_src).
    """
    x = np.asarray(x, dtype=np.float32)
    n, (h, w) = x.shape[0], x.shape[-2:]
    images = x.reshape(n, -1, h, w)  # (N, C, H, W), C = 1 for a 3-D batch
    theta = np.deg2rad(np.broadcast_to(np.asarray(degrees, np.float64), (n,)))
    cos = np.cos(theta).astype(np.float32)[:, None, None]
    sin = np.sin(theta).astype(np.float32)[:, None, None]
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = u - (w - 1) / 2, v - (h - 1) / 2
    col = cos * u - sin * v + (w - 1) / 2  # (N, H, W) source coordinates
    row = sin * u + cos * v + (h - 1) / 2

    # A 1-pixel zero border lets out-of-range neighbours be clipped onto zeros.
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1))).reshape(n, -1, (h + 2) * (w + 2))
    r0, c0 = np.floor(row), np.floor(col)
    fr, fc = row - r0, col - c0
    top, bottom = (np.clip(r0 + d, -1, h).astype(np.intp) + 1 for d in (0, 1))  # rows of the padded image
    left, right = (np.clip(c0 + d, -1, w).astype(np.intp) + 1 for d in (0, 1))
    out = np.zeros((n, padded.shape[1], h * w), np.float32)
    for rows, cols, weight in ((top, left, (1 - fr) * (1 - fc)), (top, right, (1 - fr) * fc),
                               (bottom, left, fr * (1 - fc)), (bottom, right, fr * fc)):
        index = (rows * (w + 2) + cols).reshape(n, 1, h * w)
        out += np.take_along_axis(padded, index, axis=2) * weight.reshape(n, 1, h * w)
    return out.reshape(x.shape)


def random_horizontal_flip(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image of (N, ..., W) with probability ``p``; returns a new float32 array."""
    x = np.array(x, dtype=np.float32)  # copy: the caller's array is never modified
    flip = rng.random(len(x)) < p
    x[flip] = x[flip][..., ::-1]
    return x


def random_rotation(x: np.ndarray, rng: np.random.Generator, degrees: float = 10.0) -> np.ndarray:
    """Rotate each image by its own angle drawn uniformly from [-degrees, degrees]."""
    return rotate(x, rng.uniform(-degrees, degrees, len(x)))


METHODS = ("reference", "numba")


def draw_flips_and_angles(n: int, rng: np.random.Generator, max_degrees: float = 10.0, flip_p: float = 0.5
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The random draws of :func:`augment` for n images: (flip (n,) bool, degrees (n,) float64).

    n flip draws, then n angles, in that order (as :func:`random_horizontal_flip`
    then :func:`random_rotation` draw them), so drawing first and transforming
    later gives the same images and leaves the Generator in the same state.
    """
    flip = rng.random(n) < flip_p
    return flip, rng.uniform(-max_degrees, max_degrees, n)


def flip_rotate(x: np.ndarray, flip: np.ndarray, degrees: np.ndarray, method: str = "numba") -> np.ndarray:
    """Mirror the images where ``flip`` is True, then rotate each by its angle: (N, [C,] H, W) -> float32, same shape."""
    if method == "reference":
        x = np.array(x, dtype=np.float32)  # copy: the caller's array is never modified
        x[flip] = x[flip][..., ::-1]
        return rotate(x, degrees)
    if method != "numba":
        raise ValueError(f"augment: method must be one of {METHODS}, got {method!r}")
    return kernels().flip_rotate(x, flip, degrees)


def augment(x: np.ndarray, rng: np.random.Generator, max_degrees: float = 10.0, flip_p: float = 0.5,
            method: str = "numba") -> np.ndarray:
    """The paper's training augmentation: random horizontal flip, then random rotation.

    Args:
        x: (N, H, W) or (N, C, H, W) images in [0, 1].
        rng: the only source of randomness: N flip draws, then N angles.
        method: ``"reference"`` (the NumPy functions above) or ``"numba"``
            (the same draws and numbers, one fused pass).

    Returns:
        A new float32 array shaped like ``x``.
    """
    if method not in METHODS:
        raise ValueError(f"augment: method must be one of {METHODS}, got {method!r}")
    return flip_rotate(x, *draw_flips_and_angles(len(x), rng, max_degrees, flip_p), method)
