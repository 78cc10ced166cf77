"""Flip and rotation: correctness, determinism and one vectorised pass over the batch."""

import numpy as np
import pytest

from numpy_cnn.data import augment, hflip, random_horizontal_flip, rotate


def images(n=5, h=9, w=11, seed=0):
    return np.random.default_rng(seed).random((n, h, w), dtype=np.float32)


def test_hflip_mirrors_columns():
    x = images()
    assert np.array_equal(hflip(x)[..., 0], x[..., -1])
    assert np.array_equal(hflip(hflip(x)), x)


def test_random_flip_flips_about_half_and_copies():
    x = images(n=2000, h=2, w=3)
    before = x.copy()
    out = random_horizontal_flip(x, np.random.default_rng(1))
    flipped = np.all(out == x[..., ::-1], axis=(1, 2))
    assert np.array_equal(x, before)  # the input is untouched
    assert 0.45 < flipped.mean() < 0.55
    assert np.array_equal(out[~flipped], x[~flipped])


def test_rotation_by_zero_is_identity():
    x = images()
    assert np.array_equal(rotate(x, 0.0), x)
    assert np.array_equal(rotate(x[:, None].repeat(3, 1), np.zeros(5)), x[:, None].repeat(3, 1))


def test_rotation_by_90_matches_rot90():
    x = images(h=10, w=10)
    # Counter-clockwise on screen (y down), like torchvision: np.rot90 over (H, W).
    assert np.allclose(rotate(x, 90.0), np.rot90(x, 1, axes=(1, 2)), atol=1e-5)
    assert np.allclose(rotate(x, -90.0), np.rot90(x, -1, axes=(1, 2)), atol=1e-5)


def test_rotation_fills_corners_with_zero_and_keeps_centre():
    x = np.ones((1, 21, 21), np.float32)
    out = rotate(x, 45.0)
    assert out[0, 0, 0] == 0 and out[0, 10, 10] == 1


def test_each_image_gets_its_own_angle():
    x = images(n=3, h=10, w=10)
    out = rotate(x, np.array([0.0, 90.0, 10.0]))
    assert np.array_equal(out[0], x[0])
    assert np.allclose(out[1], np.rot90(x[1]), atol=1e-5)
    assert np.allclose(out[2], rotate(x[2:], 10.0)[0])


def test_augment_is_deterministic_and_shape_preserving():
    x = images(n=8)
    a = augment(x, np.random.default_rng(3))
    b = augment(x, np.random.default_rng(3))
    c = augment(x, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == x.shape and a.dtype == np.float32
    four_d = augment(x[:, None].repeat(3, 1), np.random.default_rng(3))
    assert np.allclose(four_d[:, 2], a, atol=1e-6)  # channels turn together, like the 3-D batch


@pytest.mark.parametrize("shape", [(7, 48, 48), (5, 9, 11), (4, 3, 10, 7), (1, 1, 1)])
@pytest.mark.parametrize("max_degrees", [10.0, 180.0])
def test_numba_augment_equals_the_numpy_reference(shape, max_degrees):
    # Same draws, same float32 operations in the same order, no FMA: equal to rounding
    # (in practice bit for bit).
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    ref = augment(x, np.random.default_rng(5), max_degrees, method="reference")
    fast = augment(x, np.random.default_rng(5), max_degrees, method="numba")
    assert fast.shape == ref.shape and fast.dtype == np.float32
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)


def test_numba_augment_leaves_the_rng_where_the_reference_does():
    x = images(n=6)
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    augment(x, a, method="reference")
    augment(x, b, method="numba")
    assert a.random() == b.random()


def test_augment_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="method"):
        augment(images(), np.random.default_rng(0), method="fast")
