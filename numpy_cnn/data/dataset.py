"""One entry point for the trainer: any supported dataset -> train and test arrays.

:func:`load_dataset` recognises, in this order:

1. ``reuse_split=True``: ``train.txt`` / ``test.txt`` in ``split_dir`` (paper
   format, see :mod:`.splitfiles`) with paths relative to ``data``
   (for a CSV, entries name rows: ``fer2013.csv:<line>``).
2. a ``.csv`` file: the FER2013 CSV (see :mod:`.fer2013`).
3. a folder with ``train/`` and ``test/`` (or ``Train/`` and ``Val/``) folders.
4. a folder of class folders (SFEW layout).
5. a flat folder of JAFFE-named images.

``test_data`` (a folder of class folders or JAFFE images, or a CSV, used
whole) replaces any test set the data defines; the training part stays.
Being used whole, it may not be ``data`` itself, a folder holding
``train/`` and ``test/`` (its ``train/`` would be tested on), nor mostly
images that are also training images (fer2013.csv beside Kaggle's train.csv).
When there is no test set (no test folder, no Usage column, no
``test_data``), a seeded stratified split is made and, if ``split_dir`` is
given, written there as ``train.txt`` and ``test.txt`` so the run can be
repeated with ``reuse_split=True``. Split files are written only after
everything loaded, so an error never replaces a good pair.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .classes import CLASSES, class_index
from .fer2013 import read_fer2013_csv, row_names
from .images import load_images
from .sources import (Listing, has_subfolders, labelled_test_folder, list_class_folders, list_jaffe,
                      split_folders)
from .split import stratified_split
from .splitfiles import missing_images_error, read_split_file, write_split_file

TRAIN_SPLIT_FILE = "train.txt"
TEST_SPLIT_FILE = "test.txt"


@dataclass
class Dataset:
    """Decoded train and test images, ready for :func:`.normalize.to_network_input`.

    Attributes:
        x_train: (N_train, S, S) uint8 grayscale images.
        y_train: (N_train,) int64 labels, indices into :data:`CLASSES`.
        x_test: (N_test, S, S) uint8.
        y_test: (N_test,) int64.
        train_files: names of the training images in ``x_train`` order: paths
            relative to ``root``, or ``<file>.csv:<line>`` for CSV rows.
        test_files: the same for the test images (relative to ``test_data``
            when a separate test set was given).
        root: the data folder (for a CSV, the folder holding it).
        source: how the data was read: "class folders", "train/test folders",
            "jaffe", "split files" or "fer2013 csv".
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_files: list[str]
    test_files: list[str]
    root: Path
    source: str

    def class_counts(self) -> dict[str, tuple[int, int]]:
        """``{class name: (train count, test count)}`` for a summary line."""
        train = np.bincount(self.y_train, minlength=len(CLASSES))
        test = np.bincount(self.y_test, minlength=len(CLASSES))
        return {name: (int(a), int(b)) for name, a, b in zip(CLASSES, train, test)}


@dataclass
class _Part:
    """Decoded images with their labels and names: a whole source, or one side of a split."""

    x: np.ndarray
    y: np.ndarray
    files: list[str]

    def take(self, index: np.ndarray) -> _Part:
        return _Part(self.x[index], self.y[index], [self.files[i] for i in index])


