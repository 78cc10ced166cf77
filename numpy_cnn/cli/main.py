"""The command line of ``train_numpy.py``: train (the default), evaluate, predict,
and the study tools summary, trace and visualize.

Commands live in :data:`COMMANDS`, a table from name to :class:`Command`
(its help line, its arguments, its function). ``python train_numpy.py NAME
...`` runs the command NAME; anything else is a training run. A new command
(``summary``, ``trace``, ...) is one more :func:`register` call; the training
code does not change.

A user's mistake never shows a traceback: :func:`main` prints the one-line
:class:`UserError` message on stderr and returns 2. So does Ctrl-C, after
training has saved what it can, and so do a bad flag (one line, not
argparse's whole usage), a file system that refuses a write (full disk,
permissions) and running out of memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from numpy_cnn.cli import data as data_cli, study as study_cli
from numpy_cnn.errors import UserError
from numpy_cnn.cli.paths import CACHE, RUNS, nonempty_path
from numpy_cnn.train.progress import epochs, near_chance_note, table1_when

PROG = "train_numpy.py"


@dataclass(frozen=True)
class Command:
    """One subcommand: ``add_arguments(parser)`` declares its flags, ``run(args, home)`` does it."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Path], int]


COMMANDS: dict[str, Command] = {}
DEFAULT_COMMAND = "train"


