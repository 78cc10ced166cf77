"""Decode one image file of any mode into a small grayscale uint8 array.

This is the only place that turns files into pixels. Choices, each because
real datasets contain such files:

* The first frame of a multi-page TIFF or animated image is used.
* EXIF orientation is applied (phone JPEGs store portraits sideways).
* Transparent images (RGBA, LA, PA, palette with transparency) are composited
  on black, so transparent pixels read as 0 like the zero fill of augmentation
  rotation, whatever colour the file happens to store under them.
* Gray is ITU-R 601 luma (``L = 0.299 R + 0.587 G + 0.114 B``), exactly
  Pillow's ``convert("L")``; CMYK, YCbCr and 1-bit images go through RGB/L.
* 16-bit (``I;16*``) images are scaled by 255/65535, not clipped. 32-bit
  ``I`` and float ``F`` images are scaled by their value range: [0, 1] -> x255,
  up to 255 kept, up to 65535 -> x255/65535, anything else min-max stretched.
* With a face detector (:func:`decode_face`, ``--crop-faces``) the square
  crop around the face is cut from the full-resolution gray frame, then resized.
* Resizing to ``size x size`` ignores the aspect ratio (as torchvision's
  ``Resize((48, 48))``; ``fit="stretch"``, the default). ``fit="crop"`` first
  cuts the largest centred square (as ``CenterCrop(min(H, W))``), so a 143x181
  face is not squashed. Either way it uses Pillow's ``BILINEAR`` with ``reducing_gap=2``:
  Pillow widens the filter when shrinking, so it is antialiased, and the gap
  first box-reduces a 720x576 frame by an integer factor, which is faster
  and just as smooth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from numpy_cnn.errors import UserError
from numpy_cnn.data.faces import Detection

RESAMPLE = Image.BILINEAR
REDUCING_GAP = 2.0
# Bump when decoding changes, so caches built by older code are not reused.
DECODE_VERSION = 1

_HIGH_BIT_MODES = ("I", "F")  # I;16, I;16B, ... are matched by prefix "I;"
FITS = ("stretch", "crop")


NOT_FOUND = "file not found"


class UnreadableImage(UserError):
    """A file :func:`decode_image` cannot read.

    ``reason`` is short and never repeats the path (``truncated``, ``empty
    file``, ``file not found``), so a list of many files stays readable.
    """

    def __init__(self, path: Path | str, reason: str):
        self.path, self.reason = path, reason
        if reason == NOT_FOUND:
            super().__init__(f"{path}: {NOT_FOUND}; check the path")
        else:
            super().__init__(f"{path}: not a readable image ({reason}); remove or replace the file")

    def __reduce__(self):  # picklable, e.g. raised in a worker process
        return type(self), (self.path, self.reason)


def decode_image(path: Path | str, size: int = 48, fit: str = "stretch") -> np.ndarray:
    """Read ``path`` as grayscale and resize it.

    Args:
        fit: ``"stretch"`` resizes the whole frame to a square, ignoring its aspect
            ratio; ``"crop"`` resizes its largest centred square (:func:`center_square`).

    Returns:
        uint8 array of shape (size, size).

    Raises:
        UnreadableImage: the file is missing, not an image, truncated or corrupt.
    """
    if fit not in FITS:
        raise UserError(f"--fit must be one of {', '.join(FITS)}, got {fit!r}")
    gray = decode_gray(path)
    return resize_gray(gray.crop(center_square(*gray.size)) if fit == "crop" else gray, size)


def center_square(width: int, height: int) -> tuple[int, int, int, int]:
    """The largest centred square of a width x height frame, as a ``(left, top, right, bottom)`` box.

    Side ``min(width, height)``: a 143x181 face keeps rows 19..161, 19 cut above
    and 19 below. An odd leftover pixel always goes to the right or bottom
    (torchvision's ``CenterCrop`` rounds half to even, so it sometimes puts it first).
    """
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def decode_face(path: Path | str, size: int, detector) -> tuple[np.ndarray, Detection]:
    """Read ``path`` as grayscale, find the face on the full-resolution frame, and resize its crop.

    Detecting before the resize matters: a face of 60 pixels in a 720x576
    frame is 4 pixels wide at 48x48, too small for any detector (or network).

    Args:
        detector: a :class:`.faces.FaceDetector`.

    Returns:
        The (size, size) uint8 crop (the whole frame when no face was found)
        and the :class:`.faces.Detection`.
    """
    gray = decode_gray(path)
    detection = detector.find(_as_uint8(gray))
    return resize_gray(gray.crop(detection.crop), size), detection


def decode_gray(path: Path | str) -> Image.Image:
    """Read ``path`` as one full-resolution gray channel: a Pillow image of mode ``L``, or ``F``
    (float values in [0, 255]) for high-bit-depth files, whose resize keeps the extra precision.

    Raises:
        UnreadableImage: the file is missing, not an image, truncated or corrupt.
    """
    try:
        with Image.open(path) as image:
            image.seek(0)
            image.load()  # decode now, so a truncated file fails here, inside the try
            return _to_gray(ImageOps.exif_transpose(image))
    except FileNotFoundError:
        raise UnreadableImage(path, NOT_FOUND) from None
    except UnidentifiedImageError:  # its own message repeats the whole path
        reason = "empty file" if Path(path).stat().st_size == 0 else "not an image format Pillow reads"
        raise UnreadableImage(path, reason) from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(path, _short_reason(exc)) from None


def resize_gray(gray: Image.Image, size: int) -> np.ndarray:
    """A :func:`decode_gray` image (or a crop of it) as a (size, size) uint8 array."""
    small = np.asarray(gray.resize((size, size), RESAMPLE, reducing_gap=REDUCING_GAP))
    return small if gray.mode == "L" else np.clip(np.rint(small), 0, 255).astype(np.uint8)


def _as_uint8(gray: Image.Image) -> np.ndarray:
    """The full-resolution pixels as (H, W) uint8, what the face detector reads."""
    pixels = np.asarray(gray)
    return pixels if gray.mode == "L" else np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _short_reason(exc: BaseException) -> str:
    """A few words for ``exc``: Pillow says "truncated" five ways, and OS errors repeat the path."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "truncated" in text.casefold():
        return "truncated"
    if isinstance(exc, OSError) and exc.strerror:  # "[Errno 13] Permission denied: '/long/path'"
        return exc.strerror.lower()
    return text[:80]


def _to_gray(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in _HIGH_BIT_MODES or mode.startswith("I;"):
        return Image.fromarray(_scale_to_8bit_range(np.asarray(image), mode))   # mode F

    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    if image.mode not in ("L", "RGB", "1"):
        image = image.convert("RGB")  # CMYK, YCbCr, P, LAB...: via RGB to L
    return image.convert("L")


def _scale_to_8bit_range(values: np.ndarray, mode: str) -> np.ndarray:
    """High-bit-depth pixels as float32 in [0, 255], by the rules in the module docstring."""
    values = values.astype(np.float32)
    if mode.startswith("I;16"):
        return values * np.float32(255 / 65535)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if lo >= 0 and hi <= 1 and mode == "F":
        return values * np.float32(255)
    if lo >= 0 and hi <= 255:
        return values
    if lo >= 0 and hi <= 65535:
        return values * np.float32(255 / 65535)
    return (values - lo) * np.float32(255 / (hi - lo))
