"""Stratified train/test split: the same fraction of every class goes to test.

Per class of n images, ``n_test = round(test_fraction * n)`` clipped to
[1, n - 1], so every class is both trained on and tested. With SFEW's
counts and 0.2 this gives 540 train / 135 test images.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .classes import CLASSES


def stratified_split(
    labels: np.ndarray,
    test_fraction: float = 0.2,
    rng: np.random.Generator | int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices per class into train and test.

    Args:
        labels: (N,) int class indices into :data:`CLASSES`.
        test_fraction: share of each class put in the test set, in (0, 1).
        rng: a ``numpy.random.Generator`` or a seed; no global RNG state is used.

    Returns:
        (train_idx, test_idx): sorted int64 index arrays that partition ``range(N)``.

    Raises:
        UserError: a class has exactly one image, so it cannot be in both sets.
    """
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"test fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(rng)
    labels = np.asarray(labels)
    test = []
    for c in range(len(CLASSES)):
        members = np.flatnonzero(labels == c)
        n = len(members)
        if n == 0:
            continue  # a missing class is allowed; it is simply absent from both sets
        if n == 1:
            raise UserError(
                f"class {CLASSES[c]} has 1 image; a train/test split needs at least 2 per class: "
                "add images, remove that class, or give a separate test set"
            )
        n_test = min(max(round(test_fraction * n), 1), n - 1)
        test.append(rng.permutation(members)[:n_test])
    test_idx = np.sort(np.concatenate(test)) if test else np.empty(0, np.int64)
    train_mask = np.ones(len(labels), bool)
    train_mask[test_idx] = False
    return np.flatnonzero(train_mask).astype(np.int64), test_idx.astype(np.int64)
