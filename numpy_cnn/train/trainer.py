"""A whole training run: data, model, epochs, checkpoints, Table 1 at the end.

The run is a pure function of its settings and data: one Generator, seeded
with ``--seed``, first initialises the weights and then draws every epoch's
order, flips and angles. Its state is saved in the checkpoint with the
weights and momentum buffers, so a resumed run continues the very same
sequence and ends with bit-identical weights.

The state after each epoch is kept in memory and written (atomically) every
few seconds, at the end, and when Ctrl-C or a NaN loss stops the run. So
the checkpoint on disk is always a completed epoch, and after Ctrl-C or a
NaN it is the last completed (and finite) one; both stop with a one-line
message saying what to do. A new run that stops before saving any epoch
takes back the split files it wrote, so the same command can be rerun.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from numpy_cnn.data import CLASSES, Dataset, MeanSubtraction, leakage_report, require_cv2
from numpy_cnn.errors import UserError
from numpy_cnn.nn.arch import build_model
from numpy_cnn.nn.loss import cross_entropy
from numpy_cnn.nn.module import Sequential
from numpy_cnn.nn.optim import Optimizer, build_optimizer
from numpy_cnn.train.checkpoint import Checkpoint, load_checkpoint, require_training_meta, save_checkpoint
from numpy_cnn.train.config import IN_CHANNELS, TrainConfig
from numpy_cnn.train.finetune import prepare as prepare_finetune
from numpy_cnn.train.loop import (Diverged, EpochStats, compile_in_background, epoch_inputs, evaluate,
                                  lazy_network_input, train_epoch)
from numpy_cnn.train.metrics import confusion_matrix, format_table1, per_class_table
from numpy_cnn.train.progress import epoch_line, epochs
from numpy_cnn.train.run_files import (CHECKPOINT, RESULTS, TABLE1, check_new_run_dir, remove_unfinished_run,
                                       write_face_sheet, write_json, write_metrics, write_plots, write_text)
from numpy_cnn.train.run_split import (apply_no_face, check_same_data, digest, face_summary, load_new_run_data,
                                       load_run_data, reuses_split_in)

FORMAT = "numpy_cnn checkpoint v1"
# Writing the checkpoint costs ~10 ms, a lot beside a fast epoch. Each epoch is
# snapshotted in memory (~0.1 ms) and written at most this often, at the end,
# and on Ctrl-C or a NaN loss; so only a hard crash can lose (this much) work.
SAVE_EVERY_SECONDS = 10.0


class Interrupted(UserError):
    """Ctrl-C during training: the message says which epoch is saved and how to resume."""

    kept: str | None = None   # what the run directory holds ("<out>/checkpoint.npz holds epoch 5"), if anything


def _interrupted(out: Path, kept: str | None) -> Interrupted:
    """Ctrl-C's one line: what ``out`` holds (``kept``; ``None``: nothing) and how to go on.

    ``kept`` is also an attribute, so a K-fold run can say it with its own ``--resume``.
    """
    if kept is None:
        exc = Interrupted("interrupted before the first epoch ended, so nothing was saved; "
                          "run the same command again to start over")
    else:
        exc = Interrupted(f"interrupted; {kept}; continue with: python train_numpy.py --resume {out}")
    exc.kept = kept
    return exc


def train(config: TrainConfig, out: Path, *, home: Path, cache_dir: Path | None = None,
          resume: bool = False, log: Callable[[str], None] | None = print,
          on_epoch_end: Callable[[int], None] | None = None) -> dict:
    """Train (or, with ``resume``, continue) the run in ``out`` up to ``config.epochs``; return results.

    Args:
        config: the settings; when resuming, those stored in the checkpoint
            (the caller may raise ``epochs``).
        out: the run directory.
        home: where the default synthetic dataset lives (``home/data/synthetic_sfew``).
        cache_dir: decoded-image cache, or ``None``.
        log: receives the progress line of each epoch; ``None`` is quiet.
        on_epoch_end: called with the epoch number once its state is snapshotted
            (tests raise ``KeyboardInterrupt`` here to simulate Ctrl-C).

    Returns:
        The contents of ``results.json``.
    """
    started = time.perf_counter()
    require_tools(config)
    ckpt = load_checkpoint(out / CHECKPOINT) if resume else None
    own_split = reuses_split_in(config, out)
    if not resume:
        check_new_run_dir(out, reuse_split_here=own_split)
    made_folder = not out.exists()
    try:
        return _train(config, out, ckpt, home, cache_dir, log, on_epoch_end, started)
    except BaseException as exc:
        saved = (out / CHECKPOINT).exists()
        if not (resume or own_split or saved):
            # A new run stopped before any epoch was saved (bad data, NaN in epoch 1, Ctrl-C):
            # take back the split files it wrote, else the same command, rerun, is refused for them.
            remove_unfinished_run(out, made_folder)
        if isinstance(exc, KeyboardInterrupt):   # outside the epochs: loading, compiling, writing results
            raise _interrupted(out, f"{out / CHECKPOINT} holds the last saved epoch" if saved else None) from None
        raise


def require_tools(config: TrainConfig) -> None:
    """Stop with a one-line error, before anything is loaded or written, when the settings need a
    package that is missing: OpenCV for ``--crop-faces`` (building a config imports nothing)."""
    if config.crop_faces is not None:
        require_cv2()


def stored_config(out: Path) -> tuple[TrainConfig, int]:
    """The settings of the run in ``out`` and the epochs it has trained, from its checkpoint."""
    if not (out / CHECKPOINT).is_file():
        raise UserError(f"{out}: no {CHECKPOINT} to resume from; check the run directory, or "
                        "start a new run with --out")
    ckpt = load_checkpoint(out / CHECKPOINT)
    require_training_meta(ckpt, out / CHECKPOINT, "be resumed; start a new run with --out")
    return TrainConfig.from_json(ckpt.meta["config"]), ckpt.meta["epoch"]


def _train(config: TrainConfig, out: Path, ckpt: Checkpoint | None, home: Path, cache_dir: Path | None,
           log: Callable[[str], None] | None, on_epoch_end: Callable[[int], None] | None,
           started: float) -> dict:
    """:func:`train` after the run directory is checked: a new run (``ckpt`` None) or a resumed one.

    As CS231n's ``Solver.train``: the steps that set the run up, each a function
    below, then the epoch loop (train, evaluate, snapshot, save now and then), then
    Table 1 and the plots (:func:`_finish`).
    """
    say = log or (lambda line: None)
    # The model, its optimizer and the run's Generator: from the seed, or the checkpoint's (resume).
    model, optimizer, rng, history = _model_optimizer_rng(config, ckpt)
    origin = prepare_finetune(model, config.init_from, config.freeze, ckpt, say)   # before the data: a bad --init-from costs nothing
    # The data, read while numba compiles; the faces in it; the training mean; what came of the split.
    say(f"data: {config.data or 'the generated synthetic dataset'}")
    _compile_in_background(config)
    ds = _load_data(config, out, ckpt, home, cache_dir)
    ds, faces = _faces(config, ds, out, say)
    mean, source = _mean_and_source(config, ds, ckpt, out)
    _report_data(config, ds, source, started, say)
    leakage = _leakage(config, ds, say)
    # Kept as uint8: each block of inputs is made float as a step needs it (see loop.py).
    x_train, x_test = ds.x_train, lazy_network_input(ds.x_test, mean, IN_CHANNELS)
    _compile(model, x_train, ds.y_train, x_test, ds.y_test, mean, config, say)
    data_meta = _data_meta(config, ds, source)

    # The epochs: train, evaluate, snapshot in memory; written every SAVE_EVERY_SECONDS and at the end.
    snapshot: Checkpoint | None = None   # the last completed epoch, kept in memory
    saved = len(history)                 # the epoch the checkpoint on disk holds
    last_save = time.perf_counter()
    bookkeeping: list[float] = []        # seconds per epoch for the snapshot and any saving
    recent = deque(maxlen=10)            # the last epochs' durations, for the ETA (machines get busy)
    test_predicted = None
    try:
        # Overflow on the way to a NaN loss is reported once, by the loss check, not as warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(len(history) + 1, config.epochs + 1):
                t0 = time.perf_counter()
                x_epoch, y_epoch = epoch_inputs(x_train, ds.y_train, rng, mean, channels=IN_CHANNELS,
                                                rotation=config.rotation, augment=config.augment)
                t1 = time.perf_counter()
                stats = train_epoch(model, optimizer, x_epoch, y_epoch, config.batch_size)
                test_loss, test_acc, test_predicted = evaluate(model, x_test, ds.y_test)
                if not np.isfinite(test_loss):   # finite but huge weights can still overflow
                    raise Diverged(f"the test loss became {test_loss} after the epoch's last step")
                t2 = time.perf_counter()
                history.append(_epoch_row(epoch, stats, test_loss, test_acc, t0, t1, t2))
                snapshot = _checkpoint(model, optimizer, mean, rng, config, history, data_meta, origin)
                if epoch == config.epochs or t2 - last_save >= SAVE_EVERY_SECONDS:
                    saved, last_save = _save(out, snapshot, saved), t2
                t3 = time.perf_counter()
                bookkeeping.append(t3 - t2)
                recent.append(t3 - t0)
                if log:
                    log(epoch_line(history[-1], config.epochs, sum(recent) / len(recent)))
                if on_epoch_end:
                    on_epoch_end(epoch)
    except Diverged as exc:
        saved = _save(out, snapshot, saved)   # the last good epoch, if not on disk yet
        # A resumed run keeps its settings, so a smaller step means a new run.
        where = " in a new run (another --out)" if saved else ""
        raise UserError(f"epoch {len(history) + 1}: {exc}, so training stopped; {_kept(out, saved)}; "
                        f"{_calmer(config)}{where}") from None
    except KeyboardInterrupt:
        saved = _save(out, snapshot, saved)
        # Nothing saved: train() takes back the split files, so there is nothing to resume.
        raise _interrupted(out, _kept(out, saved) if saved else None) from None

    if test_predicted is None:   # resumed a finished run: nothing trained, just report
        _, _, test_predicted = evaluate(model, x_test, ds.y_test)
    return _finish(out, config, ds, history, test_predicted, data_meta, _timing(started, bookkeeping), leakage,
                   origin, faces)


# -- the steps before the first epoch ------------------------------------------

def _compile_in_background(config: TrainConfig) -> None:
    """Let numba compile (or load) the kernels in another thread while the data is read or generated."""
    compile_in_background(*_model_optimizer_rng(config, None)[:2], (IN_CHANNELS, config.image_size, config.image_size),
                          config.augment)


def _load_data(config: TrainConfig, out: Path, ckpt: Checkpoint | None, home: Path,
               cache_dir: Path | None) -> Dataset:
    """A new run's data, split (split files written to ``out``); a resumed run's, read through its split files."""
    load = load_new_run_data if ckpt is None else load_run_data
    return load(config, out, home, cache_dir)


def _faces(config: TrainConfig, ds: Dataset, out: Path, say: Callable[[str], None]
           ) -> tuple[Dataset, dict | None]:
    """With ``--crop-faces``: report what the detector did (before any frame is dropped), draw
    ``faces.png`` and apply ``--no-face``; returns the data trained on and the face report (or None)."""
    faces = face_summary(config, ds)
    if faces is None:
        return ds, None
    say(faces["line"])
    write_face_sheet(out, ds)
    return apply_no_face(config, ds), faces


def _mean_and_source(config: TrainConfig, ds: Dataset, ckpt: Checkpoint | None, out: Path
                     ) -> tuple[MeanSubtraction, str]:
    """A new run fits the training mean; a resumed run checks its images are unchanged and keeps its own."""
    if ckpt is None:
        return MeanSubtraction.fit(ds.x_train, per_pixel=config.mean == "pixel"), ds.source
    check_same_data(ds, ckpt.meta["data"]["train_digest"], out)
    # A resumed run reads its images through its split files; report them as the run began.
    return MeanSubtraction(ckpt.mean), ckpt.meta["data"]["source"]


def _report_data(config: TrainConfig, ds: Dataset, source: str, started: float,
                 say: Callable[[str], None]) -> None:
    """The data line: images per side, how they were read, seconds so far; per class under ``--group-by``."""
    say(f"data: {len(ds.y_train)} training and {len(ds.y_test)} test images ({source}), "
        f"ready after {time.perf_counter() - started:.1f}s")
    if config.group_by is not None:
        say(f"data: test images per class (--group-by {config.group_by}): {_per_class_counts(ds)}")


def _per_class_counts(ds: Dataset) -> str:
    """``Angry 20/101, Disgust 15/74, ...``: what a group-disjoint split achieved, per class."""
    return ", ".join(f"{name} {test}/{train + test}" for name, (train, test) in ds.class_counts().items()
                     if train + test)


def _leakage(config: TrainConfig, ds: Dataset, say: Callable[[str], None]) -> dict:
    """The leakage report (:func:`numpy_cnn.data.leakage_report`): test images also trained on, shared groups."""
    leakage = leakage_report(ds.train_files, ds.test_files, ds.x_train, ds.x_test, ds.y_train, ds.y_test,
                             config.group_by)
    say(leakage["line"])
    return leakage


def _compile(model: Sequential, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
             y_test: np.ndarray, mean: MeanSubtraction, config: TrainConfig, say: Callable[[str], None]) -> None:
    """Have every kernel compiled before epoch 1 is timed; say so when it took a while."""
    compile_seconds = _warm_up(model, x_train, y_train, x_test, y_test, mean, config)
    if compile_seconds > 1.0:
        say(f"numba: kernels compiled in {compile_seconds:.1f}s (cached on disk: next time it is instant)")


def _warm_up(model: Sequential, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
             y_test: np.ndarray, mean: MeanSubtraction, config: TrainConfig) -> float:
    """One forward and backward pass and one augmentation, so numba compiles its kernels
    (or loads them from its disk cache) before epoch 1 is timed. Touches neither the
    weights nor the run's Generator; returns the seconds it took. In eval mode, so BatchNorm's
    running statistics stay as they are and Dropout draws nothing."""
    t0 = time.perf_counter()
    model.eval()
    # Images and labels of the same set: a training set of one image has one label.
    np.asarray(epoch_inputs(x_train[:2], y_train[:2], np.random.default_rng(0), mean, channels=IN_CHANNELS,
                            rotation=config.rotation, augment=config.augment)[0])
    model.backward(cross_entropy(model.forward(x_test[:2]), y_test[:2])[1])
    return time.perf_counter() - t0


def _data_meta(config: TrainConfig, ds: Dataset, source: str) -> dict:
    """What the checkpoint and ``results.json`` record of the data (the digest lets a resume check it)."""
    return {"source": source, "root": str(ds.root), "test_data": config.test_data,
            "n_train": len(ds.y_train), "n_test": len(ds.y_test),
            "train_digest": digest(ds.x_train)}


# -- the epochs -----------------------------------------------------------------

def _epoch_row(epoch: int, stats: EpochStats, test_loss: float, test_acc: float,
               t0: float, t1: float, t2: float) -> dict:
    """One row of ``metrics.csv``: losses, accuracies, seconds (compute; bookkeeping is timed apart)
    and the mean gradient norm per parameter. ``t0``..``t2``: the epoch's start, inputs ready, evaluated."""
    return {
        "epoch": epoch, "train_loss": stats.loss, "train_acc": stats.accuracy,
        "test_loss": test_loss, "test_acc": test_acc,
        "seconds": t2 - t0, "data_seconds": t1 - t0,
        **{f"grad_norm.{name}": g for name, g in stats.grad_norms.items()},
    }


