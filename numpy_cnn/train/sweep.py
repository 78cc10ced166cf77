"""Sweeps: several recipes (and seeds), each a K-fold run, compared fold by fold in one table.

``python train_numpy.py sweep FILE.toml`` reads a sweep file: a ``[base]``
table of settings every recipe shares (the training flags as TOML keys, as
in a recipe: ``group_by = "clip"`` for ``--group-by clip``), and one
``[[recipe]]`` table per recipe, with its ``name`` and the settings it
changes::

    [base]
    epochs = 5
    group_by = "clip"
    folds = 3
    seed = 0              # or seeds = [0, 1, 2]: every recipe once per seed
    # recipe = "recipes/fer.toml"   a recipe file as the base (flags' paths: from the current folder)

    [[recipe]]
    name = "lr 1e-3"
    lr = 0.001

    [[recipe]]
    name = "lr 3e-3"
    lr = 0.003

A setting comes from, later ones winning: ``[base]``'s ``recipe`` file,
``[base]``, a ``[[recipe]]``'s own ``recipe`` file, the ``[[recipe]]``
table, and the flags typed on the command line (``--data``, ``--epochs
2``: they apply to every cell). Unlike a recipe file, a sweep may name
``data`` and ``init_from``; like flags, their paths are relative to the
folder the command runs in. ``folds``, ``seed``/``seeds``, ``group_by`` and
``data`` belong in ``[base]``: they deal the folds, and every recipe must be
dealt the same folds for the fold-by-fold comparison.

Each (recipe, seed) is a *cell*: a K-fold run directory
(:mod:`.kfold`), ``OUT/<recipe>/seed<S>/``. All cells' folds go to one pool
(``--jobs``, ``--scheduler``: :mod:`.parallel`); cells and folds already
finished are read, not retrained, so the same command again (or ``sweep
--resume OUT``) continues an interrupted sweep. The sweep then writes
``sweep.json`` and ``sweep.md``: per recipe the mean ± sample SD of its
fold accuracies (over folds x seeds) and their 95% t-interval, and the
paired difference to the first recipe (or to the one its ``compare_to =
"name"`` names), fold by fold (same seed, same fold): its mean and the 95%
t-interval of the differences, the sharper comparison, since the folds' own
spread cancels out.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.kfold import (CV_RESULTS, FoldJob, fold_jobs, fold_states, is_cv_run, pool_folds, resume_config,
                                   run_fold, start)
from numpy_cnn.train.metrics import percent_range, t_interval
from numpy_cnn.train.parallel import Workers, run_jobs
from numpy_cnn.train.recipe import _checked, read_recipe
from numpy_cnn.train.run_files import write_json, write_text
from numpy_cnn.train.trainer import Interrupted, require_tools

SWEEP_JSON = "sweep.json"
SWEEP_MD = "sweep.md"
PLAN = "sweep_plan.json"   # the cells and their settings, written first: what --resume continues
# Settings that deal the folds: the same for every recipe, so the recipes can be compared fold by fold.
DEALING = ("folds", "seed", "seeds", "group_by", "data")
PATHS = ("data", "init_from")   # paths a sweep may name (a recipe file may not: it is data-independent)
NO_PLACE = {"test_data": "every cell tests each image of --data once, in its folds",
            "split_dir": "every cell deals its own folds", "reuse_split": "every cell deals its own folds"}


@dataclass(frozen=True)
class Cell:
    """One recipe at one seed: a K-fold run in ``out / dir``."""

    recipe: str
    seed: int
    dir: str
    config: TrainConfig


@dataclass(frozen=True)
class Sweep:
    """A sweep file read: its recipes (name, directory, the settings its table adds), seeds and cells."""

    file: str
    recipes: list[dict]
    seeds: list[int]
    cells: list[Cell]


def read_sweep(path: Path | str, flags: Mapping[str, object]) -> Sweep:
    """The sweep in ``path``, with the flags typed (``{setting: value or None}``) over every cell.

    Every cell's settings are checked here, before anything is trained: a bad key or value is
    one line naming the file, the table and the key.
    """
    path = Path(path)
    tables = _load(path)
    unknown = sorted(set(tables) - {"base", "recipe"})
    if unknown:
        raise UserError(f"{path}: unknown table or key {unknown[0]!r}; a sweep file has a [base] table and "
                        "[[recipe]] tables (see docs/many-runs.md)")
    base = tables.get("base", {})
    recipes = tables.get("recipe")
    if not isinstance(base, dict):
        raise UserError(f"{path}: base must be a table, [base]")
    if not isinstance(recipes, list) or not recipes or not all(isinstance(r, dict) for r in recipes):
        raise UserError(f"{path}: no [[recipe]] tables; name each recipe in one, with name = \"...\"")
    base_settings = _settings(path, "[base]", base, allow_dealing=True)
    seeds = base_settings.pop("seeds", None)
    if seeds is not None and flags.get("seed") is not None:
        raise UserError(f"--seed {flags['seed']} and seeds = {seeds} in {path} [base] both set the seed; drop one")
    read, cells, slugs = [], [], set()
    names = [r.get("name") for r in recipes]
    for i, table in enumerate(recipes, 1):
        name = table.get("name")
        where = f"[[recipe]] {i}" if not isinstance(name, str) else f"[[recipe]] {name!r}"
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"{path} {where}: needs name = \"...\" (the row's name in sweep.md)")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or f"recipe{i}"
        if slug in slugs:
            raise UserError(f"{path} {where}: another recipe has the same name (or folder {slug!r}); rename one")
        slugs.add(slug)
        against = table.get("compare_to", names[0] if i > 1 else None)
        if i > 1 and (against not in names or against == name):
            raise UserError(f"{path} {where}: compare_to = {against!r} names no other recipe of the file")
        table = {k: v for k, v in table.items() if k not in ("name", "compare_to")}
        own = _settings(path, where, table, allow_dealing=False)
        read.append({"name": name, "dir": slug, "adds": _flags_of(table), "compare_to": against})
        settings = {**base_settings, **own}
        for seed in seeds or [None]:
            config = _cell_config(path, where, settings if seed is None else {**settings, "seed": seed}, flags)
            cells.append(Cell(name, config.seed, f"{slug}/seed{config.seed}", config))
    return Sweep(str(path), read, sorted({c.seed for c in cells}), cells)


def _load(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: no such sweep file; give a .toml with [base] and [[recipe]] tables "
                        "(sweeps/ holds an example)")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file in UTF-8; give a sweep .toml") from None


def _settings(path: Path, where: str, table: dict, allow_dealing: bool) -> dict:
    """A table's settings, each checked as a recipe's is (:func:`numpy_cnn.train.recipe.read_recipe`),
    its ``recipe`` file's settings under them."""
    settings = {}
    if "recipe" in table:
        file = table["recipe"]
        if not isinstance(file, str) or not Path(file).is_file():
            raise UserError(f"{path} {where}: recipe = {file!r} is no recipe file (paths are relative to the "
                            "folder you run the command in)")
        settings.update(read_recipe(file))
    for key, value in table.items():
        if key == "recipe":
            continue
        if key in DEALING and not allow_dealing:
            raise UserError(f"{path} {where}: {key} deals the folds, and every recipe must be dealt the same "
                            "ones to be compared fold by fold: set it in [base]")
        if key == "seeds":
            if (not isinstance(value, list) or not value or
                    not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)):
                raise UserError(f"{path} {where}: seeds = {value!r} must be a list of integers >= 0, e.g. [0, 1, 2]")
            if "seed" in table:
                raise UserError(f"{path} {where}: seed and seeds both set the seed; keep one")
            settings["seeds"] = sorted(set(value))
        elif key in NO_PLACE:
            raise UserError(f"{path} {where}: {key} has no place in a sweep ({NO_PLACE[key]}); remove it")
        elif key in PATHS:
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"{path} {where}: {key} = {value!r} must be a path in quotes")
            settings[key] = value
        else:
            settings[key] = _checked(f"{path} {where}", key, value)
    return settings


