"""Group-disjoint stratified splits and K-fold assignment, checked as properties over many seeds."""

from collections import Counter

import numpy as np
import pytest
from data_support import one_line_error

from numpy_cnn.data.split import group_split, stratified_folds

SEEDS = range(40)


def _random_grouped_labels(seed, multi_class=False):
    """7 classes of 20-100 images in groups of 1-4 (one class each: SFEW clips), or, with
    ``multi_class``, 30 groups that each span several classes (films)."""
    rng = np.random.default_rng(seed)
    if multi_class:
        labels = rng.integers(0, 7, 400)
        return labels, [f"film{g}" for g in rng.integers(0, 30, 400)]
    labels, groups = [], []
    for c in range(7):
        size, j = int(rng.integers(20, 100)), 0
        while size > 0:
            n = int(rng.integers(1, 5))
            labels += [c] * n
            groups += [f"{c}-{j}"] * n
            size, j = size - n, j + 1
    order = rng.permutation(len(labels))   # a listing is not sorted by group
    return np.array(labels)[order], [groups[i] for i in order]


def _largest_group(labels, groups, c):
    return max(Counter(g for g, y in zip(groups, labels.tolist()) if y == c).values())


@pytest.mark.parametrize("seed", SEEDS)
def test_no_group_crosses_and_each_class_is_within_one_group_of_its_target(seed):
    labels, groups = _random_grouped_labels(seed)
    train, test = group_split(labels, groups, 0.2, seed)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))   # a partition
    g = np.array(groups)
    assert not set(g[train]) & set(g[test])
    for c in range(7):
        n = int((labels == c).sum())
        target = min(max(round(0.2 * n), 1), n - 1)
        got = int((labels[test] == c).sum())
        assert 0 < got < n                                  # every class on both sides
        assert abs(got - target) <= _largest_group(labels, groups, c), (c, got, target)


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_groups_spanning_classes_stay_whole_and_classes_stay_close(seed):
    labels, groups = _random_grouped_labels(seed, multi_class=True)
    train, test = group_split(labels, groups, 0.2, seed)
    g = np.array(groups)
    assert not set(g[train]) & set(g[test])
    counts = np.bincount(labels, minlength=7)
    assert np.abs(np.bincount(labels[test], minlength=7) - 0.2 * counts).max() <= 6


@pytest.mark.parametrize("seed", SEEDS)
def test_folds_test_every_image_once_and_keep_groups_whole(seed):
    labels, groups = _random_grouped_labels(seed)
    fold = stratified_folds(labels, 5, seed, groups)
    assert fold.shape == labels.shape and set(fold.tolist()) == set(range(5))   # each image in one fold
    g = np.array(groups)
    for k in range(5):
        assert not set(g[fold == k]) & set(g[fold != k])
        for c in range(7):
            got = int(((fold == k) & (labels == c)).sum())
            assert got > 0 and abs(got - (labels == c).sum() / 5) <= 2 * _largest_group(labels, groups, c)


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_folds_without_groups_differ_by_at_most_one_image_per_class(seed):
    labels = np.random.default_rng(seed).integers(0, 7, 300)
    fold = stratified_folds(labels, 5, seed)
    for c in range(7):
        per_fold = np.bincount(fold[labels == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    labels, groups = _random_grouped_labels(0)
    assert all((a == b).all() for a, b in zip(group_split(labels, groups, 0.2, 3), group_split(labels, groups, 0.2, 3)))
    assert not np.array_equal(group_split(labels, groups, 0.2, 3)[1], group_split(labels, groups, 0.2, 4)[1])


def test_a_class_in_one_group_or_too_few_groups_is_one_line():
    labels = np.array([0, 0, 0, 1, 1, 1])
    groups = ["a", "a", "a", "b", "c", "d"]
    one_line_error(lambda: group_split(labels, groups, 0.2, 0, unit="clip"), "class Angry has 1 clip (of 3 images)",
                   "wholly on one side")
    one_line_error(lambda: stratified_folds(labels, 4, 0, ["a", "b", "c", "d", "e", "f"], unit="clip"),
                   "class Angry has 3 clips", "--folds 4 needs at least 4", "fewer --folds")
    one_line_error(lambda: stratified_folds(labels, 4, 0), "class Angry has 3 images", "--folds 4")
    one_line_error(lambda: stratified_folds(labels, 1, 0), "--folds must be at least 2")
