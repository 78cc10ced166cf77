"""The leakage report: how much of the test set the training set has already shown the network.

Two kinds of leak, reported in one line and in ``results.json["leakage"]``:

* **shared groups**: a test image whose clip, film or subject (:mod:`.groups`)
  also has a training image. Checked under ``--group-by`` when given, else
  under the scheme the file names follow (SFEW clips, JAFFE or CK+
  subjects), if any. A random 80/20 split of SFEW puts about a third of the
  test frames next to a neighbouring frame of their clip in training.
* **exact duplicates**: a test image whose decoded pixels equal a training
  image's. And when equal pixels are filed under two classes, that is a
  *label conflict* (SFEW's 675 frames hold one frame filed as both Fear and
  Surprise), wherever its copies lie.

The cost is one SHA-1 per decoded image (48x48 bytes), nothing re-read.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from numpy_cnn.data.groups import GroupRule, known_scheme


def pixel_hashes(x: np.ndarray) -> list[bytes]:
    """One SHA-1 digest per image of ``x`` (N, H, W): equal digests mean equal decoded pixels."""
    return [hashlib.sha1(image.tobytes()).digest() for image in x]


def leakage_report(train_files: Sequence[str], test_files: Sequence[str], x_train: np.ndarray,
                   x_test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray,
                   group_by: str | None = None) -> dict:
    """Count the test images that leak, as a JSON-ready dict whose ``line`` says it in words.

    Args:
        train_files: training image names as the split files hold them.
        test_files: test image names, likewise.
        x_train: (N_train, S, S) decoded training images.
        x_test: (N_test, S, S) decoded test images.
        y_train: (N_train,) labels.
        y_test: (N_test,) labels.
        group_by: the run's ``--group-by`` rule, or None to use a known naming scheme.

    Returns:
        ``{"rule", "group_by", "n_test", "shared_group", "duplicates", "label_conflicts",
        "conflict_example", "line"}``; ``rule`` and ``shared_group`` are None when the names
        follow no known scheme and no rule was given.
    """
    rule = GroupRule(group_by) if group_by is not None else known_scheme(list(train_files) + list(test_files))
    shared = None
    if rule is not None:
        trained = {rule.name(f) for f in train_files} - {None}
        shared = sum(rule.name(f) in trained for f in test_files)
    train_hashes, test_hashes = pixel_hashes(x_train), pixel_hashes(x_test)
    trained_pixels = set(train_hashes)
    duplicates = sum(h in trained_pixels for h in test_hashes)
    conflicts = _label_conflicts(train_hashes + test_hashes, np.concatenate([y_train, y_test]),
                                 list(train_files) + list(test_files))
    report = {"rule": None if rule is None else rule.spec, "group_by": group_by, "n_test": len(test_files),
              "shared_group": shared, "duplicates": duplicates, "label_conflicts": len(conflicts),
              "conflict_example": conflicts[0] if conflicts else None}
    report["line"] = leakage_line(report)
    return report


def _label_conflicts(hashes: list[bytes], labels: np.ndarray, files: list[str]) -> list[str]:
    """``"Fear/a.png = Surprise/b.png"`` for every picture whose equal copies are filed under 2+ classes."""
    copies: dict[bytes, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        copies[h].append(i)
    out = []
    for members in copies.values():
        if len({int(labels[i]) for i in members}) > 1:
            first = {}
            for i in members:
                first.setdefault(int(labels[i]), files[i])
            out.append(" = ".join(first.values()))
    return out


def leakage_line(report: dict) -> str:
    """The report in one line: ``leakage: 51 of 135 test frames share a clip with a training frame;
    --group-by clip gives a leak-free split; ...``."""
    n, rule = report["n_test"], report["rule"]
    frames = "frames" if rule in ("clip", "movie") else "images"
    unit = GroupRule(rule).unit if rule else None
    if rule is None:
        parts = ["names follow no known clip or subject scheme, so shared groups are unchecked "
                 "(--group-by REGEX can name them)"]
    elif report["shared_group"]:
        fix = (f"--group-by {rule} gives a leak-free split" if report["group_by"] is None else
               f"the split files do not follow --group-by {rule}; drop --reuse-split to split by {unit}")
        parts = [f"{report['shared_group']} of {n} test {frames} share a {unit} with a training "
                 f"{frames[:-1]}; {fix}"]
    else:
        parts = [f"no test {frames[:-1]} shares a {unit} with a training {frames[:-1]}"
                 + ("" if report["group_by"] else f" (names read as {rule}s)")]
    dup = report["duplicates"]
    parts.append(f"{dup} test {'image is an exact copy' if dup == 1 else 'images are exact copies'} "
                 "of training images" if dup else "no test image is an exact copy of a training image")
    if report["label_conflicts"]:
        k = report["label_conflicts"]
        parts.append(f"{k} {'picture is' if k == 1 else 'pictures are'} filed under two classes "
                     f"({report['conflict_example']}{', ...' if k > 1 else ''})")
    return "leakage: " + "; ".join(parts)

