"""Split files as users write them by hand (Windows editors, copied lists) and as the tool writes them.

Each test builds a 2-image-per-class folder in tmp_path; images are uniformly
gray with a value that encodes the class.
"""

import os

import pytest
from data_support import class_folders, one_line_error, write_pair

from numpy_cnn.data import load_dataset
from numpy_cnn.data.splitfiles import read_split_file


def test_windows_written_file_bom_crlf_backslashes(tmp_path):
    # Notepad: a BOM (before a comment or a path), CRLF, and the path separators of Windows.
    root = class_folders(tmp_path / "sfew")
    for first in ("# my split\r\n", ""):
        train = ("\ufeff" + first + "Angry\\frame 0.png 0\r\n\r\n.\\Happy\\frame 1.png Happy\r\n").encode()
        split = write_pair(tmp_path / "split", train)
        ds = load_dataset(root, image_size=8, split_dir=split, reuse_split=True)
        assert ds.train_files == ["Angry/frame 0.png", "Happy/frame 1.png"] and ds.y_train.tolist() == [0, 3]
        assert (ds.x_train[:, 0, 0] == [10, 100]).all()


def test_spreadsheet_commas(tmp_path):
    root = class_folders(tmp_path / "sfew")
    (root / "Fear" / "a, b.png").write_bytes((root / "Fear" / "frame 0.png").read_bytes())
    split = write_pair(tmp_path / "split", b"Angry/frame 0.png,0\nHappy/frame 1.png, happy\nFear/a, b.png 2\n")
    ds = load_dataset(root, image_size=8, split_dir=split, reuse_split=True)
    assert ds.train_files == ["Angry/frame 0.png", "Happy/frame 1.png", "Fear/a, b.png"]
    assert ds.y_train.tolist() == [0, 3, 2]


def test_cp1252_comment_does_not_crash(tmp_path):
    root = class_folders(tmp_path / "sfew")
    split = write_pair(tmp_path / "split", "# café\nAngry/frame 0.png 0\n".encode("cp1252"))
    assert load_dataset(root, image_size=8, split_dir=split, reuse_split=True).y_train.tolist() == [0]


def test_non_utf8_file_name_round_trips(tmp_path):
    # A name from an old Windows zip is not UTF-8: writing it used to raise UnicodeEncodeError.
    root = class_folders(tmp_path / "sfew")
    os.rename(root / "Angry" / "frame 0.png", os.fsencode(root / "Angry") + b"/caf\xe9.png")
    ds = load_dataset(root, image_size=8, seed=0, split_dir=tmp_path / "run")
    again = load_dataset(root, image_size=8, split_dir=tmp_path / "run", reuse_split=True)
    assert sorted(again.train_files + again.test_files) == sorted(ds.train_files + ds.test_files)
    assert "Angry/caf\udce9.png" in ds.train_files + ds.test_files


def test_image_in_both_files_is_an_error(tmp_path):
    # Even when written two ways: a test score on trained images is silently wrong.
    root = class_folders(tmp_path / "sfew")
    split = write_pair(tmp_path / "split", b"Angry/frame 0.png 0\n",
                       f"{root}/Angry/frame 0.png 0\n".encode())
    one_line_error(lambda: load_dataset(root, split_dir=split, reuse_split=True), "test.txt", "also in train.txt")


@pytest.mark.parametrize("train, needles", [
    (b"# only a comment\n\n", ("train.txt", "lists no images")),
    (b"Angry 0\n", ("train.txt:1", "is a folder")),
    (b"Angry/frame 0.png\n", ("train.txt:1", "bad label '0.png'")),
    (b"Angry/frame 0.png Anger,\n", ("train.txt:1", "bad label 'Anger,'")),
])
def test_bad_hand_written_lines(tmp_path, train, needles):
    root = class_folders(tmp_path / "sfew")
    split = write_pair(tmp_path / "split", train)
    one_line_error(lambda: load_dataset(root, split_dir=split, reuse_split=True), *needles)


def test_split_or_cache_folder_that_is_a_file(tmp_path):
    root = class_folders(tmp_path / "sfew")
    split = write_pair(tmp_path / "split", b"Angry/frame 0.png 0\n")
    for kwargs in ({"split_dir": split / "train.txt", "reuse_split": True}, {"split_dir": split / "train.txt"},
                   {"cache_dir": split / "test.txt"}):
        one_line_error(lambda: load_dataset(root, **kwargs), "is a file", "pass a folder")
    one_line_error(lambda: read_split_file(split / "train.txt" / "train.txt", root), "cannot read")
    assert (split / "train.txt").read_bytes() == b"Angry/frame 0.png 0\n"  # nothing written over it
