"""The modern options in a whole run: each opt-in, stored, honoured by resume, evaluate, predict and the study tools.

The library pieces are tested in test_train_options.py, test_schedule.py,
test_balance.py and friends; here they are wired into runs. The default run
passes nothing new to an epoch (``StepPlan``, ``_input_options``), so it stays
the paper's, bit for bit.
"""

import contextlib
import io
import json
from argparse import Namespace

import numpy as np
import pytest
from PIL import Image
from train_support import TINY_ARCH, make_class_folders, make_clips, no_plots, train_quietly  # noqa: F401

from numpy_cnn.cli.main import main
from numpy_cnn.cli.study import load_study_image, load_study_model
from numpy_cnn.data import CLASSES, MeanSubtraction, decode_image, read_split_file, to_float
from numpy_cnn.data.groups import GroupRule
from numpy_cnn.errors import UserError
from numpy_cnn.train import kfold, loop, trainer as run
from numpy_cnn.train.checkpoint import load_checkpoint, load_model
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.inference import evaluate_runs, predict_images
from numpy_cnn.train.kfold import cross_validate
from numpy_cnn.train.schedule import build_schedule, steps_per_epoch
from numpy_cnn.train.trainer import Interrupted, StepPlan


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_class_folders(tmp_path_factory.mktemp("faces"), per_class=8)


def _config(data, **kw):
    return TrainConfig(**{"data": str(data), "arch": TINY_ARCH, "epochs": 3, "lr": 0.01, **kw})


def cli(*args, home):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args], home=home)
    return code, out.getvalue(), err.getvalue()


def _arrays(path, *, last=False):
    ckpt = load_checkpoint(path)
    return ckpt.last if last else ckpt.model


def _same(a, b):
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)


def _history(path):
    return [{k: v for k, v in row.items() if k not in ("seconds", "data_seconds")}
            for row in load_checkpoint(path).meta["history"]]


# -- the default run passes nothing new -----------------------------------------

def test_the_default_run_passes_nothing_new_to_an_epoch():
    config = TrainConfig()
    assert StepPlan.of(config, np.zeros(540, np.int64)).options(7) == {}
    assert run._input_options(config) == {"channels": 3, "rotation": 10.0, "augment": True, "shift": 0,
                                          "brightness": 0.0, "contrast": 0.0, "balanced": False}


@pytest.mark.parametrize("kw, needle", [
    ({"patience": 3}, "--patience needs --val-frac"),
    ({"keep": "best"}, "--keep best needs --val-frac"),
    ({"val_frac": 0.6}, r"--val-frac must be in \(0, 0.5\], got 0.6"),
    ({"val_frac": 0.0}, r"--val-frac must be in \(0, 0.5\], got 0.0"),
    ({"channels": 2}, "--channels must be 1 or 3, got 2"),
    ({"warmup": 3.0}, "--warmup must be < --epochs"),
    ({"label_smoothing": 1.0}, r"--label-smoothing must be in \[0, 1\)"),
    ({"shift": 48}, "--shift must be a whole number of pixels from 0 to 47"),
    ({"brightness": -0.1}, r"--brightness must be in \[0, 1\)"),
    ({"fit": "pad"}, "--fit must be one of stretch, crop"),
    ({"fit": "crop", "crop_faces": {}}, "--fit crop concerns whole frames"),
    ({"balance": "oversample"}, "--balance must be one of none, sampler, loss"),
    ({"lr_schedule": "linear"}, "--lr-schedule must be one of constant, step, cosine, onecycle"),
    ({"tta": "five-crop"}, "--tta must be one of none, flip"),
    ({"patience": 0, "val_frac": 0.1}, "--patience must be >= 1 epoch"),
])
def test_each_bad_setting_is_one_line_naming_its_flag(data, kw, needle):
    with pytest.raises(UserError, match=needle):
        _config(data, **kw)


def test_a_scheduled_run_cannot_change_its_epochs_on_resume(tmp_path):
    stored = TrainConfig(epochs=4, lr_schedule="cosine")
    with pytest.raises(UserError, match="--epochs cannot change when resuming a run with --lr-schedule cosine"):
        stored.resumed({"epochs": 6}, done=4, run=tmp_path)
    assert TrainConfig(epochs=4, warmup=1).resumed({"epochs": 6}, done=4, run=tmp_path).epochs == 6


# -- options stored and applied -------------------------------------------------

