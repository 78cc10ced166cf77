"""Make a generated dataset folder safely: complete or not there at all.

Both generated datasets (:mod:`.synthetic`, :mod:`.synthetic_fer`) are made
on first use and recognised later by their ``manifest.json`` (recipe
version, seed, sizes). Generation goes into a temporary sibling folder that
is renamed into place once the manifest is written, so an interrupted run
never leaves a half dataset that looks complete, an outdated copy is
swapped out only when the new one is ready, and a folder the generator did
not make is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from numpy_cnn.errors import UserError

MANIFEST = "manifest.json"


def make_once(root: Path, manifest: dict, fill: Callable[[Path], None],
              complete: Callable[[Path], bool], what: str) -> Path:
    """Fill ``root`` with ``fill(folder)`` unless it already holds a finished copy of ``manifest``.

    Args:
        root: the dataset folder.
        manifest: what identifies a copy (recipe version, seed, sizes); written last.
        fill: writes the dataset's files into the folder it is given.
        complete: extra check that a folder with the right manifest has all its files.
        what: the dataset's name for the error message (``"synthetic dataset"``).

    Raises:
        UserError: ``root`` exists, is not empty and has no manifest (it is not ours).
    """
    if _is_complete(root, manifest, complete):
        return root
    if root.exists() and not (root / MANIFEST).is_file() and any(root.iterdir()):
        raise UserError(f"{root} exists but is not a {what} (no {MANIFEST}); remove it or choose another folder")

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    old = root.with_name(f".{root.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        fill(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        # Another process (a second training run, a test) may have finished the
        # same dataset while we drew ours: same seed, same bytes, so theirs will do.
        if _is_complete(root, manifest, complete):
            return root
        try:
            if root.exists():  # an outdated or damaged copy of ours: swap it out only now
                os.replace(root, old)
            os.replace(tmp, root)
        except OSError:
            if not _is_complete(root, manifest, complete):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return root


def _is_complete(root: Path, manifest: dict, complete: Callable[[Path], bool]) -> bool:
    """True if ``root`` holds a finished copy made with exactly this manifest."""
    try:
        if json.loads((root / MANIFEST).read_text()) != manifest:
            return False
    except (OSError, ValueError):
        return False
    return complete(root)
