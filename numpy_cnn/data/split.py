"""Stratified train/test split: the same fraction of every class goes to test.

Per class of n images, ``n_test = round(test_fraction * n)`` clipped to
[1, n - 1], so every class is both trained on and tested. With SFEW's
counts and 0.2 this gives 540 train / 135 test images.
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.data.classes import CLASSES


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


def group_split(labels: np.ndarray, groups: list[str], test_fraction: float = 0.2,
                rng: np.random.Generator | int = 0, unit: str = "group") -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`stratified_split`, but every group lies wholly on one side.

    Each class's test target is :func:`stratified_split`'s ``round(test_fraction * n)``
    (clipped to [1, n - 1]); whole groups are dealt out by :func:`assign_groups`,
    so a class misses its target by at most its largest group (when groups hold
    one class each, as SFEW clips do).

    Args:
        labels: (N,) class indices.
        groups: N group names (see :mod:`.groups`).
        unit: what a group is called in errors (``clip``, ``film``, ``subject``).

    Returns:
        (train_idx, test_idx): sorted int64 index arrays that partition ``range(N)``.

    Raises:
        UserError: fewer than two groups, or a class whose images all lie in one group.
    """
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"test fraction must be between 0 and 1, got {test_fraction}")
    labels = np.asarray(labels)
    _check_groups_per_class(labels, groups, 2, unit, "a group-disjoint train/test split",
                            "it would land wholly on one side", "or a finer --group-by")
    counts = np.bincount(labels, minlength=len(CLASSES))
    n_test = np.where(counts > 0, np.clip(np.round(test_fraction * counts), 1, counts - 1), 0)
    side = assign_groups(labels, groups, np.stack([counts - n_test, n_test]), np.random.default_rng(rng))
    return np.flatnonzero(side == 0).astype(np.int64), np.flatnonzero(side == 1).astype(np.int64)


def stratified_folds(labels: np.ndarray, k: int, rng: np.random.Generator | int = 0,
                     groups: list[str] | None = None, unit: str = "group") -> np.ndarray:
    """The test fold (0 .. k-1) of every image: stratified K-fold, group-aware when ``groups`` is given.

    Every image is in exactly one test fold; fold f trains on the others. Without
    groups each image is its own group, so every class's fold counts differ by at
    most one from ``n / k``.

    Returns:
        (N,) int64 fold index per image.

    Raises:
        UserError: ``k < 2``, or a class with fewer images (or groups) than ``k``.
    """
    labels = np.asarray(labels)
    if k < 2:
        raise UserError(f"--folds must be at least 2 (got {k}): each fold tests on images the others train on")
    if groups is None:
        groups, unit = [str(i) for i in range(len(labels))], "image"
    _check_groups_per_class(labels, groups, k, unit, f"--folds {k}", "some fold would not test it",
                            "or fewer --folds")
    counts = np.bincount(labels, minlength=len(CLASSES))
    targets = np.tile(counts / k, (k, 1))
    return assign_groups(labels, groups, targets, np.random.default_rng(rng))


def assign_groups(labels: np.ndarray, groups: list[str], targets: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Deal whole groups into bins so each bin's class counts come close to ``targets``.

    Greedy, largest group first (ties in random order): a group goes to the bin
    where it lowers ``sum_c (count[b, c] - targets[b, c])^2`` the most, i.e. the
    bin furthest below its targets for the group's classes. For groups of one
    class this is filling the emptiest bin, and every bin ends within one
    group size of its target. A group may hold several classes (a film spans
    expressions); it still goes whole to one bin. Then any (bin, class) pair
    left empty, though the class has groups to spare elsewhere, gets the
    cheapest such group moved into it.

    Args:
        labels: (N,) class indices.
        groups: N group names.
        targets: (B, K) wanted image count per bin and class.

    Returns:
        (N,) int64 bin index per image.
    """
    names, group_of = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    n_bins, n_classes = targets.shape
    content = np.zeros((len(names), n_classes), np.int64)          # images per (group, class)
    np.add.at(content, (group_of, labels), 1)
    order = rng.permutation(len(names))
    order = order[np.argsort(-content[order].sum(axis=1), kind="stable")]   # largest first
    count = np.zeros((n_bins, n_classes))
    bin_of = np.empty(len(names), np.int64)

    def cost_of_adding(g: int) -> np.ndarray:
        # (B,) change of sum_c (count - target)^2 if group g joins each bin: |g|^2 + 2 g.(count - target)
        return (content[g] ** 2).sum() + 2 * (count - targets) @ content[g]

    for g in order:
        b = int(np.argmin(cost_of_adding(g)))
        bin_of[g], count[b] = b, count[b] + content[g]
    for _ in range(n_bins * n_classes):   # each move fills one empty (bin, class)
        empty = [(b, c) for b in range(n_bins) for c in range(n_classes) if targets[b, c] > 0 and count[b, c] == 0]
        movable = [(g, b) for b, c in empty for g in np.flatnonzero(content[:, c])
                   if count[bin_of[g], c] > content[g, c]]   # its own bin keeps class c
        if not movable:
            break
        g, b = min(movable, key=lambda gb: _move_cost(content[gb[0]], count, targets, bin_of[gb[0]], gb[1]))
        count[bin_of[g]] -= content[g]
        count[b] += content[g]
        bin_of[g] = b
    return bin_of[group_of]


def _move_cost(content: np.ndarray, count: np.ndarray, targets: np.ndarray, src: int, dst: int) -> float:
    """Change of sum (count - target)^2 when a group with ``content`` moves from bin ``src`` to ``dst``."""
    before = ((count[[src, dst]] - targets[[src, dst]]) ** 2).sum()
    after = ((count[src] - content - targets[src]) ** 2).sum() + ((count[dst] + content - targets[dst]) ** 2).sum()
    return float(after - before)


def _check_groups_per_class(labels: np.ndarray, groups: list[str], needed: int, unit: str, what: str,
                            why: str, advice: str) -> None:
    """Refuse a class with fewer than ``needed`` groups: ``what`` cannot put it on every side (``why``)."""
    for c in np.unique(labels):
        held = {g for g, label in zip(groups, labels.tolist()) if label == c}
        if len(held) < needed:
            units = unit if len(held) == 1 else f"{unit}s"
            raise UserError(f"class {CLASSES[c]} has {len(held)} {units} (of {int((labels == c).sum())} images); "
                            f"{what} needs at least {needed}, else {why}; add images of it, remove the class, "
                            f"{advice}")
