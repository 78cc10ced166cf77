"""One entry point for the trainer: any supported dataset -> train and test arrays.

A :class:`DataSpec` says what to load; :func:`load_spec` runs the stages for
it (list -> split -> decode), and :func:`load_dataset` is the same with the
spec's fields as keyword arguments. The data is recognised in this order:

1. ``reuse_split=True``: ``train.txt`` / ``test.txt`` in ``split_dir`` (paper
   format, see :mod:`.splitfiles`) with paths relative to ``data``
   (for a CSV, entries name rows: ``fer2013.csv:<line>``).
2. a ``.csv`` file: the FER2013 CSV (see :mod:`.fer2013`).
3. a folder with ``train/`` and ``test/`` (or ``Train/`` and ``Val/``) folders.
4. CK+'s original release: ``cohn-kanade-images/`` beside ``Emotion/`` (see :mod:`.ckplus`).
5. a folder of class folders (SFEW layout).
6. a flat folder of JAFFE-named images.

What a layout leaves out (CK+'s contempt) is said after its name in the
source (``"ck+; 18 contempt sequences left out (...)"``), which the run prints.

``test_data`` (a folder of class folders, CK+ or JAFFE images, or a CSV, used
whole) replaces any test set the data defines; the training part stays.
Being used whole, it may not be ``data`` itself, a folder holding
``train/`` and ``test/`` (its ``train/`` would be tested on), nor mostly
images that are also training images (fer2013.csv beside Kaggle's train.csv).
When there is no test set (no test folder, no Usage column, no
``test_data``), a seeded stratified split is made and, if ``split_dir`` is
given, written there as ``train.txt`` and ``test.txt`` so the run can be
repeated with ``reuse_split=True``. With ``group_by`` (:mod:`.groups`) that
split keeps every clip, film or subject wholly on one side. Split files are written only after
everything loaded, so an error never replaces a good pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.data.ckplus import find_ckplus, list_ckplus
from numpy_cnn.data.classes import CLASSES, class_index
from numpy_cnn.data.fer2013 import read_fer2013_csv, row_names
from numpy_cnn.data.faces import DetectorSettings
from numpy_cnn.data.groups import GroupRule
from numpy_cnn.data.images import load_face_crops, load_images
from numpy_cnn.data.leakage import pixel_hashes
from numpy_cnn.data.sources import (Listing, has_subfolders, labelled_test_folder, list_class_folders, list_jaffe,
                      split_folders)
from numpy_cnn.data.split import group_split, stratified_split
from numpy_cnn.data.splitfiles import missing_images_error, read_split_file, write_split_file

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
        source: how the data was read: "class folders", "train/test folders", "ck+",
            "jaffe", "split files", "test data" or "fer2013 csv", then anything it left
            out (``"; 54 contempt images left out (...)"``).
        faces_train: with face crops (``crop_faces``), (N_train,) int64 faces
            found in each frame (0: none, the whole frame was kept); else None.
        faces_test: the same for the test images.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_files: list[str]
    test_files: list[str]
    root: Path
    source: str
    faces_train: np.ndarray | None = None
    faces_test: np.ndarray | None = None

    def without_faceless(self) -> Dataset:
        """The dataset without the frames in which no face was found (``--no-face drop``).

        A stage of its own, after the split: the split (and its files) is the
        same whatever the policy, and only the images trained and tested on shrink.
        """
        if self.faces_train is None:
            raise ValueError("without_faceless needs a dataset loaded with crop_faces")
        keep_train, keep_test = self.faces_train > 0, self.faces_test > 0
        return replace(self, x_train=self.x_train[keep_train], y_train=self.y_train[keep_train],
                       x_test=self.x_test[keep_test], y_test=self.y_test[keep_test],
                       train_files=[f for f, k in zip(self.train_files, keep_train) if k],
                       test_files=[f for f, k in zip(self.test_files, keep_test) if k],
                       faces_train=self.faces_train[keep_train], faces_test=self.faces_test[keep_test])

    def class_counts(self) -> dict[str, tuple[int, int]]:
        """``{class name: (train count, test count)}`` for a summary line."""
        train = np.bincount(self.y_train, minlength=len(CLASSES))
        test = np.bincount(self.y_test, minlength=len(CLASSES))
        return {name: (int(a), int(b)) for name, a, b in zip(CLASSES, train, test)}


@dataclass
class Labelled:
    """Labelled images of one root: a whole source, or one side of a split.

    ``files`` are relative to ``root`` (``<file>.csv:<line>`` for CSV rows);
    ``y`` (N,) int64 labels; ``x`` (N, S, S) uint8 is None until the decode stage
    (a CSV's rows come decoded); ``faces`` (N,) is the faces found per image when
    the decode stage cropped faces.
    """

    files: list[str]
    y: np.ndarray
    root: Path
    x: np.ndarray | None = None
    faces: np.ndarray | None = None

    def take(self, index: np.ndarray) -> Labelled:
        """The images at ``index`` (in that order), as a part of the same root."""
        return Labelled([self.files[i] for i in index], self.y[index], self.root,
                        None if self.x is None else self.x[index],
                        None if self.faces is None else self.faces[index])


@dataclass(frozen=True)
class DataSpec:
    """What :func:`load_spec` loads: the data, where its split comes from, and how images are decoded.

    Three fields choose the mode (one list function each, see :func:`load_spec`):
    ``reuse_split`` reads the split files in ``split_dir``; ``test_only`` with
    ``test_data`` lists only that test set; otherwise the data is listed and,
    if it defines no test set, split at random.

    Attributes:
        data: a dataset folder (any layout in the module docstring) or a FER2013 CSV.
        test_data: a separate folder or CSV used, whole, as the test set.
        split_dir: where a random split is written (``train.txt``, ``test.txt``)
            and, with ``reuse_split``, read from.
        reuse_split: read the split files in ``split_dir`` instead of splitting.
        seed: seed of the stratified split.
        test_fraction: share of each class put in the test set by a random split.
        image_size: side S of the stored S x S images.
        cache_dir: folder for decoded-image caches (``None`` = no caching).
        group_by: a group rule (:mod:`.groups`): the random split keeps each group on one side.
        test_only: decode only the test images (``x_train`` is then empty, its
            images need not exist): what evaluating a checkpoint needs.
        crop_faces: detector settings: every image is cropped to its face
            (found on the full-resolution frame) before the resize, and the
            Dataset carries the faces found per image. Not for a CSV's rows.
        fit: how a frame becomes a square (:func:`.decode.decode_image`): ``"stretch"``
            (the whole frame, squashed) or ``"crop"`` (its largest centred square).
            A face crop is square already, and a CSV's rows are 48x48: neither is affected.
    """

    data: Path | str
    test_data: Path | str | None = None
    split_dir: Path | str | None = None
    reuse_split: bool = False
    seed: int = 0
    test_fraction: float = 0.2
    image_size: int = 48
    cache_dir: Path | str | None = None
    group_by: str | None = None
    test_only: bool = False
    crop_faces: DetectorSettings | None = None
    fit: str = "stretch"


def load_dataset(data: Path | str, **options) -> Dataset:
    """Load a dataset folder or FER2013 CSV as train and test arrays: ``load_spec(DataSpec(data, **options))``.

    ``options`` are the other fields of :class:`DataSpec` (``test_data``,
    ``split_dir``, ``reuse_split``, ``seed``, ``test_fraction``, ``image_size``,
    ``cache_dir``, ``group_by``, ``test_only``, ``crop_faces``, ``fit``), by keyword.
    Returns a :class:`Dataset`; raises :class:`UserError` for any problem with
    the data, naming the file or line.
    """
    return load_spec(DataSpec(data, **options))


def load_spec(spec: DataSpec) -> Dataset:
    """The train and test arrays ``spec`` describes.

    The stages, each in one place::

        check   _checked_paths: every path, before minutes of decoding
        list    one function per mode: _from_split_files, _test_data_alone, _from_source
                (.sources, .splitfiles; a CSV is parsed here)
        groups  split_part: GroupRule.names            (.groups; only with group_by)
        split   split_part: stratified_split / group_split  (.split)
        decode  _decode: one load_images call for both sides of a root  (.images)
                (or load_face_crops: each image cropped to its face first, .faces)
        cache   load_images keys the decoded array by the set of files  (.cache)
        record  a new random split is written to split_dir, last
        faces   Dataset.without_faceless, for --no-face drop: the caller's choice, after the split

    Raises:
        UserError: for any problem with the data, naming the file or line.
    """
    data, test_data, cache = _checked_paths(spec.data, spec.test_data, spec.split_dir, spec.cache_dir,
                                            spec.crop_faces)
    root = data.parent if data.is_file() else data
    if spec.reuse_split:
        source, train, test, made_split = _from_split_files(spec, data, cache)
    elif spec.test_only and test_data is not None:
        source, train, test, made_split = _test_data_alone(spec, test_data, root, cache)
    else:
        source, train, test, made_split = _from_source(spec, data, test_data, cache)
    if spec.test_only:
        train = _nothing(root, spec.image_size, spec.crop_faces)
    _decode([train, test], spec.image_size, cache, spec.crop_faces, spec.fit)
    if test_data is not None and not spec.test_only:
        _check_not_training_images(test, train, test_data)
    if made_split and spec.split_dir is not None:   # written last: an error never replaces a good pair
        write_split_file(Path(spec.split_dir) / TRAIN_SPLIT_FILE, Listing(train.files, train.y))
        write_split_file(Path(spec.split_dir) / TEST_SPLIT_FILE, Listing(test.files, test.y))
    return _dataset(train, test, root, source)


# The list stage of each mode: (how the data was read, train part, test part, whether a
# random split was made). Parts come listed, not decoded (a CSV's rows come decoded).

def _from_split_files(spec: DataSpec, data: Path, cache: Path | None
                      ) -> tuple[str, Labelled, Labelled, bool]:
    """``reuse_split``: the split files in ``spec.split_dir``."""
    if spec.split_dir is None:
        raise UserError("reusing a split needs the folder holding train.txt and test.txt")
    train, test = _read_split(data, Path(spec.split_dir), spec.image_size, cache, spec.test_only)
    return "split files", train, test, False


def _test_data_alone(spec: DataSpec, test_data: Path, root: Path, cache: Path | None
                     ) -> tuple[str, Labelled, Labelled, bool]:
    """``test_only`` with ``test_data``: the training data is not even listed."""
    left_out, test = _list_whole(test_data, spec.image_size, cache)
    return _noted("test data", left_out), _nothing(root, spec.image_size), test, False


def _from_source(spec: DataSpec, data: Path, test_data: Path | None, cache: Path | None
                 ) -> tuple[str, Labelled, Labelled, bool]:
    """The data's own layout; ``test_data`` replaces its test set, and without either a random split."""
    source, train, test = list_source(data, spec.image_size, cache, needs_test=test_data is None)
    if test_data is not None:  # replaces any test set the data itself defines
        left_out, test = _list_whole(test_data, spec.image_size, cache)
        return _noted(source, left_out and f"test data: {left_out}"), train, test, False
    if test is None:
        train, test = split_part(train, spec.test_fraction, spec.seed, spec.group_by, data)
        return source, train, test, True
    return source, train, test, False


def load_pool(data: Path | str, image_size: int = 48, cache_dir: Path | str | None = None,
              crop_faces: DetectorSettings | None = None, fit: str = "stretch") -> tuple[str, Labelled]:
    """Every labelled image of a dataset as one decoded part (its own train and test parts
    pooled): what K-fold cross-validation deals into folds, and what ``evaluate --whole``
    tests on. Names are those :func:`load_dataset` reads back from split files.
    ``crop_faces`` detects here, once, so every fold loads the crops from the cache;
    ``fit`` as in :class:`DataSpec`."""
    data, _, cache = _checked_paths(data, None, None, cache_dir, crop_faces)
    source, train, test = list_source(data, image_size, cache, needs_test=False)
    if test is not None and len(test.y):
        x = None if train.x is None else np.concatenate([train.x, test.x])
        train = Labelled(train.files + test.files, np.concatenate([train.y, test.y]), train.root, x)
    _decode([train], image_size, cache, crop_faces, fit)
    return source, train


def _checked_paths(data: Path | str, test_data: Path | str | None, split_dir: Path | str | None,
                   cache_dir: Path | str | None, crop_faces: DetectorSettings | None = None
                   ) -> tuple[Path, Path | None, Path | None]:
    """The paths as ``Path``s, checked now rather than after minutes of decoding."""
    data = Path(data)
    cache = None if cache_dir is None else Path(cache_dir)
    if not data.exists():
        raise UserError(f"{data}: not found; pass a dataset folder or a FER2013 CSV")
    for folder, what in ((split_dir, "split folder (it holds train.txt and test.txt)"), (cache, "cache folder")):
        if folder is not None and Path(folder).is_file():
            raise UserError(f"{folder}: is a file, but it must be the {what}; pass a folder")
    if test_data is not None:
        test_data = Path(test_data)
        if not test_data.exists():
            raise UserError(f"{test_data}: test data not found; pass a folder or a FER2013 CSV")
        if test_data.resolve() == data.resolve():
            raise UserError(f"{test_data}: is the training data itself; pass a separate test set, "
                            "or none to split one off at random")
    if data.is_file() and data.suffix.casefold() != ".csv":
        raise UserError(f"{data}: a file must be a FER2013 .csv; otherwise pass the dataset folder")
    if crop_faces is not None:
        for path in (data, test_data):
            if path is not None and path.is_file():   # a CSV row is a 48x48 crop: no frame to find a face in
                raise UserError(f"{path}: FER2013 CSV rows are already 48x48 face crops; drop --crop-faces")
    return data, test_data, cache


# -- list ---------------------------------------------------------------------

def list_source(data: Path, image_size: int, cache: Path | None, *,
                needs_test: bool = True) -> tuple[str, Labelled, Labelled | None]:
    """The list stage: (how the data was read, training part, its own test part or None).

    Folders are listed, not decoded; a CSV's rows are parsed (and cached), so they
    come decoded. ``needs_test=False``: a separate test set will replace the data's
    own, so an empty test folder or no test rows is fine.
    """
    if data.is_file():
        source = "fer2013 csv"
        rows = read_fer2013_csv(data, image_size, cache)
        whole, usage = Labelled(row_names(data, rows), rows.y, data.parent, rows.x), rows.usage
        if not (usage >= 0).all():  # no Usage column
            return source, whole, None
        train, test = whole.take(np.flatnonzero(usage == 0)), whole.take(np.flatnonzero(usage == 1))
        if not len(train.y):
            raise UserError(f"{data}: no Training rows in the Usage column; fix it, or delete the column "
                            "to split the rows at random")
        if not len(test.y) and needs_test:
            raise UserError(f"{data}: no PublicTest or PrivateTest rows to test on; give a separate "
                            "test set, or delete the Usage column to split the rows at random")
        return source, train, test
    if (folders := split_folders(data)) is not None:
        train_dir, test_dir = folders
        listing = list_class_folders(train_dir, data)
        train = _listed(listing, data)
        source = _noted("train/test folders", listing.left_out)
        if not len(train.y):
            raise UserError(f"{train_dir}: no images in class folders; put them in "
                            f"{train_dir.name}/<Class>/ ({', '.join(CLASSES)})")
        if test_dir is None:
            return source, train, None
        listing = list_class_folders(test_dir, data)
        test = _listed(listing, data)
        if not len(test.y) and needs_test:
            raise UserError(f"{test_dir}: its class folders hold no images; add test images, or move "
                            f"the folder out to split {train_dir.name}/ at random")
        return _noted(source, listing.left_out), train, test
    source, listing = _list_folder(data, "--data")
    if not len(listing):
        raise UserError(
            f"{data}: no images found; expected class folders ({', '.join(CLASSES)}), "
            "train/ and test/ folders, JAFFE-named images or a FER2013 CSV" + _no_images_hints(data, "--data")
        )
    return _noted(source, listing.left_out), _listed(listing, data), None


def _list_folder(folder: Path, flag: str) -> tuple[str, Listing]:
    """A folder that is one labelled set (CK+, class folders or JAFFE): (its layout's name, its listing)."""
    if (ck := find_ckplus(folder)) is not None:
        return "ck+", list_ckplus(ck, folder)
    if has_subfolders(folder):
        return "class folders", list_class_folders(folder, flag=flag)
    return "jaffe", list_jaffe(folder)


def _noted(source: str, *left_out: str) -> str:
    """``source``, then each non-empty note of what was left out: ``"ck+; 18 contempt sequences left out (...)"``."""
    return "; ".join([source, *(note for note in left_out if note)])


def _listed(listing: Listing, root: Path) -> Labelled:
    """Listed files of ``root``, not decoded yet."""
    return Labelled(listing.files, listing.labels, root)


def _csv_part(path: Path, image_size: int, cache: Path | None) -> Labelled:
    """A whole CSV as one part, decoded (parsing is its listing)."""
    rows = read_fer2013_csv(path, image_size, cache)
    return Labelled(row_names(path, rows), rows.y, path.parent, rows.x)


def _list_whole(path: Path, image_size: int, cache: Path | None) -> tuple[str, Labelled]:
    """Every image of a folder (CK+, class folders or JAFFE) or CSV, as one part:
    (what was left out, as in :class:`Listing`, or "", the part)."""
    if path.is_file():
        if path.suffix.casefold() != ".csv":
            raise UserError(f"{path}: a test-data file must be a FER2013 .csv; otherwise pass a folder")
        return "", _csv_part(path, image_size, cache)
    if (inner := labelled_test_folder(path)) is not None:  # used whole, a train/ beside it would be tested on
        raise UserError(f"{path}: holds {inner.name}/ rather than class folders; pass {inner} as the test data")
    _, listing = _list_folder(path, "--test-data")
    if not len(listing):
        raise UserError(f"{path}: no test images found; expected class folders, JAFFE-named images "
                        "or a FER2013 CSV" + _no_images_hints(path, "--test-data"))
    return listing.left_out, _listed(listing, path)


def _read_split(data: Path, split_dir: Path, image_size: int, cache: Path | None,
                test_only: bool = False) -> tuple[Labelled, Labelled]:
    """The two split files of ``split_dir`` as parts (``test_only``: train.txt is not read).

    CSV rows are named ``<file>.csv:<line>`` and come decoded.
    """
    if data.is_file():
        whole = _csv_part(data, image_size, cache)
        row_of = {name: i for i, name in enumerate(whole.files)}
        parts = []
        for name in (TRAIN_SPLIT_FILE, TEST_SPLIT_FILE):
            listing = read_split_file(split_dir / name, data.parent, known=row_of.keys())
            part = whole.take(np.array([row_of[f] for f in listing.files], dtype=np.int64))
            parts.append(Labelled(part.files, listing.labels, part.root, part.x))
        _check_disjoint(parts[0].files, parts[1].files, split_dir, str)
        return parts[0], parts[1]
    if test_only:  # the training images may be gone; they are not decoded (28.7k of them on FER2013)
        return _nothing(data, image_size), _listed(read_split_file(split_dir / TEST_SPLIT_FILE, data), data)
    missing: list[str] = []  # images deleted since: of both files, in one error
    train = read_split_file(split_dir / TRAIN_SPLIT_FILE, data, missing=missing)
    test = read_split_file(split_dir / TEST_SPLIT_FILE, data, missing=missing)
    if missing:
        raise missing_images_error(split_dir, data, missing)
    _check_disjoint(train.files, test.files, split_dir, lambda f: (data / f).resolve())
    return _listed(train, data), _listed(test, data)


# -- groups and split ---------------------------------------------------------

def split_part(whole: Labelled, test_fraction: float, seed: int | Sequence[int], group_by: str | None,
               data: Path) -> tuple[Labelled, Labelled]:
    """A seeded stratified split of ``whole``, group-disjoint under a ``group_by`` rule.

    ``seed`` is anything :func:`numpy.random.default_rng` takes (an int, or a list
    of ints for a stream of its own). Returns (the rest, the ``test_fraction`` part).
    """
    rng = np.random.default_rng(seed)
    if group_by is None:
        train_idx, test_idx = stratified_split(whole.y, test_fraction, rng)
    else:
        rule = GroupRule(group_by)
        train_idx, test_idx = group_split(whole.y, rule.names(whole.files, str(data)), test_fraction, rng,
                                          unit=rule.unit)
    return whole.take(train_idx), whole.take(test_idx)


# The validation split's own random stream, default_rng([seed, VALIDATION_STREAM]): not the
# test split's (default_rng(seed)), so carving a validation part changes nothing else.
VALIDATION_STREAM = 1


def validation_split(ds: Dataset, fraction: float, seed: int, group_by: str | None = None
                     ) -> tuple[Dataset, Labelled]:
    """Carve a validation part from the *training* side of ``ds`` (``--val-frac``).

    The same stages as the random test split (:func:`split_part`): ``fraction`` of
    each class, whole groups under a ``group_by`` rule. The test side is untouched.

    Args:
        ds: a loaded dataset; its training images are split, in their order.
        fraction: share of each class's training images that goes to validation, in (0, 1).
        seed: the run's seed; the split draws from its own stream (:data:`VALIDATION_STREAM`).

    Returns:
        (``ds`` with the rest as its training side, the validation part, decoded).

    Raises:
        UserError: a class with one training image (or one group), naming ``--val-frac``.
    """
    whole = Labelled(ds.train_files, ds.y_train, ds.root, ds.x_train, ds.faces_train)
    try:
        rest, val = split_part(whole, fraction, [seed, VALIDATION_STREAM], group_by, ds.root)
    except UserError as exc:
        raise UserError(f"--val-frac {fraction} (a validation part of the training images): {exc}") from None
    return replace(ds, x_train=rest.x, y_train=rest.y, train_files=rest.files, faces_train=rest.faces), val


# -- decode (and cache) -------------------------------------------------------

def _decode(parts: list[Labelled], image_size: int, cache: Path | None,
            crop_faces: DetectorSettings | None = None, fit: str = "stretch") -> None:
    """Decode, in place, the parts not decoded yet. Parts of one root go in one
    :func:`load_images` call: one cache entry for the whole dataset, whichever way it is split.
    With ``crop_faces`` the call is :func:`load_face_crops`, which also fills ``faces``
    (a face crop is square: ``fit`` does not apply)."""
    undecoded = [part for part in parts if part.x is None]
    same_root = len({part.root for part in undecoded}) <= 1   # else --test-data: another folder
    for batch in [undecoded] if same_root else [[part] for part in undecoded]:
        if not batch:
            continue
        paths = [part.root / f for part in batch for f in part.files]
        if crop_faces is None:
            x, faces = load_images(paths, image_size, cache, root=batch[0].root, fit=fit), None
        else:
            x, faces, _ = load_face_crops(paths, image_size, cache, crop_faces, root=batch[0].root)
        start = 0
        for part in batch:
            end = start + len(part.files)
            part.x, part.faces = x[start:end], None if faces is None else faces[start:end]
            start = end


def _nothing(root: Path, image_size: int, crop_faces: DetectorSettings | None = None) -> Labelled:
    """An empty, decoded part: the training side when only the test images are wanted."""
    return Labelled([], np.empty(0, np.int64), root, np.empty((0, image_size, image_size), np.uint8),
                 None if crop_faces is None else np.empty(0, np.int64))


def _dataset(train: Labelled, test: Labelled, root: Path, source: str) -> Dataset:
    if not len(test.y):
        raise UserError(f"{root}: the test set is empty; add test images or let a random split make one")
    return Dataset(train.x, train.y, test.x, test.y, train.files, test.files, root, source,
                   train.faces, test.faces)


def _no_images_hints(folder: Path, flag: str) -> str:
    """What a folder without images was probably meant to be, for the option ``flag`` that named it."""
    # The FER2013 download unpacks to fer2013/fer2013.csv: the folder is what people pass.
    csv = next((p for p in sorted(folder.iterdir()) if p.suffix.casefold() == ".csv"), None)
    return ((f"; for the CSV in it, pass {flag} {csv}" if csv else "")
            + (f"; {folder.name} looks like one class: pass the folder holding all of them, {folder.parent}"
               if class_index(folder.name) is not None else ""))


def _check_not_training_images(test: Labelled, train: Labelled, test_data: Path) -> None:
    """Stop when most test images are training images, e.g. ``--test-data fer2013.csv`` next to
    Kaggle's train.csv: used whole, the CSV's Training rows would be tested on. A few equal
    images are normal (FER2013 has duplicates), so only a majority counts."""
    trained = set(pixel_hashes(train.x))
    shared = sum(h in trained for h in pixel_hashes(test.x))
    if 2 * shared > len(test.y):
        raise UserError(f"{test_data}: {shared} of its {len(test.y)} images are also training images (test data "
                        "is used whole, a CSV's Training rows too); pass test images the network is not trained on")


def _check_disjoint(train: list[str], test: list[str], split_dir: Path, identity) -> None:
    """A hand-written pair may list an image on both sides: a test score on trained images."""
    trained = {identity(f) for f in train}
    both = next((f for f in test if identity(f) in trained), None)
    if both is not None:
        raise UserError(f"{split_dir / TEST_SPLIT_FILE}: {both} is also in {TRAIN_SPLIT_FILE}; "
                        "a test image must not be trained on, so remove it from one of the files")
