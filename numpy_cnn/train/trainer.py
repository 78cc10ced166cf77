"""A whole training run: data, model, epochs, checkpoints, Table 1 at the end.

The run is a pure function of its settings and data: one Generator, seeded
with ``--seed``, first initialises the weights and then draws every epoch's
order, flips and angles. Its state is saved in the checkpoint with the
weights and momentum buffers, so a resumed run continues the very same
sequence and ends with bit-identical weights.

After each epoch the run evaluates on its test set, as the paper does; with
``--val-frac`` on validation images carved from its training side instead
(:mod:`.selection`: ``--keep best``, ``--patience``), and the test set is
looked at once, at the end. The modern options (an lr schedule, label
smoothing, more augmentation, one input channel, class balance, test-time
augmentation) are each off by default and pass nothing to the epoch when off,
so the default run is the paper's, bit for bit.

The state after each epoch is kept in memory and written (atomically) every
few seconds, at the end, and when Ctrl-C or a NaN loss stops the run. So
the checkpoint on disk is always a completed epoch, and after Ctrl-C or a
NaN it is the last completed (and finite) one; both stop with a one-line
message saying what to do. A new run that stops before saving any epoch
takes back the split files it wrote, so the same command can be rerun.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from numpy_cnn.data import (CLASSES, Dataset, Labelled, Listing, MeanSubtraction, leakage_report, require_cv2,
                            write_split_file)
from numpy_cnn.errors import UserError
from numpy_cnn.nn.arch import build_model
from numpy_cnn.nn.loss import cross_entropy
from numpy_cnn.nn.module import Sequential
from numpy_cnn.nn.optim import Optimizer, build_optimizer
from numpy_cnn.train.balance import class_weights
from numpy_cnn.train.checkpoint import Checkpoint, load_checkpoint, require_training_meta, save_checkpoint
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.finetune import prepare as prepare_finetune
from numpy_cnn.train.governor import ThreadGovernor
from numpy_cnn.train.loop import (Diverged, EpochStats, compile_in_background, epoch_inputs, evaluate,
                                  lazy_network_input, train_epoch)
from numpy_cnn.train.metrics import balanced_accuracy, confusion_matrix, format_table1, per_class_table
from numpy_cnn.train.progress import balanced_line, epoch_line, table1_when
from numpy_cnn.train.recipe import RECIPE_FILE, write_recipe
from numpy_cnn.train.run_files import (CHECKPOINT, RESULTS, TABLE1, VAL_SPLIT_FILE, check_new_run_dir,
                                       remove_unfinished_run, write_face_sheet, write_json, write_metrics,
                                       write_plots, write_text)
from numpy_cnn.train.run_split import (apply_no_face, carve_validation, check_same_data, digest, face_summary,
                                       load_new_run_data, load_run_data, reuses_split_in)
from numpy_cnn.train.schedule import LRSchedule, build_schedule, steps_per_epoch
from numpy_cnn.train.selection import Selection

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
          on_epoch_end: Callable[[int], None] | None = None, adapt_threads: bool = False) -> dict:
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
        adapt_threads: let a :class:`~numpy_cnn.train.governor.ThreadGovernor` run the
            steps on fewer threads than the kernels' count while that is faster (a busy
            machine); the weights are the same either way.

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
        return _train(config, out, ckpt, home, cache_dir, log, on_epoch_end, started, adapt_threads)
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
           started: float, adapt_threads: bool) -> dict:
    """:func:`train` after the run directory is checked: a new run (``ckpt`` None) or a resumed one.

    As CS231n's ``Solver.train``: the steps that set the run up, each a function
    below, then the epoch loop (train, evaluate, snapshot, save now and then), then
    the one test pass and Table 1 (:func:`_finish`).
    """
    say = log or (lambda line: None)
    # The model, its optimizer and the run's Generator: from the seed, or the checkpoint's (resume).
    model, optimizer, rng, history = _model_optimizer_rng(config, ckpt)
    _check_init_channels(config, ckpt)
    origin = prepare_finetune(model, config.init_from, config.freeze, ckpt, say)   # before the data: a bad --init-from costs nothing
    # The data, read while numba compiles; the faces in it; a validation part; the training mean.
    say(f"data: {config.data or 'the generated synthetic dataset'}")
    _compile_in_background(config)
    ds = _load_data(config, out, ckpt, home, cache_dir)
    ds, faces = _faces(config, ds, out, say)
    train_ds, val = _validation(config, ds, out, ckpt)
    mean, source = _mean_and_source(config, ds, train_ds, ckpt, out)
    _report_data(config, ds, train_ds, val, source, started, say)
    governor = _governor(adapt_threads)
    say(_threads_line(governor))
    leakage = _leakage(config, ds, say)
    # Kept as uint8: each block of inputs is made float as a step needs it (see loop.py).
    x_train, x_test = train_ds.x_train, lazy_network_input(ds.x_test, mean, config.channels)
    x_val = None if val is None else lazy_network_input(val.x, mean, config.channels)
    plan = StepPlan.of(config, train_ds.y_train)
    _compile(model, x_train, train_ds.y_train, x_test, ds.y_test, mean, config, plan, say)
    data_meta = _data_meta(config, ds, train_ds, val, source)
    selection = _selection(config, history, ckpt)

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
                if selection is not None and selection.should_stop(epoch - 1):
                    say(_early_stop_line(selection, epoch - 1))
                    break
                t0 = time.perf_counter()
                x_epoch, y_epoch = epoch_inputs(x_train, train_ds.y_train, rng, mean, **_input_options(config))
                t1 = time.perf_counter()
                stats = train_epoch(model, optimizer, x_epoch, y_epoch, config.batch_size, **plan.options(epoch),
                                    after_step=governor and governor.step)
                side, loss, acc, test_predicted = _evaluate_epoch(model, x_test, ds.y_test, x_val, val)
                best = selection is not None and selection.update(epoch, acc, model)
                t2 = time.perf_counter()
                history.append(_epoch_row(epoch, stats, side, loss, acc, t0, t1, t2))
                snapshot = _checkpoint(model, optimizer, mean, rng, config, history, data_meta, origin, selection)
                if epoch == config.epochs or t2 - last_save >= SAVE_EVERY_SECONDS:
                    saved, last_save = _save(out, snapshot, saved, config), t2
                t3 = time.perf_counter()
                bookkeeping.append(t3 - t2)
                recent.append(t3 - t0)
                if log:
                    log(epoch_line(history[-1], config.epochs, sum(recent) / len(recent), "best" if best else ""))
                if on_epoch_end:
                    on_epoch_end(epoch)
        saved = _save(out, snapshot, saved, config)   # an early stop ends before the last epoch's save
    except Diverged as exc:
        saved = _save(out, snapshot, saved, config)   # the last good epoch, if not on disk yet
        # A resumed run keeps its settings, so a smaller step means a new run.
        where = " in a new run (another --out)" if saved else ""
        raise UserError(f"epoch {len(history) + 1}: {exc}, so training stopped; {_kept(out, saved)}; "
                        f"{_calmer(config)}{where}") from None
    except KeyboardInterrupt:
        saved = _save(out, snapshot, saved, config)
        # Nothing saved: train() takes back the split files, so there is nothing to resume.
        raise _interrupted(out, _kept(out, saved) if saved else None) from None

    test = _test_pass(config, model, x_test, ds.y_test, mean, selection, history, test_predicted)
    return _finish(out, config, ds, history, test, data_meta, _timing(started, bookkeeping, governor), leakage,
                   origin, faces, selection)


# -- the steps before the first epoch ------------------------------------------

def _threads() -> int:
    """The threads the kernels run on now (:func:`numpy_cnn.kernels.threads.use_threads` set them)."""
    import numba   # loaded by now: the background compile started it

    return numba.get_num_threads()


def _governor(adapt_threads: bool) -> ThreadGovernor | None:
    """A governor starting at the kernels' thread count, or None (``--threads N``: fixed; or one thread)."""
    import numba

    most = _threads()
    return ThreadGovernor(most, numba.set_num_threads) if adapt_threads and most > 1 else None


