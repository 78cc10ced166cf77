"""Small face sets cut from FER2013's test images, to measure fine-tuning on.

A ``recipes/fer.toml`` model trained on FER2013's training images only, so
its test images are faces it has never seen: cut a small set from them and
fine-tuning (``recipes/finetune.toml``) can be measured on real faces without
SFEW, JAFFE or CK+ (which are not ours to fetch). Two shapes::

    per_class=50     <out>/<Class>/*.png                  50 faces of each class, for K folds
    like="sfew2"     <out>/train/<Class>/*.png  859 faces  the sizes and (about) the class shares
                     <out>/test/<Class>/*.png   405 faces  of SFEW 2.0's official split

Left out: a test image whose pixels equal a training image's (FER2013 has
568 such copies across its split: the model *has* seen those) and the second
copy of a picture inside the test set. What is left is drawn at random per
class, from ``numpy.random.default_rng(seed)``: the same set on every
machine. Images are written as PNG, as decoded (48x48 grey), so a folder
copy and the CSV give the same faces, with a ``manifest.json`` that says how
the set was drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from numpy_cnn.data.classes import CLASSES
from numpy_cnn.data.dataset import load_dataset
from numpy_cnn.data.leakage import pixel_hashes
from numpy_cnn.data.synthetic.generated import make_once
from numpy_cnn.errors import UserError

# A split of SFEW 2.0's shape, per class (Angry .. Surprise): its 859 training and 405 validation
# faces. Disgust 23 and Fear 45 of the 405 are issue 22's counts; the other classes follow the
# shares published for SFEW 2.0, rounded to these totals: close to the real split, not its copy.
SFEW2_TRAIN = (170, 50, 75, 175, 140, 155, 94)
SFEW2_TEST = (72, 23, 45, 68, 80, 66, 51)
SHAPES = {"sfew2": {"train": SFEW2_TRAIN, "test": SFEW2_TEST}}


def unseen_test_faces(source: Path, cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """FER2013's test faces that are no copy of a training face, each picture once.

    Args:
        source: FER2013 as ``train/<class>/`` and ``test/<class>/`` folders, or its CSV.
        cache_dir: folder for the decoded-image cache (None: decode every time).

    Returns:
        ``(x (M, 48, 48) uint8, y (M,) int64, names)``, in the test set's order.
    """
    ds = load_dataset(source, cache_dir=cache_dir)
    if ds.source.split(";")[0] not in ("train/test folders", "fer2013 csv"):   # (a note may follow the layout)
        raise UserError(f"{source}: want FER2013 with its own test set (train/ and test/ folders, or "
                        f"fer2013.csv); this is {ds.source}, with no test set to cut faces from")
    seen = set(pixel_hashes(ds.x_train))
    keep = []
    for i, digest in enumerate(pixel_hashes(ds.x_test)):
        if digest not in seen:
            seen.add(digest)            # a second copy inside the test set is left out too
            keep.append(i)
    return ds.x_test[keep], ds.y_test[keep], [ds.test_files[i] for i in keep]


def make_fer_faces(source: Path, out: Path, *, per_class: int | None = None, like: str | None = None,
                   seed: int = 0, cache_dir: Path | None = None) -> dict[str, int]:
    """Write a small face set drawn from FER2013's unseen test faces into ``out`` (see the module).

    Exactly one of ``per_class`` (that many faces of each class, class folders)
    and ``like`` (a key of :data:`SHAPES`: ``train/`` and ``test/`` folders of
    that split's sizes) is given. ``out`` must not hold anything yet: nothing
    already there is overwritten. Returns the number of faces written per folder.
    """
    if (per_class is None) == (like is None):
        raise UserError("fer-faces: give --per-class N (class folders) or --like sfew2 (a train/test split), "
                        "one of the two")
    if like is not None and like not in SHAPES:
        raise UserError(f"fer-faces: --like must be one of {', '.join(SHAPES)}, got {like!r}")
    if per_class is not None and per_class < 1:
        raise UserError(f"fer-faces: --per-class must be at least 1, got {per_class}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and is not an empty folder; choose a new --out (nothing is overwritten)")
    parts = {"": (per_class,) * len(CLASSES)} if like is None else SHAPES[like]

    x, y, names = unseen_test_faces(source, cache_dir)
    rng = np.random.default_rng(seed)
    drawn = {part: [] for part in parts}
    for k, cls in enumerate(CLASSES):
        pool = np.flatnonzero(y == k)
        wanted = sum(counts[k] for counts in parts.values())
        if len(pool) < wanted:
            raise UserError(f"{source}: only {len(pool)} unseen test faces of {cls}, the set wants {wanted}; "
                            "ask for fewer (--per-class)")
        picked = rng.permutation(pool)[:wanted]
        start = 0
        for part, counts in parts.items():
            drawn[part].extend(picked[start:start + counts[k]])
            start += counts[k]

    written = {part or "class folders": len(indices) for part, indices in drawn.items()}

    def fill(folder: Path) -> None:
        from PIL import Image  # (Pillow: imported where it is used)
        for part, indices in drawn.items():
            for i in indices:
                (folder / part / CLASSES[y[i]]).mkdir(parents=True, exist_ok=True)
                Image.fromarray(x[i]).save(folder / part / CLASSES[y[i]] / f"{_stem(names[i])}.png")

    # Written as the generated sets are (a temporary folder renamed into place, then a manifest):
    # an interrupted run leaves no half set behind.
    manifest = {"kind": "fer-faces", "source": str(source), "seed": seed, "per_class": per_class, "like": like,
                "faces": written}
    make_once(out, manifest, fill, lambda root: True, "fer-faces set")
    return written


def _stem(name: str) -> str:
    """A file name for a test face: its own (``test/fear/PrivateTest_123.jpg``), or its CSV line's."""
    if ".csv:" in name:
        return "row" + name.rsplit(":", 1)[1]
    return Path(name).stem
