"""--crop-faces end to end: the crop cache, the no-face policy and its counts, the split it keeps,
K-fold, the checkpoint's setting in evaluate and predict, faces.png, and the missing-OpenCV error.

Most tests use a stand-in detector (no OpenCV needed, and fast): a "face" is a square of
pixels at 255 in a gray frame, and a frame whose corner pixel is 254 reports a second,
smaller face. One test runs OpenCV's real cascade on generated frames (skipped without it).
"""

import json
import sys

import numpy as np
import pytest
from PIL import Image
from test_cli import cli
from train_support import TINY_ARCH, make_fer_csv

from numpy_cnn.data import CLASSES, decode_image, load_dataset
from numpy_cnn.data import images as images_module
from numpy_cnn.data.faces import INSTALL_HINT, Detection, DetectorSettings, face_report, square_crop
from numpy_cnn.data.images import load_face_crops, load_image
from numpy_cnn.data.splitfiles import read_split_file
from numpy_cnn.train import kfold, trainer as run

FRAME = (96, 120)   # (H, W): bigger than 48x48, so the crop and the resize both matter


class SquareDetector:
    """Finds the bounding box of the pixels at 255; a corner pixel of 254 adds a second face."""

    calls = 0

    def __init__(self, settings):
        self.settings = settings

    def find(self, gray):
        SquareDetector.calls += 1
        rows, cols = np.nonzero(gray == 255)
        if not len(rows):
            return Detection(np.zeros((0, 4), np.int64), (0, 0, gray.shape[1], gray.shape[0]))
        face = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        faces = [face] + ([(0, 0, 4, 4)] if gray[0, 0] == 254 else [])
        return Detection(np.array(faces, np.int64), square_crop(face, self.settings.margin, gray.shape))


@pytest.fixture
def fake_detector(monkeypatch):
    SquareDetector.calls = 0
    monkeypatch.setattr(images_module, "_detector", SquareDetector)
    monkeypatch.setattr(images_module, "require_cv2", lambda: None)
    monkeypatch.setattr(run, "require_cv2", lambda: None)   # trainer.require_tools: where a run starts
    return SquareDetector


@pytest.fixture(autouse=True)
def no_curves(monkeypatch):
    """The curves and confusion matrix cost ~1 s per run; faces.png is still drawn."""
    monkeypatch.setattr(run, "write_plots", lambda *args: None)
    monkeypatch.setattr(kfold, "_plot_pooled", lambda *args: None)


