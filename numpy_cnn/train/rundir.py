"""The run directory: what a run leaves behind, and the rule that it never overwrites another run.

::

    runs/<timestamp>/
        checkpoint.npz        model + optimizer + settings, after the last completed epoch
        train.txt, test.txt   the split, one "relative/path label" per line
        metrics.csv, .json    one row per epoch: losses, accuracies, seconds, gradient norms
        table1.md             the paper's Table 1 for the test set
        results.json          overall and per-class test accuracy, train accuracy, time, ...
        loss.png, accuracy.png, confusion_matrix.png

Every file is written to a temporary name and renamed into place, so an
interrupted run never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.dataset import TEST_SPLIT_FILE, TRAIN_SPLIT_FILE
from ..data.atomic import write_atomically
from ..errors import UserError

CHECKPOINT = "checkpoint.npz"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
TABLE1 = "table1.md"
RESULTS = "results.json"
# Files that mean "a run lives here".
_RUN_MARKERS = (CHECKPOINT, METRICS_CSV, RESULTS)


def check_new_run_dir(out: Path, reuse_split_here: bool) -> None:
    """Refuse an ``--out`` folder that already holds a run (or a split we would overwrite)."""
    held = [name for name in _RUN_MARKERS if (out / name).exists()]
    if held:
        raise UserError(f"{out} already holds a run ({', '.join(held)}); continue it with "
                        f"--resume {out}, or choose another --out")
    splits = [name for name in (TRAIN_SPLIT_FILE, TEST_SPLIT_FILE) if (out / name).exists()]
    if splits and not reuse_split_here:
        raise UserError(f"{out} already holds split files ({', '.join(splits)}); train on them with "
                        "--reuse-split, or choose another --out")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically (temporary file, then rename)."""
    write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: Path, value: object) -> None:
    write_text(path, json.dumps(value, indent=1) + "\n")


def write_metrics(out: Path, history: Sequence[dict]) -> None:
    """``metrics.csv`` (one row per epoch, for spreadsheets) and ``metrics.json`` (the same rows)."""
    if not history:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(out / METRICS_CSV, buffer.getvalue())
    write_json(out / METRICS_JSON, list(history))


def write_plots(out: Path, history: Sequence[dict], confusion: np.ndarray, classes: Sequence[str]) -> None:
    """``loss.png``, ``accuracy.png`` and ``confusion_matrix.png`` (matplotlib loads only now)."""
    from ..plots import plot_confusion, plot_curves

    epochs = [r["epoch"] for r in history]
    plot_curves(out / "loss.png", epochs, {"train": [r["train_loss"] for r in history],
                                           "test": [r["test_loss"] for r in history]},
                "cross-entropy loss", "Loss")
    plot_curves(out / "accuracy.png", epochs, {"train": [100 * r["train_acc"] for r in history],
                                               "test": [100 * r["test_acc"] for r in history]},
                "accuracy (%)", "Accuracy")
    plot_confusion(out / "confusion_matrix.png", confusion, classes,
                   f"Test confusion matrix, epoch {epochs[-1]}")
