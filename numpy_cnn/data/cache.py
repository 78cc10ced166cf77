"""A tiny on-disk array cache: decode once, then load the arrays in milliseconds.

An entry is one ``.npz`` file named by a hash of everything its contents
depend on (the files' absolute paths, mtimes and sizes, and the preprocessing
settings). Editing, touching or replacing a source file changes the key, so a
stale entry is simply never looked up again.

Entries are written atomically (:mod:`.atomic`), so a reader never sees half
an entry. A damaged or truncated entry
reads as a miss and is rebuilt, never a crash. An entry that cannot be
written (full disk, read-only folder) costs only speed: one warning line on
stderr, and the run goes on with the arrays it has.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from numpy_cnn.atomic import write_atomically


def file_fingerprint(paths: Iterable[Path]) -> list[tuple[str, int, int]]:
    """(absolute path, mtime in ns, size in bytes) per file: what a cache key must depend on.

    A missing file raises ``FileNotFoundError``; callers check existence first.
    """
    out = []
    for path in paths:
        path = Path(path).absolute()
        stat = path.stat()
        out.append((str(path), stat.st_mtime_ns, stat.st_size))
    return out


def cache_key(kind: str, payload: object) -> str:
    """A short hex digest of ``payload`` (anything JSON can encode), prefixed by ``kind``."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"{kind}-{digest[:24]}"


def load_entry(cache_dir: Path | None, key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key``, or ``None`` on a miss (absent, truncated or corrupt)."""
    if cache_dir is None:
        return None
    path = Path(cache_dir) / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except Exception:  # noqa: BLE001 - any unreadable entry is just a miss
        return None


def save_entry(cache_dir: Path | None, key: str, **arrays: np.ndarray) -> None:
    """Store ``arrays`` under ``key``, atomically: a crash leaves either nothing or a whole entry.

    A failed write is reported on stderr, not raised: the caller already has the arrays.
    """
    if cache_dir is None:
        return
    path = Path(cache_dir) / f"{key}.npz"
    try:
        write_atomically(path, lambda f: np.savez(f, **arrays))
    except OSError as exc:
        print(f"warning: {path}: not cached ({exc.strerror or exc}); the data will be decoded again next time",
              file=sys.stderr, flush=True)