def register(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Decorator: ``@register("summary", "...", add_summary_args)`` on ``def run(args, home) -> int``."""
    def decorate(run: Callable[[argparse.Namespace, Path], int]):
        COMMANDS[name] = Command(help, add_arguments, run)
        return run
    return decorate


def default_home() -> Path:
    """The folder holding ``train_numpy.py`` (the repository): defaults live under it, not the cwd."""
    return Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None, home: Path | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status.

    ``home`` is the folder that holds ``data/`` and ``runs/`` by default.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    home = default_home() if home is None else Path(home)
    name = argv.pop(0) if argv and argv[0] in COMMANDS else DEFAULT_COMMAND
    parser = _parser(name)
    args = parser.parse_args(argv)   # a bad flag exits 2 with one line (see _Parser.error)
    try:
        return COMMANDS[name].run(args, home)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
    except BrokenPipeError:
        # The reader of the output went away (``| head``): stop quietly, as other tools do,
        # and keep Python's final flush of stdout from failing too.
        _silence_stdout()
        return 1
    except OSError as exc:
        # The file system refused (full disk, permissions, a file where a folder should be).
        # Every path we write is named in exc.filename, which is what the user needs.
        what = f"{exc.filename}: " if exc.filename else ""
        print(f"{PROG}: error: {what}{exc.strerror or exc}; check the path, its permissions "
              "and the free disk space", file=sys.stderr)
    except MemoryError:
        print(f"{PROG}: error: out of memory; use a smaller --arch or --batch-size, or less data",
              file=sys.stderr)
    return 2


def _silence_stdout() -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):   # not a real file (tests capture stdout): nothing to flush
        pass


class _Parser(argparse.ArgumentParser):
    """argparse, except that a mistake prints one line, not the usage block before it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _parser(name: str) -> argparse.ArgumentParser:
    command = COMMANDS[name]
    if name == DEFAULT_COMMAND:
        others = "\n".join(f"  {n:<10} {c.help}" for n, c in COMMANDS.items() if n != name)
        parser = _Parser(
            prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
            description=f"{command.help}\n\nother commands (python {PROG} COMMAND --help):\n{others}")
    else:
        parser = _Parser(prog=f"{PROG} {name}", description=command.help)
    command.add_arguments(parser)
    return parser


# -- train -----------------------------------------------------------------

def _train_arguments(parser: argparse.ArgumentParser, sweep: bool = False) -> None:
    """The training flags; for ``sweep`` (``sweep=True``) those that set a cell's settings, the
    sweep's own flags aside (its --out and --resume, see _sweep_arguments)."""
    from numpy_cnn.nn.optim import DEFAULTS
    from numpy_cnn.train.config import TrainConfig as C

    # Hyper-parameters default to None so a resumed run can tell what was given explicitly.
    add = parser.add_argument
    add("--data", type=nonempty_path, help="dataset folder or FER2013 .csv (default: the generated "
        "synthetic set in data/synthetic_sfew, made on first use)")
    if not sweep:
        add("--test-data", type=nonempty_path, help="a separate test set (folder or .csv), used whole")
    add("--epochs", type=int, help=f"epochs to train to (default {C.epochs})")
    per_optimizer = {key: ", ".join(f"{name} {d[k]}" for name, d in DEFAULTS.items())
                     for k, key in ((1, "lr"), (2, "wd"))}   # DEFAULTS: name -> (class, lr, wd)
    add("--optimizer", choices=tuple(DEFAULTS), help=f"sgd (the paper's), adam or adamw (default {C.optimizer})")
    add("--lr", type=float, help=f"learning rate (default per optimizer: {per_optimizer['lr']})")
    add("--momentum", type=float, help=f"SGD momentum (default {C.momentum}; Adam uses betas 0.9, 0.999)")
    add("--weight-decay", type=float, help="weight decay: L2 in the gradient for sgd and adam, decoupled "
        f"for adamw (default per optimizer: {per_optimizer['wd']})")
    add("--batch-size", type=int, help=f"images per SGD step (default {C.batch_size})")
    add("--seed", type=int, help=f"seed of the split, the weights and the batches (default {C.seed})")
    add("--rotation", type=float, help=f"max random rotation in degrees (default {C.rotation})")
    add("--no-augment", dest="augment", action="store_const", const=False,
        help="no augmentation: no random flips and rotations (nor --shift, --brightness, --contrast)")
    add("--mean", choices=("scalar", "pixel"), help="subtract the training mean as one number "
        f"or per pixel (default {C.mean})")
    add("--arch", help=f"network spec (default {C.arch})")
    if not sweep:
        add("--split-dir", type=nonempty_path, help="folder holding train.txt/test.txt for --reuse-split "
            "(default: the run directory)")
        add("--reuse-split", action="store_const", const=True,
            help="train on the split in train.txt/test.txt instead of a new random one")
        add("--out", type=nonempty_path, help="run directory (default runs/<timestamp>)")
        add("--resume", type=nonempty_path, metavar="DIR", help="continue the run in DIR (same settings; "
            "--epochs may raise the target)")
    add("--cache-dir", type=nonempty_path, help="decoded-image cache (default data/cache)")
    add("--quiet", action="store_true", help="no progress line per epoch")
    add("--threads", type=int, metavar="N", help="threads the kernels run on (default: the CPUs this process may "
        "use, after its affinity mask and any container quota; NUMBA_NUM_THREADS sets the most; with --jobs: "
        "per job, default the CPUs shared out)")
    # Many runs at once (numpy_cnn/train/parallel.py, docs/many-runs.md).
    add("--jobs", type=int, metavar="N", help=f"{'' if sweep else 'with --folds: '}run up to N folds at once, "
        "each in a worker process on its share of the CPUs (default 1); the results are the same")
    add("--scheduler", metavar="ADDRESS", help=f"{'' if sweep else 'with --folds: '}run the folds on the Dask "
        'cluster whose scheduler is at ADDRESS (tcp://host:8786); needs pip install -e ".[cluster]"')
    # Honest evaluation: group-disjoint splits and K-fold cross-validation (numpy_cnn/train/kfold.py).
    add("--group-by", metavar="RULE", help="keep each group on one side of the split: clip, movie (SFEW "
        "<movie>_<clip>_<frame> names), subject (JAFFE, CK+) or a regex with one capture group")
    add("--folds", type=int, metavar="K", help="stratified K-fold cross-validation: fold1/ ... foldK/ "
        "and cv_results.json (group-aware with --group-by)")
    add("--init-from", type=nonempty_path, metavar="RUN", help="fine-tune: start from the weights of this "
        "run (folder or checkpoint.npz); the networks must match")
    add("--freeze", metavar="LAYERS", help="keep these layers fixed, e.g. conv1,conv2 (names as in summary)")
    # The paper's own proposed fix: put the face in the centre (numpy_cnn/data/faces.py, the [faces] extra).
    add("--crop-faces", action="store_const", const=True, help="find the face in every image (OpenCV's "
        "Viola-Jones detector, on the full-resolution frame) and train on a square crop around it; "
        'needs pip install -e ".[faces]"')
    add("--no-face", choices=("keep", "drop"), help="with --crop-faces, a frame without a face is kept "
        "whole or dropped (default keep)")
    _modern_arguments(add, C, sweep)


def _modern_arguments(add: Callable, C, sweep: bool = False) -> None:
    """The modern options (docs/training.md, "Recipes and the modern options"): each off by default."""
    from numpy_cnn.train.config import BALANCE_MODES, KEEP_MODES
    from numpy_cnn.train.schedule import SCHEDULES

    if not sweep:   # a sweep file names its recipes
        add("--recipe", type=nonempty_path, metavar="FILE", help="a recipe .toml (recipes/, or a run's "
            "recipe.toml): its settings, each overridden by a flag typed")
    add("--lr-schedule", choices=SCHEDULES, help=f"the lr per step: constant (the paper's), step, cosine or "
        f"onecycle (default {C.lr_schedule})")
    add("--warmup", type=float, metavar="EPOCHS", help="epochs of linear lr warm-up, per step (default 0)")
    add("--label-smoothing", type=float, metavar="EPS", help="label smoothing of the loss (default 0)")
    add("--shift", type=int, metavar="PX", help="random shift up to PX pixels, beside flip and rotation (default 0)")
    add("--brightness", type=float, metavar="B", help="random brightness factor in [1-B, 1+B] (default 0)")
    add("--contrast", type=float, metavar="C", help="random contrast factor in [1-C, 1+C] (default 0)")
    add("--channels", type=int, metavar="{1,3}", help="input channels: 3 copies the gray image (the "
        f"paper's), 1 gives it once (default {C.channels})")
    add("--fit", choices=("stretch", "crop"), help="a frame to a square: stretch it whole, or crop its "
        f"centred square (default {C.fit})")
    add("--val-frac", type=float, metavar="F", help="carve a validation set of this share from the training "
        "side (stratified; whole groups with --group-by); the test set is then used once, at the end")
    add("--keep", choices=KEEP_MODES, help="with --val-frac: keep the last epoch's weights or those of the "
        f"best validation accuracy (default {C.keep})")
    add("--patience", type=int, metavar="N", help="with --val-frac: stop after N epochs without a better "
        "validation accuracy")
    add("--balance", choices=BALANCE_MODES, help="class imbalance: none, a balanced sampler, or class weights "
        f"in the loss (default {C.balance})")
    add("--tta", choices=("none", "flip"), help="test-time augmentation in the final test pass: flip averages "
        f"each image with its mirror image (default {C.tta})")


def _new_run_dir(home: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out, n = home / RUNS / stamp, 1
    while out.exists():
        n += 1
        out = home / RUNS / f"{stamp}-{n}"
    return out


@register("train", "Train the paper's network (data, split, augmentation, SGD) and print Table 1.",
          _train_arguments)
def run_train(args: argparse.Namespace, home: Path) -> int:
    from numpy_cnn.kernels.threads import use_threads
    from numpy_cnn.train.config import TrainConfig
    from numpy_cnn.train.metrics import format_table1
    from numpy_cnn.train.progress import balanced_line
    from numpy_cnn.train.recipe import read_recipe
    from numpy_cnn.train.run_files import CHECKPOINT
    from numpy_cnn.train.trainer import train

    if args.recipe and args.resume:
        raise UserError("--recipe starts a new run and --resume continues one with its stored settings; "
                        "drop one of them")
    # The settings typed (over a recipe's), checked against each other; each value is checked as the config is built.
    given = TrainConfig.given_settings(vars(args), read_recipe(args.recipe) if args.recipe else None)
    if args.resume:
        # evaluate and predict take a run directory or its checkpoint.npz; so does --resume.
        out = args.resume.parent if args.resume.name == CHECKPOINT and args.resume.is_file() else args.resume
        if args.out and args.out.resolve() != out.resolve():
            raise UserError("give either --out (a new run) or --resume DIR (continue one), not both")
        from numpy_cnn.train.kfold import resume_config   # a single run's checkpoint or a K-fold run's cv.json

        config = resume_config(out, given)
    else:
        out = args.out or _new_run_dir(home)
        config = TrainConfig(**given)
    cache_dir = args.cache_dir or home / CACHE
    log = None if args.quiet else _say
    workers = _workers(args)
    if not config.folds and not workers.in_process:
        raise UserError(f"{'--scheduler' if args.scheduler else '--jobs'} runs the folds of a K-fold run at once; "
                        "add --folds K (a single run uses its threads: --threads N)")
    use_threads(args.threads)
    if config.folds:
        return _cross_validate(config, out, home, cache_dir, bool(args.resume), log, workers)
    # --threads N: exactly N; else the governor runs the steps on fewer while the machine is busy
    results = train(config, out, home=home, cache_dir=cache_dir, resume=bool(args.resume), log=log,
                    adapt_threads=args.threads is None)
    data = results["data"]
    selection = results.get("selection") or {}
    best = selection.get("kept_epoch") if selection.get("keep") == "best" else None
    print(f"\nTable 1: test set {table1_when(results['epochs'], config.tta, best)} "
          f"({data['source']}, {data['n_test']} images)\n")
    print(format_table1(results["table1"]))
    print(balanced_line(results["balanced_test_accuracy"]))
    note = near_chance_note(results["final_train_accuracy"], results["overall_test_accuracy"],
                            len(results["per_class_test_accuracy"]), results["epochs"], config.optimizer, config.lr)
    if note:
        print(note)
    print(f"run directory: {out}")
    return 0


def _say(line: str) -> None:
    """A progress line, written whole and at once: lines of folds running at once never interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _workers(args: argparse.Namespace):
    """Where the folds run (``--jobs``, ``--threads``, ``--scheduler``), checked before anything is written."""
    from numpy_cnn.train.parallel import Workers

    return Workers(jobs=1 if args.jobs is None else args.jobs, threads=args.threads, scheduler=args.scheduler)


def _cross_validate(config, out: Path, home: Path, cache_dir: Path, resume: bool, log, workers) -> int:
    """``--folds K``: the K runs, then the pooled Table 1 and ``mean ± SD (95% CI lo–hi)``."""
    from numpy_cnn.train.metrics import format_table1
    from numpy_cnn.train.kfold import cross_validate
    from numpy_cnn.train.progress import balanced_line

    cv = cross_validate(config, out, home=home, cache_dir=cache_dir, resume=resume, log=log, workers=workers)
    print(f"\nTable 1: {config.folds} test folds pooled after {epochs(config.epochs)} "
          f"({cv['table1'][-1]['total']} images, each tested once)\n")
    print(format_table1(cv["table1"]))
    print(balanced_line(cv["balanced_test_accuracy"]))
    print(cv["leakage"]["line"].replace("leakage:", f"leakage over the {config.folds} test folds:", 1))
    print(cv["summary"])
    print(f"run directory: {out}")
    return 0


# -- sweep -----------------------------------------------------------------

def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=nonempty_path, nargs="?", metavar="FILE.toml",
                        help="the sweep: a [base] table and [[recipe]] tables (docs/many-runs.md; sweeps/)")
    parser.add_argument("--out", type=nonempty_path, help="the sweep's folder (default runs/<FILE's name>); "
                        "the same command again continues it")
    parser.add_argument("--resume", type=nonempty_path, metavar="DIR", help="continue the sweep in DIR with "
                        "its stored settings (--epochs may raise the target)")
    _train_arguments(parser, sweep=True)


@register("sweep", "Run several recipes (and seeds) as K-fold runs, in parallel, and compare them fold by fold.",
          _sweep_arguments)
def run_sweep(args: argparse.Namespace, home: Path) -> int:
    from numpy_cnn.train.config import TrainConfig
    from numpy_cnn.train.sweep import SWEEP_MD, read_sweep, resume_sweep, run_sweep as sweep_runs

    if (args.file is None) == (args.resume is None):
        raise UserError("give a sweep file (sweep FILE.toml) or --resume DIR, one of the two")
    workers = _workers(args)   # a thread budget that does not fit is refused before anything is read
    if args.resume:
        if args.out and args.out.resolve() != args.resume.resolve():
            raise UserError("give either --out (a new sweep) or --resume DIR (continue one), not both")
        given = TrainConfig.given_settings(vars(args))
        out, sweep = args.resume, resume_sweep(args.resume)
    else:
        given = None
        sweep = read_sweep(args.file, vars(args))
        out = args.out or home / RUNS / args.file.stem
    from numpy_cnn.kernels.threads import use_threads

    use_threads(args.threads)
    sweep_runs(sweep, out, home=home, cache_dir=args.cache_dir or home / CACHE, workers=workers,
               log=None if args.quiet else _say, given=given)
    print()
    print((out / SWEEP_MD).read_text().split("\n", 2)[2], end="")   # the table, under its title
    print(f"sweep directory: {out}")
    return 0


# -- evaluate --------------------------------------------------------------

def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=nonempty_path, nargs="+", metavar="RUN",
                        help="a run directory or its checkpoint.npz; several runs, or a K-fold run's "
                             "directory, are an ensemble (their mean softmax)")
    parser.add_argument("--data", type=nonempty_path, help="evaluate on this dataset's test part "
                        "(default: the run's own test split)")
    parser.add_argument("--whole", action="store_true", help="with --data: test on every image of it "
                        "(a set the model never trained on)")
    parser.add_argument("--tta", choices=("none", "flip"), default="none",
                        help="test-time augmentation: flip averages each image with its mirror image (default none)")
    parser.add_argument("--cache-dir", type=nonempty_path, help="decoded-image cache (default data/cache)")


@register("evaluate", "Run a checkpoint, or an ensemble of them, on a test set and print Table 1.",
          _evaluate_arguments)
def run_evaluate(args: argparse.Namespace, home: Path) -> int:
    from numpy_cnn.train.inference import evaluate_runs
    from numpy_cnn.train.metrics import format_table1
    from numpy_cnn.train.progress import balanced_line

    result = evaluate_runs(args.checkpoint, data=args.data, whole=args.whole, tta=args.tta, home=home,
                           cache_dir=args.cache_dir or home / CACHE)
    print(f"Table 1: {' '.join(map(str, args.checkpoint))} on {result.what}\n")
    print(format_table1(result.rows))
    print(balanced_line(result.balanced_accuracy))
    for path, accuracy in result.members:
        print(f"  member {path}: {100 * accuracy:.2f}% alone")
    return 0


# -- predict ---------------------------------------------------------------

def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=nonempty_path, metavar="RUN",
                        help="a run directory or its checkpoint.npz; a K-fold run's directory is an ensemble "
                             "of its fold models (their mean softmax)")
    parser.add_argument("images", type=nonempty_path, nargs="+", metavar="IMAGE")
    # A flag, not more positionals: RUN IMAGE... stays unambiguous (a run and an image are both paths).
    parser.add_argument("--run", type=nonempty_path, action="append", default=[], metavar="RUN",
                        help="another member of the ensemble (repeatable); members must agree on classes, "
                             "image size, channels, mean, fit and face crops")


@register("predict", "Print the most likely expression and all class probabilities per image (one run, or "
          "an ensemble's mean softmax).", _predict_arguments)
def run_predict(args: argparse.Namespace, home: Path) -> int:
    from numpy_cnn.train.inference import predict_runs

    result = predict_runs([args.checkpoint, *args.run], args.images)
    classes = result.classes
    ensemble = f"   (ensemble of {len(result.members)})" if len(result.members) > 1 else ""
    for image, p, face in zip(args.images, result.probabilities, result.found):
        top = int(p.argmax())
        spread = "  ".join(f"{c} {100 * q:.1f}%" for c, q in zip(classes, p))
        note = "   (no face found: the whole image was used)" if face is False else ""
        print(f"{image}: {classes[top]} ({100 * p[top]:.1f}%)   {spread}{ensemble}{note}")
    return 0


# -- study tools (numpy_cnn/cli/study.py) ----------------------------------

register("summary", study_cli.SUMMARY_HELP, study_cli.add_summary_arguments)(study_cli.run_summary)
register("trace", study_cli.TRACE_HELP, study_cli.add_trace_arguments)(study_cli.run_trace)
register("visualize", study_cli.VISUALIZE_HELP, study_cli.add_visualize_arguments)(study_cli.run_visualize)
register("gradcheck", study_cli.GRADCHECK_HELP, study_cli.add_gradcheck_arguments)(study_cli.run_gradcheck)
register("make-data", data_cli.MAKE_DATA_HELP, data_cli.add_make_data_arguments)(data_cli.run_make_data)
