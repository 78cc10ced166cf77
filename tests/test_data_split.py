"""Stratified split, mean subtraction and the network-input conversion."""

import numpy as np
import pytest

from numpy_cnn.data import MeanSubtraction, stratified_split, to_float, to_network_input
from numpy_cnn.data.synthetic.sfew import SFEW_COUNTS
from numpy_cnn.errors import UserError

SFEW_LABELS = np.repeat(np.arange(7), list(SFEW_COUNTS.values()))


def test_sfew_counts_give_540_train_135_test():
    train, test = stratified_split(SFEW_LABELS, 0.2, np.random.default_rng(0))
    assert len(train) == 540 and len(test) == 135
    assert np.bincount(SFEW_LABELS[test]).tolist() == [20, 15, 20, 20, 20, 20, 20]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(675))  # a partition


def test_split_is_deterministic_by_seed():
    a = stratified_split(SFEW_LABELS, rng=7)[1]
    b = stratified_split(SFEW_LABELS, rng=np.random.default_rng(7))[1]
    c = stratified_split(SFEW_LABELS, rng=8)[1]
    assert (a == b).all() and not np.array_equal(a, c)


def test_small_classes_keep_one_on_each_side():
    labels = np.array([0, 0, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3])  # 2, 3 and 12; classes 2, 4-6 absent
    train, test = stratified_split(labels, 0.2, 0)
    assert np.bincount(labels[test], minlength=4).tolist() == [1, 1, 0, 2]  # round(0.4)->1, round(0.6)->1, round(2.4)
    assert np.bincount(labels[train], minlength=4).tolist() == [1, 2, 0, 10]


def test_single_image_class_is_an_error():
    with pytest.raises(UserError, match="class Fear has 1 image"):
        stratified_split(np.array([0, 0, 2]), 0.2, 0)


def test_mean_subtraction_scalar_and_per_pixel():
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    scalar = MeanSubtraction.fit(x)
    assert scalar.mean.shape == () and scalar.mean == pytest.approx(to_float(x).mean())
    per_pixel = MeanSubtraction.fit(x, per_pixel=True)
    assert per_pixel.mean.shape == (3, 4)
    net = to_network_input(x)
    assert per_pixel(net).mean(axis=(0, 1)) == pytest.approx(np.zeros((3, 4)), abs=1e-6)
    restored = MeanSubtraction.from_state_dict(scalar.state_dict())
    assert np.array_equal(restored(net), scalar(net)) and restored(net).dtype == np.float32


def test_to_network_input_replicates_gray():
    x = np.array([[[0, 255], [51, 102]]], np.uint8)
    out = to_network_input(x)
    assert out.shape == (1, 3, 2, 2) and out.dtype == np.float32
    assert np.array_equal(out[0, 0], out[0, 2]) and out[0, 1, 1, 0] == pytest.approx(0.2)
    assert np.array_equal(to_network_input(to_float(x)), out)
