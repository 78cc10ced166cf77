"""Decode a list of image files into one (N, S, S) uint8 array, through the cache.

Every image is decoded once: the whole array is cached under a key made of
the set of files (absolute paths, mtimes, sizes) and the preprocessing
settings, so later epochs and later runs only load one file. The key ignores
the order of the list, so reading a split file back (same images, another
order) hits the cache too. Large sets are decoded by
a pool of worker processes with a progress line on stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import UserError
from .cache import cache_key, file_fingerprint, load_entry, save_entry
from .decode import DECODE_VERSION, REDUCING_GAP, RESAMPLE, decode_image

# Below this many files a process pool costs more than it saves.
_POOL_MIN_FILES = 200
_PROGRESS_SECONDS = 3.0


def load_images(
    paths: Sequence[Path | str],
    image_size: int = 48,
    cache_dir: Path | str | None = None,
    *,
    workers: int = 2,
) -> np.ndarray:
    """Grayscale, resized pixels of ``paths``, decoded once and cached.

    Args:
        paths: image files, any format and mode Pillow reads (see :mod:`.decode`).
        image_size: output side S; every image is resized to S x S.
        cache_dir: folder for the cache (``None`` = no caching).
        workers: decoding processes for large lists.

    Returns:
        uint8 array of shape (N, S, S), in the order of ``paths``.

    Raises:
        UserError: a file is missing, not an image, truncated or corrupt.
    """
    cache_dir = None if cache_dir is None else Path(cache_dir)
    absolute = [Path(p).absolute() for p in paths]
    unique = sorted(set(absolute))  # the cached array holds each file once, in sorted order
    row_of = {path: i for i, path in enumerate(unique)}
    try:
        fingerprint = file_fingerprint(unique)
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename}: file not found; check the path or the split file") from None
    settings = {"size": image_size, "resample": int(RESAMPLE), "gap": REDUCING_GAP, "version": DECODE_VERSION}
    key = cache_key("images", {"settings": settings, "files": fingerprint})
    cached = load_entry(cache_dir, key)
    x = None if cached is None else cached.get("x")
    if x is None or x.shape != (len(unique), image_size, image_size) or x.dtype != np.uint8:
        x = _decode_all(unique, image_size, workers)
        save_entry(cache_dir, key, x=x)
    return x[np.array([row_of[p] for p in absolute], dtype=np.intp)]


def _decode_all(paths: list[Path], size: int, workers: int) -> np.ndarray:
    x = np.empty((len(paths), size, size), np.uint8)
    decode = partial(decode_image, size=size)
    if workers > 1 and len(paths) >= _POOL_MIN_FILES:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(decode, paths, chunksize=64)
            _fill_with_progress(x, results)
    else:
        _fill_with_progress(x, map(decode, paths))
    return x


def _fill_with_progress(x: np.ndarray, results) -> None:
    """Copy decoded images into ``x``, printing a line to stderr every few seconds."""
    start = last = time.monotonic()
    for i, image in enumerate(results):
        x[i] = image
        now = time.monotonic()
        if now - last > _PROGRESS_SECONDS:
            print(f"decoding images: {i + 1}/{len(x)} ({now - start:.0f} s)", file=sys.stderr, flush=True)
            last = now
