"""Shift, brightness and contrast: what each does, reference == numba, and no draws at all when off."""

import numpy as np
import pytest

from numpy_cnn.data import MeanSubtraction, augment, to_float
from numpy_cnn.data.augment import (Draws, adjust_brightness, adjust_contrast, apply_augmentation,
                                    draw_augmentation, draw_flips_and_angles, rotate, translate)
from numpy_cnn.errors import UserError
from numpy_cnn.train import loop


def images(shape=(6, 9, 11), seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_translate_moves_the_content_and_fills_zeros():
    x = np.zeros((2, 5, 6), np.float32)
    x[:, 2, 3] = 1
    out = translate(x, np.array([[1, -2], [-3, 0]]))
    assert out[0, 3, 1] == 1 and out[0].sum() == 1            # 1 row down, 2 columns left
    assert out[1].sum() == 0                                   # moved 3 rows up: out of the picture
    full = translate(np.ones((1, 4, 4), np.float32), np.array([[1, 2]]))
    np.testing.assert_array_equal(full[0], np.array([[0, 0, 0, 0]] + [[0, 0, 1, 1]] * 3, np.float32))


def test_translate_is_random_crop_of_the_zero_padded_image():
    # torchvision's RandomCrop(size, padding=P) at offset (top, left) is a shift by (P - top, P - left).
    x, p = images((1, 3, 7, 8)), 3
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    for top, left in [(0, 0), (6, 1), (3, 3), (2, 5)]:
        crop = padded[..., top:top + 7, left:left + 8]
        np.testing.assert_array_equal(translate(x, np.array([[p - top, p - left]])), crop)


def test_brightness_and_contrast_formulas():
    x = images((3, 4, 5))
    b = np.array([0.5, 1.0, 1.7])
    np.testing.assert_array_equal(adjust_brightness(x, b), np.clip(x * b.astype(np.float32)[:, None, None], 0, 1))
    c = np.array([0.6, 1.0, 1.4])
    out = adjust_contrast(x, c)
    for n in range(3):
        m = x[n].mean(dtype=np.float64)
        np.testing.assert_allclose(out[n], np.clip(c[n] * x[n] + (1 - c[n]) * m, 0, 1), atol=1e-6)
    np.testing.assert_allclose(adjust_contrast(x, np.zeros(3))[:, 0, 0], x.mean(axis=(1, 2)), rtol=1e-6)  # all grey
    assert adjust_contrast(x, np.ones(3)).tobytes() == x.tobytes()                          # c = 1: unchanged


def test_the_order_is_flip_rotate_shift_brightness_contrast():
    x = images()
    d = draw_augmentation(6, np.random.default_rng(2), max_degrees=30, shift=2, brightness=0.4, contrast=0.4)
    manual = np.where(d.flip[:, None, None], x[..., ::-1], x)
    manual = adjust_contrast(adjust_brightness(translate(rotate(manual, d.degrees), d.shift), d.brightness), d.contrast)
    np.testing.assert_array_equal(apply_augmentation(x, d, method="reference"), manual)


def test_draws_fall_in_their_ranges():
    d = draw_augmentation(4000, np.random.default_rng(0), shift=3, brightness=0.2, contrast=1.5)
    assert d.shift.shape == (4000, 2) and set(np.unique(d.shift)) == set(range(-3, 4))
    assert 0.8 <= d.brightness.min() and d.brightness.max() <= 1.2
    assert 0.0 <= d.contrast.min() and d.contrast.max() <= 2.5   # 1 - C clipped at 0, as ColorJitter
    with pytest.raises(UserError, match="--shift, --brightness and --contrast must be >= 0"):
        draw_augmentation(3, np.random.default_rng(0), shift=-1)


OPTIONS = [dict(shift=3), dict(brightness=0.5), dict(contrast=0.6), dict(shift=2, brightness=0.3, contrast=0.3),
           dict(flip_rotate=False, shift=4), dict(flip_rotate=False, brightness=0.9, contrast=0.9),
           dict(shift=60, brightness=1.0)]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("shape", [(7, 48, 48), (5, 9, 11), (4, 3, 10, 7), (1, 1, 1), (3, 2, 2)])
def test_numba_equals_the_numpy_reference(options, shape):
    # Same float32 operations in the same order, no FMA; the contrast's mean is summed in
    # float64 by both (pairwise in NumPy, in order in numba): equal to rounding, in practice bit for bit.
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    d = draw_augmentation(shape[0], np.random.default_rng(5), max_degrees=45, **options)
    ref = apply_augmentation(x, d, method="reference")
    fast = apply_augmentation(x, d, method="numba")
    assert fast.shape == ref.shape == x.shape and fast.dtype == np.float32
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
    if "brightness" in options or "contrast" in options:
        assert 0 <= fast.min() and fast.max() <= 1


def test_numba_uses_its_own_draws_for_each_image():
    x = images((3, 8, 8))
    d = Draws(shift=np.array([[0, 0], [1, 1], [0, 0]]), brightness=np.array([1.0, 1.0, 0.5]))
    out = apply_augmentation(x, d)
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_array_equal(out[1, 1:, 1:], x[1, :-1, :-1])
    np.testing.assert_array_equal(out[2], x[2] * np.float32(0.5))


@pytest.mark.parametrize("method", ["numba", "reference"])
def test_off_means_no_draws_same_images_same_generator_state(method):
    x = images((70, 8, 8))
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    plain = augment(x, a, 10.0, method=method)
    off = augment(x, b, 10.0, method=method, shift=0, brightness=0.0, contrast=0.0)
    assert plain.tobytes() == off.tobytes()
    assert a.bit_generator.state == b.bit_generator.state
    c = np.random.default_rng(9)
    d = draw_augmentation(70, c)
    flip, degrees = draw_flips_and_angles(70, np.random.default_rng(9))
    assert np.array_equal(d.flip, flip) and np.array_equal(d.degrees, degrees)
    assert d.shift is None and d.brightness is None and d.contrast is None
    assert c.bit_generator.state == a.bit_generator.state
    e = np.random.default_rng(9)
    before = e.bit_generator.state
    assert draw_augmentation(70, e, flip_rotate=False) == Draws() and e.bit_generator.state == before


@pytest.fixture
def uint8_images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (150, 8, 8), dtype=np.uint8), rng.integers(0, 7, 150)


