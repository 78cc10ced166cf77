"""Where the command line keeps things by default.

Each path is relative to the folder that holds ``train_numpy.py`` (the
command's ``home``), never to the current directory.
"""

from pathlib import Path

SYNTHETIC_DATA = Path("data") / "synthetic_sfew"   # the generated dataset, made on first use
CACHE = Path("data") / "cache"                     # decoded 48x48 images
RUNS = Path("runs")                                # one folder per training run
