"""Decode a list of image files into one (N, S, S) uint8 array, through the cache.

Every image is decoded once: the whole array is cached under a key made of
the set of files (absolute paths, mtimes, sizes) and the preprocessing
settings, so later epochs and later runs only load one file. The key ignores
the order of the list, so reading a split file back (same images, another
order) hits the cache too. Large sets are decoded by
a pool of worker processes with a progress line on stderr.

Every file is tried before anything is raised: missing, truncated and other
unreadable files are reported together in one error (see :mod:`.unreadable`),
whether decoded in this process or in the pool. The cache entry stands for
the whole set, so nothing is cached until every file decodes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from .cache import cache_key, file_fingerprint, load_entry, save_entry
from .decode import DECODE_VERSION, REDUCING_GAP, RESAMPLE, UnreadableImage, decode_image
from .unreadable import unreadable_images_error

# Below this many files a process pool costs more than it saves.
_POOL_MIN_FILES = 200
_PROGRESS_SECONDS = 3.0


def load_images(
    paths: Sequence[Path | str],
    image_size: int = 48,
    cache_dir: Path | str | None = None,
    *,
    workers: int = 2,
    root: Path | str | None = None,
) -> np.ndarray:
    """Grayscale, resized pixels of ``paths``, decoded once and cached.

    Args:
        paths: image files, any format and mode Pillow reads (see :mod:`.decode`).
        image_size: output side S; every image is resized to S x S.
        cache_dir: folder for the cache (``None`` = no caching); also where the
            list of unreadable files goes when the error cannot name them all.
        workers: decoding processes for large lists.
        root: the dataset folder; errors name files relative to it.

    Returns:
        uint8 array of shape (N, S, S), in the order of ``paths``.

    Raises:
        UserError: after trying every file, one line for all that are missing,
            not images, truncated or corrupt (see :mod:`.unreadable`).
    """
    cache_dir = None if cache_dir is None else Path(cache_dir)
    absolute = [Path(p).absolute() for p in paths]
    unique = sorted(set(absolute))  # the cached array holds each file once, in sorted order
    row_of = {path: i for i, path in enumerate(unique)}
    try:
        fingerprint = file_fingerprint(unique)
    except FileNotFoundError:
        fingerprint = None  # no entry can be right; decoding finds every missing file, with the rest
    settings = {"size": image_size, "resample": int(RESAMPLE), "gap": REDUCING_GAP, "version": DECODE_VERSION}
    key = cache_key("images", {"settings": settings, "files": fingerprint})
    cached = None if fingerprint is None else load_entry(cache_dir, key)
    x = None if cached is None else cached.get("x")
    if x is None or x.shape != (len(unique), image_size, image_size) or x.dtype != np.uint8:
        x, failures = _decode_all(unique, image_size, workers)
        if failures:
            base = None if root is None else Path(root).absolute()
            raise unreadable_images_error([(_name(unique[i], base), reason) for i, reason in failures],
                                          None if root is None else Path(root), cache_dir)
        if fingerprint is not None:  # else a file came back while decoding: it is read next time
            save_entry(cache_dir, key, x=x)
    return x[np.array([row_of[p] for p in absolute], dtype=np.intp)]


def _name(path: Path, root: Path | None) -> str:
    """``path`` as the user knows it: relative to the dataset folder when inside it."""
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


def _decode_all(paths: list[Path], size: int, workers: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode every file; (the (N, S, S) images, ``(index, reason)`` of each file that failed)."""
    x = np.empty((len(paths), size, size), np.uint8)
    decode = partial(_decode_or_reason, size=size)
    if workers > 1 and len(paths) >= _POOL_MIN_FILES:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(decode, paths, chunksize=64)
            return x, _fill_with_progress(x, results)
    return x, _fill_with_progress(x, map(decode, paths))


def _decode_or_reason(path: Path, size: int) -> np.ndarray | str:
    """The image, or why it cannot be read: returned, not raised, so one bad file
    does not stop the pool and every file is tried."""
    try:
        return decode_image(path, size)
    except UnreadableImage as exc:
        return exc.reason


def _fill_with_progress(x: np.ndarray, results) -> list[tuple[int, str]]:
    """Copy decoded images into ``x``, printing a line to stderr every few seconds.

    Returns ``(index, reason)`` for each result that is a reason instead of an image.
    """
    failures = []
    start = last = time.monotonic()
    for i, image in enumerate(results):
        if isinstance(image, str):
            failures.append((i, image))
        else:
            x[i] = image
        now = time.monotonic()
        if now - last > _PROGRESS_SECONDS:
            bad = f", {len(failures)} unreadable so far" if failures else ""
            print(f"decoding images: {i + 1}/{len(x)} ({now - start:.0f} s){bad}", file=sys.stderr, flush=True)
            last = now
    return failures