def test_epoch_inputs_with_the_options_off_are_todays_epoch(uint8_images):
    x, y = uint8_images
    mean = MeanSubtraction.fit(x)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    today, ya = loop.epoch_inputs(x, y, a, mean)
    off, yb = loop.epoch_inputs(x, y, b, mean, shift=0, brightness=0.0, contrast=0.0, balanced=False)
    assert np.asarray(today).tobytes() == np.asarray(off).tobytes() and np.array_equal(ya, yb)
    assert a.bit_generator.state == b.bit_generator.state


@pytest.mark.parametrize("batch", [1, 64, 200])
def test_epoch_inputs_with_jitter_equal_the_epoch_augmented_chunk_by_chunk(uint8_images, monkeypatch, batch):
    x, y = uint8_images
    mean = MeanSubtraction.fit(x)
    monkeypatch.setattr(loop, "BLOCK_IMAGES", 32)
    ours, theirs = np.random.default_rng(5), np.random.default_rng(5)
    options = dict(shift=2, brightness=0.3, contrast=0.2)
    epoch, y_epoch = loop.epoch_inputs(x, y, ours, mean, rotation=15.0, **options)
    got = np.concatenate([epoch[s:s + batch] for s in range(0, len(y), batch)])
    order = theirs.permutation(len(y))
    expected = np.concatenate([
        loop.network_input(augment(to_float(x[order[s:s + loop.AUGMENT_CHUNK]]), theirs, 15.0, **options), mean)
        for s in range(0, len(y), loop.AUGMENT_CHUNK)])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(y_epoch, y[order])
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_epoch_inputs_can_shift_without_flip_and_rotation(uint8_images):
    x, y = uint8_images
    mean = MeanSubtraction(np.float32(0.0))
    rng, theirs = np.random.default_rng(1), np.random.default_rng(1)
    epoch, _ = loop.epoch_inputs(x, y, rng, mean, augment=False, shift=1)
    order = theirs.permutation(len(y))
    shifts = np.concatenate([theirs.integers(-1, 2, size=(len(order[s:s + 64]), 2)) for s in range(0, 150, 64)])
    np.testing.assert_array_equal(np.asarray(epoch)[:, 0], translate(to_float(x[order]), shifts))
