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
    ax.xaxis.get_major_locator().set_params(integer=True)   # epoch 1, 2, 3: never 1.5
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
                    per_class: int = 8) -> None:
    """Face crops and misses side by side, one row per class, so the user sees what the detector did.

    Left panel: frames where a face was found, as the crops the network sees.
    Right panel: frames without a face, kept whole (or dropped), framed in red.
    Each row is labelled with its counts, so neither the crops nor the misses
    hide behind the other in a sample (on real film frames the misses are many).

    Args:
        x: (N, S, S) uint8 crops (whole frames where no face was found).
        y: (N,) labels.
        faces: (N,) faces found per frame (0: none).
        classes: the class names, indexed by label.
        per_class: how many images each panel shows per class at most.
    """
    plt = pyplot()
    size = x.shape[-1]
    pad = max(2, size // 12)
    cell = size + 2 * pad

    def sheet(pick_missed: bool) -> np.ndarray:
        out = np.full((len(classes) * cell, per_class * cell, 3), 255, np.uint8)
        for row in range(len(classes)):
            members = np.flatnonzero(y == row)
            chosen = members[(faces[members] == 0) == pick_missed][:per_class]
            for col, i in enumerate(chosen):
                top, left = row * cell, col * cell
                if pick_missed:
                    out[top + 1:top + cell - 1, left + 1:left + cell - 1] = (220, 30, 30)
                out[top + pad:top + pad + size, left + pad:left + pad + size] = x[i][..., None]
        return out

    found = [int(np.sum((y == r) & (faces > 0))) for r in range(len(classes))]
    missed = [int(np.sum((y == r) & (faces == 0))) for r in range(len(classes))]
    width = 2 * (per_class * 0.75) + 2.5
    fig, (left, right) = plt.subplots(1, 2, figsize=(width, len(classes) * 0.9 + 0.8))
    ticks = [r * cell + cell / 2 for r in range(len(classes))]
    for ax, image, title, labels in (
            (left, sheet(False), f"face found: {sum(found)} crops", [f"{n}: {f}" for n, f in zip(classes, found)]),
            (right, sheet(True), f"no face found: {sum(missed)} whole frames (red)", [str(m) for m in missed])):
        ax.imshow(image, interpolation="nearest")
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.set_xticks([])
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"Face crops per class ({len(x)} frames)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