def _timing(started: float, bookkeeping: list[float]) -> dict:
    """This session's seconds for ``results.json``: wall clock, and the mean snapshot-and-save cost per epoch."""
    return {"wall_seconds": time.perf_counter() - started,
            "bookkeeping_seconds_per_epoch": float(np.mean(bookkeeping)) if bookkeeping else None}


def _model_optimizer_rng(config: TrainConfig, ckpt: Checkpoint | None
                         ) -> tuple[Sequential, Optimizer, np.random.Generator, list[dict]]:
    """A fresh model from the seed, or the checkpoint's model, momentum, Generator state and history."""
    rng = np.random.default_rng(config.seed)   # first the weights, then every epoch's randomness
    model = build_model(config.arch, IN_CHANNELS, config.image_size, len(CLASSES), rng=rng)
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr, config.weight_decay,
                                config.momentum)
    if ckpt is None:
        return model, optimizer, rng, []
    model.load_state_dict(ckpt.model)
    optimizer.load_state_dict(ckpt.optim)
    rng.bit_generator.state = ckpt.meta["rng_state"]
    return model, optimizer, rng, ckpt.meta["history"]


def _kept(out: Path, saved: int) -> str:
    return f"{out / CHECKPOINT} holds epoch {saved}" if saved else "nothing was saved"


