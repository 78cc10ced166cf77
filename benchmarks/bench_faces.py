"""Compare face detectors on the generated frames, whose true face boxes are known.

    python benchmarks/bench_faces.py                     # the default dataset, every frame
    python benchmarks/bench_faces.py --every 3 --dlib    # a third of the frames, plus dlib's HOG detector

For each setting it prints the share of frames whose crop (the module's
square crop with its margin) overlaps the true box with IoU >= 0.5, how many
frames had no face or several, the median IoU of the crop and of the raw
detection, and the milliseconds per frame (a noisy machine: compare within
one run). Needs ``pip install -e ".[faces]"``; ``--dlib`` needs ``pip install dlib-bin``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_cnn.data.faces import CASCADES, DetectorSettings, FaceDetector, iou, square_crop  # noqa: E402
from numpy_cnn.data.synthetic.sfew import ensure_synthetic_dataset, read_boxes  # noqa: E402
from numpy_cnn.cli.paths import SYNTHETIC_DATA  # noqa: E402


def score(name: str, detect, frames: dict[str, np.ndarray], truth: dict, margin: float) -> None:
    """Print one line for a detector: ``detect(gray) -> (K, 4) boxes, largest first``."""
    crop_iou, face_iou, none, several = [], [], 0, 0
    start = time.perf_counter()
    for file, gray in frames.items():
        faces = detect(gray)
        none += len(faces) == 0
        several += len(faces) > 1
        if len(faces) == 0:
            crop_iou.append(0.0)
            face_iou.append(0.0)
            continue
        face = tuple(int(v) for v in faces[0])
        face_iou.append(iou(face, truth[file]))
        crop_iou.append(iou(square_crop(face, margin, gray.shape), truth[file]))
    ms = (time.perf_counter() - start) / len(frames) * 1000
    crop_iou = np.array(crop_iou)
    print(f"{name:<38} IoU>=0.5 {np.mean(crop_iou >= 0.5):6.1%}  no face {none:3d}  several {several:3d}  "
          f"median IoU crop {np.median(crop_iou):.2f} face {np.median(face_iou):.2f}  {ms:5.0f} ms/frame",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="a generated dataset (default: the project's)")
    parser.add_argument("--every", type=int, default=1, help="use every n-th frame")
    parser.add_argument("--dlib", action="store_true", help="also measure dlib's HOG face detector")
    args = parser.parse_args()
    root = args.data or ensure_synthetic_dataset(Path(__file__).resolve().parents[1] / SYNTHETIC_DATA)
    truth = read_boxes(root)
    files = sorted(truth)[::args.every]
    frames = {f: np.asarray(Image.open(root / f).convert("L")) for f in files}
    margin = DetectorSettings().margin
    print(f"{len(frames)} frames of {root}, crop margin {margin}")

    grid = [DetectorSettings(cascade=c) for c in CASCADES]
    grid += [DetectorSettings(scale_factor=1.05), DetectorSettings(min_neighbors=5),
             DetectorSettings(min_neighbors=1), DetectorSettings(min_size=24), DetectorSettings(min_size=80),
             DetectorSettings(cascade="default", min_neighbors=5)]
    for settings in grid:
        score(settings.key(), FaceDetector(settings).detect, frames, truth, margin)

    if args.dlib:
        import dlib

        hog = dlib.get_frontal_face_detector()
        for upsample in (0, 1):
            def detect(gray, upsample=upsample):
                found = sorted(hog(gray, upsample), key=lambda r: -r.area())
                return [(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in found]
            score(f"dlib HOG upsample {upsample}", detect, frames, truth, margin)


if __name__ == "__main__":
    main()
