#!/usr/bin/env python3
"""The paper's whole experiment in one command: ``python train_numpy.py``.

With no arguments it generates the synthetic dataset on first use (into
``data/synthetic_sfew`` next to this file), splits it 80/20 per class,
trains 200 epochs of SGD with augmentation and prints the paper's Table 1.
``--data PATH`` runs the same experiment on SFEW, FER2013 or JAFFE; see
``python train_numpy.py --help`` and the README's "Training" section.
"""

import os
import sys
from pathlib import Path

# Before NumPy loads: small GEMMs with 2 OpenBLAS threads beside numba's threads
# oversubscribe a 2-core machine and run several times slower (see STYLE.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from numpy_cnn.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(home=Path(__file__).resolve().parent))
