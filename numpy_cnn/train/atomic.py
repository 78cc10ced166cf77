"""Write a file so that readers see the old version or the new one, never half of either.

The data goes to a temporary file in the same folder, which ``os.replace``
then renames over the target; on POSIX and Windows a rename within one
folder is atomic. If anything fails, or Ctrl-C arrives, the temporary file is
removed and the old file is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: Path, write: Callable[[IO], None], mode: str = "wb") -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8, ``\\n`` newlines). The file
    gets the usual permissions (the umask applies, unlike ``tempfile.mkstemp``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    try:
        with open(tmp, mode, **text) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
