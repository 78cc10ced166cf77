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

``fit="crop"`` (``--fit crop``) resizes each image's largest centred square
instead of stretching the whole frame (:func:`.decode.decode_image`); the
cache key then holds ``"fit": "crop"`` so crops and stretches never share an
entry (a stretched entry's key is what it always was).

With face detection (:func:`load_face_crops`, ``--crop-faces``) each image is
the square crop around its face, cut from the full-resolution frame
(:func:`.decode.decode_face`). The entry then also holds each image's number
of faces and crop box, and its key holds the detector settings
(:meth:`.faces.DetectorSettings.key`): a second run loads the crops and does
not detect again; other settings make another entry.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from numpy_cnn.data.cache import cache_key, file_fingerprint, load_entry, save_entry
from numpy_cnn.data.decode import (DECODE_VERSION, FITS, REDUCING_GAP, RESAMPLE, UnreadableImage, decode_face,
                                   decode_image)
from numpy_cnn.errors import UserError
from numpy_cnn.data.faces import DetectorSettings, FaceDetector, require_cv2
from numpy_cnn.data.unreadable import unreadable_images_error

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
    fit: str = "stretch",
) -> np.ndarray:
    """Grayscale, resized pixels of ``paths``, decoded once and cached.

    Args:
        paths: image files, any format and mode Pillow reads (see :mod:`.decode`).
        image_size: output side S; every image is resized to S x S.
        cache_dir: folder for the cache (``None`` = no caching); also where the
            list of unreadable files goes when the error cannot name them all.
        workers: decoding processes for large lists.
        root: the dataset folder; errors name files relative to it.
        fit: ``"stretch"`` (the whole frame, squashed to a square) or ``"crop"``
            (its largest centred square).

    Returns:
        uint8 array of shape (N, S, S), in the order of ``paths``.

    Raises:
        UserError: after trying every file, one line for all that are missing,
            not images, truncated or corrupt (see :mod:`.unreadable`).
    """
    if fit not in FITS:   # before any decoding
        raise UserError(f"--fit must be one of {', '.join(FITS)}, got {fit!r}")
    return _load(paths, image_size, cache_dir, None, workers, root, fit)["x"]


