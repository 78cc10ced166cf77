"""Unreadable images are all reported at once: one run finds every truncated, empty or deleted file.

Each test builds a small class-folder dataset in tmp_path with some broken
files, and checks the one-line error, the list file for long lists, and
that nothing is cached or written inside the dataset.
"""

import numpy as np
import pytest
from data_support import one_line_error
from PIL import Image

import numpy_cnn.data.images as images_module
from numpy_cnn.data import CLASSES, load_dataset, load_images
from numpy_cnn.data.unreadable import LIST_FILE


def class_folders(root, per_class=3):
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def truncate(path):
    path.write_bytes(path.read_bytes()[:200])


@pytest.fixture(params=["one process", "worker pool"])
def decoding(request, monkeypatch):
    """Run a test with decoding in this process, then in the worker pool: the error must not differ."""
    monkeypatch.setattr(images_module, "_POOL_MIN_FILES", 10**9 if request.param == "one process" else 1)
    return request.param


def test_every_bad_image_in_one_error(tmp_path, decoding):
    root = class_folders(tmp_path / "sfew", per_class=4)
    truncate(root / "Angry" / "1.png")
    (root / "Sad" / "0.png").write_bytes(b"")
    (root / "Sad" / "2.png").write_text("a note saved with an image name")
    cache = tmp_path / "cache"
    message = one_line_error(lambda: load_dataset(root, cache_dir=cache))
    assert message == (f"{root}: 3 images could not be read; fix or delete them: Angry/1.png (truncated), "
                       "Sad/0.png (empty file), Sad/2.png (not an image format Pillow reads)")
    assert not cache.exists()  # no entry for a set that did not decode, and no list for 3 names
    for name in ("Angry/1.png", "Sad/0.png", "Sad/2.png"):
        (root / name).unlink()
    ds = load_dataset(root, cache_dir=cache)  # deleted as told: the rest loads and is cached
    assert len(ds.y_train) + len(ds.y_test) == 25 and len(list(cache.glob("*.npz"))) == 1


def test_many_bad_images_name_five_and_list_all(tmp_path, decoding):
    root = class_folders(tmp_path / "fer")
    bad = sorted(f"{name}/{i}.png" for name in CLASSES[:4] for i in (0, 2))  # 8 files
    for name in bad:
        truncate(root / name)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    cache = tmp_path / "cache"
    message = one_line_error(lambda: load_dataset(root, cache_dir=cache))
    named = ", ".join(f"{name} (truncated)" for name in bad[:5])
    assert message == (f"{root}: 8 images could not be read; fix or delete them: {named} and 3 more "
                       f"(all listed in {cache / LIST_FILE})")
    listed = (cache / LIST_FILE).read_text().splitlines()
    assert listed[1:] == [f"{root / name}\ttruncated" for name in bad]
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written in the data
    assert not list(cache.glob("*.npz"))
    # Without a cache folder there is nowhere to list them: the line counts the rest.
    assert one_line_error(lambda: load_dataset(root)).endswith(" and 3 more")


def test_missing_files_are_counted_with_the_rest(tmp_path, decoding):
    root = class_folders(tmp_path / "sfew", per_class=1)
    paths = sorted(root.rglob("*.png"))
    truncate(paths[0])
    paths[1].unlink()
    paths.append(root / "Sad" / "gone.png")
    message = one_line_error(lambda: load_images(paths, 8, tmp_path / "cache", root=root))
    assert message == (f"{root}: 3 images could not be read; fix or delete them: {paths[0].relative_to(root)} "
                       f"(truncated), {paths[1].relative_to(root)} (file not found), Sad/gone.png (file not found)")


def test_split_files_naming_deleted_images(tmp_path):
    # The images an earlier error listed were deleted, but the run's split files still name them.
    root = class_folders(tmp_path / "sfew", per_class=2)
    split = tmp_path / "run"
    ds = load_dataset(root, seed=0, split_dir=split)
    gone = [ds.train_files[0], ds.train_files[3], ds.test_files[1]]
    for name in gone:
        (root / name).unlink()
    message = one_line_error(lambda: load_dataset(root, split_dir=split, reuse_split=True))
    assert message == (f"{split}: 3 listed images not found in {root}: {gone[0]} (train.txt:2), "
                       f"{gone[1]} (train.txt:5), {gone[2]} (test.txt:3); "
                       "restore them or delete those lines")
