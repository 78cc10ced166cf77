"""The run directory: what a run leaves behind, and the rule that it never overwrites another run.

::

    runs/<timestamp>/
        checkpoint.npz        model + optimizer + settings, after the last completed epoch
        recipe.toml           every setting that defines the run, to replay it (numpy_cnn/train/recipe.py)
        train.txt, test.txt   the split, one "relative/path label" per line
        val.txt               with --val-frac: the validation images carved from train.txt's (a record)
        groups.txt            with --group-by: "relative/path<TAB>group" per image
        metrics.csv, .json    one row per epoch: losses, accuracies (test, or val with --val-frac),
                              seconds, gradient norms (and the lr with an --lr-schedule)
        table1.md             the paper's Table 1 for the test set, and the balanced accuracy
        results.json          overall and per-class test accuracy, its 95% interval, the leakage report, ...
        loss.png, accuracy.png, confusion_matrix.png
        faces.png             with --crop-faces: the crops per class, frames without a face marked

Every file is written to a temporary name and renamed into place, so an
interrupted run never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from numpy_cnn.atomic import write_atomically
from numpy_cnn.data import CLASSES, GROUPS_FILE, TEST_SPLIT_FILE, TRAIN_SPLIT_FILE
from numpy_cnn.errors import UserError

CHECKPOINT = "checkpoint.npz"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
TABLE1 = "table1.md"
RESULTS = "results.json"
PLOTS = ("loss.png", "accuracy.png", "confusion_matrix.png")
FACE_SHEET = "faces.png"
VAL_SPLIT_FILE = "val.txt"
# Every file a run writes besides its split: any of them means a run (or what is left of
# one) lives here, and a new run would overwrite it.
_RUN_MARKERS = (CHECKPOINT, METRICS_CSV, METRICS_JSON, TABLE1, RESULTS, *PLOTS)


def check_output_folder(path: Path, flag: str) -> None:
    """Refuse ``path`` as an output folder unless it is one, or can be made, and is writable.

    Creates nothing, so it can run before the data is loaded: a bad ``--out``
    costs no time and leaves no empty folder behind.
    """
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: is a file, not a folder; choose another {flag}")
    existing = path
    while not existing.exists():   # the nearest folder that exists will hold the new ones
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{path}: {existing} is a file, so no folder can be made there; "
                        f"choose another {flag}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write in {existing} (permission denied); "
                        f"choose another {flag} or fix its permissions")


def check_new_run_dir(out: Path, reuse_split_here: bool) -> None:
    """Refuse an ``--out`` that is not a writable folder, already holds a run, or a split we would overwrite."""
    check_output_folder(out, "--out")
    held = [name for name in _RUN_MARKERS if (out / name).exists()]
    if held:
        raise UserError(f"{out} already holds a run ({', '.join(held)}); continue it with "
                        f"--resume {out}, or choose another --out")
    splits = [name for name in (TRAIN_SPLIT_FILE, TEST_SPLIT_FILE) if (out / name).exists()]
    if splits and not reuse_split_here:
        raise UserError(f"{out} already holds split files ({', '.join(splits)}); train on them with "
                        "--reuse-split, or choose another --out")


def remove_unfinished_run(out: Path, made_folder: bool) -> None:
    """Undo a new run that stopped before saving an epoch, so the same command can simply be rerun.

    Only what that run wrote goes: its split files (``check_new_run_dir`` made
    sure none were there before), its ``faces.png`` and ``out`` itself if the run made it and it is
    now empty. Call it only when the run wrote the split files (not when it
    trained on the user's own split files in ``out``).
    """
    for name in (TRAIN_SPLIT_FILE, TEST_SPLIT_FILE, VAL_SPLIT_FILE, GROUPS_FILE, FACE_SHEET):
        (out / name).unlink(missing_ok=True)
    if made_folder and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


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
    """``loss.png``, ``accuracy.png`` and ``confusion_matrix.png`` (matplotlib loads only now).

    The curves are train and test per epoch, or train and val with ``--val-frac`` (the
    test set is then evaluated once, at the end: the confusion matrix).
    """
    from numpy_cnn.study.plots import plot_confusion, plot_curves

    loss_png, accuracy_png, confusion_png = (out / name for name in PLOTS)
    epochs = [r["epoch"] for r in history]
    other = "val" if "val_acc" in history[0] else "test"
    plot_curves(loss_png, epochs, {"train": [r["train_loss"] for r in history],
                                   other: [r[f"{other}_loss"] for r in history]},
                "cross-entropy loss", "Loss")
    plot_curves(accuracy_png, epochs, {"train": [100 * r["train_acc"] for r in history],
                                       other: [100 * r[f"{other}_acc"] for r in history]},
                "accuracy (%)", "Accuracy")
    plot_confusion(confusion_png, confusion, classes,
                   f"Test confusion matrix, epoch {epochs[-1]}")


def write_face_sheet(out: Path, ds) -> None:
    """``faces.png``: the crops of a run's images per class, frames without a face marked."""
    from numpy_cnn.study.plots import plot_face_sheet

    out.mkdir(parents=True, exist_ok=True)
    plot_face_sheet(out / FACE_SHEET, np.concatenate([ds.x_train, ds.x_test]),
                    np.concatenate([ds.y_train, ds.y_test]), np.concatenate([ds.faces_train, ds.faces_test]),
                    CLASSES)