def test_options_are_stored_in_the_checkpoint_results_and_recipe(data, tmp_path):
    config = _config(data, lr_schedule="onecycle", warmup=1, label_smoothing=0.1, shift=2, brightness=0.2,
                     contrast=0.2, channels=1, balance="loss", tta="flip", optimizer="adamw")
    results = train_quietly(config, tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.meta["in_channels"] == 1 and ckpt.model["conv1.weight"].shape[1] == 1
    assert TrainConfig.from_json(ckpt.meta["config"]) == config == TrainConfig.from_json(results["config"])
    assert 0 <= results["balanced_test_accuracy"] <= 1
    # the lr column: the schedule's lr at each epoch's last step
    per_epoch = steps_per_epoch(results["data"]["n_train"], config.batch_size)
    schedule = build_schedule("onecycle", 0.01, 3, per_epoch, warmup=1)
    assert [row["lr"] for row in ckpt.meta["history"]] == [schedule(e * per_epoch - 1) for e in (1, 2, 3)]
    table = (tmp_path / "run" / "table1.md").read_text()
    assert "(flip TTA)" in table and "\n\nbalanced accuracy (mean of per-class recalls): " in table
    # the final test pass used flip TTA; so does evaluate --tta flip, and the numbers agree
    code, out, err = cli("evaluate", tmp_path / "run", "--tta", "flip", home=tmp_path)
    assert code == 0, err
    assert f"| {100 * results['overall_test_accuracy']:.2f}% (95% CI " in out and "flip TTA" in out
    assert f"balanced accuracy (mean of per-class recalls): {100 * results['balanced_test_accuracy']:.1f}%" in out


def test_each_option_changes_the_run_and_its_default_does_not(data, tmp_path):
    train_quietly(_config(data, epochs=1), tmp_path / "plain")
    train_quietly(_config(data, epochs=1, label_smoothing=0.0, shift=0, balance="none", warmup=0.0),
                  tmp_path / "zeros")
    assert _same(_arrays(tmp_path / "plain"), _arrays(tmp_path / "zeros"))
    for i, kw in enumerate([{"label_smoothing": 0.1}, {"shift": 2}, {"brightness": 0.3}, {"balance": "sampler"},
                            {"balance": "loss"}, {"lr_schedule": "cosine"}, {"warmup": 0.5}]):
        train_quietly(_config(data, epochs=1, **kw), tmp_path / f"o{i}")
        assert not _same(_arrays(tmp_path / "plain"), _arrays(tmp_path / f"o{i}")), kw


# -- validation, --keep best, --patience ---------------------------------------

def test_val_frac_carves_from_the_training_side_and_the_test_set_is_used_once(data, tmp_path, monkeypatch):
    real, sizes = run.evaluate, []

    def counted(model, x, y, **kw):
        sizes.append(len(y))
        return real(model, x, y, **kw)

    monkeypatch.setattr(run, "evaluate", counted)
    results = train_quietly(_config(data, val_frac=0.5), tmp_path / "run")
    folder = tmp_path / "run"
    train, test, val = (read_split_file(folder / name, data).files for name in ("train.txt", "test.txt", "val.txt"))
    assert set(val) < set(train) and not set(val) & set(test) and len(val) == 7 * 3 and len(test) == 7 * 2
    assert sizes == [21, 21, 21, 14]   # validation after each epoch; the test set once, at the end
    assert results["data"]["n_train"] == len(train) - len(val) and results["data"]["n_val"] == len(val)
    rows = json.loads((folder / "metrics.json").read_text())
    assert "val_acc" in rows[0] and "test_acc" not in rows[0]
    assert (folder / "metrics.csv").read_text().startswith("epoch,train_loss,train_acc,val_loss,val_acc,")
    assert results["final_val_accuracy"] == rows[-1]["val_acc"] and results["selection"]["keep"] == "last"


def test_val_frac_with_group_by_puts_whole_clips_in_validation(tmp_path):
    clips = make_clips(tmp_path / "clips")
    train_quietly(TrainConfig(data=str(clips), arch=TINY_ARCH, epochs=1, lr=0.01, group_by="clip", val_frac=0.3),
                  tmp_path / "run")
    rule = GroupRule("clip")
    train, val = (read_split_file(tmp_path / "run" / name, clips).files for name in ("train.txt", "val.txt"))
    rest = set(train) - set(val)
    assert val and not {rule.name(f) for f in val} & {rule.name(f) for f in rest}


def test_keep_best_keeps_the_best_epochs_weights_and_trains_on_from_the_last(data, tmp_path):
    results = train_quietly(_config(data, epochs=4, val_frac=0.3, keep="best"), tmp_path / "best")
    best = results["selection"]["best_epoch"]
    history = load_checkpoint(tmp_path / "best").meta["history"]
    assert best == 1 + int(np.argmax([row["val_acc"] for row in history])) == results["selection"]["kept_epoch"]
    # keep changes no epoch: a run that stops at the best epoch has the kept weights, one of 4 epochs the last
    train_quietly(_config(data, epochs=best, val_frac=0.3), tmp_path / "upto")
    train_quietly(_config(data, epochs=4, val_frac=0.3), tmp_path / "last")
    assert _same(_arrays(tmp_path / "best"), _arrays(tmp_path / "upto"))
    assert _same(_arrays(tmp_path / "best", last=True), _arrays(tmp_path / "last"))
    assert load_checkpoint(tmp_path / "last").last == {}   # --keep last keeps one set of weights
    # evaluate uses the kept weights: the same Table 1 as the run's
    rows = evaluate_runs([tmp_path / "best"], data=None, home=tmp_path, cache_dir=None).rows
    assert rows[-1]["accuracy"] == results["overall_test_accuracy"]
    assert f"the weights of epoch {best}, the best on validation" in (tmp_path / "best" / "table1.md").read_text()


def _scripted_val(monkeypatch, accuracies):
    """The validation accuracies of the epochs, in turn (the test pass is left alone)."""
    real, seen = run.evaluate, []

    def scripted(model, x, y, **kw):
        loss, acc, predicted = real(model, x, y, **kw)
        if kw or len(y) == 14:   # the test pass (7 classes x 2 test images)
            return loss, acc, predicted
        seen.append(1)
        return loss, accuracies[len(seen) - 1], predicted

    monkeypatch.setattr(run, "evaluate", scripted)


def test_patience_stops_the_run_and_a_resume_stays_stopped(data, tmp_path, monkeypatch):
    _scripted_val(monkeypatch, [0.5, 0.6, 0.6, 0.55, 0.9, 0.9])
    config = _config(data, epochs=6, val_frac=0.5, keep="best", patience=2)
    lines = []
    results = run.train(config, tmp_path / "run", home=tmp_path, log=lines.append)
    assert results["epochs"] == 4 and results["selection"] == {
        "keep": "best", "best_val_accuracy": 0.6, "best_epoch": 2, "kept_epoch": 2, "patience": 2,
        "stopped_early": True}
    assert "early stop after epoch 4: no better validation accuracy in 2 epochs (best 60.0% at epoch 2)" in lines
    assert load_checkpoint(tmp_path / "run").meta["epoch"] == 4   # saved though the last epoch was never reached
    again = run.train(TrainConfig.from_json(results["config"]), tmp_path / "run", home=tmp_path, resume=True,
                      log=None)
    assert again["epochs"] == 4 and again["overall_test_accuracy"] == results["overall_test_accuracy"]


def test_ctrl_c_then_resume_of_a_keep_best_run_is_bit_identical(data, tmp_path):
    config = _config(data, epochs=4, val_frac=0.3, keep="best", patience=3, lr_schedule="cosine")
    train_quietly(config, tmp_path / "full")

    def ctrl_c(epoch):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        train_quietly(config, tmp_path / "cut", on_epoch_end=ctrl_c)
    train_quietly(config, tmp_path / "cut", resume=True)
    for last in (False, True):
        assert _same(_arrays(tmp_path / "full", last=last), _arrays(tmp_path / "cut", last=last))
    assert _history(tmp_path / "full") == _history(tmp_path / "cut")


def test_k_fold_carves_validation_per_fold_and_pools_balanced_accuracy(data, tmp_path, monkeypatch):
    monkeypatch.setattr(kfold, "_plot_pooled", lambda *args: None)
    cv = cross_validate(_config(data, epochs=1, folds=2, val_frac=0.25), tmp_path / "cv", home=tmp_path, log=None)
    for fold in ("fold1", "fold2"):
        train, test, val = (read_split_file(tmp_path / "cv" / fold / name, data).files
                            for name in ("train.txt", "test.txt", "val.txt"))
        assert set(val) < set(train) and not set(val) & set(test)
    assert 0 <= cv["balanced_test_accuracy"] <= 1
    table = (tmp_path / "cv" / "table1.md").read_text()
    assert "balanced accuracy (mean of per-class recalls): " in table
    assert (tmp_path / "cv" / "recipe.toml").read_text().count("folds = 2") == 1
    # the fold models as an ensemble, on every image of a set
    result = evaluate_runs([tmp_path / "cv"], data=data, whole=True, home=tmp_path, cache_dir=None)
    assert result.rows[-1]["total"] == 56 and len(result.members) == 2
    code, _, err = cli("evaluate", tmp_path / "cv", home=tmp_path)
    assert code == 2 and "--data DATASET --whole" in err and err.count("\n") == 1


# -- one channel, --fit crop: honoured wherever a checkpoint is used -------------

def test_one_channel_and_crop_fit_are_honoured_by_evaluate_predict_and_the_study_tools(tmp_path):
    # wide frames: a class-dependent band in the centre square, noise on the sides
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (tmp_path / "wide" / name).mkdir(parents=True)
        for i in range(5):
            pixels = rng.integers(0, 120, (24, 48), dtype=np.uint8)
            pixels[c * 24 // 7:(c + 1) * 24 // 7, 12:36] = 230
            Image.fromarray(pixels, "L").save(tmp_path / "wide" / name / f"img_{i}.png")
    data = tmp_path / "wide"
    results = train_quietly(TrainConfig(data=str(data), arch=TINY_ARCH, epochs=2, lr=0.01, channels=1, fit="crop"),
                            tmp_path / "run")
    rows = evaluate_runs([tmp_path / "run"], data=None, home=tmp_path, cache_dir=None).rows
    assert rows[-1]["accuracy"] == results["overall_test_accuracy"]
    image = data / "Happy" / "img_0.png"
    model, ckpt = load_model(tmp_path / "run")
    cropped = decode_image(image, 48, "crop")
    x = loop.network_input(to_float(cropped[None]), MeanSubtraction(ckpt.mean), 1)
    p, _, _ = predict_images(tmp_path / "run", [image])
    np.testing.assert_allclose(p[0], loop.predict_proba(model, x)[0], rtol=1e-5)
    args = Namespace(checkpoint=tmp_path / "run", arch=None, seed=0, image=image, data=None, label=None,
                     image_size=48, in_channels=3)
    loaded = load_study_model(args)
    study = load_study_image(args, loaded, tmp_path)
    assert loaded.fit == "crop" and study.x.shape == (1, 1, 48, 48)
    np.testing.assert_array_equal(study.gray, to_float(cropped))
    code, out, err = cli("gradcheck", "--checkpoint", tmp_path / "run", "--samples", 2, home=tmp_path)
    assert code == 0 and ", 1, 48, 48), float64" in out, err


def test_init_from_another_channel_count_says_which_channels(data, tmp_path):
    train_quietly(_config(data, epochs=1, channels=1), tmp_path / "gray")
    with pytest.raises(UserError, match="takes 1-channel input, this run's --channels is 3; add --channels 1"):
        train_quietly(_config(data, epochs=1, init_from=str(tmp_path / "gray")), tmp_path / "ft")
    results = train_quietly(_config(data, epochs=1, channels=1, init_from=str(tmp_path / "gray")), tmp_path / "ft")
    assert results["init_from"]["path"].endswith("checkpoint.npz")


# -- evaluate: ensembles, --whole -----------------------------------------------

def test_an_ensemble_averages_the_members_probabilities(data, tmp_path):
    train_quietly(_config(data, epochs=2), tmp_path / "a")
    train_quietly(_config(data, epochs=2, channels=1, lr=0.02), tmp_path / "b")
    result = evaluate_runs([tmp_path / "a", tmp_path / "b"], data=None, home=tmp_path, cache_dir=None, tta="flip")
    ds_test = read_split_file(tmp_path / "a" / "test.txt", data)
    x = to_float(np.stack([decode_image(data / f, 48) for f in ds_test.files]))
    mean = 0
    for run_dir in (tmp_path / "a", tmp_path / "b"):
        model, ckpt = load_model(run_dir)
        m = MeanSubtraction(ckpt.mean)
        mean = mean + loop.predict_proba(model, loop.network_input(x, m, ckpt.meta["in_channels"]), "flip", m)
    expected = np.bincount(ds_test.labels * 7 + mean.argmax(axis=1), minlength=49).reshape(7, 7)
    np.testing.assert_array_equal(result.confusion, expected)
    assert [p for p, _ in result.members] == [tmp_path / "a", tmp_path / "b"]
    code, out, err = cli("evaluate", tmp_path / "a", tmp_path / "b", "--tta", "flip", home=tmp_path)
    assert code == 0 and "an ensemble of 2 models (their mean softmax), flip TTA" in out, err
    assert out.count("  member ") == 2


def test_an_ensemble_refuses_different_test_splits_and_whole_needs_data(data, tmp_path):
    train_quietly(_config(data, epochs=1), tmp_path / "a")
    train_quietly(_config(data, epochs=1, seed=1), tmp_path / "b")
    code, _, err = cli("evaluate", tmp_path / "a", tmp_path / "b", home=tmp_path)
    assert code == 2 and "its test images differ from" in err and err.count("\n") == 1
    code, out, err = cli("evaluate", tmp_path / "a", tmp_path / "b", "--data", data, "--whole", home=tmp_path)
    assert code == 0 and "every image of" in out and "| **Overall** | 56 |" in out, err
    code, _, err = cli("evaluate", tmp_path / "a", "--whole", home=tmp_path)
    assert code == 2 and "--whole needs --data DATASET" in err
