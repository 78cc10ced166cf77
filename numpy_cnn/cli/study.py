"""The study commands: ``summary``, ``trace``, ``visualize`` and ``gradcheck``.

Each command is two halves that :mod:`numpy_cnn.cli.main` registers in its
command table: ``add_summary_arguments(parser)`` declares the flags and
``run_summary(args, home)`` does the work (the same for trace and
visualize). A :class:`UserError` propagates to ``cli.main``, which prints it
as one line. ``home`` is the folder holding ``train_numpy.py``; defaults
live under it.

The model is either fresh (``--arch SPEC``, default: the paper's network,
seeded by ``--seed``) or a trained one (``--checkpoint RUN_DIR`` or its
``checkpoint.npz``, rebuilt from the stored spec, with the stored training
mean). ``trace`` and ``visualize`` look at one image: ``--image PATH``; else
a run's first test image (first line of its ``test.txt``: a file, or a row
of the run's FER2013 CSV); else the first test image of ``--data``
(default: the generated ``data/synthetic_sfew``, made on first use), split
as the trainer splits it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.data import DetectorSettings
from numpy_cnn.nn.module import Sequential
from numpy_cnn.cli.paths import CACHE, RUNS, SYNTHETIC_DATA, nonempty_path

# Documented defaults, relative to ``home`` (the folder holding train_numpy.py), as the trainer's.
DEFAULT_VISUALIZE_DIR = RUNS / "visualize"


@dataclass
class Loaded:
    """A model ready to look at: the network, its input layout and its preprocessing."""

    model: Sequential
    arch: str
    in_channels: int
    image_size: int
    classes: tuple[str, ...]
    mean: np.ndarray | None          # training mean, None if not known yet
    run_dir: Path | None
    test_source: Path | None         # what the run's test.txt names entries of: a folder or a FER2013 CSV
    crop_faces: DetectorSettings | None = None   # the run's face detector, None: whole frames
    fit: str = "stretch"                         # how the run made a frame square (--fit)


@dataclass
class StudyImage:
    """One preprocessed image: ``x`` (1, C, S, S) float32, the gray pixels (S, S) in [0, 1], its label."""

    x: np.ndarray
    gray: np.ndarray
    label: int | None
    source: str
    mean_note: str


# -- shared options ------------------------------------------------------------

def _model_options(parser: argparse.ArgumentParser) -> None:
    from numpy_cnn.nn.arch import DEFAULT_ARCH
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--arch", default=None, metavar="SPEC",
                       help=f"architecture of a fresh model (default {DEFAULT_ARCH})")
    group.add_argument("--checkpoint", type=nonempty_path, default=None, metavar="PATH",
                       help="a run directory or its checkpoint.npz: the trained model")
    parser.add_argument("--image-size", type=int, default=48, help="side of a fresh model's input (default 48)")
    parser.add_argument("--in-channels", type=int, default=3, help="channels of a fresh model's input (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of a fresh model's weights and of the split")


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", type=nonempty_path, default=None, metavar="PATH",
                        help="an image file (default: the first test image of the run, or of --data)")
    parser.add_argument("--data", type=nonempty_path, default=None, metavar="DIR",
                        help=f"dataset folder for the default image of a fresh model (default {SYNTHETIC_DATA})")
    parser.add_argument("--label", default=None,
                        help="class of --image, as index or name (default: the predicted class)")


def load_study_model(args: argparse.Namespace) -> Loaded:
    """The model the options ask for: from ``--checkpoint``, or fresh from ``--arch``."""
    from numpy_cnn.data import CLASSES
    if args.seed < 0:   # numpy's SeedSequence takes only non-negative integers
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.checkpoint is not None:
        from numpy_cnn.train.checkpoint import load_model
        model, ckpt = load_model(args.checkpoint)
        model.eval()
        meta = ckpt.meta
        run_dir = args.checkpoint if args.checkpoint.is_dir() else args.checkpoint.parent
        from numpy_cnn.train.config import detector_settings_of, fit_of
        return Loaded(model, meta["arch"], int(meta["in_channels"]), int(meta["image_size"]),
                      tuple(meta["classes"]), np.asarray(ckpt.mean, np.float32), run_dir,
                      _test_source(meta), detector_settings_of(meta), fit_of(meta))
    from numpy_cnn.nn.arch import DEFAULT_ARCH, build_model
    arch = args.arch or DEFAULT_ARCH
    if args.image_size < 1 or args.in_channels < 1:
        raise UserError(f"--image-size and --in-channels must be >= 1, got {args.image_size} and {args.in_channels}")
    model = build_model(arch, args.in_channels, args.image_size, len(CLASSES), rng=np.random.default_rng(args.seed))
    model.eval()   # as in evaluation: running statistics, no dropout (trace --mode train overrides)
    return Loaded(model, arch, args.in_channels, args.image_size, CLASSES, None, None, None)


def _test_source(meta: dict) -> Path | None:
    """What a run's test.txt is relative to (see :mod:`numpy_cnn.train.run_split`).

    ``--test-data`` if the run had one, else its data; a FER2013 CSV is
    returned as the file (its entries are ``<name>.csv:<line>``), a folder as
    itself. ``None`` for a checkpoint that does not say.
    """
    data = meta.get("data", {})
    given = data.get("test_data") or meta.get("config", {}).get("data")
    if given is not None and (Path(given).is_file() or data.get("test_data")):
        return Path(given)
    return None if data.get("root") is None else Path(data["root"])


def _first_run_test_image(run_test: Path, source: Path, size: int, home: Path,
                          crop_faces: DetectorSettings | None = None, fit: str = "stretch"
                          ) -> tuple[np.ndarray, int, str]:
    """The first image a run's ``test.txt`` lists, as (S, S) uint8 (cropped to its face, or made
    square, as the run did), its label, and where it came from."""
    from numpy_cnn.data import load_image, read_split_file
    if source.is_file():   # a FER2013 CSV: the entries name its rows
        from numpy_cnn.data.fer2013 import read_fer2013_csv, row_names
        rows = read_fer2013_csv(source, size, home / CACHE)
        row_of = {name: i for i, name in enumerate(row_names(source, rows))}
        listing = read_split_file(run_test, source.parent, known=row_of.keys())
        first = listing.files[0]
        return rows.x[row_of[first]], int(listing.labels[0]), f"{source.parent / first} (the run's first test image)"
    listing = read_split_file(run_test, source)
    path = source / listing.files[0]
    return load_image(path, size, crop_faces, fit)[0], int(listing.labels[0]), f"{path} (the run's first test image)"


def load_study_image(args: argparse.Namespace, loaded: Loaded, home: Path) -> StudyImage:
    """``--image``; else the run's first test image; else the first test image of ``--data``.

    Preprocessed as the trainer does (the run's face crops or ``--fit``): gray in [0, 1],
    given to the model's channels (1, or copied to 3), minus the training mean (the checkpoint's, else that of the
    dataset's training split, else none for a fresh model on its own image).
    """
    from numpy_cnn.data import TEST_SPLIT_FILE, MeanSubtraction, load_dataset, load_image, to_float
    from numpy_cnn.data.classes import parse_label
    from numpy_cnn.train.loop import network_input

    mean, mean_note = loaded.mean, "training mean from the checkpoint"
    run_test = None if loaded.run_dir is None else loaded.run_dir / TEST_SPLIT_FILE
    if args.image is not None:
        pixels, found = load_image(args.image, loaded.image_size, loaded.crop_faces, loaded.fit)
        gray = to_float(pixels)
        label = None if args.label is None else parse_label(args.label, "--label")
        source = str(args.image) + (" (no face found: the whole image)" if found is False else "")
    elif run_test is not None and run_test.is_file() and loaded.test_source is not None:
        pixels, label, source = _first_run_test_image(run_test, loaded.test_source, loaded.image_size, home,
                                                      loaded.crop_faces, loaded.fit)
        gray = to_float(pixels)
    else:
        data = args.data
        if data is None:
            from numpy_cnn.data.synthetic import ensure_synthetic_dataset
            data = ensure_synthetic_dataset(home / SYNTHETIC_DATA)
        ds = load_dataset(data, seed=args.seed, image_size=loaded.image_size, cache_dir=home / CACHE,
                          crop_faces=loaded.crop_faces, fit=loaded.fit)
        gray, label = to_float(ds.x_test[0]), int(ds.y_test[0])
        source = f"{ds.root / ds.test_files[0]} (first test image, split seed {args.seed})"
        if mean is None:
            mean, mean_note = MeanSubtraction.fit(ds.x_train).mean, "training mean of this dataset's split"
    if mean is None:
        mean, mean_note = np.zeros((), np.float32), "no mean subtracted (fresh model, own image)"
    x = network_input(gray[None], MeanSubtraction(mean), loaded.in_channels)   # as training sees it
    return StudyImage(x.astype(loaded.model.dtype), gray, label, source, mean_note)


def _check_out_file(out: Path | None) -> None:
    """Refuse an ``--out FILE`` that cannot be written, before any work is done."""
    from numpy_cnn.train.run_files import check_output_folder
    if out is None:
        return
    if out.is_dir():
        raise UserError(f"{out}: is a folder; give --out a file name, e.g. {out / 'out.txt'}")
    check_output_folder(out.parent, "--out")


def _write_or_print(text: str, out: Path | None) -> None:
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        print(f"saved {out}", file=sys.stderr)


# -- summary -------------------------------------------------------------------

SUMMARY_HELP = "Layer table: output shapes, parameters, FLOPs and im2col sizes."


def add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    _model_options(parser)
    parser.add_argument("--batch", type=int, default=1, help="batch size the FLOPs are counted for (default 1)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="also save the table here")


def run_summary(args: argparse.Namespace, home: Path) -> int:
    from numpy_cnn.study.summary import summarize
    if args.batch < 1:
        raise UserError(f"--batch must be >= 1, got {args.batch}")
    _check_out_file(args.out)
    m = load_study_model(args)
    table = summarize(m.model, (args.batch, m.in_channels, m.image_size, m.image_size))
    _write_or_print(f"architecture {m.arch}\n{table}", args.out)
    return 0


# -- trace ---------------------------------------------------------------------

TRACE_HELP = "One forward and backward pass on one image: shapes and gradient norms per layer."


def add_trace_arguments(parser: argparse.ArgumentParser) -> None:
    _model_options(parser)
    _image_options(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="also save the trace here")
    parser.add_argument("--mode", choices=("eval", "train"), default="eval",
                        help="eval (default: BatchNorm's running statistics, no dropout) or train "
                             "(this image's statistics, a dropout mask), as a training step sees it")


def run_trace(args: argparse.Namespace, home: Path) -> int:
    from numpy_cnn.study import trace
    _check_out_file(args.out)
    m = load_study_model(args)
    img = load_study_image(args, m, home)
    m.model.train(args.mode == "train")
    result = trace.run_trace(m.model, img.x, img.label, m.classes)
    target = "the image's label" if img.label is not None else "the predicted class (no label given)"
    header = f"architecture {m.arch}\nimage {img.source}; {img.mean_note}\ntarget: {target}\nmode: {args.mode}\n"
    _write_or_print(header + "\n" + str(result), args.out)
    return 0


# -- visualize -----------------------------------------------------------------

VISUALIZE_HELP = "Save pictures: conv filters, feature maps, gradient flow and a saliency map."


def add_visualize_arguments(parser: argparse.ArgumentParser) -> None:
    _model_options(parser)
    _image_options(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help=f"folder for the PNGs (default RUN_DIR/visualize, or {DEFAULT_VISUALIZE_DIR})")


def run_visualize(args: argparse.Namespace, home: Path) -> int:
    """Writes ``filters_<conv>.png`` per conv layer, ``features_<layer>.png`` per conv and
    pool layer, ``saliency.png`` and, for a run directory, ``gradient_flow.png``."""
    from numpy_cnn.train.run_files import check_output_folder
    m = load_study_model(args)
    out = args.out or (m.run_dir / "visualize" if m.run_dir else home / DEFAULT_VISUALIZE_DIR)
    check_output_folder(out, "--out")
    for path in save_pictures(m, load_study_image(args, m, home), out):
        print(path)
    return 0


def save_pictures(m: Loaded, img: StudyImage, out: Path) -> list[Path]:
    """Every picture for one model and image into ``out``; returns the files written."""
    from numpy_cnn.study import viz
    from numpy_cnn.nn.layers import Conv2d
    from numpy_cnn.study.summary import leaf_layers

    paths = [viz.plot_filters(layer.weight.data, out / f"filters_{name}.png", f"{name} filters")
             for name, layer in leaf_layers(m.model) if isinstance(layer, Conv2d)]
    for name, maps in viz.feature_maps(m.model, img.x):
        paths.append(viz.plot_feature_maps(maps, out / f"features_{name}.png", f"after {name}"))
    sal, c = viz.saliency(m.model, img.x)
    truth = "" if img.label is None else f", true {m.classes[img.label]}"
    paths.append(viz.plot_saliency(img.gray, sal, out / "saliency.png",
                                   f"saliency of predicted class {m.classes[c]}{truth}"))
    if m.run_dir is not None:
        try:
            norms = viz.load_gradient_norms(m.run_dir)
        except UserError as exc:
            print(f"note: no gradient-flow picture: {exc}", file=sys.stderr)
        else:
            paths.append(viz.plot_gradient_flow(norms, out / "gradient_flow.png"))
    return paths


# -- gradcheck -----------------------------------------------------------------

GRADCHECK_HELP = ("Prove the network's gradients: float64 central differences on every layer and parameter, "
                  "PASS/FAIL per row; exit status 1 on a failure.")


def add_gradcheck_arguments(parser: argparse.ArgumentParser) -> None:
    from numpy_cnn.nn.gradcheck import BATCH, SAMPLES
    _model_options(parser)
    parser.add_argument("--layer", default=None, metavar="NAME", help="check this layer only (names as summary prints)")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"random images in the batch (default {BATCH})")
    parser.add_argument("--samples", type=int, default=SAMPLES,
                        help=f"entries compared per tensor, drawn at random (default {SAMPLES})")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="also save the table here")


def run_gradcheck(args: argparse.Namespace, home: Path) -> int:
    """Check ``--arch`` (fresh weights from ``--seed``) or ``--checkpoint``'s trained weights; 1 if any row fails.

    The batch, the upstream gradients and the sampled entries come from a Generator seeded
    with ``--seed``, so a failure repeats exactly.
    """
    from numpy_cnn.nn.gradcheck import check_network, format_report
    for name in ("batch", "samples"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be >= 1, got {getattr(args, name)}")
    _check_out_file(args.out)
    m = load_study_model(args)
    rows = check_network(m.model, (m.in_channels, m.image_size, m.image_size), np.random.default_rng(args.seed),
                         args.layer, batch=args.batch, samples=args.samples)
    source = f"checkpoint {args.checkpoint}" if args.checkpoint is not None else f"fresh weights, seed {args.seed}"
    _write_or_print(f"architecture {m.arch} ({source}), input ({args.batch}, {m.in_channels}, {m.image_size}, "
                    f"{m.image_size}), float64\n{format_report(rows)}", args.out)
    return 0 if all(r.passed for r in rows) else 1

