"""Find the images of a dataset folder and their labels, whatever its layout.

Three folder layouts are recognised (names matched case-insensitively):

* **class folders** (SFEW, FER2013 image folders, Kaggle's CK+48): ``root/<Class>/<image>``,
  one folder per class of :data:`CLASSES`. A class may be missing. A
  ``contempt/`` folder (CK+48) is left out with a note in :attr:`Listing.left_out`:
  contempt is not one of the seven classes. Loose
  files at the root (``README``, ``train.txt``) are ignored. Sub-folders of a
  class folder (one per film clip, as in AFEW-style frame dumps) are read too,
  recursively. Any other visible file in a class folder is taken to be an
  image, so a stray file there is reported, not skipped; so are a broken
  link and a link back to a folder being read (it would repeat images).
* **split folders**: ``root/train/<Class>/...`` plus ``root/test/<Class>/...``
  (Kaggle's FER2013), ``root/Train`` plus ``root/Val`` (SFEW 2.0), or
  ``validation``/``valid`` (other Kaggle copies). The test folder (else the
  validation one) is the test set; a test folder without class folders
  (SFEW 2.0's unlabelled ``Test/``) is passed over for ``Val/``.
* **JAFFE**: a flat folder whose image names carry the expression code,
  ``KA.AN1.39.tiff`` (AN, DI, FE, HA, NE, SA, SU). Files without a code
  are ignored.

CK+'s original release (``cohn-kanade-images/`` beside ``Emotion/``) is read by
:mod:`.ckplus`.

Hidden entries (``.DS_Store``, ``._x.png``, ``.ipynb_checkpoints``,
``Thumbs.db``, ``desktop.ini``, ``__MACOSX``, a Synology NAS's ``@eaDir``
thumbnails, a Windows drive's ``$RECYCLE.BIN``, the ``x.png:Zone.Identifier``
files Windows adds to files copied into WSL) are skipped everywhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.data.classes import CLASSES, class_index, is_left_out

_JUNK = {"thumbs.db", "desktop.ini", "__macosx", "@eadir", "$recycle.bin", "system volume information"}
_TRAIN_NAMES = ("train",)
_TEST_NAMES = ("test", "val", "validation", "valid")  # in order of preference
SPLIT_NAMES = frozenset(_TRAIN_NAMES + _TEST_NAMES)
_JAFFE_CODES = {"AN": "Angry", "DI": "Disgust", "FE": "Fear", "HA": "Happy",
                "NE": "Neutral", "SA": "Sad", "SU": "Surprise"}
# Poser initials, expression code with take number, picture number, extension.
_JAFFE_NAME = re.compile(r"^[a-z]{2,3}\.(an|di|fe|ha|ne|sa|su)\d*\.\d+\.[a-z]+$", re.IGNORECASE)


@dataclass
class Listing:
    """Image files and labels.

    Attributes:
        files: paths relative to the data root, with ``/`` separators.
        labels: (N,) int64 indices into :data:`CLASSES`.
        left_out: what the folder holds that is not listed, and why, for the
            run's data line (``"54 contempt images left out (...)"``); empty if nothing.
    """

    files: list[str]
    labels: np.ndarray
    left_out: str = ""

    def __len__(self) -> int:
        return len(self.files)


def is_hidden(name: str) -> bool:
    """Files and folders that operating systems and tools leave behind."""
    return name.startswith(".") or name.casefold() in _JUNK or name.casefold().endswith(":zone.identifier")


def visible_entries(folder: Path) -> list[Path]:
    """Non-hidden entries of ``folder``, sorted by name for a stable order."""
    return sorted((p for p in folder.iterdir() if not is_hidden(p.name)), key=lambda p: p.name)


def split_folders(root: Path) -> tuple[Path, Path | None] | None:
    """(train folder, test-or-val folder or None) if ``root`` has a split layout, else None."""
    train, tests = _split_candidates(root)
    if train is None and not tests:
        return None
    if train is None:
        raise UserError(f"{root}: has a {tests[0].name}/ folder but no train/ folder; add train/<Class>/ images")
    test = _first_labelled(tests)
    if tests and test is None:
        raise UserError(f"{tests[0]}: has no class folders, so its images have no labels; move them into "
                        f"{tests[0].name}/<Class>/ folders, or move the folder out to split {train.name}/ at random")
    return train, test


def labelled_test_folder(root: Path) -> Path | None:
    """The first of ``root``'s test, val, validation, valid folders that holds class folders, or None.

    Images straight inside a test folder have no label (SFEW 2.0's ``Test/``),
    so such a folder is passed over for the labelled ``Val/``.
    """
    return _first_labelled(_split_candidates(root)[1])


def _split_candidates(root: Path) -> tuple[Path | None, list[Path]]:
    """``root``'s train folder (or None) and its test, val, validation, valid folders, in that order."""
    by_name = {p.name.casefold(): p for p in visible_entries(root) if p.is_dir()}
    return (next((by_name[n] for n in _TRAIN_NAMES if n in by_name), None),
            [by_name[n] for n in _TEST_NAMES if n in by_name])


def _first_labelled(tests: list[Path]) -> Path | None:
    """The first of ``tests`` with class folders (see :func:`labelled_test_folder`), or None."""
    return next((folder for folder in tests if has_subfolders(folder)), None)


def list_class_folders(folder: Path, root: Path | None = None, *, flag: str = "--data") -> Listing:
    """Images of ``folder/<Class>/*``, with paths relative to ``root`` (default ``folder``).

    ``flag`` is the option that named ``folder`` (``--data`` or ``--test-data``), for hints.

    A ``contempt`` folder is left out, and counted in the listing's ``left_out``.

    Raises:
        UserError: a sub-folder is not one of the seven class names (nor contempt).
    """
    root = folder if root is None else root
    files, labels, left_out = [], [], []
    for sub in visible_entries(folder):
        label = class_index(sub.name)
        if not sub.is_dir():
            if label is not None and sub.is_symlink():  # a linked class on an unmounted drive
                _broken_link(sub)
            continue  # loose files at the root, e.g. our own train.txt
        if label is None and is_left_out(sub.name):
            if count := len(visible_files(sub)):
                left_out.append(f"{count} {sub.name.casefold()} image{'s' * (count != 1)} left out "
                                f"({sub.relative_to(root).as_posix()}/: not one of the seven classes)")
            continue
        if label is None:
            # A folder of folders or of JAFFE images is more likely the dataset itself, one level down.
            nested = any(p.is_dir() or _JAFFE_NAME.match(p.name) for p in visible_entries(sub))
            raise UserError(
                f"{sub}: unknown class folder {sub.name!r}; rename it to one of "
                f"{', '.join(CLASSES)} (any case) or move it out"
                + (f", or pass {flag} {sub} if the dataset is inside it" if nested else "")
            )
        for path in visible_files(sub):
            files.append(path.relative_to(root).as_posix())
            labels.append(label)
    return Listing(files, np.array(labels, dtype=np.int64), "; ".join(left_out))


def visible_files(folder: Path) -> list[Path]:
    """Every non-hidden file below ``folder``, depth first, sorted by name at each level.

    Raises:
        UserError: a broken link, or a link to a folder that holds it (read
            forever, it would repeat the same images hundreds of times).
    """
    return _visible_files(folder, ancestors=frozenset())


def _visible_files(folder: Path, ancestors: frozenset[Path]) -> list[Path]:
    chain = ancestors | {folder.resolve()}
    files = []
    for entry in visible_entries(folder):
        if entry.is_dir():
            target = entry.resolve()
            if any(a.is_relative_to(target) for a in chain):
                raise UserError(f"{entry}: links to {target}, which holds the link itself, so its images "
                                "would be read again and again; remove the link")
            files.extend(_visible_files(entry, chain))
        elif entry.is_file():
            files.append(entry)
        elif entry.is_symlink():
            _broken_link(entry)
    return files


def _broken_link(path: Path) -> None:
    raise UserError(f"{path}: a link to {os.readlink(path)}, which does not exist; "
                    "restore the target or delete the link")


def list_jaffe(folder: Path) -> Listing:
    """JAFFE images of a flat folder, labelled by the code in their names (``KA.AN1.39.tiff``)."""
    files, labels = [], []
    for path in visible_entries(folder):
        match = _JAFFE_NAME.match(path.name)
        if match and path.is_file():
            files.append(path.name)
            labels.append(class_index(_JAFFE_CODES[match.group(1).upper()]))
    return Listing(files, np.array(labels, dtype=np.int64))


def has_subfolders(folder: Path) -> bool:
    """True if ``folder`` has any visible sub-folder."""
    return any(p.is_dir() for p in visible_entries(folder))