def _calmer(config: TrainConfig) -> str:
    """What to turn down after a divergence: the learning rate, and the other settings that scale steps."""
    advice = [f"lower --lr (it was {config.lr})"]
    if config.weight_decay > 0:
        advice.append(f"--weight-decay (it was {config.weight_decay})")
    if config.momentum >= 1:   # momentum >= 1 makes the step grow without bound
        advice.append(f"--momentum below 1 (it was {config.momentum})")
    return " or ".join(advice)


def _save(out: Path, snapshot: Checkpoint | None, saved: int) -> int:
    """Write ``snapshot`` and its metrics unless the disk already holds that epoch; return the saved epoch."""
    if snapshot is None or snapshot.meta["epoch"] == saved:
        return saved
    save_checkpoint(out / CHECKPOINT, snapshot)
    write_metrics(out, snapshot.meta["history"])
    return snapshot.meta["epoch"]


def _checkpoint(model: Sequential, optimizer: Optimizer, mean: MeanSubtraction, rng: np.random.Generator,
                config: TrainConfig, history: list[dict], data_meta: dict, origin: dict | None) -> Checkpoint:
    meta = {
        "format": FORMAT, "arch": config.arch, "classes": list(CLASSES),
        "image_size": config.image_size, "in_channels": IN_CHANNELS, "epoch": len(history),
        "seed": config.seed, "config": config.to_json(), "rng_state": rng.bit_generator.state,
        "data": data_meta, "history": list(history),   # a copy: later epochs append to the original
        "init_from": origin,   # where the starting weights came from (None: the seed)
    }
    return Checkpoint(model=model.state_dict(), meta=meta, mean=mean.mean, optim=optimizer.state_dict())


