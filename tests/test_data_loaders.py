"""load_dataset on every supported layout, and its errors.

Each test builds a tiny dataset in tmp_path. Images are 8x8 and uniformly
gray, with a value that encodes the class, so a test can check labels by
looking at pixels.
"""

import pytest
from data_support import class_folders, label_of_pixels, one_line_error, write_image, write_pair
from PIL import Image

from numpy_cnn.data import CLASSES, load_dataset


def test_class_folders_case_insensitive_with_junk(tmp_path):
    names = {name: name.lower() for name in CLASSES if name != "Fear"}  # FER2013 style, Fear missing
    root = class_folders(tmp_path / "fer", names=names, per_class=5)
    (root / ".DS_Store").write_bytes(b"\0junk")
    (root / "angry" / "._frame 0.png").write_bytes(b"resource fork")
    (root / "angry" / "Thumbs.db").write_bytes(b"junk")
    (root / ".ipynb_checkpoints").mkdir()
    (root / "train.txt").write_text("a loose file at the root is ignored\n")
    ds = load_dataset(root, image_size=8, seed=1)
    assert ds.source == "class folders"
    assert ds.x_train.shape == (24, 8, 8) and ds.x_test.shape == (6, 8, 8)
    assert (label_of_pixels(ds.x_train) == ds.y_train).all()
    assert (label_of_pixels(ds.x_test) == ds.y_test).all()
    assert ds.class_counts()["Fear"] == (0, 0) and ds.class_counts()["Angry"] == (4, 1)
    assert all(f.startswith(CLASSES[y].lower() + "/") for f, y in zip(ds.train_files, ds.y_train))


def test_class_folder_synonyms(tmp_path):
    # One FER2013 image dump names its folders like this.
    names = dict(zip(CLASSES, ("angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")))
    ds = load_dataset(class_folders(tmp_path / "fer", per_class=2, names=names), image_size=8, seed=0)
    assert all(counts == (1, 1) for counts in ds.class_counts().values())
    assert (label_of_pixels(ds.x_train) == ds.y_train).all()


def test_clip_subfolders_inside_a_class_folder_are_read(tmp_path):
    # AFEW-style frame dumps: Angry/<clip>/<frame>.png. Skipping them would silently drop images.
    root = class_folders(tmp_path / "frames", per_class=2)
    write_image(root / "Angry" / "clip 7" / "frame 1.png", 0)
    write_image(root / "Angry" / "clip 7" / ".hidden" / "frame 2.png", 0)
    ds = load_dataset(root, image_size=8, seed=0)
    files = sorted(ds.train_files + ds.test_files)
    assert "Angry/clip 7/frame 1.png" in files and len(files) == 15
    assert ds.class_counts()["Angry"] == (2, 1)


def test_split_is_written_then_reused(tmp_path):
    root = class_folders(tmp_path / "sfew", per_class=5)
    ds = load_dataset(root, image_size=8, seed=3, split_dir=tmp_path / "run")
    lines = (tmp_path / "run" / "test.txt").read_text().splitlines()
    assert f"{ds.test_files[0]} {ds.y_test[0]}" in lines
    again = load_dataset(root, image_size=8, seed=99, split_dir=tmp_path / "run", reuse_split=True)
    assert again.source == "split files"
    assert again.test_files == ds.test_files and (again.x_train == ds.x_train).all()


def test_hand_written_split_files(tmp_path):
    root = class_folders(tmp_path / "sfew", per_class=2)
    split = write_pair(tmp_path / "split", b"# comment\n\nAngry/frame 0.png 0\nHappy/frame 0.png  Happy \n",
                       b"Sad/frame 1.png sad\n")
    ds = load_dataset(root, image_size=8, split_dir=split, reuse_split=True)
    assert ds.y_train.tolist() == [0, 3] and ds.y_test.tolist() == [5]
    assert ds.train_files == ["Angry/frame 0.png", "Happy/frame 0.png"]  # spaces in paths survive


