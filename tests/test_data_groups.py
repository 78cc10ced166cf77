"""Group rules: SFEW clips and films, JAFFE and CK+ subjects, a user's regex; and the known-scheme guess."""

import pytest
from data_support import one_line_error

from numpy_cnn.data.groups import GroupRule, check_rule, known_scheme
from numpy_cnn.errors import UserError


@pytest.mark.parametrize("path, clip, movie", [
    ("Angry/Airheads_000519240_00000005.png", "Airheads_000519240", "Airheads"),
    # Odd names real SFEW copies hold: a hyphen for the first separator, a doubled underscore.
    ("Fear/OceansThirteen-010619400_00000087.png", "OceansThirteen_010619400", "OceansThirteen"),
    ("Sad/IAmSam_013827920__00000055.png", "IAmSam_013827920", "IAmSam"),
    # Digits, hyphens and underscores inside the film's name; upper-case extensions; JPEGs.
    ("Happy/21_003505960_00000034.png", "21_003505960", "21"),
    ("Happy/Oceans-11_001234567_00000012.PNG", "Oceans-11_001234567", "Oceans-11"),
    ("Happy/Harry_Potter_7_000123456_00000001.JPG", "Harry_Potter_7_000123456", "Harry_Potter_7"),
    # A file manager's copy suffix, a sub-folder, a train/ prefix (SFEW 2.0's Train/Val).
    ("Neutral/Airheads_000519240_00000005 (1).png", "Airheads_000519240", "Airheads"),
    ("Neutral/Airheads_000519240_00000005 - Copy.png", "Airheads_000519240", "Airheads"),
    ("Train/Angry/sub dir/BlueHarbor_000123456_00000012.png", "BlueHarbor_000123456", "BlueHarbor"),
    ("Sad/Airheads_000519240_00000005_1.png", "Airheads_000519240", "Airheads"),   # a suffix after the frame
    # The generated data's names.
    ("Angry/BlueHarbor_000123456_00000012.png", "BlueHarbor_000123456", "BlueHarbor"),
])
def test_clip_and_movie_parse_real_sfew_names(path, clip, movie):
    assert GroupRule("clip").name(path) == clip
    assert GroupRule("movie").name(path) == movie


def test_the_two_spellings_of_one_clip_are_one_group():
    rule = GroupRule("clip")
    assert rule.name("Fear/OceansThirteen-010619400_00000087.png") == rule.name(
        "Fear/OceansThirteen_010619400_00000088.png")


def test_a_frame_named_otherwise_in_a_clip_folder_is_grouped_by_that_folder():
    assert GroupRule("clip").name("Angry/clip_7/0001.png") == "Angry/clip_7"
    assert GroupRule("clip").name("Angry/0001.png") is None           # a class folder is no clip
    assert GroupRule("clip").name("train/Angry/0001.png") is None     # nor is train/<Class>
    assert GroupRule("movie").name("Angry/clip_7/0001.png") is None


@pytest.mark.parametrize("path, subject", [
    ("KA.AN1.39.tiff", "KA"), ("YM.NE2.50.TIFF", "YM"), ("ka.su3.46.tif", "KA"), ("NM.HA1.95.png", "NM"),
    ("Angry/S005_001_00000011.png", "S005"), ("S132_006_00000023.png", "S132"),
])
def test_subject_parses_jaffe_and_ck_names(path, subject):
    assert GroupRule("subject").name(path) == subject


def test_a_regex_captures_from_the_path_relative_to_the_root():
    rule = GroupRule(r"^[^/]+/(\w+?)_")
    assert rule.name("Angry/person7_take2.png") == "person7"
    assert rule.name("Angry/nounderscore.png") is None


def test_a_file_the_rule_cannot_name_is_one_line_naming_it_and_counting_the_others():
    files = ["Angry/Airheads_000519240_00000005.png", "Angry/bad.png", "Sad/worse.png", "Sad/worst.png"]
    one_line_error(lambda: GroupRule("clip").names(files, "data/sfew"),
                   "data/sfew", "Angry/bad.png", "nor of 2 other files", "regular expression")
    message = one_line_error(lambda: GroupRule("clip").names(files[:2], "d"), "Angry/bad.png")
    assert "other" not in message


@pytest.mark.parametrize("spec, needle", [("(", "nor a valid regular expression"),
                                          ("abc", "exactly one capture group (it has 0)"),
                                          ("(a)(b)", "(it has 2)")])
def test_a_bad_rule_is_one_line(spec, needle):
    one_line_error(lambda: check_rule(spec), needle)
    with pytest.raises(UserError):
        GroupRule(spec)


def test_known_scheme_prefers_subjects_and_needs_most_names_to_follow_it():
    assert known_scheme(["Angry/S005_001_00000011.png", "Sad/S006_002_00000001.png"]).spec == "subject"
    assert known_scheme(["KA.AN1.39.tiff"]).spec == "subject"
    sfew = [f"Angry/Film_{i:09d}_00000001.png" for i in range(19)]
    assert known_scheme(sfew + ["Angry/odd.png"]).spec == "clip"          # 95% follow it
    assert known_scheme(sfew[:5] + ["Angry/a.png", "Angry/b.png"]) is None
    assert known_scheme(["Angry/img_0.png", "Angry/clip/0001.png"]) is None   # sub-folders alone are no scheme
