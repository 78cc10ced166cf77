"""The run's figures: loss and accuracy curves, and the confusion matrix, as PNG files.

matplotlib is imported inside :func:`pyplot`, with the non-interactive Agg
backend, so importing this module (or training with plots never drawn) costs
nothing and works without a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display), imported on first use."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_curves(path: Path, epochs: Sequence[int], series: dict[str, Sequence[float]],
                ylabel: str, title: str) -> None:
    """Line plot of each named series against the epoch number, saved to ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in series.items():
        ax.plot(epochs, values, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(path: Path, confusion: np.ndarray, classes: Sequence[str], title: str) -> None:
    """(K, K) counts (rows = true class) as a heat map with the count in each cell."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    image = ax.imshow(confusion, cmap="Blues")
    k = len(classes)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    high = confusion.max() / 2 if confusion.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, int(confusion[i, j]), ha="center", va="center",
                    color="white" if confusion[i, j] > high else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_face_sheet(path: Path, x: np.ndarray, y: np.ndarray, faces: np.ndarray, classes: Sequence[str],
                    per_class: int = 12) -> None:
    """A contact sheet of face crops, one row per class, so the user sees what the detector did.

    Frames without a face (kept whole, or dropped) come first in their row, in a
    red frame, so a missed face is never hidden by the sample; each row is titled
    with its class and how many of its frames had no face.

    Args:
        x: (N, S, S) uint8 crops; y: (N,) labels; faces: (N,) faces found per frame.
    """
    plt = pyplot()
    n, size = len(x), x.shape[-1]
    pad = max(2, size // 12)
    cell = size + 2 * pad
    sheet = np.full((len(classes) * cell, per_class * cell, 3), 255, np.uint8)
    titles = []
    for row, name in enumerate(classes):
        members = np.flatnonzero(y == row)
        missed = members[faces[members] == 0]
        chosen = np.concatenate([missed, members[faces[members] > 0]])[:per_class]
        titles.append(f"{name}: {len(missed)} of {len(members)} without a face")
        for col, i in enumerate(chosen):
            top, left = row * cell, col * cell
            if faces[i] == 0:
                sheet[top + 1:top + cell - 1, left + 1:left + cell - 1] = (220, 30, 30)
            sheet[top + pad:top + pad + size, left + pad:left + pad + size] = x[i][..., None]
    fig, ax = plt.subplots(figsize=(per_class * 0.75 + 0.5, len(classes) * 0.9 + 0.6))
    ax.imshow(sheet, interpolation="nearest")
    ax.set_yticks([r * cell + cell / 2 for r in range(len(classes))], titles, fontsize=8)
    ax.set_xticks([])
    ax.set_title(f"Face crops per class ({n} frames; red: no face found, whole frame)", fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
