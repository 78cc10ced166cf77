"""Recipes as files: ``recipe.toml`` in every run, ``--recipe FILE`` replays it, ``recipes/*.toml`` ship.

The writer is checked against the standard library's reader (every value reads
back as the same setting), the shipped recipes against their promises
(``paper.toml`` is the default run), and a tiny training run end to end:
replaying its ``recipe.toml`` on the same data gives the same settings and
bit-identical weights.
"""

import contextlib
import io
import tomllib
from pathlib import Path

import numpy as np
import pytest
from train_support import TINY_ARCH, make_class_folders

from numpy_cnn.cli import main as cli_main
from numpy_cnn.errors import UserError
from numpy_cnn.train import trainer as run
from numpy_cnn.train.checkpoint import load_checkpoint
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.recipe import NOT_IN_A_RECIPE, RECIPE_FIELDS, read_recipe, recipe_settings, recipe_text

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"
FER_ARCH = ("c32k3p1-bn-relu-c32k3p1-bn-relu-pool2-c64k3p1-bn-relu-c64k3p1-bn-relu-pool2-c128k3p1-bn-relu-"
            "c128k3p1-bn-relu-pool2-drop0.3-fc256-relu-drop0.3")


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    monkeypatch.setattr(run, "write_plots", lambda *args: None)


def cli(*args, home):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main.main([str(a) for a in args], home=home)
    return code, out.getvalue(), err.getvalue()


def config_of(*argv: str) -> TrainConfig:
    """The config a training command line builds (parsed as ``main`` parses it, no run)."""
    args = cli_main._parser("train").parse_args([str(a) for a in argv])
    return TrainConfig(**TrainConfig.given_settings(vars(args), read_recipe(args.recipe) if args.recipe else None))


def test_paper_toml_is_exactly_the_default_run():
    assert config_of("--recipe", RECIPES / "paper.toml") == TrainConfig() == config_of()
    assert set(tomllib.loads((RECIPES / "paper.toml").read_text())) == set(recipe_settings(TrainConfig()))


def test_the_fer_and_finetune_recipes_say_what_they_promise():
    fer = config_of("--recipe", RECIPES / "fer.toml")
    assert (fer.arch, fer.channels, fer.optimizer, fer.lr, fer.weight_decay, fer.lr_schedule, fer.batch_size,
            fer.epochs, fer.label_smoothing, fer.shift, fer.rotation, fer.augment, fer.val_frac, fer.keep, fer.tta) == (
        FER_ARCH, 1, "adamw", 0.003, 0.0005, "onecycle", 64, 30, 0.1, 4, 10.0, True, 0.1, "best", "flip")
    assert "python train_numpy.py --recipe recipes/fer.toml --data PATH/TO/fer2013 --out runs/fer" in (
        RECIPES / "fer.toml").read_text()
    ft = config_of("--recipe", RECIPES / "finetune.toml")
    assert (ft.arch, ft.channels, ft.fit, ft.optimizer, ft.lr, ft.weight_decay, ft.lr_schedule, ft.batch_size,
            ft.epochs, ft.label_smoothing, ft.shift, ft.val_frac, ft.keep, ft.tta, ft.balance) == (
        FER_ARCH, 1, "crop", "adamw", 0.0003, 0.0005, "onecycle", 32, 40, 0.1, 4, 0.1, "best", "flip", "loss")


def test_flags_typed_override_the_recipe_one_by_one():
    config = config_of("--recipe", RECIPES / "fer.toml", "--epochs", "3", "--lr", "0.01", "--channels", "3")
    assert (config.epochs, config.lr, config.channels, config.optimizer, config.shift) == (3, 0.01, 3, "adamw", 4)
    # paper.toml's momentum is SGD's: another --optimizer leaves it out, as a typed --momentum would be refused
    assert config_of("--recipe", RECIPES / "paper.toml", "--optimizer", "adam").optimizer == "adam"
    # --no-augment turns every augmentation off, the recipe's shift too
    assert config_of("--recipe", RECIPES / "fer.toml", "--no-augment").shift == 0
    with pytest.raises(UserError, match="--no-augment turns every augmentation off, but --shift is set"):
        config_of("--no-augment", "--shift", "2")