def _cell_config(path: Path, where: str, settings: dict, flags: Mapping[str, object]) -> TrainConfig:
    """One cell's settings with the flags typed over them, checked (``TrainConfig``'s rules)."""
    try:
        config = TrainConfig(**TrainConfig.given_settings(flags, settings))
    except UserError as exc:
        raise UserError(f"{path} {where}: {exc}") from None
    if config.folds is None:
        raise UserError(f"{path}: a sweep compares recipes fold by fold: set folds = K (2 or more) in [base], "
                        "or give --folds K")
    return config


def _flags_of(table: Mapping[str, object]) -> str:
    """A table's settings as the flags that give them: ``--crop-faces --init-from runs/fer``."""
    words = []
    for key, value in table.items():
        flag = f"--{key.replace('_', '-')}"
        if key == "augment":
            words.append("" if value else "--no-augment")
        elif value is True:
            words.append(flag)
        elif isinstance(value, dict):
            words.append(f"{flag} ({', '.join(f'{k} {v}' for k, v in value.items())})")
        elif value is not False:
            words.append(f"{flag} {value}")
    return " ".join(w for w in words if w)


# -- running it ---------------------------------------------------------------------

def run_sweep(sweep: Sweep, out: Path, *, home: Path, cache_dir: Path | None, workers: Workers = Workers(),
              log: Callable[[str], None] | None = print, given: Mapping[str, object] | None = None) -> dict:
    """Run every cell of ``sweep`` under ``out`` (continuing those started), then write ``sweep.json``
    and ``sweep.md``; returns ``sweep.json``'s contents.

    ``given``: the settings typed on a ``sweep --resume`` command line (``--epochs`` may rise),
    checked against each cell's stored ones.
    """
    for cell in sweep.cells:
        require_tools(cell.config)
    out.mkdir(parents=True, exist_ok=True)
    sweep = _check_plan(sweep, out)
    cells = [_continued(cell, out, given) for cell in sweep.cells]
    write_json(out / PLAN, _plan(sweep, cells))
    jobs, results, pooled = [], {}, {}
    by_dir = {cell.dir: cell for cell in cells}
    try:
        for cell in cells:   # deal every cell's folds (or find them dealt), here in the parent
            cell_out = out / cell.dir
            label = f"{cell.recipe}  " if len(sweep.seeds) == 1 else f"{cell.recipe} seed {cell.seed}  "
            prefixed = None if log is None else (lambda line, label=label: log(label + line))
            start(cell.config, cell_out, home=home, cache_dir=cache_dir, resume=is_cv_run(cell_out), log=prefixed)
            cell_jobs, results[cell.dir] = fold_jobs(cell.config, cell_out, home=home, cache_dir=cache_dir,
                                                     label=label)
            jobs += cell_jobs
            if not cell_jobs:   # every fold had finished
                pooled[cell.dir] = _pool_cell(cell, out, results[cell.dir], log)
        with workers.start(len(jobs), log) as runner, closing(run_jobs(run_fold, jobs, runner)) as outcomes:
            for outcome in outcomes:
                if outcome.error is not None:
                    raise outcome.error   # leaving stops the other folds; each saves its last epoch
                job: FoldJob = outcome.job
                cell = by_dir[Path(job.out).relative_to(out).as_posix()]
                results[cell.dir][job.fold] = outcome.result
                if len(results[cell.dir]) == cell.config.folds:
                    pooled[cell.dir] = _pool_cell(cell, out, results[cell.dir], log)
    except (Interrupted, KeyboardInterrupt):
        raise _interrupted(out, cells) from None
    summary = summarize(sweep, cells, pooled)
    write_json(out / SWEEP_JSON, summary)
    write_text(out / SWEEP_MD, sweep_markdown(summary))
    return summary


