"""sweep FILE.toml: cells as K-fold runs, flags over every cell, finished cells skipped, the paired table;
one-line mistakes naming the file, the table and the key; sweeps/beyond-the-paper.toml reads."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from train_support import TINY_ARCH, cli, files_snapshot, make_clips

from numpy_cnn.errors import UserError
from numpy_cnn.train.metrics import t_interval
from numpy_cnn.train.sweep import read_sweep

ROOT = Path(__file__).resolve().parents[1]

SWEEP = f"""
[base]
epochs = 2
group_by = "clip"
folds = 2
seeds = [0, 1]
arch = "{TINY_ARCH}"

[[recipe]]
name = "lr 1e-2"
lr = 0.01

[[recipe]]
name = "lr 3e-2, no augmentation"
lr = 0.03
augment = false
"""

# --threads in this process must not leak; no pooled plot (matplotlib costs ~1 s)
pytestmark = pytest.mark.usefixtures("keep_threads", "no_pooled_plot")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    sweep = home / "small.toml"
    sweep.write_text(SWEEP)
    return {"home": home, "clips": make_clips(home / "clips"), "cache": home / "cache", "sweep": sweep}


def _sweep(world, out, *extra):
    return cli("sweep", world["sweep"], "--data", world["clips"], "--out", out, "--cache-dir", world["cache"],
               *extra, home=world["home"])


def test_a_sweep_runs_every_cell_pairs_the_folds_and_a_rerun_trains_nothing(world, tmp_path):
    code, out, err = _sweep(world, tmp_path / "sw", "--quiet", "--threads", 1)
    assert code == 0, err
    sw = tmp_path / "sw"
    cells = ["lr-1e-2/seed0", "lr-1e-2/seed1", "lr-3e-2-no-augmentation/seed0", "lr-3e-2-no-augmentation/seed1"]
    assert all((sw / c / "cv_results.json").is_file() for c in cells)
    # The recipes were dealt the same folds (same seed): fold by fold, the same test images.
    for seed in (0, 1):
        for fold in (1, 2):
            assert (sw / f"lr-1e-2/seed{seed}/fold{fold}/test.txt").read_text() == \
                (sw / f"lr-3e-2-no-augmentation/seed{seed}/fold{fold}/test.txt").read_text()
    config = json.loads((sw / "lr-3e-2-no-augmentation/seed1/cv.json").read_text())["config"]
    assert (config["lr"], config["augment"], config["seed"], config["epochs"], config["arch"]) == \
        (0.03, False, 1, 2, TINY_ARCH)
    summary = json.loads((sw / "sweep.json").read_text())
    first, second = summary["recipes"]
    accs = {c: [f["test_accuracy"] for f in json.loads((sw / c / "cv_results.json").read_text())["folds"]]
            for c in cells}
    a, b = accs[cells[0]] + accs[cells[1]], accs[cells[2]] + accs[cells[3]]   # folds x seeds
    assert first["n"] == 4 and first["mean"] == pytest.approx(np.mean(a))
    assert first["sd"] == pytest.approx(np.std(a, ddof=1))
    assert first["vs"] is None and second["vs"]["differences"] == pytest.approx(np.subtract(b, a))
    assert second["vs"]["recipe"] == "lr 1e-2" and second["vs"]["ci95"] == pytest.approx(t_interval(np.subtract(b, a)))
    assert second["adds"] == "--lr 0.03 --no-augment" and summary["seeds"] == [0, 1]
    table = (sw / "sweep.md").read_text()
    assert "| lr 3e-2, no augmentation | `--lr 0.03 --no-augment` | 2 |" in table and "| lr 1e-2 | " in table
    assert table.split("\n", 2)[2] in out   # the table, printed under the runs

    before = files_snapshot(sw)
    code, out, err = _sweep(world, sw)   # the same command again: every cell is finished
    assert code == 0, err
    assert " epoch " not in out and files_snapshot(sw) == before

    # All cells' folds in one pool of two worker processes: the same sweep.json, lines whole and named.
    code, out, err = _sweep(world, tmp_path / "jobs", "--jobs", 2, "--threads", 1)
    assert code == 0, err
    assert (tmp_path / "jobs" / "sweep.json").read_bytes() == (sw / "sweep.json").read_bytes()
    epoch_lines = [line for line in out.splitlines() if " epoch " in line]
    assert len(epoch_lines) == 16 and all(re.match(r"^lr (1e-2|3e-2, no augmentation) seed [01]  fold [12]/2  "
                                                   r"epoch [12]/2  loss ", line) for line in epoch_lines)


def test_an_interrupted_sweep_continues_with_resume_and_raised_epochs(world, tmp_path, monkeypatch):
    calls = []

    def ctrl_c_in_the_third_fold(job, context):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return run_fold(job, context)

    from numpy_cnn.train import sweep as sweep_module
    run_fold = sweep_module.run_fold
    monkeypatch.setattr(sweep_module, "run_fold", ctrl_c_in_the_third_fold)
    sw = tmp_path / "sw"
    code, _, err = _sweep(world, sw, "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert f"interrupted: 2 of 8 folds finished, 0 saved an epoch to resume from; continue with: " \
           f"python train_numpy.py sweep --resume {sw}" in err
    monkeypatch.setattr(sweep_module, "run_fold", run_fold)
    code, out, err = cli("sweep", "--resume", sw, "--epochs", 3, "--cache-dir", world["cache"], home=world["home"])
    assert code == 0, err
    assert "lr 1e-2 seed 0  fold 1/2  epoch 3/3" in out and "lr 1e-2 seed 0  fold 1/2  epoch 2/3" not in out
    summary = json.loads((sw / "sweep.json").read_text())
    assert [r["epochs"] for r in summary["recipes"]] == [3, 3]


@pytest.mark.parametrize("text, needles", [
    ("[base]\nfolds = 2\nlrr = 1\n[[recipe]]\nname = 'a'\n", ["[base]: unknown key 'lrr'"]),
    ("[base]\nfolds = 2\n[[recipe]]\nname = 'a'\nlr = 'x'\n", ["[[recipe]] 'a': lr = 'x' must be a number"]),
    ("[base]\nfolds = 2\n[[recipe]]\nname = 'a'\nlr = -1.0\n", ["[[recipe]] 'a': --lr must be a finite number > 0"]),
    ("[base]\nfolds = 2\n[[recipe]]\nname = 'a'\nseed = 3\n", ["[[recipe]] 'a': seed deals the folds", "[base]"]),
    ("[base]\n[[recipe]]\nname = 'a'\n", ["set folds = K"]),
    ("[base]\nfolds = 2\n[[recipe]]\nlr = 0.1\n", ["[[recipe]] 1: needs name"]),
    ("[base]\nfolds = 2\n[[recipe]]\nname = 'a'\n[[recipe]]\nname = 'A'\n",
     ["[[recipe]] 'A': another recipe has the same name"]),
    ("[base]\nfolds = 2\nrecipe = 'nope.toml'\n[[recipe]]\nname = 'a'\n",
     ["[base]: recipe = 'nope.toml' is no recipe file"]),
    ("[base]\nfolds = 2\n[[recipe]]\nname = 'a'\n[[recipe]]\nname = 'b'\ncompare_to = 'c'\n",
     ["[[recipe]] 'b': compare_to = 'c' names no other recipe"]),
    ("[bse]\nfolds = 2\n", ["unknown table or key 'bse'"]),
    ("[base]\nfolds = 2\nseeds = [0, 'a']\n[[recipe]]\nname = 'a'\n", ["[base]: seeds = [0, 'a'] must be a list"]),
    ("[base]\nfolds = 2\ntest_data = 'x'\n[[recipe]]\nname = 'a'\n", ["[base]: test_data has no place in a sweep"]),
    ("[base\n", ["not valid TOML"]),
])
def test_a_bad_sweep_file_is_one_line_naming_the_file_and_the_table(world, tmp_path, text, needles):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, _, err = cli("sweep", path, "--out", tmp_path / "sw", home=world["home"])
    assert code == 2 and err.count("\n") == 1 and str(path) in err, err
    assert all(n in err for n in needles), err
    assert not (tmp_path / "sw").exists()


def test_flags_apply_to_every_cell_and_paths_are_read_from_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "runs" / "fer").mkdir(parents=True)
    (tmp_path / "my.toml").write_text("epochs = 7\nlr = 0.2\n")
    (tmp_path / "s.toml").write_text("[base]\nfolds = 3\nrecipe = 'my.toml'\n[[recipe]]\nname = 'plain'\n"
                                     "[[recipe]]\nname = 'pretrained'\ninit_from = 'runs/fer'\nlr = 0.05\n")
    monkeypatch.chdir(tmp_path)
    sweep = read_sweep("s.toml", {"epochs": 2, "seed": 4})
    plain, pretrained = sweep.cells
    assert (plain.config.epochs, plain.config.lr, plain.config.seed, plain.config.folds) == (2, 0.2, 4, 3)
    assert pretrained.config.lr == 0.05 and pretrained.config.init_from == str(tmp_path / "runs" / "fer")
    assert [c.dir for c in sweep.cells] == ["plain/seed4", "pretrained/seed4"]
    with pytest.raises(UserError, match=r"--seed 4 and seeds = \[1, 2\] in .* both set the seed"):
        (tmp_path / "seeds.toml").write_text("[base]\nfolds = 3\nseeds = [2, 1]\n[[recipe]]\nname = 'a'\n")
        read_sweep("seeds.toml", {"seed": 4})


def test_beyond_the_paper_sweep_reads_as_the_table_it_reproduces(monkeypatch, tmp_path):
    for run in ("fer", "fer-bn"):
        (tmp_path / "runs" / run).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    sweep = read_sweep(ROOT / "sweeps" / "beyond-the-paper.toml", {})
    assert len(sweep.recipes) == 6 and sweep.seeds == [0]
    assert {(c.config.folds, c.config.group_by, c.config.epochs) for c in sweep.cells} == {(5, "clip", 50)}
    adds = [r["adds"] for r in sweep.recipes]
    assert adds[:5] == ["", "--crop-faces", "--init-from runs/fer", "--crop-faces --init-from runs/fer",
                        "--crop-faces --init-from runs/fer --freeze conv1,conv2"]
    last = sweep.cells[-1].config
    assert last.init_from == str(tmp_path / "runs" / "fer-bn") and last.optimizer == "adam" and "bn" in last.arch


def test_finetune_sweep_reads_as_finetune_toml_and_its_four_variations(monkeypatch, tmp_path):
    (tmp_path / "runs" / "fer").mkdir(parents=True)
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    monkeypatch.chdir(tmp_path)
    sweep = read_sweep(ROOT / "sweeps" / "finetune-fer.toml", {"data": "faces"})
    assert len(sweep.recipes) == 5 and sweep.seeds == [0]
    configs = {r["name"]: c.config for r, c in zip(sweep.recipes, sweep.cells)}
    base = configs["finetune.toml: lr 3e-4, 40 epochs"]
    assert (base.folds, base.epochs, base.lr, base.val_frac, base.keep, base.tta) == (5, 40, 0.0003, 0.1, "best", "flip")
    assert base.init_from == str(tmp_path / "runs" / "fer") and configs["no pretraining"].init_from is None
    assert configs["10 epochs"].epochs == 10 and configs["lr 3e-3"].lr == 0.003
    assert configs["convolutions frozen"].freeze.split(",")[-1] == "bn6"    # every conv and BN layer of the fer net
    assert {c.arch for c in configs.values()} == {base.arch}