def load_dataset(
    data: Path | str,
    *,
    test_data: Path | str | None = None,
    split_dir: Path | str | None = None,
    reuse_split: bool = False,
    seed: int = 0,
    test_fraction: float = 0.2,
    image_size: int = 48,
    cache_dir: Path | str | None = None,
) -> Dataset:
    """Load a dataset folder or FER2013 CSV as train and test arrays.

    Args:
        data: a dataset folder (any layout in the module docstring) or a FER2013 CSV.
        test_data: a separate folder or CSV used, whole, as the test set.
        split_dir: where a random split is written (``train.txt``, ``test.txt``)
            and, with ``reuse_split``, read from.
        reuse_split: read the split files in ``split_dir`` instead of splitting.
        seed: seed of the stratified split.
        test_fraction: share of each class put in the test set by a random split.
        image_size: side S of the stored S x S images.
        cache_dir: folder for decoded-image caches (``None`` = no caching).

    Returns:
        A :class:`Dataset`.

    Raises:
        UserError: for any problem with the data, naming the file or line.
    """
    data = Path(data)
    cache = None if cache_dir is None else Path(cache_dir)
    if not data.exists():
        raise UserError(f"{data}: not found; pass a dataset folder or a FER2013 CSV")
    for folder, what in ((split_dir, "split folder (it holds train.txt and test.txt)"), (cache, "cache folder")):
        if folder is not None and Path(folder).is_file():  # checked now, not after minutes of decoding
            raise UserError(f"{folder}: is a file, but it must be the {what}; pass a folder")
    if test_data is not None:  # checked now, not after decoding the training images
        test_data = Path(test_data)
        if not test_data.exists():
            raise UserError(f"{test_data}: test data not found; pass a folder or a FER2013 CSV")
        if test_data.resolve() == data.resolve():
            raise UserError(f"{test_data}: is the training data itself; pass a separate test set, "
                            "or none to split one off at random")
    is_csv = data.is_file()
    if is_csv and data.suffix.casefold() != ".csv":
        raise UserError(f"{data}: a file must be a FER2013 .csv; otherwise pass the dataset folder")
    root = data.parent if is_csv else data

    if reuse_split:
        if split_dir is None:
            raise UserError("reusing a split needs the folder holding train.txt and test.txt")
        train, test = _read_split(data, Path(split_dir), image_size, cache)
        return _dataset(train, test, root, "split files")

    if is_csv:
        source = "fer2013 csv"
        rows = read_fer2013_csv(data, image_size, cache)
        whole = _Part(rows.x, rows.y, row_names(data, rows))
        if (rows.usage >= 0).all():  # a Usage column
            train, test = whole.take(np.flatnonzero(rows.usage == 0)), whole.take(np.flatnonzero(rows.usage == 1))
            if not len(train.y):
                raise UserError(f"{data}: no Training rows in the Usage column; fix it, or delete the column "
                                "to split the rows at random")
            if not len(test.y) and test_data is None:
                raise UserError(f"{data}: no PublicTest or PrivateTest rows to test on; give a separate "
                                "test set, or delete the Usage column to split the rows at random")
        else:
            train, test = whole, None
    elif (folders := split_folders(data)) is not None:
        source = "train/test folders"
        train_dir, test_dir = folders
        train_list = list_class_folders(train_dir, root)
        if not len(train_list):
            raise UserError(f"{train_dir}: no images in class folders; put them in "
                            f"{train_dir.name}/<Class>/ ({', '.join(CLASSES)})")
        if test_dir is None:
            train, test = _decode(train_list, root, image_size, cache), None
        else:
            test_list = list_class_folders(test_dir, root)
            if not len(test_list) and test_data is None:
                raise UserError(f"{test_dir}: its class folders hold no images; add test images, or move "
                                f"the folder out to split {train_dir.name}/ at random")
            train, test = _decode_pair(train_list, test_list, root, image_size, cache)
    elif has_subfolders(data):
        source = "class folders"
        train, test = _decode(list_class_folders(data), root, image_size, cache), None
    else:
        source = "jaffe"
        train, test = _decode(list_jaffe(data), root, image_size, cache), None

    if not len(train.y):
        raise UserError(
            f"{data}: no images found; expected class folders ({', '.join(CLASSES)}), "
            "train/ and test/ folders, JAFFE-named images or a FER2013 CSV" + _no_images_hints(data, "--data")
        )
    if test_data is not None:  # replaces any test set the data itself defines
        test = _load_whole(test_data, image_size, cache)
        _check_not_training_images(test, train, test_data)
    elif test is None:
        train_idx, test_idx = stratified_split(train.y, test_fraction, np.random.default_rng(seed))
        train, test = train.take(train_idx), train.take(test_idx)
        if split_dir is not None:
            write_split_file(Path(split_dir) / TRAIN_SPLIT_FILE, Listing(train.files, train.y))
            write_split_file(Path(split_dir) / TEST_SPLIT_FILE, Listing(test.files, test.y))
    return _dataset(train, test, root, source)


def _dataset(train: _Part, test: _Part, root: Path, source: str) -> Dataset:
    if not len(test.y):
        raise UserError(f"{root}: the test set is empty; add test images or let a random split make one")
    return Dataset(train.x, train.y, test.x, test.y, train.files, test.files, root, source)


def _decode(listing: Listing, root: Path, image_size: int, cache: Path | None) -> _Part:
    x = load_images([root / f for f in listing.files], image_size, cache, root=root)
    return _Part(x, listing.labels, listing.files)