def _threads_line(governor: ThreadGovernor | None) -> str:
    from numpy_cnn.cpus import available_cpus

    how = "fewer while the machine is too busy for them" if governor else "fixed"
    return (f"threads: {_threads()}, {how} (this process may use {available_cpus()} CPUs; --threads N fixes "
            "the count; the weights do not depend on it)")


def _check_init_channels(config: TrainConfig, ckpt: Checkpoint | None) -> None:
    """``--init-from`` a network of other input channels: say which ``--channels`` it needs (finetune's
    layer comparison would name conv1's shapes only)."""
    if ckpt is not None or not config.init_from:
        return
    path = Path(config.init_from)
    try:
        meta = load_checkpoint(path / CHECKPOINT if path.is_dir() else path).meta
    except UserError:
        return   # finetune.init_from says what is wrong with it
    theirs = meta.get("in_channels", config.channels)
    if theirs != config.channels:
        raise UserError(f"--init-from {config.init_from}: its network takes {theirs}-channel input, this run's "
                        f"--channels is {config.channels}; add --channels {theirs}")


def _compile_in_background(config: TrainConfig) -> None:
    """Let numba compile (or load) the kernels in another thread while the data is read or generated."""
    compile_in_background(*_model_optimizer_rng(config, None)[:2],
                          (config.channels, config.image_size, config.image_size), config.augment,
                          soft_loss=bool(config.label_smoothing) or config.balance == "loss",
                          jitter=bool(config.shift or config.brightness or config.contrast))


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


