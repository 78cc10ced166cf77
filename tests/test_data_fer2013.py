"""The FER2013 CSV in the shapes it is distributed and re-saved in.

fer2013.csv (emotion,pixels,Usage), Kaggle's train.csv (emotion,"pixels"),
icml_face_data.csv ("emotion, Usage, pixels"), and the same files after an
editor or pandas: a BOM, CRLF or CR line ends, trailing blank lines, an index column,
runs of spaces or tabs between pixels, float labels. And a binary file named .csv.
"""

import numpy as np
import pytest
from data_support import one_line_error
from PIL import Image

from numpy_cnn.data import load_dataset

# FER2013's order -> ours: 4 Sad, 5 Surprise, 6 Neutral are our 5, 6, 4.
FER_TO_OURS = [0, 1, 2, 3, 5, 6, 4]


def rows(per_class=3):
    """(fer label, pixel string, usage): the last row of each class is a test row; row values are unique."""
    out = []
    for k in range(7):
        for i in range(per_class):
            out.append((k, " ".join([str(10 * k + i)] * 2304), "PublicTest" if i == per_class - 1 else "Training"))
    return out


VARIANTS = {
    "fer2013.csv": lambda r: "emotion,pixels,Usage\n" + "".join(f"{k},{p},{u}\n" for k, p, u in r),
    "bom_crlf_blank_end.csv": lambda r: "\ufeffemotion,pixels,Usage\r\n"
    + "".join(f"{k},{p},{u}\r\n" for k, p, u in r) + "\r\n\r\n",
    "mac_cr.csv": lambda r: "emotion,pixels,Usage\r" + "".join(f"{k},{p},{u}\r" for k, p, u in r),
    "icml_face_data.csv": lambda r: "emotion, Usage, pixels\n" + "".join(f"{k}, {u}, {p}\n" for k, p, u in r),
    "pandas_index.csv": lambda r: ",emotion,pixels,Usage\n" + "".join(f"{n},{k},{p},{u}\n" for n, (k, p, u) in enumerate(r)),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_load_the_same(tmp_path, name):
    csv = tmp_path / name
    csv.write_bytes(VARIANTS[name](rows()).encode())
    ds = load_dataset(csv)
    assert len(ds.y_train) == 14 and len(ds.y_test) == 7
    assert ds.y_test.tolist() == FER_TO_OURS and ds.test_files[0] == f"{name}:4"  # header is line 1
    assert (ds.x_test[:, 0, 0] == np.arange(7) * 10 + 2).all()  # each row's own pixels


def test_kaggle_train_csv_is_split_at_random(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("emotion,pixels\n" + "".join(f'{k},"{p}"\n' for k, p, _ in rows()))
    ds = load_dataset(csv, seed=0)
    assert len(ds.y_train) + len(ds.y_test) == 21 and sorted(set(ds.y_test.tolist())) == list(range(7))
    labels = {f: y for f, y in zip(ds.train_files + ds.test_files, [*ds.y_train, *ds.y_test])}
    assert labels["train.csv:2"] == 0 and labels["train.csv:14"] == 5  # FER 4 (Sad) is our 5


def test_resaved_separators_and_float_labels(tmp_path):
    # Re-saved by an editor or pandas: runs of spaces, tabs, padding; labels 0.0 after a NaN.
    r = rows()
    seps = [" ", "  ", "\t", " \t ", "   "]
    text = "emotion,pixels,Usage\n" + "".join(
        f'{k}.0,"{seps[n % 5]}{p.replace(" ", seps[n % 5])}{seps[(n + 1) % 5]}",{u}\n' if n % 2 else f"{k},{p},{u}\n"
        for n, (k, p, u) in enumerate(r))
    (tmp_path / "resaved.csv").write_text(text)
    (tmp_path / "plain.csv").write_text(VARIANTS["fer2013.csv"](r))
    got, want = load_dataset(tmp_path / "resaved.csv"), load_dataset(tmp_path / "plain.csv")
    assert np.array_equal(got.x_train, want.x_train) and np.array_equal(got.x_test, want.x_test)
    assert got.y_train.tolist() == want.y_train.tolist() and got.y_test.tolist() == FER_TO_OURS


@pytest.mark.parametrize("row, needle", [
    ("2.5," + " ".join(["1"] * 2304), "bad emotion '2.5'"),
    ("7.0," + " ".join(["1"] * 2304), "bad emotion '7.0'"),
    ("," + " ".join(["1"] * 2304), "bad emotion ''"),  # pandas writes NaN as nothing
    ("1," + " ".join(["1"] * 2302) + "  1", "2303 pixel values"),  # a run of spaces, one value short
    ("1,\t" + "\t".join(["1"] * 2305), "2305 pixel values"),
])
def test_bad_resaved_rows_name_the_line(tmp_path, row, needle):
    csv = tmp_path / "fer.csv"
    csv.write_text("emotion,pixels\n3.0," + " ".join(["1"] * 2304) + "\n" + row + "\n")
    one_line_error(lambda: load_dataset(csv), "fer.csv:3", needle)


def test_binary_file_named_csv(tmp_path):
    Image.new("RGB", (48, 48)).save(tmp_path / "face.png")
    fake = tmp_path / "fer2013.csv"
    fake.write_bytes((tmp_path / "face.png").read_bytes())  # a PNG renamed
    message = one_line_error(lambda: load_dataset(fake), "fer2013.csv: not a text CSV file (it looks binary)",
                             "pass a FER2013 .csv or a dataset folder")
    assert "PNG" not in message
    real = tmp_path / "real.csv"
    real.write_text(VARIANTS["fer2013.csv"](rows()))
    one_line_error(lambda: load_dataset(real, test_data=fake), "fer2013.csv: not a text CSV file")
    fake.write_bytes(VARIANTS["fer2013.csv"](rows()).encode("utf-16"))  # Excel's "Unicode Text"
    one_line_error(lambda: load_dataset(fake), "fer2013.csv: is UTF-16 text", "UTF-8")
