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