def resume_sweep(out: Path) -> Sweep:
    """The sweep stored in ``out`` (``sweep --resume OUT``)."""
    try:
        plan = json.loads((out / PLAN).read_text())
        cells = [Cell(c["recipe"], c["seed"], c["dir"], TrainConfig.from_json(c["config"])) for c in plan["cells"]]
        return Sweep(plan["file"], plan["recipes"], plan["seeds"], cells)
    except FileNotFoundError:
        raise UserError(f"{out}: no {PLAN}, so no sweep to resume; check the folder, or start one with "
                        "sweep FILE.toml --out DIR") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{out / PLAN}: unreadable ({exc}); start the sweep again with another --out") from None


def _check_plan(sweep: Sweep, out: Path) -> Sweep:
    """A sweep started before in ``out`` must have the same recipes and seeds (its cells are continued)."""
    if not (out / PLAN).is_file():
        return sweep
    stored = resume_sweep(out)
    if [(c.recipe, c.seed) for c in stored.cells] != [(c.recipe, c.seed) for c in sweep.cells]:
        raise UserError(f"{out} holds another sweep (recipes or seeds differ: {PLAN}); continue it with "
                        f"sweep --resume {out}, or choose another --out")
    return sweep


def _continued(cell: Cell, out: Path, given: Mapping[str, object] | None) -> Cell:
    """A cell already started keeps its stored settings; the settings asked for now must be the same
    (only ``epochs`` may rise, as with ``--resume``)."""
    cell_out = out / cell.dir
    asked = cell.config.to_json() if given is None else given
    try:
        if is_cv_run(cell_out):
            config = resume_config(cell_out, asked)
        elif given:   # sweep --resume with flags, and this cell not dealt yet
            config = cell.config.resumed(given, done=0, run=cell_out)
        else:
            return cell
    except UserError as exc:
        raise UserError(f"{cell_out}: {exc}") from None
    return Cell(cell.recipe, cell.seed, cell.dir, config)


def _plan(sweep: Sweep, cells: list[Cell]) -> dict:
    return {"file": sweep.file, "recipes": sweep.recipes, "seeds": sweep.seeds,
            "cells": [{"recipe": c.recipe, "seed": c.seed, "dir": c.dir, "config": c.config.to_json()}
                      for c in cells]}


