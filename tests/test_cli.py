"""train_numpy.py end to end through ``main([...])``: the run's files, evaluate, predict, and bad input.

Every bad input must give exit status 2, exactly one line on stderr, no
traceback, and leave files that already existed (an earlier run, the cache)
byte-for-byte unchanged.
"""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
from train_support import TINY_ARCH, files_snapshot, make_class_folders, make_fer_csv

from numpy_cnn.nn.arch import DEFAULT_ARCH
from numpy_cnn.train.checkpoint import load_checkpoint, save_checkpoint
from numpy_cnn.cli.main import main
from numpy_cnn.train import run_split as rundata

RUN_FILES = {"checkpoint.npz", "metrics.csv", "metrics.json", "train.txt", "test.txt", "table1.md",
             "results.json", "loss.png", "accuracy.png", "confusion_matrix.png", "recipe.toml"}


def cli(*args, home):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args], home=home)
    return code, out.getvalue(), err.getvalue()


def train_args(data, out, cache, *extra):
    return ["--data", data, "--out", out, "--cache-dir", cache, "--arch", TINY_ARCH, "--epochs", 2,
            "--lr", 0.01, *extra]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A dataset, a cache, and one finished run, shared by the tests (they must not change it)."""
    home = tmp_path_factory.mktemp("home")
    data = make_class_folders(home / "faces")
    code, out, err = cli(*train_args(data, home / "run", home / "cache"), home=home)
    assert code == 0, err
    return {"home": home, "data": data, "cache": home / "cache", "run": home / "run", "stdout": out}


def test_a_run_prints_progress_and_table1_and_writes_every_file(world):
    lines = world["stdout"].splitlines()
    assert lines[0].startswith("data: ") and "training and" in lines[1]   # what it loaded, how fast
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert epochs[0].startswith("epoch 1/2  loss ") and "ETA" in epochs[0]
    assert "| **Overall** | 7 |" in world["stdout"]
    assert {p.name for p in world["run"].iterdir()} == RUN_FILES
    results = json.loads((world["run"] / "results.json").read_text())
    assert set(results["per_class_test_accuracy"]) == {"Angry", "Disgust", "Fear", "Happy", "Neutral",
                                                       "Sad", "Surprise"}
    for key in ("overall_test_accuracy", "final_train_accuracy", "epochs", "seed", "train_seconds", "arch"):
        assert key in results
    assert results["data"]["source"] == "class folders" and results["epochs"] == 2
    assert (world["run"] / "table1.md").read_text().count("\n|") == 10   # header, rule, 7 classes, overall
    assert len((world["run"] / "test.txt").read_text().splitlines()) == 1 + 7


def test_quiet_prints_only_table1_and_help_lists_the_commands(world, tmp_path, capsys):
    code, out, _ = cli(*train_args(world["data"], tmp_path / "q", world["cache"], "--quiet", "--epochs", 1),
                       home=tmp_path)
    assert code == 0 and "epoch 1/1" not in out and "| **Overall** |" in out
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    assert "evaluate" in help_text and "predict" in help_text and "--reuse-split" in help_text


def test_evaluate_reports_the_runs_own_test_split_like_training_did(world):
    results = json.loads((world["run"] / "results.json").read_text())
    for target in (world["run"], world["run"] / "checkpoint.npz"):
        code, out, err = cli("evaluate", target, "--cache-dir", world["cache"], home=world["home"])
        assert code == 0, err
        overall = next(line for line in out.splitlines() if "**Overall**" in line)
        assert f"| {100 * results['overall_test_accuracy']:.2f}% (95% CI " in overall


def test_evaluate_on_another_dataset_uses_its_test_part(world, tmp_path):
    csv = make_fer_csv(tmp_path / "fer.csv")
    code, out, err = cli("evaluate", world["run"], "--data", csv, "--cache-dir", tmp_path / "c",
                         home=world["home"])
    assert code == 0, err
    assert "fer2013 csv, 7 images" in out and "| **Overall** | 7 |" in out


def test_predict_prints_the_top_class_and_all_seven_probabilities(world):
    images = [world["data"] / "Happy" / "img_0.png", world["data"] / "Sad" / "img_1.png"]
    code, out, err = cli("predict", world["run"], *images, home=world["home"])
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    for image, line in zip(images, lines):
        assert line.startswith(f"{image}: ")
        shares = [float(tok.rstrip("%")) for tok in line.split("   ")[1].split()[1::2]]
        assert len(shares) == 7 and abs(sum(shares) - 100) < 0.5


def test_no_data_flag_generates_the_default_dataset_under_home(tmp_path, monkeypatch):
    made = []

    def tiny_synthetic(root, seed=0):   # the real one draws 675 frames; the path is what matters
        made.append(root)
        return root if root.exists() else make_class_folders(root)

    monkeypatch.setattr(rundata, "ensure_synthetic_dataset", tiny_synthetic)
    code, out, err = cli("--epochs", 1, "--arch", TINY_ARCH, "--quiet", home=tmp_path)
    assert code == 0, err
    assert made == [tmp_path / "data" / "synthetic_sfew"]
    assert (tmp_path / "data" / "cache").is_dir()
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "checkpoint.npz").is_file()


def test_fer2013_csv_trains_on_its_usage_split_and_trace_finds_its_first_test_row(world, tmp_path):
    csv = make_fer_csv(tmp_path / "fer.csv")
    code, out, err = cli(*train_args(csv, tmp_path / "run", tmp_path / "c", "--epochs", 1), home=tmp_path)
    assert code == 0, err
    assert "fer2013 csv, 7 images" in out
    assert (tmp_path / "run" / "test.txt").read_text().splitlines()[1].startswith("fer.csv:2 ")
    # Its test.txt names CSV rows, not files: trace reads the row.
    code, out, err = cli("trace", "--checkpoint", tmp_path / "run", home=tmp_path)
    assert code == 0, err
    assert f"image {tmp_path / 'fer.csv:2'} (the run's first test image)" in out


def test_reuse_split_trains_on_the_same_images(world, tmp_path):
    code, _, err = cli(*train_args(world["data"], tmp_path / "again", world["cache"], "--reuse-split",
                                   "--split-dir", world["run"]), home=tmp_path)
    assert code == 0, err
    for name in ("train.txt", "test.txt"):
        assert (tmp_path / "again" / name).read_text() == (world["run"] / name).read_text()


def test_resume_with_more_epochs_continues_the_run(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    code, out, err = cli("--resume", run, "--epochs", 3, "--cache-dir", world["cache"], home=world["home"])
    assert code == 0, err
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert epochs == [epochs[0]] and epochs[0].startswith("epoch 3/3")
    assert load_checkpoint(run).meta["epoch"] == 3


# -- bad input -------------------------------------------------------------

def _truncated_png(data):
    path = data / "Angry" / "img_0.png"
    path.write_bytes(path.read_bytes()[:60])
    return path.name


def _text_file(data):
    (data / "Fear" / "notes.txt").write_text("not a picture")
    return "notes.txt"


def _unknown_class(data):
    (data / "Bored").mkdir()
    return "Bored"


def _one_image_class(data):
    for p in sorted((data / "Disgust").iterdir())[1:]:
        p.unlink()
    return "Disgust has 1 image"


@pytest.mark.parametrize("spoil", [_truncated_png, _text_file, _unknown_class, _one_image_class])
def test_bad_dataset_files_are_named_and_nothing_is_written(world, tmp_path, spoil):
    data = make_class_folders(tmp_path / "faces")
    needle = spoil(data)
    _assert_clean_failure(world, tmp_path, train_args(data, tmp_path / "new", world["cache"]), needle)
    assert not (tmp_path / "new").exists()


def test_a_fer2013_row_with_the_wrong_pixel_count_is_named_by_line(world, tmp_path):
    csv = make_fer_csv(tmp_path / "fer.csv")
    lines = csv.read_text().splitlines()
    lines[5] = lines[5].replace(" 1", "", 1) if " 1" in lines[5] else lines[5].rsplit(" ", 1)[0]
    csv.write_text("\n".join(lines) + "\n")
    _assert_clean_failure(world, tmp_path, train_args(csv, tmp_path / "new", world["cache"]), "fer.csv:6")
    assert not (tmp_path / "new").exists()


def test_a_split_file_line_pointing_at_a_missing_file_is_named(world, tmp_path):
    splits = tmp_path / "splits"
    shutil.copytree(world["run"], splits)
    text = (splits / "train.txt").read_text().splitlines()
    text[3] = "Happy/gone.png 3"
    (splits / "train.txt").write_text("\n".join(text) + "\n")
    args = train_args(world["data"], tmp_path / "new", world["cache"], "--reuse-split", "--split-dir", splits)
    _assert_clean_failure(world, tmp_path, args, "train.txt:4")


def test_a_checkpoint_whose_weights_do_not_fit_its_architecture_is_refused(world, tmp_path):
    ckpt = load_checkpoint(world["run"])
    ckpt.meta["arch"] = DEFAULT_ARCH
    save_checkpoint(tmp_path / "other.npz", ckpt)
    _assert_clean_failure(world, tmp_path, ["evaluate", tmp_path / "other.npz"], "another architecture")


def test_resuming_with_another_architecture_is_refused(world, tmp_path):
    args = ["--resume", world["run"], "--arch", DEFAULT_ARCH, "--cache-dir", world["cache"]]
    _assert_clean_failure(world, tmp_path, args, "--arch")


def test_an_npz_that_needs_pickle_is_refused(world, tmp_path):
    np.savez(tmp_path / "evil.npz", **{"fc1.weight": np.array([None], object), "_meta": np.array("{}")})
    _assert_clean_failure(world, tmp_path, ["predict", tmp_path / "evil.npz", world["data"] / "Sad" / "img_0.png"],
                          "pickle")


def test_a_nan_loss_stops_with_advice_and_the_advice_works_on_the_same_out(world, tmp_path):
    args = train_args(world["data"], tmp_path / "new", world["cache"], "--lr", "1e6", "--epochs", 3)
    _assert_clean_failure(world, tmp_path, args, "nothing was saved; lower --lr (it was 1000000.0)")
    assert not (tmp_path / "new").exists()   # its split files were taken back
    code, _, err = cli(*train_args(world["data"], tmp_path / "new", world["cache"], "--epochs", 1, "--quiet"),
                       home=tmp_path)
    assert code == 0, err


def test_a_dataset_of_one_class_is_refused(world, tmp_path):
    data = make_class_folders(tmp_path / "faces")
    for name in ("Angry", "Disgust", "Fear", "Neutral", "Sad", "Surprise"):
        shutil.rmtree(data / name)
    _assert_clean_failure(world, tmp_path, train_args(data, tmp_path / "new", world["cache"]),
                          "every training image is Happy; a classifier needs at least two classes")
    assert not (tmp_path / "new").exists()


def test_resume_without_a_checkpoint_is_refused(world, tmp_path):
    _assert_clean_failure(world, tmp_path, ["--resume", tmp_path, "--cache-dir", world["cache"]], "no checkpoint.npz")


def test_an_out_dir_holding_a_run_is_not_overwritten(world, tmp_path):
    args = train_args(world["data"], world["run"], world["cache"], "--seed", 5)
    _assert_clean_failure(world, tmp_path, args, "already holds a run")


def test_an_out_dir_holding_only_part_of_a_run_is_not_overwritten(world, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "table1.md").write_text("my only copy of last week's Table 1")
    _assert_clean_failure(world, tmp_path, train_args(world["data"], tmp_path / "old", world["cache"]),
                          "already holds a run (table1.md)")
    assert (tmp_path / "old" / "table1.md").read_text() == "my only copy of last week's Table 1"
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["table1.md"]


@pytest.mark.parametrize("out, needle", [
    ("afile", "afile: is a file, not a folder; choose another --out"),
    ("afile/run", "afile is a file, so no folder can be made there"),
])
def test_an_out_that_cannot_be_a_folder_is_refused_before_loading(world, tmp_path, monkeypatch, out, needle):
    (tmp_path / "afile").write_text("keep me")
    monkeypatch.chdir(tmp_path)
    _assert_clean_failure(world, tmp_path, train_args(world["data"], out, world["cache"]), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_an_unwritable_out_is_refused_before_loading(world, tmp_path, monkeypatch):
    monkeypatch.setattr("os.access", lambda path, mode: False)   # root ignores chmod, so pretend
    _assert_clean_failure(world, tmp_path, train_args(world["data"], tmp_path / "new", world["cache"]),
                          "permission denied")


def test_reuse_split_with_split_dir_naming_the_out_dir_trains_on_its_files(world, tmp_path):
    run = tmp_path / "again"
    run.mkdir()
    for name in ("train.txt", "test.txt"):
        shutil.copy(world["run"] / name, run / name)
    code, _, err = cli(*train_args(world["data"], run, world["cache"], "--reuse-split", "--split-dir", run,
                                   "--epochs", 1, "--quiet"), home=tmp_path)
    assert code == 0, err
    assert (run / "train.txt").read_bytes() == (world["run"] / "train.txt").read_bytes()


def test_split_dir_without_reuse_split_is_refused_not_ignored(world, tmp_path):
    args = train_args(world["data"], tmp_path / "new", world["cache"], "--split-dir", world["run"])
    _assert_clean_failure(world, tmp_path, args, "is read only with --reuse-split")
    assert not (tmp_path / "new").exists()


def test_resume_takes_the_checkpoint_file_too(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    code, out, err = cli("--resume", run / "checkpoint.npz", "--epochs", 3, "--cache-dir", world["cache"],
                         home=world["home"])
    assert code == 0, err
    assert load_checkpoint(run).meta["epoch"] == 3


def test_resume_after_the_data_moved_takes_its_new_place(world, tmp_path):
    data = make_class_folders(tmp_path / "faces")
    code, _, err = cli(*train_args(data, tmp_path / "run", world["cache"], "--epochs", 1, "--quiet"),
                       home=tmp_path)
    assert code == 0, err
    data.rename(tmp_path / "moved")
    resume = ["--resume", tmp_path / "run", "--epochs", 2, "--cache-dir", world["cache"]]
    _assert_clean_failure(world, tmp_path, resume, "the run's data is not there any more; if it moved, "
                                                   "pass its new place with --data")
    code, _, err = cli(*resume, "--data", tmp_path / "moved", "--quiet", home=tmp_path)
    assert code == 0, err
    assert load_checkpoint(tmp_path / "run").meta["config"]["data"] == str(tmp_path / "moved")


def test_resume_names_on_off_flags_as_they_are_typed(world, tmp_path):
    args = ["--resume", world["run"], "--no-augment", "--cache-dir", world["cache"]]
    _assert_clean_failure(world, tmp_path, args, "--no-augment (the run used augmentation)")


@pytest.mark.parametrize("flags, needle", [
    (["--epochs", 0], "--epochs must be >= 1"),
    (["--lr", -1], "--lr must be"),
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--momentum", "inf"], "--momentum must be a finite number"),
    (["--weight-decay", "nan"], "--weight-decay must be"),
    (["--batch-size", 0], "--batch-size must be >= 1"),
    (["--rotation", -5], "--rotation must be between 0 and 180"),
    (["--seed", -1], "--seed must be >= 0"),
    (["--arch", "nonsense"], "unknown token 'nonsense'"),
    (["--arch", "c6k5-fc0"], "'fc0' needs sizes >= 1"),
    (["--arch", "c6k5-relu-fc10-drop1.5"], "'drop1.5': the dropout probability must be below 1"),
    (["--arch", "bn-c6k5-relu"], "token 1 'bn' has no conv or fc before it"),
    (["--optimizer", "adam", "--momentum", 0.5], "--momentum is SGD's; adam keeps its own moving averages"),
])
def test_bad_option_values_are_refused_before_anything_is_written(world, tmp_path, flags, needle):
    # Checked before the data is loaded, so not even the split files appear.
    _assert_clean_failure(world, tmp_path, train_args(world["data"], tmp_path / "new", world["cache"], *flags),
                          needle)
    assert not (tmp_path / "new").exists()


def test_an_impossible_arch_and_a_bad_image_to_predict(world, tmp_path):
    args = train_args(world["data"], tmp_path / "new", world["cache"], "--arch", "c6k5-pool64")
    _assert_clean_failure(world, tmp_path, args, "'pool64'")
    (tmp_path / "x.png").write_text("hello")
    _assert_clean_failure(world, tmp_path, ["predict", world["run"], tmp_path / "x.png"], "x.png")


def test_evaluate_without_split_files_asks_for_data(world, tmp_path):
    shutil.copy(world["run"] / "checkpoint.npz", tmp_path / "checkpoint.npz")
    _assert_clean_failure(world, tmp_path, ["evaluate", tmp_path, "--cache-dir", world["cache"]],
                          "no test.txt beside the checkpoint, so the run's test split is unknown; "
                          "pass --data")


def test_a_model_only_checkpoint_cannot_be_resumed_but_evaluates_on_given_data(world, tmp_path):
    ckpt = load_checkpoint(world["run"])
    ckpt.meta = {k: ckpt.meta[k] for k in ("arch", "classes", "image_size", "in_channels")}
    save_checkpoint(tmp_path / "model" / "checkpoint.npz", ckpt)
    _assert_clean_failure(world, tmp_path, ["--resume", tmp_path / "model", "--cache-dir", world["cache"]],
                          "holds no training state (config, epoch, history, rng_state, data), so it cannot be resumed")
    _assert_clean_failure(world, tmp_path, ["evaluate", tmp_path / "model", "--cache-dir", world["cache"]],
                          "so it cannot name the run's test split; pass --data")
    code, out, err = cli("evaluate", tmp_path / "model", "--data", world["data"], "--cache-dir", world["cache"],
                         home=tmp_path)
    assert code == 0 and "| **Overall** | 7 |" in out, err


@pytest.mark.parametrize("command", ["summary", "trace", "visualize"])
def test_study_tools_refuse_a_negative_seed(world, tmp_path, command):
    _assert_clean_failure(world, tmp_path, [command, "--seed", -1, "--out", tmp_path / "x"], "--seed must be >= 0")


def test_predict_on_a_folder_asks_for_image_files(world, tmp_path):
    _assert_clean_failure(world, tmp_path, ["predict", world["run"], world["data"] / "Happy"],
                          "Happy: is a folder; pass image files")


@pytest.mark.parametrize("args, needle", [
    (["--epochs", "1.5"], "argument --epochs: invalid int value: '1.5'; see train_numpy.py --help"),
    (["--mean", "bogus"], "argument --mean: invalid choice"),
    (["predict", "run"], "the following arguments are required: IMAGE; see train_numpy.py predict --help"),
    (["summary", "run"], "unrecognized arguments: run"),
    (["--out", ""], "argument --out: empty path"),   # an unset $OUT: not the current folder
])
def test_a_bad_flag_is_one_line_not_the_usage(args, needle, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and needle in err, err


def _assert_clean_failure(world, tmp_path, args, needle):
    run_before, cache_before = files_snapshot(world["run"]), files_snapshot(world["cache"])
    code, out, err = cli(*args, home=tmp_path)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err, err
    assert files_snapshot(world["run"]) == run_before
    cache_after = files_snapshot(world["cache"])
    assert {k: cache_after[k] for k in cache_before} == cache_before   # new entries are fine
