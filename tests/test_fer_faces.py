"""make-data fer-faces: small real-face sets cut from FER2013's test images (numpy_cnn.data.fer_faces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpy_cnn.data import CLASSES, fer_faces
from numpy_cnn.data.dataset import load_dataset
from numpy_cnn.errors import UserError


def _face(path: Path, value: int) -> None:
    """A 48x48 grey face whose pixels encode ``value`` (distinct values: distinct pictures)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(path)


@pytest.fixture
def fer(tmp_path: Path) -> Path:
    """A FER2013-like folder: 3 training and 8 test faces a class; in Angry's test set, one copy of a
    training face and, in Disgust's, one picture twice."""
    root = tmp_path / "fer2013"
    for k, cls in enumerate(CLASSES):
        for i in range(3):
            _face(root / "train" / cls.lower() / f"Training_{k}{i}.png", 1000 * k + i)
        for i in range(8):
            _face(root / "test" / cls.lower() / f"PublicTest_{k}{i}.png", 1000 * k + 100 + i)
    _face(root / "test" / "angry" / "PublicTest_copy.png", 0)           # = train/angry/Training_00
    _face(root / "test" / "disgust" / "PublicTest_twice.png", 1000 + 100)  # = PublicTest_10
    return root


def test_unseen_faces_leave_out_training_copies_and_second_copies(fer: Path):
    _, y, names = fer_faces.unseen_test_faces(fer)
    assert np.bincount(y, minlength=7).tolist() == [8] * 7
    assert not any("copy" in name for name in names)
    assert sum("PublicTest_10" in n or "twice" in n for n in names) == 1


def test_per_class_writes_class_folders_the_loader_reads_and_the_same_set_each_time(fer: Path, tmp_path: Path):
    written = fer_faces.make_fer_faces(fer, tmp_path / "a", per_class=5, seed=3)
    fer_faces.make_fer_faces(fer, tmp_path / "b", per_class=5, seed=3)
    assert written == {"class folders": 35}
    ds = load_dataset(tmp_path / "a")
    assert np.bincount(np.concatenate([ds.y_train, ds.y_test]), minlength=7).tolist() == [5] * 7
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.png"))
    assert files_a == files_b
    for path in (tmp_path / "a").rglob("*.png"):   # each written face is the test face of that name, unchanged
        source = fer / "test" / path.parent.name.lower() / path.name
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(source)))
    fer_faces.make_fer_faces(fer, tmp_path / "c", per_class=5, seed=4)
    assert sorted(p.name for p in (tmp_path / "c").rglob("*.png")) != sorted(p.name for p in files_a)


def test_like_writes_a_disjoint_train_test_split_of_the_shape(fer: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(fer_faces.SHAPES, "tiny", {"train": (3, 2, 3, 3, 3, 3, 3), "test": (2, 1, 2, 2, 2, 2, 2)})
    written = fer_faces.make_fer_faces(fer, tmp_path / "s", like="tiny")
    assert written == {"train": 20, "test": 13}
    ds = load_dataset(tmp_path / "s")
    assert ds.source == "train/test folders"
    assert np.bincount(ds.y_train, minlength=7).tolist() == [3, 2, 3, 3, 3, 3, 3]
    assert np.bincount(ds.y_test, minlength=7).tolist() == [2, 1, 2, 2, 2, 2, 2]
    train = {Path(f).name for f in ds.train_files}
    assert not train & {Path(f).name for f in ds.test_files}


def test_sfew2_shape_is_the_official_split_size():
    assert sum(fer_faces.SFEW2_TRAIN) == 859 and sum(fer_faces.SFEW2_TEST) == 405


@pytest.mark.parametrize("options, message", [
    ({"per_class": 9}, "only 8 unseen test faces of Angry"),
    ({}, "one of the two"),
    ({"per_class": 2, "like": "sfew2"}, "one of the two"),
    ({"like": "jaffe"}, "--like must be one of"),
    ({"per_class": 0}, "at least 1"),
])
def test_bad_requests_are_one_line_errors_that_write_nothing(fer: Path, tmp_path: Path, options, message):
    with pytest.raises(UserError, match=message):
        fer_faces.make_fer_faces(fer, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_existing_set_is_never_overwritten(fer: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="nothing is overwritten"):
        fer_faces.make_fer_faces(fer, out, per_class=2)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_set_with_no_test_split_is_refused(tmp_path: Path):
    for k, cls in enumerate(CLASSES):
        for i in range(2):
            _face(tmp_path / "flat" / cls / f"{i}.png", 10 * k + i)
    with pytest.raises(UserError, match="no test set to cut faces from"):
        fer_faces.make_fer_faces(tmp_path / "flat", tmp_path / "out", per_class=1)


def test_the_command(fer: Path, tmp_path: Path, capsys):
    from numpy_cnn.cli.main import main
    assert main(["make-data", "fer-faces", "--from", str(fer), "--per-class", "2", "--out",
                 str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "14 faces" in capsys.readouterr().out
    assert len(list((tmp_path / "out").rglob("*.png"))) == 14