def _validation(config: TrainConfig, ds: Dataset, out: Path, ckpt: Checkpoint | None
                ) -> tuple[Dataset, Labelled | None]:
    """With ``--val-frac``: the data trained on (``ds`` less a validation part) and that part, recorded
    in ``val.txt`` by a new run; else ``ds`` and None. A resumed run carves the same images again."""
    train_ds, val = carve_validation(config, ds)
    if val is not None and ckpt is None:
        write_split_file(out / VAL_SPLIT_FILE, Listing(val.files, val.y))
    return train_ds, val


def _mean_and_source(config: TrainConfig, ds: Dataset, train_ds: Dataset, ckpt: Checkpoint | None, out: Path
                     ) -> tuple[MeanSubtraction, str]:
    """A new run fits the mean of the images it trains on (``train_ds``); a resumed run checks its
    training images (``ds``: the whole training side, validation part included) are unchanged
    and keeps its own mean."""
    if ckpt is None:
        return MeanSubtraction.fit(train_ds.x_train, per_pixel=config.mean == "pixel"), ds.source
    check_same_data(ds, ckpt.meta["data"]["train_digest"], out)
    # A resumed run reads its images through its split files; report them as the run began.
    return MeanSubtraction(ckpt.mean), ckpt.meta["data"]["source"]


def _report_data(config: TrainConfig, ds: Dataset, train_ds: Dataset, val: Labelled | None, source: str,
                 started: float, say: Callable[[str], None]) -> None:
    """The data line: images per side, how they were read, seconds so far; per class under ``--group-by``."""
    sides = (f"{len(train_ds.y_train)} training and {len(ds.y_test)} test images" if val is None else
             f"{len(train_ds.y_train)} training, {len(val.y)} validation (--val-frac {config.val_frac}) "
             f"and {len(ds.y_test)} test images")
    say(f"data: {sides} ({source}), ready after {time.perf_counter() - started:.1f}s")
    if config.group_by is not None:
        say(f"data: test images per class (--group-by {config.group_by}): {_per_class_counts(ds)}")


def _per_class_counts(ds: Dataset) -> str:
    """``Angry 20/101, Disgust 15/74, ...``: what a group-disjoint split achieved, per class."""
    return ", ".join(f"{name} {test}/{train + test}" for name, (train, test) in ds.class_counts().items()
                     if train + test)


def _leakage(config: TrainConfig, ds: Dataset, say: Callable[[str], None]) -> dict:
    """The leakage report (:func:`numpy_cnn.data.leakage_report`): test images also trained on, shared groups.
    The training side is the whole of it, a validation part included."""
    leakage = leakage_report(ds.train_files, ds.test_files, ds.x_train, ds.x_test, ds.y_train, ds.y_test,
                             config.group_by)
    say(leakage["line"])
    return leakage


