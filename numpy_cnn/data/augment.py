"""Training-time augmentation: random horizontal flip and rotation; optional shift, brightness and contrast.

Same semantics as torchvision's ``RandomHorizontalFlip(p=0.5)`` and
``RandomRotation(degrees)`` with bilinear interpolation and zero fill, but
vectorised over the batch: one set of NumPy index operations transforms all
N images, each with its own random angle. Randomness comes only from the
``numpy.random.Generator`` passed in.

Three more transforms are off by default (``shift=0, brightness=0,
contrast=0``); when off they draw nothing, so the Generator's sequence, and
every image, is exactly what it was without them. When on, they follow the
flip and the rotation, in this order:

* shift ``PX``: each image moves by whole pixels, ``dy`` rows down and ``dx``
  columns right, each drawn uniformly from {-PX, ..., PX}; the uncovered
  border is 0 (black). That is torchvision's ``RandomCrop(size, padding=PX)``
  (zero padding, then a crop at offset ``(PX - dy, PX - dx)``).
* brightness ``B``: ``x = clip(b x, 0, 1)`` with b uniform in [max(0, 1-B), 1+B].
* contrast ``C``: ``x = clip(c x + (1 - c) mean(x), 0, 1)`` with c uniform in
  [max(0, 1-C), 1+C] and ``mean(x)`` the image's mean grey (after brightness).

The last two are torchvision's ``ColorJitter(brightness=B, contrast=C)`` on a
grey image (``adjust_brightness``, ``adjust_contrast``), except that
ColorJitter applies them in a random order and here brightness always comes
first. For n images drawn together (:func:`augment` draws all of its batch at
once, training a chunk of 64 at a time) the draws are: n flips, n angles, then
the shifts (``(n, 2)``: rows, columns), n brightness factors, n contrast
factors, each only when its transform is on (:func:`draw_augmentation`).

Apply it to the [0, 1] images *before* mean subtraction, so the zero fill is
black, as in the torchvision pipeline (rotate the picture, then normalise).

This file is the readable version (``augment(..., method="reference")``).
Training runs ``method="numba"`` (the default): the same random draws and
the same float32 arithmetic in one numba pass
(:mod:`numpy_cnn.kernels.augment`), about 3x faster; the tests prove the
outputs equal.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from numpy_cnn.errors import UserError
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
            method: str = "numba", *, shift: int = 0, brightness: float = 0.0, contrast: float = 0.0) -> np.ndarray:
    """The paper's training augmentation: random horizontal flip, then random rotation (then,
    when asked, a random shift and brightness and contrast jitter; see the module docstring).

    Args:
        x: (N, H, W) or (N, C, H, W) images in [0, 1].
        rng: the only source of randomness: N flip draws, then N angles (then the others').
        method: ``"reference"`` (the NumPy functions above) or ``"numba"``
            (the same draws and numbers, one fused pass).
        shift: largest shift in pixels (0: none). brightness, contrast: B and C (0: none).

    Returns:
        A new float32 array shaped like ``x``.
    """
    if method not in METHODS:
        raise ValueError(f"augment: method must be one of {METHODS}, got {method!r}")
    if not (shift or brightness or contrast):   # the paper's: exactly as it always ran
        return flip_rotate(x, *draw_flips_and_angles(len(x), rng, max_degrees, flip_p), method)
    draws = draw_augmentation(len(x), rng, max_degrees=max_degrees, flip_p=flip_p, shift=shift,
                              brightness=brightness, contrast=contrast)
    return apply_augmentation(x, draws, method)


# -- shift, brightness and contrast ----------------------------------------------


def translate(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Move each image by whole pixels, zero fill: (N, [C,] H, W) -> float32, same shape.

    ``shift`` (N, 2) int: image n moves ``shift[n, 0]`` rows down and ``shift[n, 1]``
    columns right, so ``out[n, ..., i, j] = x[n, ..., i - dy, j - dx]`` (0 outside).
    Done as pad-and-crop: pad by the largest shift, then cut each image's window.
    """
    x = np.asarray(x, np.float32)
    h, w = x.shape[-2:]
    pad = int(np.abs(shift).max(initial=0))
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)])
    out = np.empty_like(x)
    for n, (dy, dx) in enumerate(np.asarray(shift, np.int64)):
        out[n] = padded[n, ..., pad - dy:pad - dy + h, pad - dx:pad - dx + w]
    return out


