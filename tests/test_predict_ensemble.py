"""``predict`` with an ensemble: a K-fold run's directory, or more runs with ``--run``.

The promises tested: one run prints what it always printed; a K-fold run's
directory is the mean softmax of its fold models, which ``--run`` can join;
every member computes its probabilities as ``evaluate`` does (one shared code
path); members that would see another input are refused in one line naming
both checkpoints and the setting that differs.
"""

import numpy as np
import pytest
from test_cli import cli
from train_support import TINY_ARCH, make_class_folders, no_plots, train_quietly  # noqa: F401 (a fixture)

from numpy_cnn.data import MeanSubtraction, decode_image, to_float
from numpy_cnn.errors import UserError
from numpy_cnn.nn.loss import softmax
from numpy_cnn.train import loop
from numpy_cnn.train.checkpoint import load_checkpoint, load_model, save_checkpoint
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.inference import evaluate_runs, predict_images, predict_runs
from numpy_cnn.train.kfold import cross_validate


def _config(data, **kw):
    return TrainConfig(**{"data": str(data), "arch": TINY_ARCH, "epochs": 1, "lr": 0.01, **kw})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one recipe (seeds 0 and 1), a 2-fold K-fold run, and two images to predict."""
    home = tmp_path_factory.mktemp("predict")
    data = make_class_folders(home / "faces")
    for name, seed in (("a", 0), ("b", 1)):
        train_quietly(_config(data, seed=seed), home / name)
    cross_validate(_config(data, folds=2), home / "cv", home=home, cache_dir=None, log=None)
    images = [data / "Happy" / "img_0.png", data / "Sad" / "img_1.png"]
    return {"home": home, "data": data, "images": images, "a": home / "a", "b": home / "b", "cv": home / "cv"}


def _alone(run, images):
    """One model's probabilities computed by hand: the run's image preparation, then its softmax."""
    model, ckpt = load_model(run)
    mean = MeanSubtraction(ckpt.mean)
    x = loop.network_input(to_float(np.stack([decode_image(i, 48) for i in images])), mean, 3)
    return loop.predict_proba(model, x)


def _predict(*args, home):
    code, out, err = cli("predict", *args, home=home)
    assert code == 0, err
    return out.splitlines()


def _shares(line):
    """The seven percentages of a printed line (the part after the top class)."""
    return [float(tok.rstrip("%")) for tok in line.split("   ")[1].split()[1::2]]


# -- one run: as before ---------------------------------------------------------

def test_a_single_run_prints_what_it_always_printed(runs):
    # Today's formula, written out: the float32 softmax of the logits, one line per image, no suffix.
    model, ckpt = load_model(runs["a"])
    x = loop.network_input(to_float(np.stack([decode_image(i, 48) for i in runs["images"]])),
                           MeanSubtraction(ckpt.mean), 3)
    expected = []
    for image, p in zip(runs["images"], softmax(loop.predict_logits(model, x))):
        top = int(p.argmax())
        spread = "  ".join(f"{c} {100 * q:.1f}%" for c, q in zip(ckpt.meta["classes"], p))
        expected.append(f"{image}: {ckpt.meta['classes'][top]} ({100 * p[top]:.1f}%)   {spread}")
    assert _predict(runs["a"], *runs["images"], home=runs["home"]) == expected
    assert _predict(runs["a"] / "checkpoint.npz", *runs["images"], home=runs["home"]) == expected
    result = predict_runs([runs["a"]], runs["images"])
    assert result.members == [runs["a"]] and result.found == [None, None]
    np.testing.assert_array_equal(result.probabilities, _alone(runs["a"], runs["images"]))   # as evaluate's
    p, classes, found = predict_images(runs["a"], runs["images"])
    assert p.tobytes() == result.probabilities.tobytes() and classes == result.classes and found == result.found


# -- ensembles ------------------------------------------------------------------

def test_a_k_fold_run_is_the_mean_softmax_of_its_fold_models(runs):
    folds = [runs["cv"] / "fold1", runs["cv"] / "fold2"]
    result = predict_runs([runs["cv"]], runs["images"])
    assert result.members == folds
    expected = (_alone(folds[0], runs["images"]) + _alone(folds[1], runs["images"])) / 2
    np.testing.assert_array_equal(result.probabilities, expected)
    lines = _predict(runs["cv"], *runs["images"], home=runs["home"])
    assert len(lines) == 2
    for image, line, p in zip(runs["images"], lines, expected):
        assert line.startswith(f"{image}: ") and line.endswith("   (ensemble of 2)")
        assert _shares(line) == [round(100 * q, 1) for q in p] and abs(sum(_shares(line)) - 100) < 0.5


def test_run_adds_members_before_or_after_the_images(runs):
    a, b, images = runs["a"], runs["b"], runs["images"]
    expected = (_alone(a, images) + _alone(b, images)) / 2
    np.testing.assert_array_equal(predict_runs([a, b], images).probabilities, expected)
    after = _predict(a, *images, "--run", b, home=runs["home"])
    assert after == _predict(a, "--run", b, *images, home=runs["home"])
    assert all(line.endswith("   (ensemble of 2)") for line in after)
    three = _predict(runs["cv"], *images, "--run", a, home=runs["home"])
    assert all(line.endswith("   (ensemble of 3)") for line in three)
    assert predict_runs([runs["cv"], a], images).members == [runs["cv"] / "fold1", runs["cv"] / "fold2", a]


# -- members that differ ---------------------------------------------------------

@pytest.mark.parametrize("setting, needle", [
    ({"channels": 1}, "input channels 1, but 3 in "),
    ({"mean": "pixel"}, "mean per pixel, but scalar in "),
    ({"image_size": 32}, "image size 32x32, but 48x48 in "),
    ({"fit": "crop"}, "fit crop, but stretch in "),
])
def test_members_that_see_another_input_are_refused_in_one_line_naming_both(runs, tmp_path, setting, needle):
    other = tmp_path / "other"
    train_quietly(_config(runs["data"], **setting), other)
    code, out, err = cli("predict", runs["a"], *runs["images"], "--run", other, home=runs["home"])
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"error: {other}: {needle}{runs['a']}; predict averages models that see the same input" in err


def test_members_of_other_classes_are_refused_as_evaluate_refuses_them(runs, tmp_path):
    ckpt = load_checkpoint(runs["a"])
    ckpt.meta["classes"] = list(reversed(ckpt.meta["classes"]))
    save_checkpoint(tmp_path / "reversed.npz", ckpt)
    differ = (f"{tmp_path / 'reversed.npz'}: classes Surprise,Sad,Neutral,Happy,Fear,Disgust,Angry, "
              f"but Angry,Disgust,Fear,Happy,Neutral,Sad,Surprise in ")
    with pytest.raises(UserError) as info:
        predict_runs([runs["cv"], tmp_path / "reversed.npz"], runs["images"])
    assert str(info.value).startswith(f"{differ}{runs['cv'] / 'fold1'}; predict averages")
    with pytest.raises(UserError) as info:   # the same check, in the code both commands share
        evaluate_runs([runs["a"], tmp_path / "reversed.npz"], data=runs["data"], whole=True, home=runs["home"],
                      cache_dir=None)
    assert str(info.value) == f"{differ}{runs['a']}; an ensemble averages the probabilities of the same classes"
