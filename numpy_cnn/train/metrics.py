"""Classification results: the confusion matrix, the paper's Table 1 and balanced accuracy.

Table 1 of the paper lists, per expression, how many test images there are
(total), how many the network got right (correct) and their ratio
(accuracy), then the same over all images (35.56% on real SFEW).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def confusion_matrix(target: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(N,) true and (N,) predicted class indices -> (K, K) int64 counts, rows = true class."""
    index = np.asarray(target, np.int64) * num_classes + np.asarray(predicted, np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def balanced_accuracy(confusion: np.ndarray) -> float:
    """The mean of the per-class recalls (K, K) confusion -> float in [0, 1]; NaN without test images.

    Recall of class k = ``confusion[k, k] / confusion[k].sum()`` (rows = true class).
    The mean is over the classes present in the test set (a row sum > 0): a class
    with no test images has no recall, not a recall of 0 (as
    ``sklearn.metrics.balanced_accuracy_score``, which averages over the classes of
    ``y_true``). A network that always answers the largest class scores
    1 / (classes present), whatever the accuracy that buys.
    """
    confusion = np.asarray(confusion)
    total = confusion.sum(axis=1)
    present = total > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(confusion)[present] / total[present]))


def per_class_table(confusion: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """One row per class plus an ``Overall`` row: ``class, total, correct, accuracy`` (accuracy in [0, 1]).

    A class without test images has accuracy ``None`` (it is not 0%: nothing was asked).
    The ``Overall`` row also holds ``ci95``, the 95% Wilson interval ``[lo, hi]`` of its
    accuracy (:func:`wilson_interval`), or ``None`` without test images.
    """
    total = confusion.sum(axis=1)
    correct = np.diag(confusion)
    rows = [{"class": name, "total": int(t), "correct": int(c), "accuracy": c / t if t else None}
            for name, t, c in zip(classes, total, correct)]
    n, k = int(total.sum()), int(correct.sum())
    rows.append({"class": "Overall", "total": n, "correct": k, "accuracy": k / n if n else None,
                 "ci95": list(wilson_interval(k, n)) if n else None})
    return rows


def format_table1(rows: list[dict]) -> str:
    """The rows of :func:`per_class_table` as a Markdown table, accuracy in percent (2 decimals),
    the overall row with its 95% interval."""
    lines = ["| Class | Total | Correct | Accuracy |", "|---|---:|---:|---:|"]
    for r in rows:
        acc = "n/a" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"
        if r.get("ci95"):
            acc += f" (95% CI {percent_range(r['ci95'])})"
        name = f"**{r['class']}**" if r["class"] == "Overall" else r["class"]
        lines.append(f"| {name} | {r['total']} | {r['correct']} | {acc} |")
    return "\n".join(lines) + "\n"


def percent_range(interval: Sequence[float]) -> str:
    """``[0.271, 0.437] -> '27.1–43.7%'``."""
    return f"{100 * interval[0]:.1f}\u2013{100 * interval[1]:.1f}%"


# -- intervals ----------------------------------------------------------------
# Why they matter: with n = 135 test images an accuracy of 35% has a 95% interval of
# about 27%-44%, so one split cannot tell 35% from 40%.

Z95 = 1.959963984540054   # the standard normal's 97.5% quantile


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``correct / total`` (Wilson 1927).

    With p = k/n::

        centre = (p + z^2 / 2n) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)

    Unlike p +- z sqrt(p(1-p)/n) it stays inside [0, 1] and is not empty at
    p = 0 or 1. Returns ``(lo, hi)``; ``(nan, nan)`` for ``total == 0``.
    """
    if total <= 0:
        return float("nan"), float("nan")
    p, n = correct / total, total
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The t-interval of the mean of ``values`` (K >= 2 fold accuracies)::

        mean +- t_{(1 + confidence) / 2, K - 1} * s / sqrt(K)

    with s the sample standard deviation (ddof = 1). Returns ``(lo, hi)``.
    """
    x = np.asarray(values, np.float64)
    if len(x) < 2:
        raise ValueError("a t-interval needs at least 2 values")
    half = t_quantile((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (no scipy).

    Bisection on the CDF, F(t) = 1 - I_{df / (df + t^2)}(df/2, 1/2) / 2 for t >= 0,
    where I is the regularised incomplete beta function (:func:`_betainc`);
    exact to ~1e-12, e.g. t(0.975, 4) = 2.776445.
    """
    if not 0 < p < 1 or df < 1:
        raise ValueError(f"need 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1 - p, df)

    def cdf(t: float) -> float:
        return 1 - 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
        if hi - lo < 1e-13 * hi:
            break
    return (lo + hi) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b), by its continued fraction (Numerical Recipes 6.4)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1) / (a + b + 2):   # the fraction converges fast only below this point: use symmetry
        return 1 - _betainc(b, a, 1 - x)
    return math.exp(log_front) * _beta_fraction(a, b, x) / a


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), evaluated by the modified Lentz method."""
    tiny, c, d = 1e-300, 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h