def test_every_kind_of_value_reads_back_as_the_same_setting(tmp_path):
    config = TrainConfig(epochs=7, lr=1e-05, weight_decay=0.1 + 0.2, optimizer="adamw", seed=3, rotation=0.0,
                         group_by=r'^(\w+)"_\d+\\', folds=3, freeze="conv1", crop_faces={"margin": 0.25},
                         no_face="drop", channels=1, lr_schedule="step", warmup=1.5, label_smoothing=0.05,
                         shift=3, brightness=0.2, contrast=0.3, balance="sampler", val_frac=0.15, keep="best",
                         patience=4, tta="flip", arch=TINY_ARCH)
    path = tmp_path / "r.toml"
    path.write_text(recipe_text(config))
    assert tomllib.loads(path.read_text())["group_by"] == r'^(\w+)"_\d+\\'
    replayed = TrainConfig(**TrainConfig.given_settings({}, read_recipe(path)))
    assert replayed == config and replayed.weight_decay == 0.1 + 0.2   # repr: the very same float
    assert "momentum" not in read_recipe(path)   # no effect on adamw, so not written
    assert not set(NOT_IN_A_RECIPE) & set(RECIPE_FIELDS)


@pytest.mark.parametrize("text, needle", [
    ("epochs = 3\nlearning_rate = 0.1\n", "unknown key 'learning_rate'; a recipe's keys are the training flags"),
    ('data = "/faces"\n', "data is not part of a recipe (a recipe is data-independent); remove it and pass --data"),
    ('epochs = "12"\n', "epochs = '12' must be an integer"),
    ("augment = 1\n", "augment = 1 must be true or false"),
    ("lr = true\n", "lr = True must be a number"),
    ("epochs = [\n", "not valid TOML"),
])
def test_a_bad_recipe_is_one_line_naming_the_file_and_key(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, out, err = cli("--recipe", path, "--out", tmp_path / "run", home=tmp_path)
    assert code == 2 and out == "" and err.count("\n") == 1 and str(path) in err and needle in err, err
    assert not (tmp_path / "run").exists()


def test_recipe_with_resume_and_a_missing_recipe_are_refused(tmp_path):
    code, _, err = cli("--recipe", RECIPES / "paper.toml", "--resume", tmp_path, home=tmp_path)
    assert code == 2 and "--recipe starts a new run and --resume continues one" in err
    code, _, err = cli("--recipe", tmp_path / "nope.toml", home=tmp_path)
    assert code == 2 and "nope.toml: no such file" in err and err.count("\n") == 1


def test_a_recipe_run_writes_its_recipe_and_replaying_it_gives_the_same_run(tmp_path):
    data = make_class_folders(tmp_path / "faces")
    common = ["--data", data, "--cache-dir", tmp_path / "cache", "--quiet"]
    code, _, err = cli("--recipe", RECIPES / "fer.toml", "--arch", TINY_ARCH, "--epochs", 2, "--out",
                       tmp_path / "a", *common, home=tmp_path)
    assert code == 0, err
    recipe = tomllib.loads((tmp_path / "a" / "recipe.toml").read_text())
    assert (recipe["arch"], recipe["epochs"], recipe["channels"], recipe["lr_schedule"]) == (
        TINY_ARCH, 2, 1, "onecycle")
    assert not set(recipe) & {"data", "out", "cache_dir", "init_from"}   # data-independent, machine-independent
    code, _, err = cli("--recipe", tmp_path / "a" / "recipe.toml", "--out", tmp_path / "b", *common, home=tmp_path)
    assert code == 0, err
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert a.meta["config"] == b.meta["config"] and a.meta["in_channels"] == 1
    arrays = lambda c: {**c.model, **{f"_optim.{k}": v for k, v in c.optim.items()}, "_mean": c.mean}  # noqa: E731
    assert arrays(a).keys() == arrays(b).keys()
    for key, value in arrays(a).items():
        assert value.dtype == arrays(b)[key].dtype and value.tobytes() == arrays(b)[key].tobytes(), key
    assert (tmp_path / "a" / "recipe.toml").read_text() == (tmp_path / "b" / "recipe.toml").read_text()
    assert np.isfinite(a.model["fc2.weight"]).all()
