"""Class balance: balanced accuracy, the balanced sampler and the class weights of the loss."""

import numpy as np
import pytest

from numpy_cnn.data import MeanSubtraction, to_float
from numpy_cnn.errors import UserError
from numpy_cnn.train import loop
from numpy_cnn.train.balance import balanced_order, class_weights
from numpy_cnn.train.metrics import balanced_accuracy, confusion_matrix


def test_balanced_accuracy_is_the_mean_recall_over_the_classes_present():
    target = np.array([0, 0, 0, 0, 1, 1, 3])
    predicted = np.array([0, 0, 0, 1, 1, 0, 0])
    confusion = confusion_matrix(target, predicted, 4)   # class 2 has no test images: left out
    assert balanced_accuracy(confusion) == pytest.approx((3 / 4 + 1 / 2 + 0 / 1) / 3)
    always_largest = confusion_matrix(target, np.zeros(7, int), 4)
    assert balanced_accuracy(always_largest) == pytest.approx(1 / 3)        # 1 / (classes present)
    assert balanced_accuracy(confusion_matrix(target, target, 4)) == 1.0
    assert np.isnan(balanced_accuracy(np.zeros((3, 3), int)))


def test_balanced_order_draws_every_class_equally_often():
    y = np.repeat([0, 1, 2, 4], [2000, 200, 20, 2])
    order = balanced_order(y, np.random.default_rng(0))
    assert order.shape == y.shape and order.dtype == np.int64
    share = np.bincount(y[order], minlength=5) / len(y)
    np.testing.assert_allclose(share[[0, 1, 2, 4]], 0.25, atol=0.03)
    assert share[3] == 0
    assert len(np.unique(order)) < len(y)                                    # with replacement: repeats
    np.testing.assert_array_equal(order, balanced_order(y, np.random.default_rng(0)))   # the seed decides
    assert balanced_order(np.zeros(0, np.int64), np.random.default_rng(0)).shape == (0,)


def test_balanced_order_has_the_distribution_of_torchs_weighted_random_sampler():
    """Same probabilities, not the same draws: compare the class shares of many draws of each."""
    torch = pytest.importorskip("torch")
    y = np.repeat([0, 1, 2], [600, 60, 6])
    ours = np.bincount(y[np.concatenate([balanced_order(y, np.random.default_rng(s)) for s in range(20)])])
    weights = torch.from_numpy(1.0 / np.bincount(y)[y])
    sampler = torch.utils.data.WeightedRandomSampler(weights, num_samples=len(y) * 20, replacement=True,
                                                     generator=torch.Generator().manual_seed(0))
    theirs = np.bincount(y[np.array(list(sampler))])
    np.testing.assert_allclose(ours / ours.sum(), theirs / theirs.sum(), atol=0.02)
    np.testing.assert_allclose(ours / ours.sum(), 1 / 3, atol=0.02)


def test_epoch_inputs_draw_the_balanced_order_first():
    x = np.random.default_rng(0).integers(0, 256, (30, 4, 4), dtype=np.uint8)
    y = np.repeat([0, 1], [25, 5])
    mean = MeanSubtraction.fit(x)
    ours, theirs = np.random.default_rng(4), np.random.default_rng(4)
    epoch, y_epoch = loop.epoch_inputs(x, y, ours, mean, augment=False, balanced=True)
    order = balanced_order(y, theirs)
    np.testing.assert_array_equal(y_epoch, y[order])
    np.testing.assert_array_equal(epoch[:, 0], loop.network_input(to_float(x[order]), mean, 1)[:, 0])
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_class_weights_are_inverse_frequencies_with_mean_one_over_the_classes_present():
    y = np.repeat([0, 1, 3], [10, 40, 20])
    w = class_weights(y, 4)
    inverse = np.array([1 / 10, 1 / 40, 0.0, 1 / 20])
    np.testing.assert_allclose(w, inverse / inverse[[0, 1, 3]].mean())
    assert w[2] == 0 and w[[0, 1, 3]].mean() == pytest.approx(1.0)
    np.testing.assert_array_equal(class_weights(np.repeat(np.arange(7), 3), 7), np.ones(7))
    # Each class's total weight is the same: every class counts equally in the loss.
    np.testing.assert_allclose((w[y][:, None] * (y[:, None] == [0, 1, 3])).sum(axis=0), w[0] * 10)
    with pytest.raises(UserError, match=r"labels must be in \[0, 4\)"):
        class_weights(np.array([0, 4]), 4)
