"""Split files in the paper's format: one ``relative/path label`` per line.

The label is the last whitespace-separated token, so paths may contain
spaces; it is a class index 0-6 in :data:`CLASSES` order or a class name.
A spreadsheet's ``path,label`` is read too.
Blank lines and lines starting with ``#`` are ignored. The trainer writes
``train.txt`` and ``test.txt`` for its split and can read them back to
repeat an experiment on exactly the same images.

Hand-written files are read as people write them: a UTF-8 BOM (Notepad,
Excel) and CRLF line ends are fine, Windows ``\\`` separators and ``./``
prefixes are turned into the loader's ``a/b`` names. File names that are not
UTF-8 on disk (old Windows zips) are written and read back byte for byte
(``surrogateescape``).

Images deleted since the files were written (say, the unreadable ones an
earlier run listed) are reported together, with their lines, in one error.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection
from pathlib import Path

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.atomic import write_atomically
from numpy_cnn.data.classes import CLASSES, parse_label
from numpy_cnn.data.sources import Listing
from numpy_cnn.data.unreadable import name_some

GROUPS_FILE = "groups.txt"


def write_split_file(path: Path, listing: Listing) -> None:
    """Write ``listing`` to ``path`` atomically (temp file + rename), labels as indices."""
    lines = [f"# relative/path label (0-{len(CLASSES) - 1}: {' '.join(CLASSES)})\n"]
    lines += [f"{f} {label}\n" for f, label in zip(listing.files, listing.labels.tolist())]
    data = "".join(lines).encode("utf-8", "surrogateescape")  # a non-UTF-8 name keeps its bytes
    write_atomically(Path(path), lambda f: f.write(data))


def write_groups_file(path: Path, files: list[str], groups: list[str], rule: str) -> None:
    """``groups.txt``: ``relative/path<TAB>group`` per image of both split files, for the record
    (which clip, film or subject kept each image on its side)."""
    lines = [f"# relative/path<TAB>group (--group-by {rule})\n"]
    lines += [f"{f}\t{g}\n" for f, g in zip(files, groups)]
    data = "".join(lines).encode("utf-8", "surrogateescape")
    write_atomically(Path(path), lambda f: f.write(data))


def read_groups_file(path: Path) -> dict[str, str]:
    """``{relative/path: group}`` from a :func:`write_groups_file` file."""
    text = Path(path).read_bytes().decode("utf-8-sig", "surrogateescape")
    pairs = (line.rpartition("\t") for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {f: g for f, tab, g in pairs if tab}


def read_split_file(path: Path, root: Path, known: Collection[str] | None = None, *,
                    missing: list[str] | None = None) -> Listing:
    """Read a split file whose paths are relative to ``root``.

    ``known``, if given, lists the valid entries instead of files on disk
    (CSV rows named ``fer2013.csv:<line>``). ``missing``, if given, collects
    the lines naming no file (``"Angry/a.png (train.txt:3)"``) instead
    of raising, so the caller can report those of both files at once with
    :func:`missing_images_error`; they are left out of the listing.

    Raises:
        UserError: the split file is missing, unreadable or lists nothing, a
            line (named by number) has no label or a bad label, names a folder
            or (with ``known``) no row of the CSV, or (without ``missing``)
            lines point at missing files: all of them, in one line.
    """
    path = Path(path)
    absent = [] if missing is None else missing
    try:
        # utf-8-sig drops a BOM, which would otherwise glue itself to the first path.
        text = path.read_bytes().decode("utf-8-sig", "surrogateescape")
    except FileNotFoundError:
        raise UserError(f"{path}: split file not found; run once without reusing the split to write it") from None
    except OSError as exc:  # e.g. --split-dir names a file, or no permission
        raise UserError(f"{path}: cannot read the split file ({exc.strerror}); --split-dir must be the folder "
                        "holding train.txt and test.txt") from None
    files, labels = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        parts = _path_and_label(line)
        if len(parts) != 2:
            raise UserError(f"{where}: expected 'relative/path label', got {line!r}")
        relative, label = parts
        label = parse_label(label, where)  # before the path: "0.png,0" is a bad label, not a missing file
        if known is not None and relative not in known:
            raise UserError(f"{where}: {relative!r} is not a row of the CSV; fix the line or the data")
        if known is None:
            relative = _as_loader_name(relative, root)
            if (root / relative).is_dir():
                raise UserError(f"{where}: {root / relative} is a folder; list image files, one per line")
            if not (root / relative).is_file():
                absent.append(f"{relative} ({path.name}:{number})")
                continue
        files.append(relative)
        labels.append(label)
    if missing is None and absent:
        raise missing_images_error(path, root, absent)
    if not files and not absent:
        raise UserError(f"{path}: lists no images; write one 'relative/path label' per line")
    return Listing(files, np.array(labels, dtype=np.int64))


def missing_images_error(where: Path, root: Path, absent: list[str]) -> UserError:
    """One error for every split-file line whose image is not in ``root`` (see ``missing`` above)."""
    n = len(absent)
    return UserError(f"{where}: {n} listed image{'s' if n > 1 else ''} not found in {root}: {name_some(absent)}; "
                     f"restore {'them' if n > 1 else 'it'} or delete {'those lines' if n > 1 else 'the line'}")


def _path_and_label(line: str) -> list[str]:
    """``[path, label]`` of a line (fewer items if it has no label); ``path,label`` is read too."""
    head, comma, tail = line.rpartition(",")
    if comma and tail.strip() and len(tail.split()) == 1:
        return [head.strip(), tail.strip()]  # saved from a spreadsheet; a comma inside a name stays
    return line.rsplit(None, 1)


def _as_loader_name(relative: str, root: Path) -> str:
    """A path as written in a split file -> the loader's name for it (``a/b``, no ``./``)."""
    if "\\" in relative and not (root / relative).exists():
        relative = relative.replace("\\", "/")  # written on Windows; a real backslash name is kept
    return posixpath.normpath(relative)
