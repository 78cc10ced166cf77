"""Class balance: a balanced sampler (``--balance sampler``) and class weights for the loss (``--balance loss``).

FER and SFEW are unbalanced (Disgust is rare): a network that never says
Disgust loses little accuracy. Two standard remedies, each opt-in:

* :func:`balanced_order` draws an epoch's N training images *with
  replacement*, each with probability proportional to 1 / (its class's
  count): every class is drawn equally often on average, rare images repeat
  and common ones are left out. This is PyTorch's
  ``WeightedRandomSampler(weights=1 / counts[y], num_samples=N, replacement=True)``
  in distribution (not draw for draw: the random streams differ).
* :func:`class_weights` gives ``cross_entropy(..., weight=w)`` the inverse
  class frequencies, so each class contributes equally to the loss.
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.errors import UserError


def balanced_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N,) labels -> (N,) int64 indices into them: N draws with replacement, P(i) ∝ 1 / count[y_i].

    Every class present is drawn with probability 1 / (number of classes present).
    One call of ``rng.choice`` (the run's Generator), so a seed gives the same epochs.
    """
    y = np.asarray(y, np.int64)
    if len(y) == 0:
        return np.zeros(0, np.int64)
    counts = np.bincount(y)
    p = 1.0 / counts[y]
    return rng.choice(len(y), size=len(y), replace=True, p=p / p.sum()).astype(np.int64)


def class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """(K,) float64 weights ∝ 1 / count of each class in ``y``, scaled to mean 1 over the classes present.

    A class absent from ``y`` gets weight 0: it is never a target, and with
    label smoothing its share is left out too. The scale does not change the
    loss (PyTorch's weighted mean divides by the targets' total weight); mean 1
    keeps the numbers readable (a balanced set gets all ones).
    """
    y = np.asarray(y, np.int64)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise UserError(f"class_weights: labels must be in [0, {num_classes}), got {y.min()}..{y.max()}")
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = 1.0 / counts[present]
    return w / w[present].mean() if present.any() else w