def _pool_cell(cell: Cell, out: Path, results: dict[int, dict], log: Callable[[str], None] | None) -> dict:
    """The cell's ``cv_results.json`` (read when it is there for the same epochs, else pooled now)."""
    path = out / cell.dir / CV_RESULTS
    if path.is_file():
        cv = json.loads(path.read_text())
        if cv.get("config") == cell.config.to_json():
            return cv
    cv = pool_folds(cell.config, out / cell.dir, [results[f] for f in range(1, cell.config.folds + 1)], None)
    if log:
        log(f"{cell.recipe} (seed {cell.seed}): {cv['summary']}")
    return cv


def _interrupted(out: Path, cells: list[Cell]) -> Interrupted:
    finished = saved = total = 0
    for cell in cells:
        done, started = fold_states(out / cell.dir, cell.config) if is_cv_run(out / cell.dir) else ([], [])
        finished, saved, total = finished + len(done), saved + len(started), total + cell.config.folds
    return Interrupted(f"interrupted: {finished} of {total} folds finished, {saved} saved an epoch to resume "
                       f"from; continue with: python train_numpy.py sweep --resume {out}")


# -- the table ------------------------------------------------------------------------

def summarize(sweep: Sweep, cells: list[Cell], pooled: dict[str, dict]) -> dict:
    """``sweep.json``: per recipe its fold accuracies (seed by seed), mean ± SD, 95% t-interval, and the
    paired differences to the first recipe. Only results, no timings or paths outside the sweep,
    so the same sweep run anywhere writes the same file."""
    rows, values = [], {}
    for recipe in sweep.recipes:
        mine = [c for c in cells if c.recipe == recipe["name"]]
        values[recipe["name"]] = [f["test_accuracy"] for c in mine for f in pooled[c.dir]["folds"]]
        rows.append({"name": recipe["name"], "adds": recipe["adds"], "epochs": mine[0].config.epochs,
                     "cells": [{"seed": c.seed, "dir": c.dir, "mean_test_accuracy": pooled[c.dir]["mean_test_accuracy"],
                                "fold_accuracies": [f["test_accuracy"] for f in pooled[c.dir]["folds"]],
                                "balanced_test_accuracy": pooled[c.dir]["balanced_test_accuracy"]} for c in mine],
                     **_stats(values[recipe["name"]], clamp=True), "vs": None})
    for row, recipe in zip(rows, sweep.recipes):
        against = recipe.get("compare_to")
        if against is not None:   # seed by seed, fold by fold: the same test images on both sides
            differences = [a - b for a, b in zip(values[row["name"]], values[against])]
            row["vs"] = {"recipe": against, **_stats(differences, clamp=False), "differences": differences,
                         "higher": sum(d > 0 for d in differences), "lower": sum(d < 0 for d in differences)}
    folds = cells[0].config.folds
    return {"file": Path(sweep.file).name, "folds": folds, "seeds": sweep.seeds,
            "group_by": cells[0].config.group_by, "first": rows[0]["name"], "recipes": rows}


def _stats(values: list[float], clamp: bool) -> dict:
    """n, mean, sample SD and the 95% t-interval (an accuracy's clamped to [0, 1])."""
    lo, hi = t_interval(values)
    if clamp:
        lo, hi = max(0.0, lo), min(1.0, hi)
    return {"n": len(values), "mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)), "ci95": [lo, hi]}


def sweep_markdown(summary: dict) -> str:
    """``sweep.md``: the table of :func:`summarize`, accuracies in percent, differences in points."""
    seeds = summary["seeds"]
    per = f"{summary['folds']} folds" + (f" (--group-by {summary['group_by']})" if summary["group_by"] else "")
    per += f" x {len(seeds)} seeds ({', '.join(map(str, seeds))})" if len(seeds) > 1 else f", seed {seeds[0]}"
    lines = [f"# Sweep: {summary['file']}", "",
             f"Each recipe: {per}; the mean ± sample SD of its fold accuracies and their 95% t-interval. "
             "Every recipe was dealt the same folds, so the last columns compare it with another "
             f"(*{summary['first']}* unless its compare_to names one) fold by fold: the mean of the paired "
             "differences in points, their 95% t-interval, and in how many folds it was higher.", "",
             "| recipe | adds | epochs | mean ± SD | 95% CI | against | difference | 95% CI | higher in |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|"]
    for row in summary["recipes"]:
        adds = f"`{row['adds']}`" if row["adds"] else "(none)"
        cells = [row["name"], adds, str(row["epochs"]), f"{100 * row['mean']:.1f}% ± {100 * row['sd']:.1f}%",
                 percent_range(row["ci95"])]
        diff = row["vs"]
        if diff is None:
            cells += ["", "", "", ""]
        else:
            lo, hi = diff["ci95"]
            cells += [diff["recipe"], f"{100 * diff['mean']:+.1f}", f"{100 * lo:+.1f} to {100 * hi:+.1f}",
                      f"{diff['higher']} of {diff['n']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
