#!/usr/bin/env python3
"""The paper's whole experiment in one command: ``python train_numpy.py``.

With no arguments it generates the synthetic dataset on first use (into
``data/synthetic_sfew`` next to this file), splits it 80/20 per class,
trains 200 epochs of SGD with augmentation and prints the paper's Table 1.
``--data PATH`` runs the same experiment on SFEW, FER2013 or JAFFE; see
``python train_numpy.py --help`` and the README's "Training" section.
"""

import sys
from pathlib import Path

from numpy_cnn.cli.process_env import set_thread_defaults

# Before NumPy loads: BLAS at one thread, numba's idle workers spinning briefly
# (the reasons and the measurements are in numpy_cnn/cli/process_env.py).
set_thread_defaults()

from numpy_cnn.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(home=Path(__file__).resolve().parent))