def _finish(out: Path, config: TrainConfig, ds: Dataset, history: list[dict], test_predicted: np.ndarray,
            data_meta: dict, timing: dict, leakage: dict, origin: dict | None, faces: dict | None) -> dict:
    """Table 1, results.json and the plots, from the final weights' test predictions."""
    confusion = confusion_matrix(ds.y_test, test_predicted, len(CLASSES))
    rows = per_class_table(confusion, CLASSES)
    last = history[-1]
    table = format_table1(rows)
    write_text(out / TABLE1, f"Test set results after {epochs(last['epoch'])} "
                             f"({data_meta['source']}, {data_meta['n_test']} images)\n\n{table}")
    results = {
        "overall_test_accuracy": rows[-1]["accuracy"],
        "overall_test_accuracy_ci95": rows[-1]["ci95"],   # 95% Wilson interval
        "per_class_test_accuracy": {r["class"]: r["accuracy"] for r in rows[:-1]},
        "table1": rows,
        "final_train_accuracy": last["train_acc"],
        "final_train_loss": last["train_loss"],
        "final_test_loss": last["test_loss"],
        "epochs": last["epoch"],
        "seed": config.seed,
        "train_seconds": sum(r["seconds"] for r in history),   # all sessions, without saving
        **timing,                                              # this session
        "arch": config.arch,
        "data": {k: v for k, v in data_meta.items() if k != "train_digest"},
        "leakage": leakage,
        "faces": faces,   # with --crop-faces: frames without a face, or with several (face_report)
        "config": config.to_json(),
        "init_from": origin,
        "confusion_matrix": confusion.tolist(),
    }
    write_json(out / RESULTS, results)
    write_plots(out, history, confusion, CLASSES)
    return results
