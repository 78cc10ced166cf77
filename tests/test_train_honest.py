"""Honest numbers end to end: leakage line, --group-by, --folds K (bookkeeping, resume), evaluate's decoding."""

import contextlib
import io
import json
import re

import pytest
from train_support import TINY_ARCH, files_snapshot, make_class_folders, make_clips

from numpy_cnn.cli.main import main
from numpy_cnn.data.groups import GroupRule
from numpy_cnn.data.splitfiles import read_groups_file, read_split_file
from numpy_cnn.errors import UserError
from numpy_cnn.train import kfold, trainer as run
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.kfold import cross_validate
from numpy_cnn.train.trainer import Interrupted

CLIP = GroupRule("clip")


def cli(*args, home):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args], home=home)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def no_plots(request, monkeypatch):
    """matplotlib costs ~1 s per run; only tests asking for ``with_plots`` draw them."""
    if "with_plots" not in request.fixturenames:
        monkeypatch.setattr(run, "write_plots", lambda *args: None)
        monkeypatch.setattr(kfold, "_plot_pooled", lambda *args: None)


@pytest.fixture
def with_plots():
    """Requested by a test that checks the figures."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return {"home": home, "clips": make_clips(home / "clips"), "cache": home / "cache"}


def _args(world, out, *extra, data=None):
    return ["--data", data or world["clips"], "--out", out, "--cache-dir", world["cache"], "--arch", TINY_ARCH,
            "--epochs", 2, "--lr", 0.01, *extra]


def _split(run_dir, world):
    return [read_split_file(run_dir / name, world["clips"]).files for name in ("train.txt", "test.txt")]


def test_a_plain_run_prints_the_leak_and_the_flag_that_removes_it(world, tmp_path):
    code, out, err = cli(*_args(world, tmp_path / "run"), home=world["home"])
    assert code == 0, err
    leak = json.loads((tmp_path / "run" / "results.json").read_text())["leakage"]
    train, test = _split(tmp_path / "run", world)
    shared = sum(CLIP.name(f) in {CLIP.name(t) for t in train} for f in test)
    assert leak["rule"] == "clip" and leak["shared_group"] == shared > 0 and leak["n_test"] == len(test)
    line = f"leakage: {shared} of {len(test)} test frames share a clip with a training frame; " \
           "--group-by clip gives a leak-free split"
    assert line in out and leak["line"] in out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    lo, hi = results["overall_test_accuracy_ci95"]
    assert lo <= results["overall_test_accuracy"] <= hi


def test_group_by_clip_keeps_clips_whole_records_them_and_reuse_split_repeats_it(world, tmp_path):
    code, out, err = cli(*_args(world, tmp_path / "run", "--group-by", "clip"), home=world["home"])
    assert code == 0, err
    train, test = _split(tmp_path / "run", world)
    assert not {CLIP.name(f) for f in train} & {CLIP.name(f) for f in test}
    assert "data: test images per class (--group-by clip): Angry 3/12, " in out   # whole clips of 3 frames
    assert "leakage: no test frame shares a clip with a training frame" in out
    groups = read_groups_file(tmp_path / "run" / "groups.txt")
    assert groups == {f: CLIP.name(f) for f in train + test}
    code, out, err = cli(*_args(world, tmp_path / "again", "--reuse-split", "--split-dir", tmp_path / "run",
                                "--group-by", "clip"), home=world["home"])
    assert code == 0, err
    assert _split(tmp_path / "again", world) == [train, test]


def test_reusing_a_leaky_split_under_group_by_says_the_files_do_not_follow_it(world, tmp_path):
    assert cli(*_args(world, tmp_path / "plain"), home=world["home"])[0] == 0
    code, out, err = cli(*_args(world, tmp_path / "r", "--reuse-split", "--split-dir", tmp_path / "plain",
                                "--group-by", "clip"), home=world["home"])
    assert code == 0, err
    assert "the split files do not follow --group-by clip" in out


@pytest.mark.parametrize("extra, needles", [
    (["--group-by", "clip"], ["cannot name the group of Angry/img_0.png", "nor of 34 other files"]),
    (["--group-by", "(a)(b)"], ["exactly one capture group"]),
    (["--folds", "1"], ["--folds must be at least 2"]),
    (["--folds", "6"], ["class Angry has 5 images", "--folds 6 needs at least 6"]),
    (["--folds", "3", "--reuse-split"], ["--reuse-split has no place"]),
])
def test_mistakes_are_one_line_exit_2_and_leave_nothing(world, tmp_path, extra, needles):
    plain = make_class_folders(tmp_path / "plain")
    before = files_snapshot(tmp_path)
    code, out, err = cli(*_args(world, tmp_path / "run", *extra, data=plain), home=world["home"])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(n in err for n in needles), err
    assert files_snapshot(tmp_path) == before and not (tmp_path / "run").exists()


def test_folds_with_test_data_is_one_line(world, tmp_path):
    code, _, err = cli(*_args(world, tmp_path / "run", "--folds", "3", "--test-data", world["clips"] / "Angry"),
                       home=world["home"])
    assert code == 2 and "--test-data has no place" in err and err.count("\n") == 1


def test_test_data_is_checked_for_leaks_against_the_training_set(world, tmp_path):
    other = make_clips(tmp_path / "other", clips_per_class=1, frames=1, seed=5)   # the same clip numbers
    code, out, err = cli(*_args(world, tmp_path / "run", "--test-data", other), home=world["home"])
    assert code == 0, err
    assert "leakage: 7 of 7 test frames share a clip with a training frame" in out


def test_evaluate_decodes_only_the_test_images(world, tmp_path):
    data = make_clips(tmp_path / "clips")
    assert cli(*_args(world, tmp_path / "run", data=data), home=world["home"])[0] == 0
    train, _ = [read_split_file(tmp_path / "run" / n, data).files for n in ("train.txt", "test.txt")]
    for name in train:   # the training images are gone; the test split is all evaluate needs
        (data / name).unlink()
    code, out, err = cli("evaluate", tmp_path / "run", "--cache-dir", tmp_path / "cache", home=world["home"])
    assert code == 0, err
    assert "**Overall**" in out


# -- K-fold ------------------------------------------------------------------

def _cv_config(world, **kw):
    return TrainConfig(**{"data": str(world["clips"]), "arch": TINY_ARCH, "epochs": 3, "lr": 0.01,
                          "folds": 3, "group_by": "clip", **kw})


def test_folds_test_every_image_once_keep_clips_whole_and_pool_their_results(world, tmp_path, with_plots):
    code, out, err = cli(*_args(world, tmp_path / "cv", "--folds", "3", "--group-by", "clip"), home=world["home"])
    assert code == 0, err
    cv_dir = tmp_path / "cv"
    assert {"cv.json", "cv_results.json", "table1.md", "confusion_matrix.png", "fold1", "fold2", "fold3"} \
        <= {p.name for p in cv_dir.iterdir()}
    tested = []
    for k in (1, 2, 3):
        fold = cv_dir / f"fold{k}"
        assert {"checkpoint.npz", "results.json", "table1.md", "train.txt", "test.txt", "groups.txt",
                "confusion_matrix.png"} <= {p.name for p in fold.iterdir()}
        train, test = _split(fold, world)
        assert not {CLIP.name(f) for f in train} & {CLIP.name(f) for f in test}
        assert sorted(train + test) == sorted(_all_images(world))
        tested += test
    assert sorted(tested) == sorted(_all_images(world))   # every image tested exactly once
    cv = json.loads((cv_dir / "cv_results.json").read_text())
    assert [f["fold"] for f in cv["folds"]] == [1, 2, 3] and sum(f["n_test"] for f in cv["folds"]) == 84
    accs = [f["test_accuracy"] for f in cv["folds"]]
    assert cv["mean_test_accuracy"] == pytest.approx(sum(accs) / 3)
    assert cv["ci95"][0] <= cv["mean_test_accuracy"] <= cv["ci95"][1] and cv["std_test_accuracy"] >= 0
    assert sum(map(sum, cv["confusion_matrix"])) == 84 and set(cv["per_class_test_accuracy"]) >= {"Angry", "Sad"}
    assert re.search(r"fold 2/3  epoch 1/2  loss ", out)
    assert re.search(r"^3-fold test accuracy: \d+\.\d% \u00b1 \d+\.\d% SD over folds \(95% CI \d+\.\d\u2013\d+\.\d%\)$", out, re.M)
    assert "| **Overall** | 84 |" in out and "| **Overall** | 84 |" in (cv_dir / "table1.md").read_text()
    code, _, err = cli("evaluate", cv_dir, home=world["home"])
    assert code == 2 and "holds one model per fold; pass" in err and err.count("\n") == 1


def _all_images(world):
    return [p.relative_to(world["clips"]).as_posix() for p in world["clips"].rglob("*.png")]


def test_ctrl_c_inside_a_fold_then_resume_gives_the_uninterrupted_numbers(world, tmp_path, monkeypatch):
    full = cross_validate(_cv_config(world), tmp_path / "full", home=world["home"], cache_dir=world["cache"],
                          log=None)

    def ctrl_c(fold, epoch):
        if (fold, epoch) == (2, 2):
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(Interrupted, match=r"fold 2 of 3 \(.*fold2/checkpoint.npz holds epoch 2\).*--resume .*cut"):
        cross_validate(_cv_config(world), cut, home=world["home"], cache_dir=world["cache"], log=None,
                       on_epoch_end=ctrl_c)
    fold1 = files_snapshot(cut / "fold1")
    lines = []
    resumed = cross_validate(_cv_config(world), cut, home=world["home"], cache_dir=world["cache"], resume=True,
                             log=lines.append)
    assert files_snapshot(cut / "fold1") == fold1                     # the finished fold is not retrained
    assert not any(line.startswith("fold 2/3  epoch 1/") for line in lines)   # fold 2 resumes at epoch 3
    assert any(line.startswith("fold 2/3  epoch 3/3") for line in lines)
    for key in ("folds", "mean_test_accuracy", "std_test_accuracy", "ci95", "confusion_matrix", "table1"):
        assert resumed[key] == full[key], key


def test_ctrl_c_before_any_epoch_takes_everything_back(world, tmp_path, monkeypatch):
    def ctrl_c(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(kfold, "train", ctrl_c)
    with pytest.raises(Interrupted, match="nothing was saved; run the same command again"):
        cross_validate(_cv_config(world), tmp_path / "cv", home=world["home"], cache_dir=world["cache"], log=None)
    assert not (tmp_path / "cv").exists()


def test_resume_on_the_command_line_continues_the_cross_validation(world, tmp_path, monkeypatch):
    config = _cv_config(world, epochs=2)
    with pytest.raises(Interrupted):
        cross_validate(config, tmp_path / "cv", home=world["home"], cache_dir=world["cache"], log=None,
                       on_epoch_end=lambda fold, epoch: (_ for _ in ()).throw(KeyboardInterrupt) if fold == 3 else None)
    code, out, err = cli("--resume", tmp_path / "cv", "--cache-dir", world["cache"], home=world["home"])
    assert code == 0, err
    assert "fold 3/3  epoch 2/2" in out and "fold 3/3  epoch 1/2" not in out and "fold 1/3  epoch" not in out
    assert "3-fold test accuracy" in out
    code, _, err = cli("--resume", tmp_path / "cv", "--lr", "0.5", home=world["home"])
    assert code == 2 and "--lr 0.5 (the run used 0.01)" in err
    with pytest.raises(UserError, match="already holds a cross-validation run"):
        cross_validate(config, tmp_path / "cv", home=world["home"], cache_dir=world["cache"], log=None)


def test_evaluate_on_another_dataset_decodes_only_its_test_part(world, tmp_path):
    assert cli(*_args(world, tmp_path / "run"), home=world["home"])[0] == 0
    other = make_class_folders(tmp_path / "other" / "train")
    make_class_folders(tmp_path / "other" / "test", per_class=2)
    (other / "Angry" / "img_0.png").write_bytes(b"not an image")   # a training image nobody needs
    code, out, err = cli("evaluate", tmp_path / "run", "--data", tmp_path / "other", "--cache-dir",
                         tmp_path / "cache", home=world["home"])
    assert code == 0, err
    assert "| **Overall** | 14 |" in out


def test_folds_without_group_by_report_the_pooled_leak(world, tmp_path):
    code, out, err = cli(*_args(world, tmp_path / "cv", "--folds", "2"), home=world["home"])
    assert code == 0, err
    shared = 0
    for k in (1, 2):
        train, test = _split(tmp_path / "cv" / f"fold{k}", world)
        shared += sum(CLIP.name(f) in {CLIP.name(t) for t in train} for f in test)
    cv = json.loads((tmp_path / "cv" / "cv_results.json").read_text())
    assert cv["leakage"]["shared_group"] == shared > 0 and cv["leakage"]["n_test"] == 84
    assert f"leakage over the 2 test folds: {shared} of 84 test frames share a clip with a training frame; " \
           "--group-by clip gives a leak-free split" in out
