"""Classification results: the confusion matrix and the paper's Table 1.

Table 1 of the paper lists, per expression, how many test images there are
(total), how many the network got right (correct) and their ratio
(accuracy), then the same over all images (35.56% on real SFEW).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(target: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(N,) true and (N,) predicted class indices -> (K, K) int64 counts, rows = true class."""
    index = np.asarray(target, np.int64) * num_classes + np.asarray(predicted, np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_table(confusion: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """One row per class plus an ``Overall`` row: ``class, total, correct, accuracy`` (accuracy in [0, 1]).

    A class without test images has accuracy ``None`` (it is not 0%: nothing was asked).
    """
    total = confusion.sum(axis=1)
    correct = np.diag(confusion)
    rows = [{"class": name, "total": int(t), "correct": int(c), "accuracy": c / t if t else None}
            for name, t, c in zip(classes, total, correct)]
    n, k = int(total.sum()), int(correct.sum())
    rows.append({"class": "Overall", "total": n, "correct": k, "accuracy": k / n if n else None})
    return rows


def format_table1(rows: list[dict]) -> str:
    """The rows of :func:`per_class_table` as a Markdown table, accuracy in percent (2 decimals)."""
    lines = ["| Class | Total | Correct | Accuracy |", "|---|---:|---:|---:|"]
    for r in rows:
        acc = "n/a" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"
        name = f"**{r['class']}**" if r["class"] == "Overall" else r["class"]
        lines.append(f"| {name} | {r['total']} | {r['correct']} | {acc} |")
    return "\n".join(lines) + "\n"
