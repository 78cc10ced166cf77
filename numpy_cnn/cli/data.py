"""The ``make-data`` command: generate a synthetic dataset into a folder.

``python train_numpy.py make-data sfew`` makes the SFEW-like film frames the
trainer uses by default (it also makes them on first use);
``python train_numpy.py make-data fer`` makes the FER2013-like face crops
for pretraining, then ``python train_numpy.py --data data/synthetic_fer``
trains on them. :mod:`numpy_cnn.cli.main` registers the two halves below.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from numpy_cnn.errors import UserError
from numpy_cnn.cli.paths import SYNTHETIC_DATA, SYNTHETIC_FER, nonempty_path

MAKE_DATA_HELP = "Generate a synthetic dataset: SFEW-like film frames (sfew) or FER2013-like face crops (fer)."


def add_make_data_arguments(parser: argparse.ArgumentParser) -> None:
    from numpy_cnn.data.synthetic.fer import DEFAULT_IMAGES

    add = parser.add_argument
    add("kind", choices=("sfew", "fer"), help="sfew: 675 frames of 720x576 with face boxes; "
        "fer: 48x48 grayscale face crops in train/ and test/")
    add("--out", type=nonempty_path, help=f"folder (default {SYNTHETIC_DATA} or {SYNTHETIC_FER})")
    add("--seed", type=int, default=0, help="dataset seed (default 0; the trainer's default data uses 0)")
    add("--images", type=int, help=f"fer only: training plus test images (default {DEFAULT_IMAGES}), "
        "split and class-balanced as FER2013")
    add("--workers", type=int, default=2, help="processes drawing images (default 2)")


def run_make_data(args: argparse.Namespace, home: Path) -> int:
    from numpy_cnn.data.synthetic.sfew import ensure_synthetic_dataset
    from numpy_cnn.data.synthetic.fer import DEFAULT_IMAGES, ensure_synthetic_fer

    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.kind == "sfew" and args.images is not None:
        raise UserError("--images applies to fer only; the SFEW-like set has SFEW's 675 frames")
    start = time.perf_counter()
    if args.kind == "sfew":
        root = ensure_synthetic_dataset(args.out or home / SYNTHETIC_DATA, args.seed, workers=args.workers)
    else:
        images = DEFAULT_IMAGES if args.images is None else args.images
        root = ensure_synthetic_fer(args.out or home / SYNTHETIC_FER, args.seed, images=images,
                                    workers=args.workers)
    n = sum(1 for _ in root.rglob("*.png"))
    print(f"{root}: {n} images, ready after {time.perf_counter() - start:.1f}s")
    return 0
