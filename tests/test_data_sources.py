"""Folder layouts of real dataset copies: what sources.py reads, skips and reports.

Images are 8x8 and uniformly gray, with a value that encodes the class.
"""

import os

from data_support import class_folders, label_of_pixels, one_line_error, write_image
from PIL import Image

from numpy_cnn.data import load_dataset, load_pool
from numpy_cnn.data.groups import GroupRule, known_scheme


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


# -- CK+ ------------------------------------------------------------------------
# CK+ codes -> ours: 0 Neutral 4, 1 anger 0, 3 disgust 1, 4 fear 2, 5 happy 3, 6 sadness 5, 7 surprise 6.
CK_LABEL = {0: 4, 1: 0, 3: 1, 4: 2, 5: 3, 6: 5, 7: 6}
# (subject, sequence, frames, CK+ code or None: no emotion file). Two sequences per subject at most.
CK_SEQUENCES = [(5, 1, 4, 3), (5, 2, 3, None), (10, 1, 3, 2), (11, 1, 5, 7), (11, 3, 3, 1), (14, 2, 3, 5),
                (22, 1, 4, 4), (26, 5, 3, 6), (26, 6, 3, None), (32, 1, 3, 5), (37, 3, 3, 7), (42, 1, 3, 1),
                (45, 1, 3, 3), (50, 2, 3, 4), (52, 4, 3, 6)]


def write_ck(base, sequences=CK_SEQUENCES, images="cohn-kanade-images", emotion="Emotion"):
    """CK+'s original release under ``base``: frames ``images/S005/001/S005_001_00000001.png ...``
    and ``emotion/S005/001/S005_001_<last>_emotion.txt`` holding the code as CK+ writes it
    (``   3.0000000e+00``), with FACS/ and Landmarks/ beside them. The first frame's gray
    encodes Neutral, the last one its label (data_support's scheme); frames between and a
    contempt peak are 250, "label 8" (none must be read). Returns each emotion file's path."""
    written = {}
    for subject, sequence, frames, code in sequences:
        folder = f"S{subject:03d}/{sequence:03d}"
        stem = f"S{subject:03d}_{sequence:03d}_"
        for i in range(1, frames + 1):
            label = 4 if i == 1 else CK_LABEL.get(code, 8) if i == frames else 8
            write_image(base / images / folder / f"{stem}{i:08d}.png", label)
        # Real copies hold an empty Emotion folder for each unlabelled sequence.
        (base / emotion / folder).mkdir(parents=True, exist_ok=True)
        (base / "FACS" / folder).mkdir(parents=True, exist_ok=True)
        (base / "FACS" / folder / f"{stem}{frames:08d}_facs.txt").write_text("   1.0000000e+00   0.0000000e+00\n")
        (base / "Landmarks" / folder).mkdir(parents=True, exist_ok=True)
        (base / "Landmarks" / folder / f"{stem}00000001_landmarks.txt").write_text("   2.5e+02   1.9e+02\n")
        if code is not None:
            written[subject, sequence] = base / emotion / folder / f"{stem}{frames:08d}_emotion.txt"
            written[subject, sequence].write_text(f"   {code:.7e}\n")
    return written


def test_ckplus_gives_each_labelled_sequence_its_peak_and_its_first_frame_as_neutral(tmp_path):
    # As unpacked from the two archives, one level down, with macOS junk and one colour frame.
    root = tmp_path / "CK+"
    write_ck(root, images="extended-cohn-kanade-images/cohn-kanade-images", emotion="Emotion_labels/Emotion")
    (root / "extended-cohn-kanade-images" / "cohn-kanade-images" / "S005" / ".DS_Store").write_bytes(b"\0junk")
    Image.new("RGB", (8, 8), (130, 130, 130)).save(root / "extended-cohn-kanade-images" / "cohn-kanade-images"
                                                   / "S022" / "001" / "S022_001_00000001.png")
    source, pool = load_pool(root, image_size=8)
    assert source == "ck+; 1 contempt sequence left out (code 2: not one of the seven classes)"
    # 12 labelled sequences of the seven classes (S010's contempt left out, first frame too): 12 peaks, 12 neutral.
    assert len(pool.y) == 24 and (label_of_pixels(pool.x) == pool.y).all()
    assert pool.files[:2] == ["extended-cohn-kanade-images/cohn-kanade-images/S005/001/S005_001_00000001.png",
                              "extended-cohn-kanade-images/cohn-kanade-images/S005/001/S005_001_00000004.png"]
    assert pool.y[:2].tolist() == [4, 1]   # Neutral, Disgust (code 3)
    assert sorted(pool.y.tolist()) == sorted([0, 0, 1, 1, 2, 2, 3, 3, 5, 5, 6, 6] + [4] * 12)
    assert not any(s in f for f in pool.files for s in ("S010/", "S005/002/", "S026/006/"))   # contempt; no label
    # The same copy as the only folder inside the one given, and training on it.
    again_source, again = load_pool(tmp_path, image_size=8)
    assert again.files == [f"CK+/{f}" for f in pool.files] and again_source == source
    ds = load_dataset(root, image_size=8, test_fraction=0.3)
    assert ds.source == source and len(ds.y_train) + len(ds.y_test) == 24