def frame(rng, label: int, face: bool = True, several: bool = False) -> np.ndarray:
    """Dark noise; with a face: a 30x30 square of 255 somewhere, with a class-dependent dark bar in it."""
    pixels = rng.integers(0, 100, FRAME).astype(np.uint8)
    if face:
        top, left = rng.integers(0, FRAME[0] - 30), rng.integers(0, FRAME[1] - 30)
        pixels[top:top + 30, left:left + 30] = 255
        pixels[top + 4 * label // 2 + 2:top + 4 * label // 2 + 4, left + 5:left + 25] = 200
    if several:
        pixels[0, 0] = 254
    return pixels


def make_frames(root, no_face=(), several=(), clips=4, per_clip=2, seed=0):
    """``root/<Class>/Film_<clip>_<frame>.png`` (SFEW names, so --group-by clip works); the frames
    whose (class, clip) are in ``no_face`` have no face, those in ``several`` report two."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for clip in range(clips):
            for f in range(per_clip):
                pixels = frame(rng, c, face=(c, clip) not in no_face, several=(c, clip) in several)
                Image.fromarray(pixels, "L").save(root / name / f"Film_{100 * c + clip:09d}_{f:08d}.png")
    return root


def train_args(data, out, cache, *extra):
    return ["--data", data, "--out", out, "--cache-dir", cache, "--arch", TINY_ARCH, "--epochs", 1,
            "--lr", 0.01, "--crop-faces", *extra]


# -- the decode stage and its cache ---------------------------------------------

def test_the_crop_is_cut_from_the_full_frame_before_the_resize(tmp_path, fake_detector):
    rng = np.random.default_rng(1)
    pixels = frame(rng, 0)
    Image.fromarray(pixels, "L").save(tmp_path / "f.png")
    crop, found = load_image(tmp_path / "f.png", 48, DetectorSettings(margin=0.0))
    whole, none = load_image(tmp_path / "f.png", 48)
    assert found is True and none is None
    assert np.array_equal(whole, decode_image(tmp_path / "f.png", 48))   # without crops: as before
    # The 30x30 face fills the crop, but only a quarter of the whole frame's 48x48.
    assert (crop >= 200).mean() > 0.95 and (whole >= 200).mean() < 0.2


def test_crops_are_cached_under_the_detector_settings_and_not_detected_again(tmp_path, fake_detector):
    root = make_frames(tmp_path / "data", no_face={(0, 0)}, several={(1, 1)})
    paths = sorted(root.rglob("*.png"))
    x, faces, boxes = load_face_crops(paths, 48, tmp_path / "cache", DetectorSettings())
    assert fake_detector.calls == len(paths) and x.shape == (len(paths), 48, 48)
    assert (faces == 0).sum() == 2 and (faces == 2).sum() == 2 and boxes.shape == (len(paths), 4)

    fake_detector.calls = 0
    again = load_face_crops(paths[::-1], 48, tmp_path / "cache", DetectorSettings())   # any order hits
    assert fake_detector.calls == 0
    assert np.array_equal(again[0], x[::-1]) and np.array_equal(again[1], faces[::-1])

    load_face_crops(paths, 48, tmp_path / "cache", DetectorSettings(margin=0.3))   # other settings: detected
    assert fake_detector.calls == len(paths)
    # The whole-frame entry is a different one, under the key it always had.
    fake_detector.calls = 0
    assert np.array_equal(images_module.load_images(paths, 48, tmp_path / "cache")[0], decode_image(paths[0], 48))
    assert fake_detector.calls == 0
    assert len(list((tmp_path / "cache").glob("faces-*.npz"))) == 2
    assert len(list((tmp_path / "cache").glob("images-*.npz"))) == 1


def test_a_second_run_does_not_detect_again(tmp_path, fake_detector):
    data = make_frames(tmp_path / "data")
    assert cli(*train_args(data, tmp_path / "a", tmp_path / "cache"), home=tmp_path)[0] == 0
    assert fake_detector.calls == 56
    fake_detector.calls = 0
    assert cli(*train_args(data, tmp_path / "b", tmp_path / "cache"), home=tmp_path)[0] == 0
    assert fake_detector.calls == 0


# -- the no-face policy, its counts and the split ------------------------------------

def test_keep_and_drop_report_the_counts_and_share_the_split(tmp_path, fake_detector):
    data = make_frames(tmp_path / "data", no_face={(0, 0), (3, 2), (5, 1)}, several={(2, 0)})
    cache = tmp_path / "cache"
    code, out, err = cli(*train_args(data, tmp_path / "keep", cache), home=tmp_path)
    assert code == 0, err
    keep = json.loads((tmp_path / "keep" / "results.json").read_text())
    code, out_drop, err = cli(*train_args(data, tmp_path / "drop", cache, "--no-face", "drop"), home=tmp_path)
    assert code == 0, err
    drop = json.loads((tmp_path / "drop" / "results.json").read_text())

    for results, fate in ((keep, "kept whole"), (drop, "dropped")):
        faces = results["faces"]
        assert (faces["frames"], faces["no_face"], faces["several_faces"]) == (56, 6, 2)
        assert faces["no_face_train"] + faces["no_face_test"] == 6 and len(faces["no_face_files"]) == 6
        assert faces["detector"] == DetectorSettings().key() and fate in faces["line"]
        assert results["config"]["crop_faces"] == {**vars(DetectorSettings())}
    line = [ln for ln in out.splitlines() if ln.startswith("faces:")]
    assert line == [keep["faces"]["line"]]
    assert "6 without a face (dropped: " in out_drop
    # The split files are the same whatever the policy; only what is trained and tested on shrinks.
    for name in ("train.txt", "test.txt"):
        assert (tmp_path / "keep" / name).read_text() == (tmp_path / "drop" / name).read_text()
    assert keep["data"]["n_train"] + keep["data"]["n_test"] == 56
    assert drop["data"]["n_train"] == keep["data"]["n_train"] - drop["faces"]["no_face_train"]
    assert drop["data"]["n_test"] == keep["data"]["n_test"] - drop["faces"]["no_face_test"]
    assert (tmp_path / "keep" / "faces.png").stat().st_size > 1000


def test_a_reused_split_drops_the_same_frames_and_resume_continues(tmp_path, fake_detector):
    data = make_frames(tmp_path / "data", no_face={(0, 0), (4, 3)})
    cache = tmp_path / "cache"
    assert cli(*train_args(data, tmp_path / "a", cache, "--no-face", "drop"), home=tmp_path)[0] == 0
    code, _, err = cli(*train_args(data, tmp_path / "b", cache, "--no-face", "drop", "--reuse-split",
                                   "--split-dir", tmp_path / "a"), home=tmp_path)
    assert code == 0, err
    a, b = (json.loads((tmp_path / r / "results.json").read_text()) for r in "ab")
    assert a["faces"]["no_face_files"] == b["faces"]["no_face_files"]
    assert (a["data"]["n_train"], a["data"]["n_test"]) == (b["data"]["n_train"], b["data"]["n_test"])
    # The stored settings come back on --resume: the same frames are dropped, the pixels match.
    code, out, err = cli("--resume", tmp_path / "a", "--epochs", 2, "--cache-dir", cache, home=tmp_path)
    assert code == 0, err
    assert json.loads((tmp_path / "a" / "results.json").read_text())["data"]["n_train"] == a["data"]["n_train"]


def test_k_fold_with_groups_and_drop_reports_the_faces_once(tmp_path, fake_detector):
    data = make_frames(tmp_path / "data", no_face={(1, 0)}, several={(6, 3)})
    code, out, err = cli(*train_args(data, tmp_path / "cv", tmp_path / "cache", "--no-face", "drop",
                                     "--group-by", "clip", "--folds", 2), home=tmp_path)
    assert code == 0, err
    cv = json.loads((tmp_path / "cv" / "cv_results.json").read_text())
    assert (cv["faces"]["no_face"], cv["faces"]["several_faces"]) == (2, 2)   # 2 frames per clip
    assert sum(f["n_test"] for f in cv["folds"]) == 54   # every frame with a face tested once
    assert (tmp_path / "cv" / "faces.png").is_file() and (tmp_path / "cv" / "fold1" / "faces.png").is_file()
    assert fake_detector.calls == 56   # detected once, when the folds were dealt


def test_no_face_without_crop_faces_is_a_one_line_error(tmp_path):
    code, out, err = cli("--no-face", "drop", "--out", tmp_path / "x", home=tmp_path)
    assert code == 2 and "--crop-faces" in err and err.count("\n") == 1 and not (tmp_path / "x").exists()


def test_a_csv_cannot_be_cropped(tmp_path, fake_detector):
    csv = tmp_path / "fer.csv"
    csv.write_text("emotion,pixels\n0," + " ".join(["0"] * 2304) + "\n")
    code, _, err = cli("--data", csv, "--crop-faces", "--out", tmp_path / "x", home=tmp_path)
    assert code == 2 and "already 48x48 face crops" in err and not (tmp_path / "x").exists()


# -- the same preparation everywhere -----------------------------------------------

def test_evaluate_and_predict_crop_as_the_run_did(tmp_path, fake_detector):
    data = make_frames(tmp_path / "data", no_face={(2, 1)})
    cache = tmp_path / "cache"
    assert cli(*train_args(data, tmp_path / "run", cache, "--no-face", "drop"), home=tmp_path)[0] == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    code, out, err = cli("evaluate", tmp_path / "run", "--cache-dir", cache, home=tmp_path)
    assert code == 0, err
    overall = next(line for line in out.splitlines() if "Overall" in line)
    assert f"| {results['data']['n_test']} |" in overall   # the same frames dropped from the test split
    assert f"{100 * results['overall_test_accuracy']:.2f}%" in overall

    # A FER2013 CSV's rows are face crops already: tested as they are, not cropped again.
    code, out, err = cli("evaluate", tmp_path / "run", "--data", make_fer_csv(tmp_path / "fer.csv"),
                         "--cache-dir", cache, home=tmp_path)
    assert code == 0, err
    assert "| 7 |" in next(line for line in out.splitlines() if "Overall" in line)

    test_file = read_split_file(tmp_path / "run" / "test.txt", data).files[0]
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full(FRAME, 50, np.uint8), "L").save(blank)
    code, out, err = cli("predict", tmp_path / "run", data / test_file, blank, home=tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert "no face found" not in lines[0] and "no face found: the whole image was used" in lines[1]


def test_trace_prepares_its_image_as_the_run_did(tmp_path, fake_detector):
    data = make_frames(tmp_path / "data")
    assert cli(*train_args(data, tmp_path / "run", tmp_path / "cache"), home=tmp_path)[0] == 0
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full(FRAME, 50, np.uint8), "L").save(blank)
    fake_detector.calls = 0
    code, out, err = cli("trace", "--checkpoint", tmp_path / "run", "--image", blank, home=tmp_path)
    assert code == 0, err
    assert "no face found: the whole image" in out and fake_detector.calls == 1
    code, out, err = cli("trace", "--checkpoint", tmp_path / "run", home=tmp_path)   # the run's first test image
    assert code == 0, err
    assert "first test image" in out and "no face found" not in out and fake_detector.calls == 2


def test_without_opencv_crop_faces_is_one_line_giving_the_install_command(tmp_path, monkeypatch):
    data = make_frames(tmp_path / "data")
    monkeypatch.setitem(sys.modules, "cv2", None)   # `import cv2` fails, as without the extra
    code, out, err = cli(*train_args(data, tmp_path / "run", tmp_path / "cache"), home=tmp_path)
    assert code == 2 and INSTALL_HINT in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_face_report_counts_each_side():
    report = face_report(DetectorSettings(), "keep", {"train": (["a", "b", "c"], np.array([0, 1, 3])),
                                                      "test": (["d"], np.array([0]))})
    assert (report["frames"], report["no_face"], report["several_faces"]) == (4, 2, 1)
    assert (report["no_face_train"], report["no_face_test"], report["no_face_files"]) == (1, 1, ["a", "d"])
    assert report["line"].startswith("faces: 4 frames, 2 without a face (kept whole: 1 train, 1 test), "
                                     "1 with several (the largest taken)")


# -- the real detector ------------------------------------------------------------------

def test_opencv_crops_generated_frames_around_their_faces(tmp_path):
    pytest.importorskip("cv2")
    from numpy_cnn.data.synthetic.sfew import ensure_synthetic_dataset, read_boxes

    root = ensure_synthetic_dataset(tmp_path / "syn", seed=0, counts={name: 2 for name in CLASSES})
    truth = read_boxes(root)
    files = sorted(truth)
    x, faces, boxes = load_face_crops([root / f for f in files], 48, tmp_path / "cache", DetectorSettings())
    assert (faces >= 1).mean() >= 0.8
    assert not np.array_equal(x[0], decode_image(root / files[0], 48))
    ds = load_dataset(root, cache_dir=tmp_path / "cache", crop_faces=DetectorSettings(), seed=0)
    assert ds.faces_train is not None and len(ds.faces_train) + len(ds.faces_test) == 14
