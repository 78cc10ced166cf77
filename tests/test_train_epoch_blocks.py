"""An epoch's inputs built a block at a time are the inputs built whole, from the same random draws."""

import numpy as np
import pytest

from numpy_cnn.data import MeanSubtraction, augment, to_float
from numpy_cnn.train import loop


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (150, 8, 8), dtype=np.uint8), rng.integers(0, 7, 150)


@pytest.mark.parametrize("batch", [1, 4, 64, 200])
def test_blocks_equal_the_epoch_augmented_chunk_by_chunk(images, monkeypatch, batch):
    x, y = images
    mean = MeanSubtraction.fit(x)
    monkeypatch.setattr(loop, "BLOCK_IMAGES", 32)          # several blocks, some batches larger than one
    ours, theirs = np.random.default_rng(5), np.random.default_rng(5)
    epoch, y_epoch = loop.epoch_inputs(x, y, ours, mean)
    got = np.concatenate([epoch[s:s + batch] for s in range(0, len(y), batch)])

    # The former way: the order, then each chunk of 64 augmented in turn from the same Generator.
    order = theirs.permutation(len(y))
    expected = np.concatenate([loop.network_input(augment(to_float(x[order[s:s + loop.AUGMENT_CHUNK]]), theirs), mean)
                               for s in range(0, len(y), loop.AUGMENT_CHUNK)])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.asarray(epoch), expected)
    np.testing.assert_array_equal(y_epoch, y[order])
    assert ours.random() == theirs.random()                # the Generator continues the same sequence


def test_uint8_and_float_images_give_the_same_inputs(images):
    x, y = images
    mean = MeanSubtraction.fit(x)
    a, _ = loop.epoch_inputs(x, y, np.random.default_rng(1), mean)
    b, _ = loop.epoch_inputs(to_float(x), y, np.random.default_rng(1), mean)
    np.testing.assert_array_equal(a[0:150], b[0:150])


def test_lazy_test_inputs_equal_network_input(images):
    x, _ = images
    mean = MeanSubtraction.fit(x)
    lazy = loop.lazy_network_input(x, mean, 3)
    assert lazy.shape == (150, 3, 8, 8) and len(lazy) == 150
    whole = loop.network_input(to_float(x), mean, 3)
    np.testing.assert_array_equal(np.concatenate([lazy[i:i + 64] for i in range(0, 150, 64)]), whole)
    np.testing.assert_array_equal(lazy[10:20], whole[10:20])    # going back rebuilds the block
    np.testing.assert_array_equal(lazy[:, 1], whole[:, 1])      # any other index: built whole