def test_ckplus_subjects_stay_on_one_side_under_group_by_subject(tmp_path):
    write_ck(tmp_path, images="Cohn-Kanade-Images", emotion="EMOTION")   # any case
    rule = GroupRule("subject")
    assert rule.name("cohn-kanade-images/S005/001/S005_001_00000011.png") == "S005"
    assert rule.name("extended-cohn-kanade-images/cohn-kanade-images/S132/006/S132_006_00000023.png") == "S132"
    ds = load_dataset(tmp_path, image_size=8, group_by="subject", test_fraction=0.3, split_dir=tmp_path / "run")
    train, test = ({rule.name(f) for f in files} for files in (ds.train_files, ds.test_files))
    assert train and test and not train & test
    assert known_scheme(ds.train_files + ds.test_files).spec == "subject"


def test_ckplus_garbled_or_missing_pieces_are_one_line_naming_the_file(tmp_path):
    emotion = write_ck(tmp_path)
    emotion[11, 3].write_text("   \n")   # truncated by a failed copy
    one_line_error(lambda: load_pool(tmp_path, 8), str(emotion[11, 3]), "not a CK+ emotion code", "delete it")
    for bad in ("   2.5000000e+00\n", "   9.0000000e+00\n", "nan\n", "\x00\x01PK\x03"):
        emotion[11, 3].write_text(bad)
        one_line_error(lambda: load_pool(tmp_path, 8), str(emotion[11, 3]), "0-7")
    emotion[11, 3].write_text("   1.0000000e+00\n")
    (tmp_path / "cohn-kanade-images" / "S014" / "002" / "S014_002_00000003.png").unlink()
    one_line_error(lambda: load_pool(tmp_path, 8), str(emotion[14, 2]), "S014_002_00000003", "delete the emotion file")
    (tmp_path / "cohn-kanade-images" / "S014").rename(tmp_path / "elsewhere")   # the whole subject gone
    one_line_error(lambda: load_pool(tmp_path, 8), str(emotion[14, 2]), "not in")


def test_ckplus_without_labels_is_one_line_saying_what_to_unpack(tmp_path):
    write_ck(tmp_path / "ck", sequences=[(5, 1, 3, None), (6, 1, 3, None)])
    one_line_error(lambda: load_dataset(tmp_path / "ck"), "Emotion", "no *_emotion.txt files")
    (tmp_path / "ck" / "Emotion").rename(tmp_path / "labels")
    one_line_error(lambda: load_dataset(tmp_path / "ck"), "cohn-kanade-images", "without an Emotion folder")
    (tmp_path / "labels").rename(tmp_path / "ck" / "Emotion")
    one_line_error(lambda: load_dataset(tmp_path / "ck" / "cohn-kanade-images"), f"{tmp_path / 'ck'}")


def test_ck48_class_folders_leave_contempt_out_with_a_note(tmp_path):
    # Kaggle's CK+48: anger/ contempt/ disgust/ fear/ happy/ sadness/ surprise/ (no neutral).
    names = {"Angry": "anger", "Disgust": "disgust", "Fear": "fear", "Happy": "happy", "Sad": "sadness",
             "Surprise": "surprise"}
    root = class_folders(tmp_path / "CK+48", per_class=3, names=names, filename="S010_004_0000001{i}.png")
    for i in range(3):
        write_image(root / "contempt" / f"S138_008_0000000{i}.png", 8)
    ds = load_dataset(root, image_size=8)
    assert ds.source == "class folders; 3 contempt images left out (contempt/: not one of the seven classes)"
    assert len(ds.y_train) + len(ds.y_test) == 18 and (label_of_pixels(ds.x_test) == ds.y_test).all()
    # As separate test data, the note says so.
    other = class_folders(tmp_path / "sfew", per_class=3)
    for path in other.rglob("*.png"):   # other pixels than CK+48's: a real separate set
        Image.new("L", (8, 8), Image.open(path).getpixel((0, 0)) + 1).save(path)
    ds = load_dataset(other, test_data=root, image_size=8)
    assert ds.source == ("class folders; test data: 3 contempt images left out "
                         "(contempt/: not one of the seven classes)")
    ds = load_dataset(other, test_data=root, image_size=8, test_only=True)
    assert ds.source == "test data; 3 contempt images left out (contempt/: not one of the seven classes)"
    (root / "bored").mkdir()   # any other unknown folder is still an error
    one_line_error(lambda: load_dataset(root), "bored", "unknown class folder")


def test_training_and_evaluate_whole_on_a_ckplus_copy_through_the_command_line(tmp_path, monkeypatch):
    from train_support import TINY_ARCH, cli, make_class_folders, train_quietly

    from numpy_cnn.train import trainer
    from numpy_cnn.train.config import TrainConfig

    monkeypatch.setattr(trainer, "write_plots", lambda *args: None)   # matplotlib: ~1 s, not tested here
    note = "ck+; 1 contempt sequence left out (code 2: not one of the seven classes)"
    ck = tmp_path / "CK+"
    write_ck(ck)
    code, out, err = cli("--data", ck, "--arch", TINY_ARCH, "--epochs", 1, "--group-by", "subject",
                         "--out", tmp_path / "ckrun", home=tmp_path)
    assert code == 0 and f" test images ({note}), ready after" in out, err
    # The judged use: a model trained elsewhere, tested on every CK+ image.
    train_quietly(TrainConfig(data=str(make_class_folders(tmp_path / "faces", per_class=4)), arch=TINY_ARCH,
                              epochs=1), tmp_path / "run")
    code, out, err = cli("evaluate", tmp_path / "run", "--data", ck, "--whole", home=tmp_path)
    assert code == 0 and f"every image of {ck} ({note}, 24 images)" in out, err
    assert "| **Overall** | 24 |" in out