def test_split_file_errors_name_file_and_line(tmp_path):
    root = class_folders(tmp_path / "sfew", per_class=2)
    split = write_pair(tmp_path / "split", b"Angry/frame 0.png 0\nAngry/nope.png 0\n")
    one_line_error(lambda: load_dataset(root, split_dir=split, reuse_split=True), "train.txt:2", "nope.png")
    (split / "train.txt").write_text("Angry/frame 0.png 0\n\nAngry/frame 1.png 9\n")
    one_line_error(lambda: load_dataset(root, split_dir=split, reuse_split=True), "train.txt:3", "'9'")
    (split / "train.txt").unlink()
    one_line_error(lambda: load_dataset(root, split_dir=split, reuse_split=True), "train.txt")


@pytest.mark.parametrize("train_name, test_name", [("train", "test"), ("Train", "Val"),
                                                   ("train", "validation")])
def test_train_test_folders(tmp_path, train_name, test_name):
    class_folders(tmp_path / train_name, per_class=3)
    class_folders(tmp_path / test_name, per_class=1, names={"Happy": "happy", "Sad": "SAD"})
    ds = load_dataset(tmp_path, image_size=8, split_dir=tmp_path / "run")
    assert ds.source == "train/test folders"
    assert len(ds.y_train) == 21 and sorted(ds.y_test.tolist()) == [3, 5]
    assert ds.test_files[0].startswith(f"{test_name}/")
    assert not (tmp_path / "run").exists()  # no random split, so no split files


def test_jaffe(tmp_path):
    for i, code in enumerate(["AN", "DI", "FE", "HA", "NE", "SA", "SU"] * 2):
        write_image(tmp_path / f"K{'AM'[i // 7]}.{code}{i % 3 + 1}.{39 + i}.tiff", i % 7, "TIFF")
    (tmp_path / "README").write_text("not an image, not a JAFFE name: ignored")
    ds = load_dataset(tmp_path, image_size=8)
    assert ds.source == "jaffe"
    assert len(ds.y_train) == 7 and len(ds.y_test) == 7  # 2 per class -> 1 train, 1 test
    assert (label_of_pixels(ds.x_train) == ds.y_train).all()


def test_separate_test_data(tmp_path):
    root = class_folders(tmp_path / "train", per_class=2)
    test = class_folders(tmp_path / "elsewhere", per_class=1)
    for i, path in enumerate(sorted(test.rglob("*.png"))):
        Image.new("L", (8, 8), 5 * i + 3).save(path)  # not the training pixels: a real separate set
    ds = load_dataset(root, test_data=test, image_size=8, split_dir=tmp_path / "run")
    assert len(ds.y_train) == 14 and len(ds.y_test) == 7
    assert not (tmp_path / "run").exists()


def write_csv(path, rows, header="emotion,pixels,Usage"):
    path.write_text("\n".join([header] + rows) + "\n")
    return path


def fer_row(fer_label, value, usage=None, count=2304):
    row = f"{fer_label},{' '.join([str(value)] * count)}"
    return row if usage is None else f"{row},{usage}"


def test_fer2013_csv_with_usage(tmp_path):
    # FER2013 labels: 4 Sad, 5 Surprise, 6 Neutral -> ours 5, 6, 4.
    rows = [fer_row(4, 7, "Training"), fer_row(6, 250, "Training"), fer_row(5, 0, "PublicTest"),
            fer_row(0, 99, "PrivateTest")]
    csv = write_csv(tmp_path / "fer2013.csv", rows)
    ds = load_dataset(csv, cache_dir=tmp_path / "cache")
    assert ds.source == "fer2013 csv" and ds.x_train.shape == (2, 48, 48)
    assert ds.y_train.tolist() == [5, 4] and ds.y_test.tolist() == [6, 0]
    assert ds.train_files == ["fer2013.csv:2", "fer2013.csv:3"] and ds.test_files[1] == "fer2013.csv:5"
    assert ds.x_train[1].min() == ds.x_train[1].max() == 250
    small = load_dataset(csv, image_size=24)
    assert small.x_test.shape == (2, 24, 24) and (small.x_train[1] == 250).all()


