"""--fit crop: the largest centred square, resized; stretch stays as it was; the cache keeps them apart."""

import numpy as np
import pytest
from PIL import Image

import numpy_cnn.data.images as images_module
from numpy_cnn.data import decode_image, load_images
from numpy_cnn.data.decode import RESAMPLE, center_square
from numpy_cnn.data.images import load_image
from numpy_cnn.errors import UserError


@pytest.fixture
def face(tmp_path):
    """A 143x181 (width x height) gray frame like SFEW 2.0's aligned faces: a vertical gradient
    with a bright band in the top 19 rows, which a centred square crop cuts off."""
    pixels = np.tile(np.linspace(0, 200, 181, dtype=np.uint8)[:, None], (1, 143))
    pixels[:19] = 255
    path = tmp_path / "face.png"
    Image.fromarray(pixels, "L").save(path)
    return path, pixels


def test_center_square_of_a_non_square_frame():
    assert center_square(143, 181) == (0, 19, 143, 162)
    assert center_square(181, 143) == (19, 0, 162, 143)
    assert center_square(50, 50) == (0, 0, 50, 50)
    assert center_square(4, 7) == (0, 1, 4, 5)              # the odd leftover row goes below


def test_crop_resizes_the_centred_square(face):
    path, pixels = face
    out = decode_image(path, 48, fit="crop")
    expected = np.asarray(Image.fromarray(pixels[19:162]).resize((48, 48), RESAMPLE, reducing_gap=2.0))
    assert out.shape == (48, 48) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    assert out.max() < 255                                   # the band above the square is gone
    stretched = decode_image(path, 48)
    assert (stretched[:4] == 255).all()                      # stretch keeps (and squashes) it
    np.testing.assert_array_equal(decode_image(path, 48, fit="stretch"), stretched)
    expected_stretch = np.asarray(Image.fromarray(pixels).resize((48, 48), RESAMPLE, reducing_gap=2.0))
    np.testing.assert_array_equal(stretched, expected_stretch)   # the default: exactly as before


def test_crop_of_a_square_image_is_the_stretch(tmp_path):
    path = tmp_path / "square.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 60), dtype=np.uint8)).save(path)
    np.testing.assert_array_equal(decode_image(path, 48, fit="crop"), decode_image(path, 48))


def test_the_cache_keeps_crops_and_stretches_apart(tmp_path, face, monkeypatch):
    path, _ = face
    cache = tmp_path / "cache"
    stretched = load_images([path], 48, cache)
    cropped = load_images([path], 48, cache, fit="crop")
    assert len(list(cache.glob("*.npz"))) == 2
    assert not np.array_equal(stretched, cropped)
    np.testing.assert_array_equal(cropped[0], decode_image(path, 48, fit="crop"))

    def fail(*args, **kwargs):
        raise AssertionError("decoded although the cache should have hit")
    monkeypatch.setattr(images_module, "decode_image", fail)
    np.testing.assert_array_equal(load_images([path], 48, cache), stretched)
    np.testing.assert_array_equal(load_images([path], 48, cache, fit="crop"), cropped)


def test_a_stretch_entry_keeps_its_old_key(tmp_path, face, monkeypatch):
    """Caches written before --fit existed still hit: the key of a stretch holds no "fit"."""
    path, _ = face
    keys = []
    real = images_module.cache_key
    monkeypatch.setattr(images_module, "cache_key", lambda kind, payload: keys.append(payload) or real(kind, payload))
    load_images([path], 48, None)
    load_images([path], 48, None, fit="crop")
    assert "fit" not in keys[0]["settings"] and keys[1]["settings"]["fit"] == "crop"


def test_load_image_and_bad_fit(face):
    path, _ = face
    np.testing.assert_array_equal(load_image(path, 48, fit="crop")[0], decode_image(path, 48, fit="crop"))
    with pytest.raises(UserError, match="--fit must be one of stretch, crop"):
        decode_image(path, 48, fit="pad")
    with pytest.raises(UserError, match="--fit must be one of stretch, crop"):
        load_images([path], 48, None, fit="pad")
