"""Mistakes made with real dataset copies: one line that names the file or folder and says what to do.

Each of these used to load silently wrong data, crash later, or stop with a
message that named the wrong thing.
"""

from data_support import class_folders, one_line_error
from PIL import Image

from numpy_cnn.data import CLASSES, load_dataset


def fer_csv(path, usages=("Training", "Training", "PublicTest"), header="emotion,pixels,Usage", first=0):
    rows = [f"{i % 7},{' '.join([str(first + i)] * 2304)}" + (f",{u}" if "Usage" in header else "")
            for i, u in enumerate(usages)]  # row i is all first + i: distinct images
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_kaggle_unlabelled_test_csv(tmp_path):
    csv = tmp_path / "test.csv"
    csv.write_text("pixels\n" + " ".join(["7"] * 2304) + "\n")
    one_line_error(lambda: load_dataset(csv), "test.csv", "no emotion column", "train.csv")
    csv.write_text("")
    one_line_error(lambda: load_dataset(csv), "test.csv", "empty")


def test_usage_column_without_one_side(tmp_path):
    one_line_error(lambda: load_dataset(fer_csv(tmp_path / "a.csv", ["Training"] * 3)),
                   "a.csv", "no PublicTest or PrivateTest rows", "delete the Usage column")
    one_line_error(lambda: load_dataset(fer_csv(tmp_path / "b.csv", ["PublicTest"] * 3)),
                   "b.csv", "no Training rows")
    # With a separate test set, a CSV of Training rows only is fine.
    test = fer_csv(tmp_path / "test_rows.csv", ["PrivateTest"] * 2, first=100)
    ds = load_dataset(tmp_path / "a.csv", test_data=test)
    assert len(ds.y_train) == 3 and len(ds.y_test) == 2


def test_folder_holding_the_csv_points_at_it(tmp_path):
    # The FER2013 download unpacks to fer2013/fer2013.csv plus a README.
    fer_csv(tmp_path / "fer2013.csv")
    (tmp_path / "README").write_text("readme")
    one_line_error(lambda: load_dataset(tmp_path), f"pass --data {tmp_path / 'fer2013.csv'}")


def test_train_test_folders_with_an_empty_side(tmp_path):
    class_folders(tmp_path / "train")
    for name in CLASSES:
        (tmp_path / "test" / name).mkdir(parents=True)
    one_line_error(lambda: load_dataset(tmp_path), str(tmp_path / "test"), "hold no images")
    other = tmp_path / "loose"
    (other / "Val" / "Angry").mkdir(parents=True)
    (other / "Train").mkdir()
    Image.new("L", (8, 8)).save(other / "Train" / "no_class.png")
    one_line_error(lambda: load_dataset(other), str(other / "Train"), "Train/<Class>/")


def test_bad_test_data(tmp_path):
    root = class_folders(tmp_path / "train")
    (tmp_path / "face.png").write_bytes(b"\x89PNG\r\n")
    one_line_error(lambda: load_dataset(root, test_data=tmp_path / "face.png"), "face.png", ".csv")
    one_line_error(lambda: load_dataset(root, test_data=tmp_path / "nope"), "nope", "not found")
    one_line_error(lambda: load_dataset(root, test_data=root), "is the training data itself")
    # A whole train/test dataset as test data would test on its train/ images too.
    other = tmp_path / "fer_images"
    class_folders(other / "train")
    class_folders(other / "test")
    one_line_error(lambda: load_dataset(root, test_data=other), f"pass {other / 'test'} as the test data")


def test_csv_row_in_both_split_files(tmp_path):
    csv = fer_csv(tmp_path / "fer.csv", ["Training"] * 3, header="emotion,pixels")
    (tmp_path / "train.txt").write_text("fer.csv:2 0\nfer.csv:3 1\n")
    (tmp_path / "test.txt").write_text("fer.csv:4 2\nfer.csv:2 0\n")
    one_line_error(lambda: load_dataset(csv, split_dir=tmp_path, reuse_split=True),
                   "test.txt", "fer.csv:2 is also in train.txt")


def test_test_data_made_of_training_images(tmp_path):
    # Kaggle's train.csv is fer2013.csv's Training rows; the whole fer2013.csv as test data repeats them.
    usages = ["Training"] * 4 + ["PublicTest", "PrivateTest"]
    fer = fer_csv(tmp_path / "fer2013.csv", usages)
    lines = fer.read_text().splitlines()
    train = tmp_path / "train.csv"
    train.write_text("\n".join(["emotion,pixels"] + [line.rsplit(",", 1)[0] for line in lines[1:5]]) + "\n")
    one_line_error(lambda: load_dataset(train, test_data=fer), "fer2013.csv", "4 of its 6 images are also training")
    ds = load_dataset(train, test_data=fer_csv(tmp_path / "other.csv", ["PublicTest"] * 6, first=3))
    assert len(ds.y_test) == 6  # 1 of 6 images also in training: a real set may have a few duplicates


def test_test_data_hints_name_the_test_data_option(tmp_path):
    root = class_folders(tmp_path / "train")
    # A CSV download folder given as the test set: the hint must say --test-data, not --data.
    (tmp_path / "fer_download").mkdir()
    fer_csv(tmp_path / "fer_download" / "fer2013.csv")
    message = one_line_error(lambda: load_dataset(root, test_data=tmp_path / "fer_download"),
                             f"pass --test-data {tmp_path / 'fer_download' / 'fer2013.csv'}")
    assert "--data" not in message
    # The test set one level down, inside a folder that is not a class.
    class_folders(tmp_path / "outer" / "faces")
    message = one_line_error(lambda: load_dataset(root, test_data=tmp_path / "outer"),
                             f"pass --test-data {tmp_path / 'outer' / 'faces'}")
    assert "--data" not in message
    # One class folder of the test set.
    one_line_error(lambda: load_dataset(root, test_data=tmp_path / "outer" / "faces" / "Sad"),
                   "Sad looks like one class", str(tmp_path / "outer" / "faces"))