def test_fer2013_csv_without_usage_is_split_and_reusable(tmp_path):
    rows = [fer_row(label, label) for label in range(7) for _ in range(5)]
    csv = write_csv(tmp_path / "fer.csv", rows, header="emotion,pixels")
    ds = load_dataset(csv, seed=5, split_dir=tmp_path / "run")
    assert len(ds.y_train) == 28 and len(ds.y_test) == 7
    again = load_dataset(csv, split_dir=tmp_path / "run", reuse_split=True)
    assert again.test_files == ds.test_files and (again.x_test == ds.x_test).all()


@pytest.mark.parametrize("bad_row, needle", [
    (fer_row(1, 5, "Training", count=2303), "2303 pixel values"),
    (fer_row(9, 5, "Training"), "'9'"),
    (fer_row(1, 256, "Training"), "0-255"),
    (fer_row(1, 5, "Training").replace(" 5 ", " x5 ", 1), "0-255"),
    (fer_row(1, 5, "Later"), "Usage"),
])
def test_fer2013_bad_rows_name_the_line(tmp_path, bad_row, needle):
    csv = write_csv(tmp_path / "fer2013.csv", [fer_row(0, 1, "Training"), "", bad_row])
    one_line_error(lambda: load_dataset(csv), "fer2013.csv:4", needle)


def test_unknown_class_folder(tmp_path):
    root = class_folders(tmp_path / "sfew", per_class=2)
    (root / "Bored").mkdir()   # (contempt is known, and left out: test_data_sources.py)
    one_line_error(lambda: load_dataset(root), "Bored", "Angry, Disgust, Fear")


def test_bad_inputs_leave_cache_and_split_untouched(tmp_path):
    root = class_folders(tmp_path / "sfew", per_class=3)
    run, cache = tmp_path / "run", tmp_path / "cache"
    load_dataset(root, image_size=8, split_dir=run, cache_dir=cache)
    before = {p: p.read_bytes() for p in [*run.iterdir(), *cache.iterdir()]}

    (root / "Happy" / "notes.txt").write_text("a non-image inside a class folder")
    one_line_error(lambda: load_dataset(root, split_dir=run, cache_dir=cache), "notes.txt")
    (root / "Happy" / "notes.txt").unlink()
    (root / "Sad" / "broken.png").write_bytes((root / "Sad" / "frame 0.png").read_bytes()[:30])
    one_line_error(lambda: load_dataset(root, split_dir=run, cache_dir=cache), "broken.png")

    assert {p: p.read_bytes() for p in [*run.iterdir(), *cache.iterdir()]} == before


def test_too_few_and_no_images(tmp_path):
    root = class_folders(tmp_path / "sfew", per_class=3)
    for extra in (root / "Disgust").iterdir():
        if not extra.name.endswith("0.png"):
            extra.unlink()
    one_line_error(lambda: load_dataset(root), "Disgust", "1 image")
    one_line_error(lambda: load_dataset(tmp_path / "nowhere"), "nowhere")
    (tmp_path / "empty").mkdir()
    one_line_error(lambda: load_dataset(tmp_path / "empty"), "no images")


def test_a_data_spec_loads_as_load_dataset_does_and_writes_its_split_last(tmp_path):
    from dataclasses import FrozenInstanceError

    from numpy_cnn.data import DataSpec, load_spec

    root = class_folders(tmp_path / "faces", per_class=3)
    spec = DataSpec(root, split_dir=tmp_path / "split", image_size=8, seed=2)
    with pytest.raises(FrozenInstanceError):
        spec.seed = 3
    ds = load_spec(spec)
    again = load_dataset(root, split_dir=tmp_path / "again", image_size=8, seed=2)
    assert ds.train_files == again.train_files and (ds.x_test == again.x_test).all()
    assert (tmp_path / "split" / "test.txt").read_text() == (tmp_path / "again" / "test.txt").read_text()
    reused = load_spec(DataSpec(root, split_dir=tmp_path / "split", reuse_split=True, image_size=8, test_only=True))
    assert reused.source == "split files" and reused.test_files == ds.test_files and len(reused.x_train) == 0
