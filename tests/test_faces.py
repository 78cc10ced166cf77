"""The face detector: settings, crop geometry, the missing-OpenCV error, and detection on generated frames."""

import sys

import numpy as np
import pytest
from PIL import Image

from numpy_cnn.data.faces import (
    INSTALL_HINT, Detection, DetectionCounts, DetectorSettings, FaceDetector, crop, iou, require_cv2, square_crop,
)
from numpy_cnn.data.synthetic.sfew import ensure_synthetic_dataset, read_boxes
from numpy_cnn.errors import UserError


def test_settings_key_is_stable_and_names_every_setting():
    assert DetectorSettings().key() == "haar-alt2 sf1.1 mn3 min40 m0.1"
    assert DetectorSettings(cascade="default", min_neighbors=5, margin=0.25).key() == \
        "haar-default sf1.1 mn5 min40 m0.25"
    assert len({DetectorSettings(scale_factor=s).key() for s in (1.05, 1.1, 1.2)}) == 3
    with pytest.raises(AttributeError):
        DetectorSettings().margin = 0.3  # frozen: a cache key cannot drift from its settings


@pytest.mark.parametrize("bad, message", [
    (dict(cascade="profile"), "unknown face cascade 'profile'"),
    (dict(scale_factor=1.0), "scale factor"),
    (dict(min_size=0), "min_size"),
    (dict(margin=-0.1), "margin"),
])
def test_bad_settings_are_one_line_errors(bad, message):
    with pytest.raises(UserError, match=message) as error:
        DetectorSettings(**bad)
    assert "\n" not in str(error.value)


def test_iou_known_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 4, 4), (1, 1, 3, 3)) == pytest.approx(4 / 16)


def test_square_crop_adds_the_margin_and_stays_square_inside_the_frame():
    frame = (576, 720)  # (H, W)
    assert square_crop((100, 100, 200, 200), 0.1, frame) == (90, 90, 210, 210)
    # A tall box: the square follows its longer side, centred on it.
    assert square_crop((100, 100, 180, 200), 0.0, frame) == (90, 100, 190, 200)
    # At the frame's edge the square is moved inside, not cut (the face is not squashed at 48x48).
    left, top, right, bottom = square_crop((0, 500, 100, 576), 0.2, frame)
    assert (left, bottom) == (0, 576) and right - left == bottom - top == 140
    # Larger than the frame: clipped to it.
    assert square_crop((0, 0, 700, 570), 0.2, frame) == (0, 0, 720, 576)


def test_crop_slices_gray_and_colour_frames():
    image = np.arange(6 * 8 * 3).reshape(6, 8, 3)
    assert crop(image, (2, 1, 5, 4)).shape == (3, 3, 3)
    assert crop(image[..., 0], (2, 1, 5, 4))[0, 0] == image[1, 2, 0]


def test_counts_say_how_many_frames_had_no_face_or_several():
    counts = DetectionCounts()
    none = Detection(np.zeros((0, 4), np.int64), (0, 0, 720, 576))
    two = Detection(np.array([[0, 0, 50, 50], [100, 100, 120, 120]]), (0, 0, 60, 60))
    for name, detection in [("a.png", none), ("b.png", two), ("c.png", two)]:
        counts.add(detection, name)
    assert (counts.frames, counts.no_face, counts.several_faces, counts.no_face_files) == (3, 1, 2, ["a.png"])
    assert counts.summary() == "faces: 3 frames, 1 without a face (kept whole), 2 with several (the largest taken)"
    assert counts.summary("drop", "1 train, 0 test") == \
        "faces: 3 frames, 1 without a face (dropped: 1 train, 0 test), 2 with several (the largest taken)"
    assert two.face == (0, 0, 50, 50) and none.face is None


def test_without_opencv_the_error_gives_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` fail
    with pytest.raises(UserError) as error:
        require_cv2()
    assert INSTALL_HINT in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(UserError, match="faces"):
        FaceDetector()


def test_an_empty_frame_has_no_face_and_keeps_the_whole_frame():
    pytest.importorskip("cv2")
    found = FaceDetector().find(np.full((576, 720), 128, np.uint8))
    assert not found.found and found.crop == (0, 0, 720, 576) and found.faces.shape == (0, 4)
    with pytest.raises(ValueError, match="uint8"):
        FaceDetector().detect(np.zeros((10, 10, 3), np.uint8))


def test_the_detector_finds_at_least_90_percent_of_generated_faces(tmp_path):
    # The generated faces are shaded so that Viola-Jones finds them; the crop
    # (largest face, square, with the margin) must overlap the true box.
    pytest.importorskip("cv2")
    root = ensure_synthetic_dataset(tmp_path / "syn", seed=0, counts={name: 10 for name in
                                    ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")})
    detector = FaceDetector()
    truth = read_boxes(root)
    hits = []
    for file, box in truth.items():
        gray = np.asarray(Image.open(root / file).convert("L"))
        hits.append(iou(detector.find(gray).crop, box) >= 0.5)
    assert len(hits) == 70 and np.mean(hits) >= 0.9, f"{np.mean(hits):.0%} of crops overlap the true face"
