"""One error for every image that could not be read, so one run finds them all.

A real 35,000-image dataset may hold several truncated, empty or deleted
files; stopping at the first would need one run per file. The loader
decodes everything, then raises one line that gives the count and names
the first :data:`MAX_NAMED` files with a short reason each::

    data/sfew: 12 images could not be read; fix or delete them: Angry/a.png (truncated),
    Sad/b.png (empty file), ... and 7 more (all listed in data/cache/unreadable-images.txt)

(one line in reality). When more files failed than the line names, the full
list (``path<TAB>reason`` per line) is written to :data:`LIST_FILE` in the
cache folder: the dataset itself is never written to (it may be read-only,
shared, or scanned for images by the next run), and without a cache folder
the line only counts the rest. A failed load never writes a cache entry, so
the next run decodes the repaired set afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from numpy_cnn.errors import UserError
from numpy_cnn.atomic import write_atomically

MAX_NAMED = 5
LIST_FILE = "unreadable-images.txt"


def name_some(names: Sequence[str], limit: int = MAX_NAMED) -> str:
    """``"a, b, c"``, or the first ``limit`` names and ``"and N more"``: a list that fits on a line."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def unreadable_images_error(failures: Sequence[tuple[str, str]], where: Path | None,
                            list_dir: Path | None) -> UserError:
    """The one error for all ``failures``, ``(name, reason)`` pairs in a stable order.

    Args:
        failures: file names as the user knows them (relative to ``where``) and short reasons.
        where: the folder the names are relative to, named first in the message (``None``: none).
        list_dir: where :data:`LIST_FILE` may be written when the message cannot name them all.
    """
    n = len(failures)
    listed = _write_list(failures, where, list_dir) if n > MAX_NAMED else None
    names = name_some([f"{name} ({reason})" for name, reason in failures])
    return UserError(
        (f"{where}: " if where is not None else "")
        + (f"{n} images could not be read; fix or delete them: " if n > 1 else
           "1 image could not be read; fix or delete it: ")
        + names
        + (f" (all listed in {listed})" if listed else "")
    )


def _write_list(failures: Sequence[tuple[str, str]], where: Path | None, list_dir: Path | None) -> Path | None:
    """Write the full list to ``list_dir``/:data:`LIST_FILE`; its path, or ``None`` if not written."""
    if list_dir is None:
        return None
    path = Path(list_dir) / LIST_FILE
    lines = [f"# {len(failures)} images could not be read; one 'path<TAB>reason' per line\n"]
    lines += [f"{Path(where or '.', name).absolute()}\t{reason}\n" for name, reason in failures]
    data = "".join(lines).encode("utf-8", "surrogateescape")  # a non-UTF-8 name keeps its bytes
    try:
        write_atomically(path, lambda f: f.write(data))
    except OSError:  # a read-only cache folder: the message still counts them
        return None
    return path
