"""Split files in the paper's format: one ``relative/path label`` per line.

The label is the last whitespace-separated token, so paths may contain
spaces; it is a class index 0-6 in :data:`CLASSES` order or a class name.
Blank lines and lines starting with ``#`` are ignored. The trainer writes
``train.txt`` and ``test.txt`` for its split and can read them back to
repeat an experiment on exactly the same images.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from ..errors import UserError
from .atomic import write_atomically
from .classes import CLASSES, parse_label
from .sources import Listing


def write_split_file(path: Path, listing: Listing) -> None:
    """Write ``listing`` to ``path`` atomically (temp file + rename), labels as indices."""
    lines = [f"# relative/path label (0-{len(CLASSES) - 1}: {' '.join(CLASSES)})\n"]
    lines += [f"{f} {label}\n" for f, label in zip(listing.files, listing.labels.tolist())]
    write_atomically(Path(path), lambda f: f.write("".join(lines).encode("utf-8")))


def read_split_file(path: Path, root: Path, known: Collection[str] | None = None) -> Listing:
    """Read a split file whose paths are relative to ``root``.

    ``known``, if given, lists the valid entries instead of files on disk
    (CSV rows named ``fer2013.csv:<line>``).

    Raises:
        UserError: the split file is missing, or a line (named by number) has
            no label, a bad label, or points at a missing file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: split file not found; run once without reusing the split to write it") from None
    files, labels = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise UserError(f"{where}: expected 'relative/path label', got {line!r}")
        relative, label = parts
        if known is not None and relative not in known:
            raise UserError(f"{where}: {relative!r} is not a row of the CSV; fix the line or the data")
        if known is None and not (root / relative).is_file():
            raise UserError(f"{where}: {root / relative} does not exist; fix the line or the data folder")
        files.append(relative)
        labels.append(parse_label(label, where))
    return Listing(files, np.array(labels, dtype=np.int64))
