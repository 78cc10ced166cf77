"""The ``make-data`` command: generate a synthetic dataset into a folder.

``python train_numpy.py make-data sfew`` makes the SFEW-like film frames the
trainer uses by default (it also makes them on first use);
``python train_numpy.py make-data fer`` makes the FER2013-like face crops
for pretraining, then ``python train_numpy.py --data data/synthetic_fer``
trains on them. ``python train_numpy.py make-data fer-faces --from ~/fer2013
--per-class 50 --out ~/faces-small`` is not generated: it cuts a small set of
real faces from FER2013's test images (:mod:`numpy_cnn.data.fer_faces`), to
measure fine-tuning on. :mod:`numpy_cnn.cli.main` registers the two halves below.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from numpy_cnn.cli.paths import CACHE, SYNTHETIC_DATA, SYNTHETIC_FER, nonempty_path
from numpy_cnn.errors import UserError

MAKE_DATA_HELP = ("Generate a synthetic dataset: SFEW-like film frames (sfew) or FER2013-like face crops (fer); "
                  "or cut a small set of real faces from FER2013's test images (fer-faces).")


def add_make_data_arguments(parser: argparse.ArgumentParser) -> None:
    from numpy_cnn.data.synthetic.fer import DEFAULT_IMAGES

    add = parser.add_argument
    add("kind", choices=("sfew", "fer", "fer-faces"), help="sfew: 675 frames of 720x576 with face boxes; "
        "fer: 48x48 grayscale face crops in train/ and test/; fer-faces: real FER2013 test faces that no "
        "FER2013-trained model has seen (needs --from)")
    add("--out", type=nonempty_path, help=f"folder (default {SYNTHETIC_DATA} or {SYNTHETIC_FER}; "
        "fer-faces: required, a new folder)")
    add("--seed", type=int, default=0, help="dataset seed (default 0; the trainer's default data uses 0)")
    add("--images", type=int, help=f"fer only: training plus test images (default {DEFAULT_IMAGES}), "
        "split and class-balanced as FER2013")
    add("--workers", type=int, default=2, help="processes drawing images (default 2)")
    add("--from", dest="source", type=nonempty_path, help="fer-faces: FER2013's train/ and test/ folders, "
        "or fer2013.csv")
    add("--per-class", type=int, help="fer-faces: this many faces of each class, in class folders")
    add("--like", choices=("sfew2",), help="fer-faces: a train/ and test/ split of SFEW 2.0's sizes and "
        "about its class shares (859 and 405 faces)")
    add("--cache-dir", type=nonempty_path, help="fer-faces: decoded-image cache "
        "(default data/cache)")


def run_make_data(args: argparse.Namespace, home: Path) -> int:
    from numpy_cnn.data.synthetic.fer import DEFAULT_IMAGES, ensure_synthetic_fer
    from numpy_cnn.data.synthetic.sfew import ensure_synthetic_dataset

    if args.kind == "fer-faces":
        return _fer_faces(args, home)
    if args.source or args.per_class is not None or args.like:
        raise UserError("--from, --per-class and --like apply to fer-faces only")
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


def _fer_faces(args: argparse.Namespace, home: Path) -> int:
    from numpy_cnn.data.fer_faces import make_fer_faces

    if args.source is None or args.out is None:
        raise UserError("make-data fer-faces needs --from FER2013 (its train/ and test/ folders, or the CSV) "
                        "and --out NEW_FOLDER")
    written = make_fer_faces(args.source, args.out, per_class=args.per_class, like=args.like, seed=args.seed,
                             cache_dir=args.cache_dir or home / CACHE)
    counts = ", ".join(f"{part}: {n}" for part, n in written.items())
    print(f"{args.out}: {sum(written.values())} faces from {args.source}'s test images ({counts})")
    return 0
