"""Folder layouts of real dataset copies: what sources.py reads, skips and reports.

Images are 8x8 and uniformly gray, with a value that encodes the class.
"""

import os

from data_support import class_folders, one_line_error
from PIL import Image

from numpy_cnn.data import load_dataset


def test_sfew2_unlabelled_test_folder_is_passed_over_for_val(tmp_path):
    # SFEW 2.0 ships Train/, Val/ and Test/; Test/ holds images without class folders.
    class_folders(tmp_path / "Train", per_class=3)
    class_folders(tmp_path / "Val", per_class=1)
    (tmp_path / "Test").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "Test" / "Movie_000000001_00000001.png")
    ds = load_dataset(tmp_path, image_size=8)
    assert len(ds.y_train) == 21 and len(ds.y_test) == 7
    assert all(f.startswith("Val/") for f in ds.test_files)


def test_only_an_unlabelled_test_folder_is_an_error(tmp_path):
    class_folders(tmp_path / "Train")
    (tmp_path / "Test").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "Test" / "Movie_000000001_00000001.png")
    one_line_error(lambda: load_dataset(tmp_path), "Test: has no class folders", "Test/<Class>/")


def test_nas_windows_and_wsl_junk_is_skipped(tmp_path):
    root = class_folders(tmp_path / "sfew")
    for junk in (root / "@eaDir", root / "Angry" / "@eaDir" / "Airheads_000000000_00000005.png",
                 root / "$RECYCLE.BIN", root / "System Volume Information"):
        junk.mkdir(parents=True)
        Image.new("L", (8, 8), 255).save(junk / "SYNOFILE_THUMB_M.jpg")  # a valid image of no class
    (root / "Happy" / "Airheads_000000000_00000005.png:Zone.Identifier").write_text("[ZoneTransfer]\nZoneId=3\n")
    ds = load_dataset(root, image_size=8)
    assert len(ds.y_train) + len(ds.y_test) == 14 and 255 not in ds.x_train


def test_symlinked_class_folder_is_read(tmp_path):
    root = class_folders(tmp_path / "sfew")
    (root / "Fear").rename(tmp_path / "fear elsewhere")
    (root / "Fear").symlink_to(tmp_path / "fear elsewhere")
    ds = load_dataset(root, image_size=8)
    assert ds.class_counts()["Fear"] == (1, 1) and (ds.x_train[ds.y_train == 2] == 70).all()


def test_link_back_to_a_parent_is_an_error_not_endless_images(tmp_path):
    # Followed, Angry/loop -> .. read the whole dataset again as Angry, ~900 times.
    root = class_folders(tmp_path / "sfew")
    (root / "Angry" / "loop").symlink_to("..")
    one_line_error(lambda: load_dataset(root), "Angry/loop", "remove the link")


def test_broken_links_are_reported_not_skipped(tmp_path):
    root = class_folders(tmp_path / "sfew")
    (root / "Angry" / "gone.png").symlink_to(tmp_path / "missing.png")
    one_line_error(lambda: load_dataset(root), "Angry/gone.png", "does not exist")
    os.unlink(root / "Angry" / "gone.png")
    (root / "Happy").rename(tmp_path / "usb")
    (root / "Happy").symlink_to(tmp_path / "unmounted drive")  # the whole class would vanish
    one_line_error(lambda: load_dataset(root), "Happy", "does not exist")


def test_jaffe_one_level_down_gets_a_hint(tmp_path):
    (tmp_path / "jaffe").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "jaffe" / "KA.AN1.39.tiff")
    one_line_error(lambda: load_dataset(tmp_path), f"pass --data {tmp_path / 'jaffe'}")


def test_one_class_folder_points_at_its_parent(tmp_path):
    root = class_folders(tmp_path / "sfew")
    one_line_error(lambda: load_dataset(root / "Angry"), "no images found", f"holding all of them, {root}")
