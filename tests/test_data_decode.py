"""decode_image: every Pillow mode and format a real dataset may hold, and bad files."""

import numpy as np
import pytest
from PIL import Image

from numpy_cnn.data import decode_image
from numpy_cnn.errors import UserError


def gradient_rgb(h=60, w=80):
    """A smooth RGB test picture: resizing it barely changes local values."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs * 255 // (w - 1), ys * 255 // (h - 1), np.full_like(xs, 128)], -1).astype(np.uint8)


def reference(rgb, size=16):
    """What every mode should decode to: Pillow's own RGB -> L, then our resize."""
    return np.asarray(Image.fromarray(rgb).convert("L").resize((size, size), Image.BILINEAR, reducing_gap=2.0))


@pytest.mark.parametrize("fmt", ["png", "jpeg", "tiff", "bmp"])
def test_rgb_formats_match_pillow_luma(tmp_path, fmt):
    rgb = gradient_rgb()
    path = tmp_path / f"x.{fmt}"
    Image.fromarray(rgb).save(path, quality=95) if fmt == "jpeg" else Image.fromarray(rgb).save(path)
    out = decode_image(path, 16)
    assert out.shape == (16, 16) and out.dtype == np.uint8
    tolerance = 3 if fmt == "jpeg" else 0  # JPEG is lossy
    assert np.abs(out.astype(int) - reference(rgb)).max() <= tolerance


def test_gray_palette_cmyk_and_1bit(tmp_path):
    rgb = gradient_rgb()
    Image.fromarray(rgb).convert("L").save(tmp_path / "l.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    Image.fromarray(rgb).convert("1").save(tmp_path / "one.png")
    ref = reference(rgb).astype(int)
    assert np.abs(decode_image(tmp_path / "l.png", 16) - ref).max() <= 1
    assert np.abs(decode_image(tmp_path / "p.png", 16) - ref).max() <= 12  # palette quantisation
    assert np.abs(decode_image(tmp_path / "cmyk.jpg", 16) - ref).max() <= 6
    one = decode_image(tmp_path / "one.png", 16)
    assert one.min() < 64 and one.max() > 192  # dithered black and white, not all zero


def test_transparent_pixels_become_black(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere ...
    rgba[:, 10:, 3] = 255  # ... but only the right half is opaque
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(rgba).convert("LA").save(tmp_path / "la.png")
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([255, 255, 255] * 2)  # both entries white ...
    palette.paste(1, (10, 0, 20, 20))
    palette.save(tmp_path / "p.png", transparency=0)  # ... but entry 0 is transparent
    for name in ("rgba.png", "la.png", "p.png"):
        out = decode_image(tmp_path / name, 20)
        assert out[:, :9].max() == 0 and out[:, 11:].min() == 255, name


def test_16bit_is_scaled_not_clipped(tmp_path):
    values = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")  # mode I;16
    out = decode_image(tmp_path / "deep.png", 32)
    expected = np.rint(values / 257.0)
    assert np.abs(out - expected).max() <= 1
    assert out.max() == 255 and len(np.unique(out)) > 200  # the full range, not a clipped 0/255 image


def test_float_and_32bit_images(tmp_path):
    ramp = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "f.tiff")  # mode F in [0, 1]
    Image.fromarray((ramp * 65535).astype(np.int32)).save(tmp_path / "i.tiff")  # mode I, 16-bit range
    for name in ("f.tiff", "i.tiff"):
        out = decode_image(tmp_path / name, 16)
        assert np.abs(out - np.rint(ramp * 255)).max() <= 1, name


def test_multipage_tiff_uses_first_frame(tmp_path):
    first, second = Image.new("L", (8, 8), 200), Image.new("L", (8, 8), 10)
    first.save(tmp_path / "multi.tiff", save_all=True, append_images=[second])
    assert (decode_image(tmp_path / "multi.tiff", 8) == 200).all()


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((10, 20), np.uint8)
    pixels[:, :10] = 255  # left half white in the stored (landscape) pixels
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the stored left becomes the top
    image.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    out = decode_image(tmp_path / "phone.jpg", 20)
    assert out[:8].mean() > 200 and out[12:].mean() < 50


def test_truncated_and_non_images_raise_one_line_user_error(tmp_path):
    Image.fromarray(gradient_rgb()).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(gradient_rgb()).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.txt").write_text("not an image")
    for name in ("cut.png", "cut.jpg", "notes.txt", "missing.png"):
        with pytest.raises(UserError) as err:
            decode_image(tmp_path / name)
        message = str(err.value)
        assert name in message and "\n" not in message
        assert message.count(name) == 1  # Pillow's own message repeats the path
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UserError, match="empty.png: not a readable image \\(empty file\\)"):
        decode_image(tmp_path / "empty.png")