@dataclass(frozen=True)
class StepPlan:
    """What every optimizer step gets beside its batch: the lr schedule and the loss options.

    Off (the paper's run) it passes nothing, so :func:`train_epoch` runs exactly as it always did.
    """

    schedule: LRSchedule | None = None
    steps_per_epoch: int = 1
    loss: dict = field(default_factory=dict)   # cross_entropy's label_smoothing and weight, when on

    @classmethod
    def of(cls, config: TrainConfig, y_train: np.ndarray) -> StepPlan:
        """The plan of a run that trains on the labels ``y_train`` (N,), for ``config.epochs`` epochs."""
        per_epoch = steps_per_epoch(len(y_train), config.batch_size)
        schedule = None
        if config.lr_schedule != "constant" or config.warmup:
            schedule = build_schedule(config.lr_schedule, config.lr, config.epochs, per_epoch, warmup=config.warmup)
        loss = {}
        if config.label_smoothing:
            loss["label_smoothing"] = config.label_smoothing
        if config.balance == "loss":
            loss["class_weight"] = class_weights(y_train, len(CLASSES))
        return cls(schedule, per_epoch, loss)

    def options(self, epoch: int) -> dict:
        """:func:`train_epoch`'s keyword arguments for ``epoch`` (1-based)."""
        timing = {} if self.schedule is None else {"schedule": self.schedule,
                                                   "first_step": (epoch - 1) * self.steps_per_epoch}
        return {**timing, **self.loss}


def _input_options(config: TrainConfig) -> dict:
    """:func:`epoch_inputs`' keyword arguments: channels, the augmentation, the balanced sampler."""
    return {"channels": config.channels, "rotation": config.rotation, "augment": config.augment,
            "shift": config.shift, "brightness": config.brightness, "contrast": config.contrast,
            "balanced": config.balance == "sampler"}


def _compile(model: Sequential, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
             y_test: np.ndarray, mean: MeanSubtraction, config: TrainConfig, plan: StepPlan,
             say: Callable[[str], None]) -> None:
    """Have every kernel compiled before epoch 1 is timed; say so when it took a while."""
    compile_seconds = _warm_up(model, x_train, y_train, x_test, y_test, mean, config, plan)
    if compile_seconds > 1.0:
        say(f"numba: kernels compiled in {compile_seconds:.1f}s (cached on disk: next time it is instant)")


def _warm_up(model: Sequential, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
             y_test: np.ndarray, mean: MeanSubtraction, config: TrainConfig, plan: StepPlan) -> float:
    """One forward and backward pass and one augmentation, so numba compiles its kernels
    (or loads them from its disk cache) before epoch 1 is timed. Touches neither the
    weights nor the run's Generator; returns the seconds it took. In eval mode, so BatchNorm's
    running statistics stay as they are and Dropout draws nothing."""
    t0 = time.perf_counter()
    model.eval()
    # Images and labels of the same set: a training set of one image has one label.
    options = {**_input_options(config), "balanced": False}
    np.asarray(epoch_inputs(x_train[:2], y_train[:2], np.random.default_rng(0), mean, **options)[0])
    loss = {{"class_weight": "weight"}.get(k, k): v for k, v in plan.loss.items()}   # cross_entropy's names
    model.backward(cross_entropy(model.forward(x_test[:2]), y_test[:2], **loss)[1])
    return time.perf_counter() - t0


def _data_meta(config: TrainConfig, ds: Dataset, train_ds: Dataset, val: Labelled | None, source: str) -> dict:
    """What the checkpoint and ``results.json`` record of the data (the digest, of the whole training
    side, lets a resume check it). ``n_train`` counts the images trained on."""
    meta = {"source": source, "root": str(ds.root), "test_data": config.test_data,
            "n_train": len(train_ds.y_train), "n_test": len(ds.y_test),
            "train_digest": digest(ds.x_train)}
    if val is not None:
        meta["n_val"] = len(val.y)
    return meta


