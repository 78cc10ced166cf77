"""The synthetic SFEW-shaped dataset: layout, sizes, determinism and safe regeneration."""

import json

import numpy as np
import pytest
from PIL import Image

from numpy_cnn.data import CLASSES, ensure_synthetic_dataset, load_dataset
from numpy_cnn.data.synthetic import MANIFEST, SFEW_COUNTS, draw_frame
from numpy_cnn.errors import UserError

SMALL = {name: 2 for name in CLASSES}


def test_layout_counts_and_frame_size(tmp_path):
    root = ensure_synthetic_dataset(tmp_path / "syn", seed=0, counts=SMALL, workers=1)
    assert sorted(p.name for p in root.iterdir()) == sorted([*CLASSES, MANIFEST])
    files = sorted(root.glob("*/*.png"))
    assert len(files) == 14 and files[0].relative_to(root).as_posix() == "Angry/angry_000.png"
    with Image.open(files[0]) as image:
        assert image.size == (720, 576) and image.mode == "RGB"
    assert sum(SFEW_COUNTS.values()) == 675
    ds = load_dataset(root, image_size=48)
    assert ds.source == "class folders" and len(ds.y_train) == len(ds.y_test) == 7


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = ensure_synthetic_dataset(tmp_path / "a", seed=3, counts=SMALL, workers=1)
    b = ensure_synthetic_dataset(tmp_path / "b", seed=3, counts=SMALL, workers=2)
    c = ensure_synthetic_dataset(tmp_path / "c", seed=4, counts={"Happy": 2}, workers=1)
    for path in a.glob("*/*.png"):
        assert path.read_bytes() == (b / path.relative_to(a)).read_bytes()
    assert (a / "Happy/happy_001.png").read_bytes() != (c / "Happy/happy_001.png").read_bytes()


def test_complete_copy_is_kept_and_incomplete_one_regenerated(tmp_path):
    root = ensure_synthetic_dataset(tmp_path / "syn", counts={"Sad": 2}, workers=1)
    image = root / "Sad/sad_001.png"
    stamp = image.stat().st_mtime_ns
    ensure_synthetic_dataset(root, counts={"Sad": 2}, workers=1)
    assert image.stat().st_mtime_ns == stamp  # nothing regenerated

    image.unlink()  # damaged copy: regenerated
    ensure_synthetic_dataset(root, counts={"Sad": 2}, workers=1)
    assert image.is_file()
    ensure_synthetic_dataset(root, seed=1, counts={"Sad": 2}, workers=1)  # another seed: regenerated
    assert json.loads((root / MANIFEST).read_text())["seed"] == 1
    assert not list(tmp_path.glob(".syn.tmp-*"))


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a synthetic dataset"):
        ensure_synthetic_dataset(tmp_path / "mine", counts={"Sad": 2})
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep me"


def test_only_the_expression_depends_on_the_class():
    # The same generator state gives the same frame, face and placement; only
    # the expression cues change, so the pixels differ in a small region.
    neutral = np.asarray(draw_frame("Neutral", np.random.default_rng(5)), np.int16)
    surprise = np.asarray(draw_frame("Surprise", np.random.default_rng(5)), np.int16)
    changed = np.abs(neutral - surprise).max(axis=2) > 30
    assert 0.001 < changed.mean() < 0.05


def test_a_copy_finished_by_another_process_meanwhile_counts_as_done(tmp_path, monkeypatch):
    # Two runs generating at once: the second to finish must not crash on the rename.
    from numpy_cnn.data import synthetic

    root, counts = tmp_path / "synthetic", {"Happy": 2, "Sad": 1}
    real_write = synthetic._write_image
    calls = []

    def write_while_another_process_finishes(job):
        if not calls:
            calls.append(job)
            monkeypatch.setattr(synthetic, "_write_image", real_write)
            # The "other process": it finishes first and renames its copy into place.
            ensure_synthetic_dataset(tmp_path / "elsewhere" / "synthetic", counts=counts, workers=1)
            (tmp_path / "elsewhere" / "synthetic").rename(root)
        real_write(job)

    monkeypatch.setattr(synthetic, "_write_image", write_while_another_process_finishes)
    assert ensure_synthetic_dataset(root, counts=counts, workers=1) == root
    assert sorted(p.name for p in (root / "Happy").iterdir()) == ["happy_000.png", "happy_001.png"]
    assert not list(tmp_path.glob(".synthetic.*")), "temporary folders are cleaned up"
