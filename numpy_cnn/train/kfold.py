"""Stratified K-fold cross-validation: a loop around :func:`.trainer.train`, one whole run per fold.

::

    runs/<timestamp>/
        cv.json               the settings and K: what --resume continues
        recipe.toml           every setting that defines the run, folds included (see recipe.py)
        faces.png             with --crop-faces: every frame's crop per class, no-face frames marked
        fold1/ ... foldK/     each a complete run directory (train.txt and test.txt written
                              first, then checkpoint, metrics, table1.md, results.json, plots)
        cv_results.json       per fold {fold, test_accuracy, n_test}; mean, sample SD and the
                              95% t-interval over folds; pooled per-class and balanced accuracy,
                              and the pooled confusion matrix
        table1.md             Table 1 over all K test folds together (every image tested once)
        confusion_matrix.png  the pooled confusion matrix

Every image of ``--data`` is pooled (a test folder or Usage column too) and
dealt into K test folds by :func:`numpy_cnn.data.split.stratified_folds`,
whole groups at a time under ``--group-by``. Fold k is then an ordinary run
with ``--reuse-split`` on its own split files, so it trains, saves, resumes
and reports exactly like a single run, and costs what one run costs (the
decoded images come from the same cache entry every fold). With ``--val-frac``
each fold carves its validation part from its own training side.

Ctrl-C stops inside a fold as in a single run; ``--resume`` on the top
directory skips the finished folds (their ``results.json`` is read, not
retrained) and resumes the interrupted one at its last saved epoch, so the
final numbers are those of an uninterrupted run.

The loop has three parts, so that the folds can also run at once
(``--jobs N``, or ``--scheduler`` on a Dask cluster; :mod:`.parallel`):
:func:`start` deals the folds (in the parent), :func:`run_fold` trains one
fold from a :class:`FoldJob` (a picklable value, in whichever process or
machine runs it) and :func:`pool_folds` pools their results (the parent
again). Nothing in ``cv_results.json`` depends on where or on how many
threads a fold ran, so it is the same whatever ``--jobs`` was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from numpy_cnn.data import (CLASSES, GROUPS_FILE, TEST_SPLIT_FILE, TRAIN_SPLIT_FILE, GroupRule, Listing, face_report,
                            leakage_line, load_pool, stratified_folds, write_split_file)
from numpy_cnn.data.synthetic import SYNTHETIC_DATA
from numpy_cnn.errors import UserError
from numpy_cnn.study.plots import plot_face_sheet
from numpy_cnn.train.checkpoint import load_checkpoint
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.metrics import balanced_accuracy, format_table1, per_class_table, percent_range, t_interval
from numpy_cnn.train.parallel import Context, Workers, run_jobs
from numpy_cnn.train.progress import balanced_line, epochs
from numpy_cnn.train.recipe import RECIPE_FILE, write_recipe
from numpy_cnn.train.run_files import (CHECKPOINT, FACE_SHEET, RESULTS, TABLE1, VAL_SPLIT_FILE, check_new_run_dir,
                                       write_json, write_text)
from numpy_cnn.train.run_split import data_path
from numpy_cnn.train.trainer import Interrupted, require_tools, stored_config, train

CV_STATE = "cv.json"
CV_RESULTS = "cv_results.json"
CV_CONFUSION = "confusion_matrix.png"


def is_cv_run(path: Path) -> bool:
    """True if ``path`` is the top directory of a K-fold run."""
    return (path / CV_STATE).is_file()


def stored_cv_config(out: Path) -> TrainConfig:
    """The settings a K-fold run in ``out`` started with (from ``cv.json``)."""
    try:
        return TrainConfig.from_json(json.loads((out / CV_STATE).read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{out / CV_STATE}: unreadable ({exc}); start a new run with --out") from None


def resume_config(out: Path, given: Mapping[str, object]) -> TrainConfig:
    """The settings ``--resume out`` continues with: the stored ones (a K-fold run's ``cv.json``,
    else the run's checkpoint), with the settings ``given`` again checked against them
    (:meth:`TrainConfig.resumed`: only ``--epochs`` may rise, and a moved data path follow)."""
    if is_cv_run(out):   # a K-fold run: its folds may have trained up to the stored target
        stored = stored_cv_config(out)
        done = stored.epochs
    else:
        stored, done = stored_config(out)
    return stored.resumed(given, done=done, run=out)


def cross_validate(config: TrainConfig, out: Path, *, home: Path, cache_dir: Path | None = None,
                   resume: bool = False, log: Callable[[str], None] | None = print,
                   on_epoch_end: Callable[[int, int], None] | None = None,
                   workers: Workers = Workers()) -> dict:
    """Run (or, with ``resume``, continue) ``config.folds``-fold cross-validation in ``out``.

    Args:
        config: the settings, ``folds`` >= 2; when resuming, those in ``cv.json``.
        out: the top run directory.
        log: receives every line of every fold, prefixed ``fold k/K``.
        on_epoch_end: called with (fold, epoch) after each epoch (tests simulate Ctrl-C there;
            only when the folds run in this process).
        workers: where the folds run (:class:`.parallel.Workers`): here, one after another (the
            default), in ``--jobs`` worker processes, or on a Dask cluster.

    Returns:
        The contents of ``cv_results.json``.
    """
    require_tools(config)
    k = config.folds
    made_folder = start(config, out, home=home, cache_dir=cache_dir, resume=resume, log=log)
    jobs, results = fold_jobs(config, out, home=home, cache_dir=cache_dir)
    fn = run_fold if on_epoch_end is None else partial(run_fold, on_epoch_end=on_epoch_end)
    try:
        with workers.start(len(jobs), log) as runner, closing(run_jobs(fn, jobs, runner)) as outcomes:
            for outcome in outcomes:
                if outcome.error is not None:
                    raise outcome.error   # leaving stops the other folds; each saves its last epoch
                results[outcome.job.fold] = outcome.result
    except BaseException as exc:
        fresh = not resume and not any((out / f"fold{f}" / CHECKPOINT).exists() for f in range(1, k + 1))
        if fresh:
            _take_back(out, k, made_folder)   # nothing trained: the same command can simply be rerun
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            raise interrupted(out, config, fresh) from None
        raise
    return pool_folds(config, out, [results[f] for f in range(1, k + 1)], log)


def start(config: TrainConfig, out: Path, *, home: Path, cache_dir: Path | None, resume: bool,
          log: Callable[[str], None] | None) -> bool:
    """A new K-fold run in ``out``: deal the folds (split files and ``cv.json``); a resumed one: store
    its settings again (``--epochs`` may have been raised). Returns whether ``out`` was made here."""
    if resume:
        write_json(out / CV_STATE, {"config": config.to_json()})
        write_recipe(out / RECIPE_FILE, config)
        return False
    if is_cv_run(out):
        raise UserError(f"{out} already holds a cross-validation run; continue it with --resume {out}, "
                        "or choose another --out")
    check_new_run_dir(out, reuse_split_here=False)
    made_folder = not out.exists()
    try:
        _deal_folds(config, out, home, cache_dir, log)
    except BaseException:   # bad data or Ctrl-C while dealing: leave no half-written folds
        _take_back(out, config.folds, made_folder)
        raise
    return made_folder


def _deal_folds(config: TrainConfig, out: Path, home: Path, cache_dir: Path | None,
                log: Callable[[str], None] | None) -> None:
    """Pool the data, deal it into folds and write each fold's split files and ``cv.json``."""
    data = data_path(config, home)
    # With --crop-faces the faces are found here, once: every fold loads the crops from the cache.
    source, pool = load_pool(data, config.image_size, cache_dir, config.detector_settings(), config.fit)
    rule = GroupRule(config.group_by) if config.group_by else None
    groups = None if rule is None else rule.names(pool.files, str(data))
    fold_of = stratified_folds(pool.y, config.folds, np.random.default_rng(config.seed), groups,
                               unit=rule.unit if rule else "group")
    if log:
        by = f", whole {rule.unit}s per fold (--group-by {rule.spec})" if rule else ""
        log(f"cross-validation: {len(pool.y)} images ({source}) in {config.folds} stratified folds{by}; "
            f"test images per fold: {', '.join(str(int(n)) for n in np.bincount(fold_of))}")
    if pool.faces is not None:
        if log:
            log(face_report(config.detector_settings(), config.no_face, {"all": (pool.files, pool.faces)})["line"])
        out.mkdir(parents=True, exist_ok=True)
        plot_face_sheet(out / FACE_SHEET, pool.x, pool.y, pool.faces, CLASSES)
    for fold in range(config.folds):
        fold_dir = out / f"fold{fold + 1}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        for name, members in ((TRAIN_SPLIT_FILE, fold_of != fold), (TEST_SPLIT_FILE, fold_of == fold)):
            index = np.flatnonzero(members)
            write_split_file(fold_dir / name, Listing([pool.files[i] for i in index], pool.y[index]))
    write_json(out / CV_STATE, {"config": config.to_json()})
    write_recipe(out / RECIPE_FILE, config)


@dataclass(frozen=True)
class FoldJob:
    """One fold of a K-fold run, as a worker needs it: plain values, so it pickles.

    ``config`` is the K-fold run's (``folds`` = K), ``out`` its top directory, ``label`` what the
    fold's progress lines start with before ``fold k/K`` (a sweep names its cell there).
    """

    config: TrainConfig
    fold: int
    out: str
    home: str
    cache_dir: str | None = None
    label: str = ""

    @property
    def fold_dir(self) -> Path:
        return Path(self.out) / f"fold{self.fold}"

    @property
    def prefix(self) -> str:
        return f"{self.label}fold {self.fold}/{self.config.folds}  "


def fold_jobs(config: TrainConfig, out: Path, *, home: Path, cache_dir: Path | None,
              label: str = "") -> tuple[list[FoldJob], dict[int, dict]]:
    """The folds of the run in ``out`` still to train, as jobs, and the results of those finished
    (``{fold: results.json}``: read, not retrained)."""
    jobs, done = [], {}
    for fold in range(1, config.folds + 1):
        results = finished_fold(config, out / f"fold{fold}")
        if results is not None:
            done[fold] = results
        else:
            jobs.append(FoldJob(config, fold, str(out), str(home), None if cache_dir is None else str(cache_dir),
                                label))
    return jobs, done


def finished_fold(config: TrainConfig, fold_dir: Path) -> dict | None:
    """The fold's ``results.json`` if it has trained to ``config.epochs`` (or stopped early, --patience)."""
    if not (fold_dir / RESULTS).is_file():
        return None
    results = json.loads((fold_dir / RESULTS).read_text())
    if results["epochs"] >= config.epochs or results.get("selection", {}).get("stopped_early"):
        return results
    return None


def run_fold(job: FoldJob, context: Context, on_epoch_end: Callable[[int, int], None] | None = None) -> dict:
    """Train one fold as an ordinary run on its split files, wherever ``context`` says it runs: resumed
    if it has a checkpoint. Returns its ``results.json``.

    Sets the kernels' threads first (a worker's share of the CPUs), and checks that this process
    sees the fold's split files and the data (a Dask worker on another machine needs both at the
    same path). Stops after an epoch, saving it, once ``context.stopped()``.
    """
    _check_visible(job, context)
    if context.threads is not None:
        from numpy_cnn.kernels.threads import use_threads   # numba loads only now, in the worker

        use_threads(context.threads)
    say = context.say

    def epoch_ended(epoch: int) -> None:
        if on_epoch_end is not None:
            on_epoch_end(job.fold, epoch)
        if context.stopped():   # the parent was interrupted: the trainer saves this epoch and stops
            raise KeyboardInterrupt

    fold_config = replace(job.config, folds=None, reuse_split=True, split_dir=str(job.fold_dir.resolve()))
    return train(fold_config, job.fold_dir, home=Path(job.home),
                 cache_dir=None if job.cache_dir is None else Path(job.cache_dir),
                 resume=(job.fold_dir / CHECKPOINT).is_file(),
                 log=None if say is None else (lambda line: say(job.prefix + line)), on_epoch_end=epoch_ended,
                 adapt_threads=not context.fixed_threads)


def _check_visible(job: FoldJob, context: Context) -> None:
    """One line naming the path and the worker when this process cannot see the fold or the data."""
    data = Path(job.config.data) if job.config.data else Path(job.home) / SYNTHETIC_DATA
    for path in (job.fold_dir / TEST_SPLIT_FILE, data):
        if not path.exists():
            raise UserError(f"{context.where} cannot see {path}; every worker must see the data and the run "
                            "directory at the same path (a shared file system: see docs/many-runs.md)")


def interrupted(out: Path, config: TrainConfig, fresh: bool, resume_command: str | None = None) -> Interrupted:
    """Ctrl-C's one line for a K-fold run: what its folds hold on disk, and the command that continues it."""
    if fresh:
        return Interrupted("interrupted before the first epoch ended, so nothing was saved; "
                           "run the same command again to start over")
    k = config.folds
    resume = resume_command or f"python train_numpy.py --resume {out}"
    finished, saved = fold_states(out, config)
    if not saved:
        return Interrupted(f"interrupted before a running fold saved an epoch ({len(finished)} of {k} folds "
                           f"finished); continue with: {resume}")
    which = f"fold {saved[0]}" if len(saved) == 1 else f"folds {', '.join(map(str, saved[:-1]))} and {saved[-1]}"
    kept = "; ".join(f"{out / f'fold{fold}' / CHECKPOINT} holds epoch {_saved_epoch(out / f'fold{fold}')}"
                     for fold in saved)
    return Interrupted(f"interrupted in {which} of {k} ({kept}); continue with: {resume}")


def fold_states(out: Path, config: TrainConfig) -> tuple[list[int], list[int]]:
    """The folds of the run in ``out`` that have finished, and those that have saved an epoch but not finished."""
    finished, saved = [], []
    for fold in range(1, config.folds + 1):
        fold_dir = out / f"fold{fold}"
        if finished_fold(config, fold_dir) is not None:
            finished.append(fold)
        elif (fold_dir / CHECKPOINT).is_file():
            saved.append(fold)
    return finished, saved


def _saved_epoch(fold_dir: Path) -> int | str:
    try:
        return load_checkpoint(fold_dir / CHECKPOINT).meta["epoch"]
    except (UserError, KeyError, OSError):
        return "?"


def pool_folds(config: TrainConfig, out: Path, results: list[dict], log: Callable[[str], None] | None) -> dict:
    """``cv_results.json``, the pooled ``table1.md`` and ``confusion_matrix.png`` from the folds' results."""
    accuracies = [r["overall_test_accuracy"] for r in results]
    confusion = np.sum([np.array(r["confusion_matrix"]) for r in results], axis=0)
    rows = per_class_table(confusion, CLASSES)
    rows[-1]["ci95"] = None   # the pooled images come from K models: the interval is the t-interval below
    balanced = balanced_accuracy(confusion)
    mean, sd = float(np.mean(accuracies)), float(np.std(accuracies, ddof=1))
    ci = [max(0.0, lo_hi) if i == 0 else min(1.0, lo_hi) for i, lo_hi in enumerate(t_interval(accuracies))]
    summary = (f"{len(results)}-fold test accuracy: {100 * mean:.1f}% \u00b1 {100 * sd:.1f}% SD over folds "
               f"(95% CI {percent_range(ci)})")
    cv = {
        "folds": [{"fold": i + 1, "test_accuracy": a, "n_test": r["table1"][-1]["total"]}
                  for i, (a, r) in enumerate(zip(accuracies, results))],
        "mean_test_accuracy": mean,
        "std_test_accuracy": sd,
        "ci95": ci,
        "pooled_test_accuracy": rows[-1]["accuracy"],
        "balanced_test_accuracy": balanced,   # the pooled confusion's mean per-class recall
        "per_class_test_accuracy": {r["class"]: r["accuracy"] for r in rows[:-1]},
        "table1": rows,
        "confusion_matrix": confusion.tolist(),
        "leakage": _pooled_leakage([r["leakage"] for r in results]),
        # Every fold's run sees every frame (its train and test side): the first fold's count is the data's.
        "faces": results[0].get("faces"),
        "epochs": config.epochs,
        "config": config.to_json(),
        "summary": summary,
    }
    write_json(out / CV_RESULTS, cv)
    write_text(out / TABLE1, f"Pooled test results of {len(results)}-fold cross-validation after "
                             f"{epochs(config.epochs)} ({int(confusion.sum())} images, each tested once)\n\n"
                             f"{format_table1(rows)}\n{balanced_line(balanced)}\n\n{summary}\n")
    _plot_pooled(out, confusion, len(results))
    return cv


def _pooled_leakage(folds: list[dict]) -> dict:
    """The folds' leakage reports summed over their test folds (every image is tested once);
    label conflicts concern the whole data, so every fold counts the same ones."""
    pooled = {**folds[0], "n_test": sum(f["n_test"] for f in folds),
              "duplicates": sum(f["duplicates"] for f in folds),
              "shared_group": None if folds[0]["shared_group"] is None else sum(f["shared_group"] for f in folds)}
    pooled["line"] = leakage_line(pooled)
    return pooled


def _plot_pooled(out: Path, confusion: np.ndarray, k: int) -> None:
    from numpy_cnn.study.plots import plot_confusion   # matplotlib loads only now

    plot_confusion(out / CV_CONFUSION, confusion, CLASSES, f"Pooled test confusion matrix, {k} folds")


def _take_back(out: Path, k: int, made_folder: bool) -> None:
    """Undo a new K-fold run that stopped before any fold saved an epoch (its split files, cv.json)."""
    for fold in range(1, k + 1):
        fold_dir = out / f"fold{fold}"
        for name in (TRAIN_SPLIT_FILE, TEST_SPLIT_FILE, VAL_SPLIT_FILE, GROUPS_FILE):
            (fold_dir / name).unlink(missing_ok=True)
        if fold_dir.is_dir() and not any(fold_dir.iterdir()):
            fold_dir.rmdir()
    for name in (CV_STATE, RECIPE_FILE, FACE_SHEET):
        (out / name).unlink(missing_ok=True)
    if made_folder and out.is_dir() and not any(out.iterdir()):
        out.rmdir()
