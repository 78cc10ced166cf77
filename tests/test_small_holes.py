"""What a new user tripped over (issue 19): spec rules for bn and drop, integer epoch ticks, the face sheet."""

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.arch import build_model, check_arch
from numpy_cnn.study import plots


@pytest.mark.parametrize("spec, says", [
    ("c6k5-bn-bn", "token 3 'bn' follows bn1"),
    ("c6k5-relu-bn", "token 3 'bn' follows relu1"),
    ("bn-c6k5", "token 1 'bn' has no conv or fc before it"),
    ("drop0.5-c6k5", "token 1 'drop0.5' starts the spec"),
    ("c6k5-relu-drop0.5-drop0.2", "token 4 'drop0.2' follows another drop"),
])
def test_bn_and_drop_are_refused_where_the_spec_rules_them_out(spec, says):
    with pytest.raises(UserError, match=f"architecture spec '{spec}': {says}"):
        check_arch(spec, image_size=16)


@pytest.mark.parametrize("spec", ["c6k5-bn-relu", "c6k5-relu-drop0.5-fc8-bn-relu-drop0.5", "fc16-bn-drop0.1"])
def test_bn_right_after_a_conv_or_fc_and_drop_after_a_layer_still_build(spec):
    build_model(spec, image_size=16, rng=0)


@pytest.fixture
def figures(monkeypatch):
    """The figures a plot function makes, captured instead of closed."""
    plt = plots.pyplot()
    made = []
    monkeypatch.setattr(plt, "close", made.append)
    return made


def test_curves_of_a_three_epoch_run_have_integer_epoch_ticks(tmp_path, figures):
    plots.plot_curves(tmp_path / "loss.png", [1, 2, 3], {"train": [1.9, 1.8, 1.7]}, "loss", "loss")
    ticks = figures[0].axes[0].get_xticks()
    visible = [t for t in ticks if 1 <= t <= 3]
    assert visible and all(float(t).is_integer() for t in visible), ticks


def test_face_sheet_shows_crops_and_misses_side_by_side_with_the_counts(tmp_path, figures):
    classes = ["Angry", "Happy"]
    y = np.array([0] * 10 + [1] * 5)
    faces = np.array([0] * 9 + [1] + [1] * 5)   # Angry: 9 misses of 10 (real film frames look like this)
    x = np.full((15, 12, 12), 128, np.uint8)
    plots.plot_face_sheet(tmp_path / "faces.png", x, y, faces, classes)
    assert (tmp_path / "faces.png").exists()
    left, right = figures[0].axes
    assert left.get_title() == "face found: 6 crops"
    assert right.get_title() == "no face found: 9 whole frames (red)"
    assert [t.get_text() for t in left.get_yticklabels()] == ["Angry: 1", "Happy: 5"]
    assert [t.get_text() for t in right.get_yticklabels()] == ["9", "0"]


def test_drawing_the_generated_data_says_so_and_shows_progress(tmp_path, capsys, monkeypatch):
    from numpy_cnn.data.synthetic import ensure_synthetic_dataset, sfew

    clock = iter(range(0, 1000, 4))   # every clip seems to take 4 s: a progress line each
    monkeypatch.setattr(sfew.time, "monotonic", lambda: next(clock))
    ensure_synthetic_dataset(tmp_path / "syn", counts={"Sad": 3, "Happy": 2}, workers=1)
    err = capsys.readouterr().err
    assert "drawing the generated dataset: 5 frames in" in err
    assert "drawing: 1/" in err
    ensure_synthetic_dataset(tmp_path / "syn", counts={"Sad": 3, "Happy": 2}, workers=1)
    assert "drawing" not in capsys.readouterr().err   # made once: a second call draws nothing and says nothing


def test_face_detection_reports_itself_as_finding_faces(capsys, monkeypatch):
    from numpy_cnn.data import images

    monkeypatch.setattr(images, "_PROGRESS_SECONDS", -1.0)   # a line after every image
    crops = {"x": np.zeros((2, 4, 4), np.uint8), "faces": np.zeros(2, np.int64), "boxes": np.zeros((2, 4), np.int64)}
    images._fill_with_progress(crops, [(np.ones((4, 4), np.uint8), 1, np.arange(4))] * 2)
    assert "finding faces: 2/2" in capsys.readouterr().err
    images._fill_with_progress({"x": np.zeros((2, 4, 4), np.uint8)}, [np.ones((4, 4), np.uint8)] * 2)
    assert "decoding images: 2/2" in capsys.readouterr().err


def test_one_epoch_is_singular_and_a_run_near_chance_says_why():
    from numpy_cnn.train.progress import epochs, near_chance_note

    assert (epochs(1), epochs(3)) == ("1 epoch", "3 epochs")
    note = near_chance_note(0.16, 0.13, 7, 3, "sgd", 0.001)
    assert note.startswith("note: after 3 epochs the network is still near chance (train 16.0%, test 13.0%, "
                           "chance 14.3%)")
    assert "about 25 epochs to leave its starting plateau" in note
    assert "has not fitted" in near_chance_note(0.2, 0.2, 7, 2, "adam", 0.001)
    assert near_chance_note(0.9, 0.3, 7, 200, "sgd", 0.001) is None   # it learned: nothing to explain