def _selection(config: TrainConfig, history: list[dict], ckpt: Checkpoint | None) -> Selection | None:
    """With ``--val-frac``, the books of the best epoch (rebuilt from the history when resuming:
    the checkpoint's model is the best epoch's weights under ``--keep best``); else None."""
    if config.val_frac is None:
        return None
    best_state = ckpt.model if ckpt is not None and config.keep == "best" else None
    return Selection.from_history(history, config.keep, config.patience, best_state)


# -- the epochs -----------------------------------------------------------------

def _epoch_row(epoch: int, stats: EpochStats, side: str, loss: float, acc: float,
               t0: float, t1: float, t2: float) -> dict:
    """One row of ``metrics.csv``: losses, accuracies (``side``: ``test``, or ``val`` with ``--val-frac``),
    seconds (compute; bookkeeping is timed apart), the lr of the epoch's last step (with an
    ``--lr-schedule``) and the mean gradient norm per parameter. ``t0``..``t2``: the epoch's start,
    inputs ready, evaluated."""
    return {
        "epoch": epoch, "train_loss": stats.loss, "train_acc": stats.accuracy,
        f"{side}_loss": loss, f"{side}_acc": acc,
        "seconds": t2 - t0, "data_seconds": t1 - t0,
        **({} if stats.lr is None else {"lr": stats.lr}),
        **{f"grad_norm.{name}": g for name, g in stats.grad_norms.items()},
    }


def _evaluate_epoch(model: Sequential, x_test, y_test: np.ndarray, x_val, val: Labelled | None
                    ) -> tuple[str, float, float, np.ndarray | None]:
    """After an epoch: the paper's run evaluates on the test set; with ``--val-frac``, on the
    validation images (the test set is not looked at until the end). Returns which (``"test"``
    or ``"val"``), the loss, the accuracy and the test predictions (None on validation)."""
    if val is None:
        side, (loss, acc, predicted) = "test", evaluate(model, x_test, y_test)
    else:
        side, (loss, acc, _), predicted = "val", evaluate(model, x_val, val.y), None
    if not np.isfinite(loss):   # finite but huge weights can still overflow
        raise Diverged(f"the {'validation' if side == 'val' else 'test'} loss became {loss} "
                       "after the epoch's last step")
    return side, loss, acc, predicted


def _early_stop_line(selection: Selection, epoch: int) -> str:
    return (f"early stop after epoch {epoch}: no better validation accuracy in {selection.patience} "
            f"{'epoch' if selection.patience == 1 else 'epochs'} (best {100 * selection.best_acc:.1f}% "
            f"at epoch {selection.best_epoch})")


@dataclass(frozen=True)
class TestPass:
    """The final weights on the test set: the mean loss and each image's predicted class."""

    loss: float
    predicted: np.ndarray


def _test_pass(config: TrainConfig, model: Sequential, x_test, y_test: np.ndarray, mean: MeanSubtraction,
               selection: Selection | None, history: list[dict], predicted: np.ndarray | None) -> TestPass:
    """The weights the run keeps (``--keep best``: loaded now) on the test set, with ``--tta``.

    The paper's run has just evaluated its last epoch's weights: that is its test pass. With
    ``--val-frac`` this is the first and only time the test set is looked at.
    """
    if selection is not None and selection.best_state is not None:
        model.load_state_dict(selection.best_state)
    if predicted is not None and config.tta == "none":
        return TestPass(history[-1]["test_loss"], predicted)
    loss, _, predicted = evaluate(model, x_test, y_test, tta=config.tta, mean=mean)
    return TestPass(loss, predicted)


def _timing(started: float, bookkeeping: list[float], governor: ThreadGovernor | None) -> dict:
    """This session's seconds and threads for ``results.json``: wall clock, the mean snapshot-and-save cost
    per epoch, the thread count, and with a governor the share of steps run on each count."""
    threads = _threads() if governor is None else governor.finish()
    return {"wall_seconds": time.perf_counter() - started,
            "bookkeeping_seconds_per_epoch": float(np.mean(bookkeeping)) if bookkeeping else None,
            "threads": threads,   # the weights do not depend on it
            "threads_used": None if governor is None else governor.summary()}