def load_face_crops(
    paths: Sequence[Path | str],
    image_size: int,
    cache_dir: Path | str | None,
    settings: DetectorSettings,
    *,
    workers: int = 2,
    root: Path | str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`load_images`, each image cropped to its face first (see the module docstring).

    Returns:
        ``x`` (N, S, S) uint8 crops (the whole frame where no face was found),
        ``faces`` (N,) int64, the faces found in each frame (the largest was
        cropped), and ``boxes`` (N, 4) int64, each crop ``(left, top, right,
        bottom)`` in the frame's pixels; all in the order of ``paths``.

    Raises:
        UserError: OpenCV is missing (giving the install command), or files are
            unreadable, as :func:`load_images`.
    """
    found = _load(paths, image_size, cache_dir, settings, workers, root)
    return found["x"], found["faces"], found["boxes"]


def _load(paths: Sequence[Path | str], image_size: int, cache_dir: Path | str | None,
          faces: DetectorSettings | None, workers: int, root: Path | str | None,
          fit: str = "stretch") -> dict[str, np.ndarray]:
    """The arrays of both loaders, rows in the order of ``paths``: ``x``, and with ``faces``
    also ``faces`` and ``boxes``; from the cache, or decoded (and detected) and cached."""
    cache_dir = None if cache_dir is None else Path(cache_dir)
    absolute = [Path(p).absolute() for p in paths]
    unique = sorted(set(absolute))  # the cached array holds each file once, in sorted order
    row_of = {path: i for i, path in enumerate(unique)}
    try:
        fingerprint = file_fingerprint(unique)
    except FileNotFoundError:
        fingerprint = None  # no entry can be right; decoding finds every missing file, with the rest
    settings = {"size": image_size, "resample": int(RESAMPLE), "gap": REDUCING_GAP, "version": DECODE_VERSION}
    if faces is not None:   # only then: the key of an entry without crops stays what it always was
        settings["faces"] = faces.key()
    if fit != "stretch":    # likewise: a stretched entry keeps its key
        settings["fit"] = fit
    key = cache_key("images" if faces is None else "faces", {"settings": settings, "files": fingerprint})
    cached = None if fingerprint is None else load_entry(cache_dir, key)
    if not _whole_entry(cached, len(unique), image_size, faces is not None):
        if faces is not None:
            require_cv2()   # one line with the install command, before minutes of decoding
        cached, failures = _decode_all(unique, image_size, workers, faces, fit)
        if failures:
            base = None if root is None else Path(root).absolute()
            raise unreadable_images_error([(_name(unique[i], base), reason) for i, reason in failures],
                                          None if root is None else Path(root), cache_dir)
        if fingerprint is not None:  # else a file came back while decoding: it is read next time
            save_entry(cache_dir, key, **cached)
    rows = np.array([row_of[p] for p in absolute], dtype=np.intp)
    return {name: array[rows] for name, array in cached.items()}


def _whole_entry(cached: dict[str, np.ndarray] | None, n: int, size: int, faces: bool) -> bool:
    """True when a cache entry holds every array, of the right shape (an older or damaged one does not)."""
    if cached is None or "x" not in cached:
        return False
    x = cached["x"]
    if x.shape != (n, size, size) or x.dtype != np.uint8:
        return False
    return not faces or (cached.get("faces", np.empty(0)).shape == (n,)
                         and cached.get("boxes", np.empty(0)).shape == (n, 4))


def _name(path: Path, root: Path | None) -> str:
    """``path`` as the user knows it: relative to the dataset folder when inside it."""
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


def _decode_all(paths: list[Path], size: int, workers: int, faces: DetectorSettings | None, fit: str = "stretch"
                ) -> tuple[dict[str, np.ndarray], list[tuple[int, str]]]:
    """Decode every file; (the arrays of :func:`_load`, ``(index, reason)`` of each file that failed)."""
    arrays = {"x": np.empty((len(paths), size, size), np.uint8)}
    if faces is not None:
        arrays["faces"] = np.zeros(len(paths), np.int64)
        arrays["boxes"] = np.zeros((len(paths), 4), np.int64)
    decode = partial(_decode_or_reason, size=size, faces=faces, fit=fit)
    if workers > 1 and len(paths) >= _POOL_MIN_FILES:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(decode, paths, chunksize=64)
            return arrays, _fill_with_progress(arrays, results)
    return arrays, _fill_with_progress(arrays, map(decode, paths))


def _decode_or_reason(path: Path, size: int, faces: DetectorSettings | None = None, fit: str = "stretch"):
    """The image (with ``faces``: the crop, the number of faces and the crop box), or why it
    cannot be read: returned, not raised, so one bad file does not stop the pool and every
    file is tried."""
    try:
        if faces is None:
            return decode_image(path, size, fit)
        image, found = decode_face(path, size, _detector(faces))
        return image, len(found.faces), found.crop
    except UnreadableImage as exc:
        return exc.reason


def load_image(path: Path | str, image_size: int, crop_faces: DetectorSettings | None = None,
               fit: str = "stretch") -> tuple[np.ndarray, bool | None]:
    """One image file prepared as a run prepared its images (no cache): what ``predict`` and the
    study tools read.

    Returns:
        The (S, S) uint8 image (with ``crop_faces``, the square crop around its face,
        and ``fit`` does not apply; else stretched or centre-cropped as ``fit`` says),
        and whether a face was found (None without ``crop_faces``).

    Raises:
        UnreadableImage: the file cannot be read. UserError: OpenCV is missing.
    """
    if crop_faces is None:
        return decode_image(path, image_size, fit), None
    image, found = decode_face(path, image_size, _detector(crop_faces))
    return image, found.found


@lru_cache(maxsize=4)
def _detector(settings: DetectorSettings) -> FaceDetector:
    """One detector per settings and process: loading a cascade's XML costs more than a detection."""
    return FaceDetector(settings)


def _fill_with_progress(arrays: dict[str, np.ndarray], results) -> list[tuple[int, str]]:
    """Copy decoded images (and face counts and boxes) into ``arrays``, printing a line to
    stderr every few seconds.

    Returns ``(index, reason)`` for each result that is a reason instead of an image.
    """
    failures = []
    x = arrays["x"]
    start = last = time.monotonic()
    for i, image in enumerate(results):
        if isinstance(image, str):
            failures.append((i, image))
        elif isinstance(image, tuple):   # a face crop: (image, faces found, crop box)
            x[i], arrays["faces"][i], arrays["boxes"][i] = image
        else:
            x[i] = image
        now = time.monotonic()
        if now - last > _PROGRESS_SECONDS:
            bad = f", {len(failures)} unreadable so far" if failures else ""
            what = "finding faces" if "faces" in arrays else "decoding images"   # detection is the slow part
            print(f"{what}: {i + 1}/{len(x)} ({now - start:.0f} s){bad}", file=sys.stderr, flush=True)
            last = now
    return failures