def _decode_pair(train: Listing, test: Listing, root: Path, image_size: int,
                 cache: Path | None) -> tuple[_Part, _Part]:
    """Decode both lists in one call: one cache entry for the whole dataset, whichever way it is split."""
    both = _decode(Listing(train.files + test.files, np.concatenate([train.labels, test.labels])),
                   root, image_size, cache)
    return both.take(np.arange(len(train))), both.take(np.arange(len(train), len(both.y)))


def _load_whole(path: Path, image_size: int, cache: Path | None) -> _Part:
    """Every image of a folder (class folders or JAFFE) or CSV, as one part."""
    if path.is_file():
        if path.suffix.casefold() != ".csv":
            raise UserError(f"{path}: a test-data file must be a FER2013 .csv; otherwise pass a folder")
        rows = read_fer2013_csv(path, image_size, cache)
        return _Part(rows.x, rows.y, row_names(path, rows))
    if (inner := labelled_test_folder(path)) is not None:  # used whole, a train/ beside it would be tested on
        raise UserError(f"{path}: holds {inner.name}/ rather than class folders; pass {inner} as the test data")
    listing = list_class_folders(path, flag="--test-data") if has_subfolders(path) else list_jaffe(path)
    if not len(listing):
        raise UserError(f"{path}: no test images found; expected class folders, JAFFE-named images "
                        "or a FER2013 CSV" + _no_images_hints(path, "--test-data"))
    return _decode(listing, path, image_size, cache)


def _no_images_hints(folder: Path, flag: str) -> str:
    """What a folder without images was probably meant to be, for the option ``flag`` that named it."""
    # The FER2013 download unpacks to fer2013/fer2013.csv: the folder is what people pass.
    csv = next((p for p in sorted(folder.iterdir()) if p.suffix.casefold() == ".csv"), None)
    return ((f"; for the CSV in it, pass {flag} {csv}" if csv else "")
            + (f"; {folder.name} looks like one class: pass the folder holding all of them, {folder.parent}"
               if class_index(folder.name) is not None else ""))


def _check_not_training_images(test: _Part, train: _Part, test_data: Path) -> None:
    """Stop when most test images are training images, e.g. ``--test-data fer2013.csv`` next to
    Kaggle's train.csv: used whole, the CSV's Training rows would be tested on. A few equal
    images are normal (FER2013 has duplicates), so only a majority counts."""
    trained = {hashlib.sha1(image.tobytes()).digest() for image in train.x}
    shared = sum(hashlib.sha1(image.tobytes()).digest() in trained for image in test.x)
    if 2 * shared > len(test.y):
        raise UserError(f"{test_data}: {shared} of its {len(test.y)} images are also training images (test data "
                        "is used whole, a CSV's Training rows too); pass test images the network is not trained on")


def _read_split(data: Path, split_dir: Path, image_size: int, cache: Path | None) -> tuple[_Part, _Part]:
    """The two split files of ``split_dir``, decoded; CSV rows are named ``<file>.csv:<line>``."""
    if data.is_file():
        rows = read_fer2013_csv(data, image_size, cache)
        row_of = {name: i for i, name in enumerate(row_names(data, rows))}
        parts = []
        for name in (TRAIN_SPLIT_FILE, TEST_SPLIT_FILE):
            listing = read_split_file(split_dir / name, data.parent, known=row_of.keys())
            index = np.array([row_of[f] for f in listing.files], dtype=np.int64)
            parts.append(_Part(rows.x[index], listing.labels, listing.files))
        _check_disjoint(parts[0].files, parts[1].files, split_dir, str)
        return parts[0], parts[1]
    missing: list[str] = []  # images deleted since: of both files, in one error
    train = read_split_file(split_dir / TRAIN_SPLIT_FILE, data, missing=missing)
    test = read_split_file(split_dir / TEST_SPLIT_FILE, data, missing=missing)
    if missing:
        raise missing_images_error(split_dir, data, missing)
    _check_disjoint(train.files, test.files, split_dir, lambda f: (data / f).resolve())
    return _decode_pair(train, test, data, image_size, cache)


def _check_disjoint(train: list[str], test: list[str], split_dir: Path, identity) -> None:
    """A hand-written pair may list an image on both sides: a test score on trained images."""
    trained = {identity(f) for f in train}
    both = next((f for f in test if identity(f) in trained), None)
    if both is not None:
        raise UserError(f"{split_dir / TEST_SPLIT_FILE}: {both} is also in {TRAIN_SPLIT_FILE}; "
                        "a test image must not be trained on, so remove it from one of the files")
