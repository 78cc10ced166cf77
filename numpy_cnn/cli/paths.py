"""Where the command line keeps things by default, and how it reads a path option.

Each path is relative to the folder that holds ``train_numpy.py`` (the
command's ``home``), never to the current directory.
"""

import argparse
from pathlib import Path

from numpy_cnn.data.synthetic import SYNTHETIC_DATA, SYNTHETIC_FER  # noqa: F401  (the generated data's folders)

CACHE = Path("data") / "cache"                     # decoded 48x48 images
RUNS = Path("runs")                                # one folder per training run


def nonempty_path(text: str) -> Path:
    """An argparse ``type`` for paths: ``""`` (an unset shell variable) is refused, not read as ``.``."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path; give a file or folder name")
    return Path(text)
