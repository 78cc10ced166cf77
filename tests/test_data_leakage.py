"""The leakage report: test images sharing a clip or subject with training images, exact copies, label conflicts."""

import numpy as np

from numpy_cnn.data.leakage import leakage_report


def _images(*values):
    return np.stack([np.full((4, 4), v, np.uint8) for v in values])


def test_a_random_split_of_clips_reports_the_shared_clips_and_the_flag_that_removes_them():
    train = ["Angry/Film_000000001_00000001.png", "Angry/Film_000000002_00000001.png"]
    test = ["Angry/Film_000000001_00000002.png", "Angry/Film_000000003_00000001.png",
            "Angry/Film-000000002_00000009.png"]
    report = leakage_report(train, test, _images(1, 2), _images(3, 4, 5), np.zeros(2, int), np.zeros(3, int))
    assert report["rule"] == "clip" and report["shared_group"] == 2 and report["n_test"] == 3
    assert report["line"].startswith("leakage: 2 of 3 test frames share a clip with a training frame; "
                                     "--group-by clip gives a leak-free split; ")
    assert "\n" not in report["line"]


def test_jaffe_subjects_are_checked_without_a_flag():
    report = leakage_report(["KA.AN1.39.tiff", "KM.HA1.4.tiff"], ["KA.SU1.2.tiff"], _images(1, 2), _images(3),
                            np.array([0, 3]), np.array([6]))
    assert report["rule"] == "subject" and report["shared_group"] == 1
    assert "1 of 1 test images share a subject with a training image; --group-by subject" in report["line"]


def test_under_group_by_a_leak_free_split_says_so():
    report = leakage_report(["Angry/F_000000001_00000001.png"], ["Angry/F_000000002_00000001.png"],
                            _images(1), _images(2), np.zeros(1, int), np.zeros(1, int), group_by="clip")
    assert report["shared_group"] == 0
    assert report["line"].startswith("leakage: no test frame shares a clip with a training frame; ")


def test_exact_copies_across_sides_and_across_classes():
    # Sad/c equals Angry/a (a leak); Fear/x and Surprise/y are one picture filed twice (a conflict).
    train, test = ["Angry/a.png", "Fear/x.png"], ["Sad/c.png", "Surprise/y.png", "Happy/d.png"]
    report = leakage_report(train, test, _images(1, 9), _images(1, 9, 3), np.array([0, 2]), np.array([5, 6, 3]))
    assert report["rule"] is None and report["shared_group"] is None
    assert report["duplicates"] == 2 and report["label_conflicts"] == 2
    line = report["line"]
    assert "no known clip or subject scheme" in line and "2 test images are exact copies of training images" in line
    assert "2 pictures are filed under two classes (Angry/a.png = Sad/c.png, ...)" in line


def test_a_label_conflict_inside_one_side_counts_too():
    report = leakage_report(["Fear/x.png", "Surprise/y.png"], ["Happy/z.png"], _images(7, 7), _images(1),
                            np.array([2, 6]), np.array([3]))
    assert report["duplicates"] == 0 and report["label_conflicts"] == 1
    assert report["conflict_example"] == "Fear/x.png = Surprise/y.png"
    assert "1 picture is filed under two classes (Fear/x.png = Surprise/y.png)" in report["line"]