def _model_optimizer_rng(config: TrainConfig, ckpt: Checkpoint | None
                         ) -> tuple[Sequential, Optimizer, np.random.Generator, list[dict]]:
    """A fresh model from the seed, or the checkpoint's model, momentum, Generator state and history.
    (Under ``--keep best`` the model trains on from the last epoch's weights, not the best's.)"""
    rng = np.random.default_rng(config.seed)   # first the weights, then every epoch's randomness
    model = build_model(config.arch, config.channels, config.image_size, len(CLASSES), rng=rng)
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr, config.weight_decay,
                                config.momentum)
    if ckpt is None:
        return model, optimizer, rng, []
    model.load_state_dict(ckpt.training_state())
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


def _save(out: Path, snapshot: Checkpoint | None, saved: int, config: TrainConfig) -> int:
    """Write ``snapshot``, its metrics and the run's recipe unless the disk already holds that epoch;
    return the saved epoch."""
    if snapshot is None or snapshot.meta["epoch"] == saved:
        return saved
    save_checkpoint(out / CHECKPOINT, snapshot)
    write_metrics(out, snapshot.meta["history"])
    write_recipe(out / RECIPE_FILE, config)
    return snapshot.meta["epoch"]


def _checkpoint(model: Sequential, optimizer: Optimizer, mean: MeanSubtraction, rng: np.random.Generator,
                config: TrainConfig, history: list[dict], data_meta: dict, origin: dict | None,
                selection: Selection | None) -> Checkpoint:
    """The run's state after its last epoch. Under ``--keep best`` the model is the best epoch's
    weights and ``last`` the last epoch's, which a resumed run trains on from."""
    meta = {
        "format": FORMAT, "arch": config.arch, "classes": list(CLASSES),
        "image_size": config.image_size, "in_channels": config.channels, "epoch": len(history),
        "seed": config.seed, "config": config.to_json(), "rng_state": rng.bit_generator.state,
        "data": data_meta, "history": list(history),   # a copy: later epochs append to the original
        "init_from": origin,   # where the starting weights came from (None: the seed)
    }
    state = model.state_dict()
    keeps_best = selection is not None and selection.best_state is not None
    return Checkpoint(model=selection.best_state if keeps_best else state, meta=meta, mean=mean.mean,
                      optim=optimizer.state_dict(), last=state if keeps_best else OrderedDict())


def _finish(out: Path, config: TrainConfig, ds: Dataset, history: list[dict], test: TestPass,
            data_meta: dict, timing: dict, leakage: dict, origin: dict | None, faces: dict | None,
            selection: Selection | None) -> dict:
    """Table 1, results.json and the plots, from the kept weights' test predictions."""
    confusion = confusion_matrix(ds.y_test, test.predicted, len(CLASSES))
    rows = per_class_table(confusion, CLASSES)
    last = history[-1]
    table = format_table1(rows)
    balanced = balanced_accuracy(confusion)
    best = selection.best_epoch if selection is not None and selection.keep == "best" else None
    write_text(out / TABLE1, f"Test set results {table1_when(last['epoch'], config.tta, best)} "
                             f"({data_meta['source']}, {data_meta['n_test']} images)\n\n{table}\n"
                             f"{balanced_line(balanced)}\n")
    results = {
        "overall_test_accuracy": rows[-1]["accuracy"],
        "overall_test_accuracy_ci95": rows[-1]["ci95"],   # 95% Wilson interval
        "balanced_test_accuracy": balanced,               # the mean of the per-class recalls
        "per_class_test_accuracy": {r["class"]: r["accuracy"] for r in rows[:-1]},
        "table1": rows,
        "final_train_accuracy": last["train_acc"],
        "final_train_loss": last["train_loss"],
        "final_test_loss": test.loss,
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
    if selection is not None:   # --val-frac: the last epoch's validation figures and which weights were kept
        results["final_val_loss"], results["final_val_accuracy"] = last["val_loss"], last["val_acc"]
        results["selection"] = selection.summary(last["epoch"], config.epochs)
    write_json(out / RESULTS, results)
    write_recipe(out / RECIPE_FILE, config)
    write_plots(out, history, confusion, CLASSES)
    return results

