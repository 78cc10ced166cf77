"""A generated FER2013-like companion set: 48x48 grayscale face crops for pretraining.

The paper's second proposed fix was "training ... with more data". On real
data that means pretraining on FER2013 (28,709 face crops) and fine-tuning
on SFEW's face crops. This set lets the same recipe run without real data:

* **Layout** as FER2013's image-folder copies: ``train/<Class>/Training_00012.png``
  and ``test/<Class>/PublicTest_00003.png``, 48x48 grayscale PNGs, plus a
  ``manifest.json`` at the root (ignored by the loaders).
* **Class balance** as FER2013's: its counts scaled to ``images`` in all
  (default 5,000: about 4,000 training and 1,000 test images; Happy is the
  largest class and Disgust has about 1.5% of the images, as in FER2013).
* **Faces** from the same painter as the SFEW-like frames
  (:mod:`numpy_cnn.data.synthetic.face_drawing`), cropped the way
  :mod:`numpy_cnn.data.faces` crops a detected face (a square about 1.2 face
  heights across, with a little jitter in scale, position and tilt), so
  features learnt here fit those crops. The actors are other people than in
  the SFEW-like set, and the test actors are others again than the training
  ones, so the test accuracy measures expressions, not identities.

Image ``i`` of class ``c`` in split ``s`` is a pure function of
``(seed, s, c, i)``, whatever the number of worker processes.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from numpy_cnn.errors import UserError
from numpy_cnn.data.classes import CLASSES
from numpy_cnn.data.synthetic.face_drawing import Actor, draw_face, expression_cues, place_face
from numpy_cnn.data.synthetic.generated import make_once
from numpy_cnn.data.synthetic.png import write_png
from numpy_cnn.data.synthetic.sfew import add_grain, make_grain, smooth_field

# Kaggle's FER2013 per class: training images, and test images (PublicTest + PrivateTest).
FER2013_COUNTS = {
    "train": {"Angry": 3995, "Disgust": 436, "Fear": 4097, "Happy": 7215,
              "Neutral": 4965, "Sad": 4830, "Surprise": 3171},
    "test": {"Angry": 958, "Disgust": 111, "Fear": 1024, "Happy": 1774,
             "Neutral": 1233, "Sad": 1247, "Surprise": 831},
}
SPLITS = tuple(FER2013_COUNTS)
PREFIXES = {"train": "Training", "test": "PublicTest"}  # file names as in FER2013's image dumps
ACTORS = {"train": 300, "test": 100}  # identities per split, disjoint
DEFAULT_IMAGES = 5000
RECIPE_VERSION = 2
SIZE = 48
_DRAW = 2 * SIZE  # drawn at twice the size, then averaged down: smooth edges at 48x48
_CROP_FACES = 1.2  # crop side / face height: the detector's box (about the face height) plus 10% margins
_INTENSITY = (0.3, 1.0)
_CUE_NOISE = 0.25


def fer_counts(images: int = DEFAULT_IMAGES) -> dict[str, dict[str, int]]:
    """Images per split and class: FER2013's counts scaled to exactly ``images`` in all, at least 1 each.

    Largest remainders: every cell gets the floor of its share (at least 1), and the
    images left over go to the cells whose shares lost the most to the floor, so
    ``make-data fer --images N`` writes N images (plain rounding wrote 5,001 for 5,000).
    Only a set smaller than 14 + a few images cannot keep every cell at 1 or more; it gets
    one image per cell.
    """
    cells = [(split, name, n) for split, per_class in FER2013_COUNTS.items() for name, n in per_class.items()]
    total = sum(n for _, _, n in cells)
    shares = [n * images / total for _, _, n in cells]
    counts = [max(1, int(share)) for share in shares]
    by_remainder = sorted(range(len(cells)), key=lambda i: (counts[i] - shares[i], i))   # most lost first
    for i in by_remainder[:max(0, images - sum(counts))]:
        counts[i] += 1
    # A tiny set (the "at least 1" cells overshoot): take back from the cells most over their share.
    for i in reversed(by_remainder):
        if sum(counts) <= images:
            break
        if counts[i] > 1:
            counts[i] -= 1
    out: dict[str, dict[str, int]] = {split: {} for split in FER2013_COUNTS}
    for (split, name, _), count in zip(cells, counts):
        out[split][name] = count
    return out


def ensure_synthetic_fer(root: Path | str, seed: int = 0, *, images: int = DEFAULT_IMAGES,
                         workers: int = 2) -> Path:
    """Generate the FER2013-like set into ``root`` unless a complete copy is already there.

    Args:
        root: the dataset folder (the command line's default is ``data/synthetic_fer``).
        seed: the dataset seed; a copy made with another seed is regenerated.
        images: training plus test images, split and balanced as in FER2013 (at least 14).
        workers: processes used to draw (1 draws in this process).

    Returns:
        ``root`` with ``train/<Class>/*.png`` and ``test/<Class>/*.png``
        (48x48, mode ``L``) and a ``manifest.json`` written last.
    """
    if images < 2 * len(CLASSES):
        raise UserError(f"the FER2013-like set needs at least {2 * len(CLASSES)} images "
                        f"(one per class in train and test), got {images}")
    root = Path(root)
    counts = fer_counts(images)

    def fill(folder: Path) -> None:
        jobs = []
        for split in SPLITS:
            for c, name in enumerate(CLASSES):
                (folder / split / name).mkdir(parents=True)
                n = counts[split][name]
                jobs += [(folder, seed, split, c, range(i, min(n, i + 100))) for i in range(0, n, 100)]
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_write_block, jobs))
        else:
            for job in jobs:
                _write_block(job)

    def complete(folder: Path) -> bool:
        return all(len(list((folder / split / name).glob("*.png"))) == n
                   for split, per_class in counts.items() for name, n in per_class.items())

    manifest = {"recipe_version": RECIPE_VERSION, "seed": seed, "counts": counts}
    return make_once(root, manifest, fill, complete, "FER2013-like synthetic dataset")


def _write_block(job: tuple[Path, int, str, int, range]) -> None:
    folder, seed, split, c, indices = job
    for i in indices:
        image = draw_crop(seed, split, CLASSES[c], i)
        write_png(folder / split / CLASSES[c] / f"{PREFIXES[split]}_{i:05d}.png", np.asarray(image))


def draw_crop(seed: int, split: str, expression: str, index: int) -> Image.Image:
    """Image ``index`` of ``expression`` in ``split``: a 48x48 grayscale face crop (mode ``L``).

    Its actor is one of the split's :data:`ACTORS` identities.
    """
    s = SPLITS.index(split)
    rng = np.random.default_rng([seed, 3, s, CLASSES.index(expression), index])
    actor = Actor.random(np.random.default_rng([seed, 3000, s, int(rng.integers(ACTORS[split]))]))
    face_height = _DRAW / _CROP_FACES * rng.uniform(0.9, 1.15)
    cues = expression_cues(expression, rng.uniform(*_INTENSITY), actor, rng, noise=_CUE_NOISE)
    face = draw_face(actor, cues, face_height, light=rng.uniform(-0.3, 0.3))
    canvas = smooth_field(rng, rng.uniform(20, 235, 3), rng.uniform(20, 235, 3), (_DRAW, _DRAW))
    at = np.array([_DRAW / 2, _DRAW / 2]) + rng.uniform(-0.05, 0.05, 2) * _DRAW
    place_face(canvas, face, actor, face_height, face_height, rng.uniform(-8, 8), at)
    canvas = add_grain(canvas, make_grain(rng, rng.uniform(1.0, 6.0), (_DRAW, _DRAW), block=1))
    return canvas.convert("L").reduce(2)
