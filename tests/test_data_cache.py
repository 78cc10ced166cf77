"""The decoded-image cache: hits skip decoding, damage and edits cause a rebuild."""

import os

import numpy as np
import pytest
from PIL import Image

import numpy_cnn.data.images as images_module
from numpy_cnn.data import load_images


@pytest.fixture
def data_files(tmp_path):
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"img{i}.png")
        Image.new("L", (20, 10), 40 * i).save(paths[-1])
    return paths


def forbid_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("decoded although the cache should have hit")
    monkeypatch.setattr(images_module, "decode_image", fail)


def test_hit_avoids_decoding_in_any_order(tmp_path, data_files, monkeypatch):
    first = load_images(data_files, 8, tmp_path / "cache")
    assert first.shape == (4, 8, 8) and first.dtype == np.uint8
    forbid_decoding(monkeypatch)
    assert np.array_equal(load_images(data_files, 8, tmp_path / "cache"), first)
    assert np.array_equal(load_images(data_files[::-1], 8, tmp_path / "cache"), first[::-1])


def test_corrupt_cache_is_rebuilt(tmp_path, data_files):
    cache = tmp_path / "cache"
    first = load_images(data_files, 8, cache)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, as after a crash or a full disk
    assert np.array_equal(load_images(data_files, 8, cache), first)
    assert np.array_equal(load_images(data_files, 8, cache), first)  # and the rebuilt entry is whole


def test_changed_file_or_settings_miss(tmp_path, data_files, monkeypatch):
    cache = tmp_path / "cache"
    load_images(data_files, 8, cache)
    Image.new("L", (20, 10), 255).save(data_files[0])
    os.utime(data_files[0], ns=(1, 10**18))  # a new mtime even on coarse file systems
    assert (load_images(data_files, 8, cache)[0] == 255).all()
    assert load_images(data_files, 6, cache).shape == (4, 6, 6)
    assert len(list(cache.glob("*.npz"))) == 3
    assert not list(cache.glob("*.tmp"))  # no temporary files left behind


def test_without_cache_dir_nothing_is_written(tmp_path, data_files):
    load_images(data_files, 8, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in data_files]


def test_fer2013_csv_is_parsed_once(tmp_path, monkeypatch):
    import numpy_cnn.data.fer2013 as fer2013

    csv = tmp_path / "fer2013.csv"
    csv.write_text("emotion,pixels\n" + "\n".join(f"{i},{' '.join(['9'] * 2304)}" for i in range(7)) + "\n")
    first = fer2013.read_fer2013_csv(csv, 48, tmp_path / "cache")
    monkeypatch.setattr(fer2013, "_parse", lambda path: pytest.fail("parsed again despite the cache"))
    again = fer2013.read_fer2013_csv(csv, 48, tmp_path / "cache")
    assert np.array_equal(again.x, first.x) and np.array_equal(again.y, first.y)


def test_unwritable_cache_warns_and_loads(tmp_path, data_files, capsys):
    # A full disk or read-only folder must not stop a run that has already decoded everything.
    (tmp_path / "a file").write_text("not a folder")
    x = load_images(data_files, 8, tmp_path / "a file" / "cache")
    assert np.array_equal(x, load_images(data_files, 8))
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and "not cached" in warning and "a file/cache" in warning