def adjust_brightness(x: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``clip(b x, 0, 1)`` per image, b = ``factor[n]`` (torchvision's ``adjust_brightness``); float32."""
    b = np.asarray(factor, np.float64).astype(np.float32).reshape((-1,) + (1,) * (x.ndim - 1))
    return np.clip(np.asarray(x, np.float32) * b, 0, 1)


def adjust_contrast(x: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``clip(c x + (1 - c) m, 0, 1)`` per image, c = ``factor[n]``, m its mean grey (torchvision's
    ``adjust_contrast`` on a grey image; with C channels, copies of one grey, the mean over all of them).

    The mean is summed in float64 and rounded to float32 once; c and 1 - c are rounded once each.
    """
    x = np.asarray(x, np.float32)
    shape = (-1,) + (1,) * (x.ndim - 1)
    c = np.asarray(factor, np.float64)
    mean = x.reshape(len(x), -1).mean(axis=1, dtype=np.float64).astype(np.float32).reshape(shape)
    return np.clip(c.astype(np.float32).reshape(shape) * x + (1 - c).astype(np.float32).reshape(shape) * mean, 0, 1)


@dataclass(frozen=True)
class Draws:
    """The random draws of one augmentation of N images; ``None`` where a transform is off.

    Attributes:
        flip: (N,) bool, mirror the image.  degrees: (N,) float64, its rotation.
        shift: (N, 2) int64, rows down and columns right.
        brightness, contrast: (N,) float64 factors.
    """

    flip: np.ndarray | None = None
    degrees: np.ndarray | None = None
    shift: np.ndarray | None = None
    brightness: np.ndarray | None = None
    contrast: np.ndarray | None = None

    def __getitem__(self, index: slice) -> Draws:
        """The draws of images ``index`` (a slice)."""
        return Draws(**{f.name: None if (a := getattr(self, f.name)) is None else a[index] for f in fields(self)})

    @staticmethod
    def concatenate(parts: list[Draws]) -> Draws:
        """The draws of consecutive chunks as one (every part has the same transforms on)."""
        if not parts:
            return Draws()
        return Draws(**{f.name: None if getattr(parts[0], f.name) is None
                        else np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Draws)})


def draw_augmentation(n: int, rng: np.random.Generator, *, flip_rotate: bool = True, max_degrees: float = 10.0,
                      flip_p: float = 0.5, shift: int = 0, brightness: float = 0.0, contrast: float = 0.0) -> Draws:
    """All random draws of :func:`augment` for n images, in the order of the module docstring.

    ``flip_rotate=False`` leaves out the flips and angles; a transform at 0 draws nothing,
    so with the defaults this is :func:`draw_flips_and_angles`, draw for draw.
    """
    if shift < 0 or brightness < 0 or contrast < 0:
        raise UserError(f"--shift, --brightness and --contrast must be >= 0, got {shift}, {brightness}, {contrast}")
    flip, degrees = draw_flips_and_angles(n, rng, max_degrees, flip_p) if flip_rotate else (None, None)
    return Draws(
        flip, degrees,
        rng.integers(-shift, shift + 1, size=(n, 2)) if shift else None,
        rng.uniform(max(0.0, 1 - brightness), 1 + brightness, n) if brightness else None,
        rng.uniform(max(0.0, 1 - contrast), 1 + contrast, n) if contrast else None)


def apply_augmentation(x: np.ndarray, draws: Draws, method: str = "numba") -> np.ndarray:
    """Transform (N, [C,] H, W) images by their draws: flip, rotate, shift, brightness, contrast; float32.

    Draws of flips and angles alone run :func:`flip_rotate` (today's training path); with a
    shift or jitter, ``"numba"`` runs all five in one pass per output pixel
    (:func:`numpy_cnn.kernels.augment.augment_images`), ``"reference"`` the NumPy functions in turn.
    """
    if method not in METHODS:
        raise ValueError(f"augment: method must be one of {METHODS}, got {method!r}")
    if draws.shift is None and draws.brightness is None and draws.contrast is None:
        if draws.flip is None and draws.degrees is None:
            return np.array(x, dtype=np.float32)
        return flip_rotate(x, _or_no_flips(draws.flip, len(x)), _or_zero_angles(draws.degrees, len(x)), method)
    if method == "numba":
        return kernels().augment_images(x, draws.flip, draws.degrees, draws.shift, draws.brightness, draws.contrast)
    x = np.array(x, dtype=np.float32)   # copy: the caller's array is never modified
    if draws.flip is not None:
        x[draws.flip] = x[draws.flip][..., ::-1]
    if draws.degrees is not None:
        x = rotate(x, draws.degrees)
    if draws.shift is not None:
        x = translate(x, draws.shift)
    if draws.brightness is not None:
        x = adjust_brightness(x, draws.brightness)
    if draws.contrast is not None:
        x = adjust_contrast(x, draws.contrast)
    return x


def _or_no_flips(flip: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n, bool) if flip is None else flip


def _or_zero_angles(degrees: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n) if degrees is None else degrees
