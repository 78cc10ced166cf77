"""Helpers shared by the data tests: tiny class-folder datasets and one-line error checks.

Each image is an 8x8 gray square whose value ``30 * label + 10`` encodes its
class, so a test can check every label the loader returns against the pixels
it decoded (:func:`label_of_pixels`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from numpy_cnn.data import CLASSES
from numpy_cnn.errors import UserError


def write_image(path: Path, label: int, fmt: str | None = None) -> Path:
    """One 8x8 gray image of class ``label`` at ``path`` (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), 30 * label + 10).save(path, format=fmt)
    return path


def label_of_pixels(x):
    """The class each decoded image of ``x`` (N, H, W) was written as."""
    return (x[:, 0, 0].astype(int) - 10) // 30


def class_folders(root: Path, per_class: int = 2, *, filename: str = "frame {i}.png",
                  names: dict[str, str] | None = None) -> Path:
    """``root/<Class>/<filename>`` for each class, ``filename`` formatted with ``name``,
    ``lower`` (the class name lower-cased) and ``i``. ``names`` maps a class to its
    folder name; classes missing from it get no folder."""
    names = {name: name for name in CLASSES} if names is None else names
    for label, name in enumerate(CLASSES):
        if name in names:
            for i in range(per_class):
                write_image(root / names[name] / filename.format(name=name, lower=name.lower(), i=i), label)
    return root


def write_pair(split: Path, train: bytes, test: bytes = b"Sad/frame 1.png 5\n") -> Path:
    """``split/train.txt`` and ``split/test.txt`` with these bytes, as a user might write them."""
    split.mkdir(exist_ok=True)
    (split / "train.txt").write_bytes(train)
    (split / "test.txt").write_bytes(test)
    return split


def one_line_error(call, *needles) -> str:
    """Run ``call``: it must raise a one-line :class:`UserError` holding every needle; returns the message."""
    with pytest.raises(UserError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert str(needle) in message, message
    return message
