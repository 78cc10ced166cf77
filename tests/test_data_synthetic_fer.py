"""The FER2013-like companion set: layout, class balance, determinism, other actors; and make-data."""

import numpy as np
import pytest
from data_support import one_line_error
from PIL import Image

from numpy_cnn.cli.main import main
from numpy_cnn.data import CLASSES, load_dataset
from numpy_cnn.data.synthetic.generated import MANIFEST
from numpy_cnn.data.synthetic.fer import ACTORS, DEFAULT_IMAGES, draw_crop, ensure_synthetic_fer, fer_counts


def test_fer_layout_loads_as_train_and_test_folders(tmp_path):
    root = ensure_synthetic_fer(tmp_path / "fer", images=70, workers=1)
    assert sorted(p.name for p in root.iterdir()) == ["manifest.json", "test", "train"]
    first = sorted(root.glob("train/Angry/*.png"))[0]
    assert first.name == "Training_00000.png" and sorted(root.glob("test/Happy/*.png"))[0].name.startswith("PublicTest_")
    with Image.open(first) as image:
        assert image.size == (48, 48) and image.mode == "L"
    ds = load_dataset(root, image_size=48)  # manifest.json at the root is not data
    assert ds.source == "train/test folders"
    assert len(ds.y_train) == sum(fer_counts(70)["train"].values())
    assert len(ds.y_test) == sum(fer_counts(70)["test"].values())


def test_counts_follow_fer2013s_imbalance():
    counts = fer_counts(DEFAULT_IMAGES)
    train, test = counts["train"], counts["test"]
    assert 4900 <= sum(train.values()) + sum(test.values()) <= 5100
    assert 0.78 < sum(train.values()) / (sum(train.values()) + sum(test.values())) < 0.82
    assert max(train, key=train.get) == "Happy" and min(train, key=train.get) == "Disgust"
    assert train["Disgust"] < train["Happy"] / 10
    assert all(n >= 1 for split in fer_counts(14).values() for n in split.values())


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = ensure_synthetic_fer(tmp_path / "a", seed=2, images=40, workers=1)
    b = ensure_synthetic_fer(tmp_path / "b", seed=2, images=40, workers=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    stamp = (a / MANIFEST).stat().st_mtime_ns
    ensure_synthetic_fer(a, seed=2, images=40, workers=1)  # complete: kept
    assert (a / MANIFEST).stat().st_mtime_ns == stamp


def test_crops_show_faces_that_vary_and_classes_that_differ():
    happy = np.stack([np.asarray(draw_crop(0, "train", "Happy", i), np.float32) for i in range(20)])
    assert happy.shape == (20, 48, 48)
    assert happy.std(axis=0).mean() > 10  # actors, lighting and placement vary
    # The face fills the crop as a detector's crop would: its centre is skin, not background.
    assert happy[:, 18:30, 16:32].std(axis=(1, 2)).mean() < happy.std(axis=(1, 2)).mean()
    assert ACTORS["train"] >= 100 and ACTORS["test"] >= 50


def test_make_data_command_writes_either_set_and_refuses_bad_flags(tmp_path, capsys):
    assert main(["make-data", "fer", "--images", "20", "--out", str(tmp_path / "fer"), "--workers", "1"]) == 0
    assert "images, ready after" in capsys.readouterr().out
    assert len(list((tmp_path / "fer").rglob("*.png"))) == sum(sum(c.values()) for c in fer_counts(20).values())
    assert main(["make-data", "sfew", "--images", "20"], home=tmp_path) == 2
    assert "--images applies to fer only" in capsys.readouterr().err
    assert main(["make-data", "fer", "--workers", "0"], home=tmp_path) == 2
    assert not (tmp_path / "data").exists()  # refused before anything was written
    one_line_error(lambda: ensure_synthetic_fer(tmp_path / "tiny", images=5), "at least 14")
    assert sorted(CLASSES) == sorted(fer_counts()["train"])


@pytest.mark.parametrize("images", [14, 15, 20, 70, 1000, 5000, 28709])
def test_make_data_fer_writes_exactly_the_images_asked_for(images):
    counts = fer_counts(images)
    assert sum(sum(per_class.values()) for per_class in counts.values()) == images
    assert min(min(per_class.values()) for per_class in counts.values()) >= 1
