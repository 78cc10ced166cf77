"""Use trained checkpoints: Table 1 on a test set (one model, or an ensemble), or class probabilities for images.

Inputs are prepared exactly as in training (:func:`.loop.network_input`):
grayscale, cropped to the face when the run used ``--crop-faces`` (with the
detector settings stored in the checkpoint; ``--no-face drop`` drops the
same test frames), or made square as its ``--fit`` said, resized to the
checkpoint's image size, scaled to [0, 1], minus the *training* mean stored
in the checkpoint, gray given to the network's input channels (1, or copied to 3).

``evaluate`` and ``predict`` take one run, several (``evaluate RUN RUN ...``,
``predict RUN --run RUN ... IMAGE ...``), or a K-fold run's directory (its fold
models). Several models are an ensemble, loaded one at a time
(:func:`_members`): each computes class probabilities with its own
preprocessing (its training mean and channels; in ``evaluate`` also its fit
and face crops), optionally averaged with its mirror image's (``--tta flip``),
and the ensemble predicts the argmax of their mean. ``predict`` prepares each
image once for all members, so they must agree on how (see :func:`predict_runs`).
``evaluate``'s test set is:

* the run's own test split (``test.txt``): every model of an ensemble must
  have the same one (the same data, split and seed);
* ``--data DIR``: that dataset's test part (its test folder or CSV rows, or
  a stratified split with the first model's seed);
* ``--data DIR --whole``: every image of DIR, for a set the models never
  trained on (cross-dataset testing). A K-fold run's models trained on every
  image of their data, so they are tested this way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numpy_cnn.data import TEST_SPLIT_FILE, DataSpec, MeanSubtraction, load_image, load_pool, load_spec
from numpy_cnn.errors import UserError
from numpy_cnn.nn.module import Sequential
from numpy_cnn.train.checkpoint import Checkpoint, load_model, require_training_meta
from numpy_cnn.train.config import TrainConfig, detector_settings_of, fit_of
from numpy_cnn.train.loop import TTA, lazy_network_input, predict_proba
from numpy_cnn.train.metrics import balanced_accuracy, confusion_matrix, per_class_table
from numpy_cnn.train.run_files import CHECKPOINT
from numpy_cnn.train.run_split import apply_no_face, load_run_data


@dataclass
class TestImages:
    """One model's view of a test set: (N, S, S) uint8 images, (N,) labels, their names, and what they are."""

    x: np.ndarray
    y: np.ndarray
    files: list[str]
    root: Path
    what: str


@dataclass
class Evaluation:
    """What ``evaluate`` prints: Table 1 rows, the confusion matrix, the balanced accuracy, what was
    tested, and for an ensemble each member's own accuracy (``[(path, accuracy), ...]``)."""

    rows: list[dict]
    confusion: np.ndarray
    balanced_accuracy: float
    what: str
    members: list[tuple[Path, float]]


@dataclass
class Prediction:
    """What ``predict`` prints: (len(images), K) float64 class probabilities (the members' mean
    softmax), the class names, per image whether a face was found (None: the run used whole
    frames), and the members in order (run folders or checkpoint files, a K-fold run's as its folds)."""

    probabilities: np.ndarray
    classes: list[str]
    found: list[bool | None]
    members: list[Path]


def evaluate_checkpoint(path: Path, *, data: Path | None, home: Path, cache_dir: Path | None,
                        tta: str = "none", whole: bool = False) -> tuple[list[dict], np.ndarray, str]:
    """Run one checkpoint (or a K-fold run's fold models) on a test set; return (Table 1 rows,
    confusion matrix, what was tested). See :func:`evaluate_runs`."""
    result = evaluate_runs([path], data=data, home=home, cache_dir=cache_dir, tta=tta, whole=whole)
    return result.rows, result.confusion, result.what


def evaluate_runs(paths: Sequence[Path], *, data: Path | None, home: Path, cache_dir: Path | None,
                  tta: str = "none", whole: bool = False) -> Evaluation:
    """Run checkpoints, alone or as an ensemble (mean softmax), on one test set.

    Args:
        paths: run directories or checkpoint files; a K-fold run's directory stands for its folds.
        data: another dataset to test on (None: the runs' own test split).
        whole: test on every image of ``data`` (its training part too).
        tta: ``"flip"`` averages each image's probabilities with its mirror image's.

    Raises:
        UserError: one line: models of other classes, test sets that differ, ``--whole``
            without ``--data``, a K-fold run without ``--data``.
    """
    if tta not in TTA:
        raise UserError(f"--tta must be one of {', '.join(TTA)}, got {tta!r}")
    if whole and data is None:
        raise UserError("--whole needs --data DATASET (a run's own data was trained on); drop --whole "
                        "to test on the run's own test split")
    if data is None:
        _refuse_cv_run_without_data(paths)
    files = _model_files(paths)
    probabilities, members, reference, first = None, [], None, None
    for path, model, ckpt in _members(files, _classes_of, "an ensemble averages the probabilities of the same "
                                                          "classes"):
        if first is None:
            first = ckpt
        images = _test_images(path, ckpt, data, whole, home, cache_dir, split_from=_config(first))
        if reference is None:
            reference = images
        elif images.files != reference.files or not np.array_equal(images.y, reference.y):
            raise UserError(f"{path}: its test images differ from {files[0]}'s ({images.what}); pass --data "
                            "DATASET (with --whole for all of it) to test every model on the same images")
        p = _probabilities(model, ckpt, images.x, tta)
        members.append((path, float((p.argmax(axis=1) == images.y).mean())))
        probabilities = p if probabilities is None else probabilities + p
    classes = first.meta["classes"]
    confusion = confusion_matrix(reference.y, probabilities.argmax(axis=1), len(classes))
    what = reference.what
    if len(files) > 1:
        what = f"{what}, an ensemble of {len(files)} models (their mean softmax)"
    if tta != "none":
        what = f"{what}, {tta} TTA"
    return Evaluation(per_class_table(confusion, classes), confusion, balanced_accuracy(confusion), what,
                      members if len(files) > 1 else [])


def _refuse_cv_run_without_data(paths: Sequence[Path]) -> None:
    """``evaluate`` of a K-fold run needs ``--data``: its fold models trained on every image of their data."""
    from numpy_cnn.train.kfold import CV_RESULTS, is_cv_run

    for path in paths:
        if path.is_dir() and is_cv_run(path):
            raise UserError(f"{path}: a cross-validation run holds one model per fold; pass --data DATASET "
                            f"--whole to test their ensemble on a set none of them trained on, or evaluate "
                            f"one fold ({path / 'fold1'}); the pooled results are in {path / CV_RESULTS}")


def _model_files(paths: Sequence[Path]) -> list[Path]:
    """The checkpoints ``paths`` name, in order: a K-fold run's directory stands for its trained folds'."""
    from numpy_cnn.train.kfold import is_cv_run

    files = []
    for path in paths:
        if path.is_dir() and is_cv_run(path):
            folds = sorted((p for p in path.glob("fold*") if p.name[4:].isdigit()), key=lambda p: int(p.name[4:]))
            trained = [fold for fold in folds if (fold / CHECKPOINT).is_file()]
            if not trained:
                raise UserError(f"{path}: no fold has a checkpoint yet; finish the run with --resume {path}")
            files += trained
        else:
            files.append(path)
    return files


def _members(files: Sequence[Path], agree: Callable[[Checkpoint], dict[str, str]], why: str
             ) -> Iterator[tuple[Path, Sequential, Checkpoint]]:
    """An ensemble's models, ``(path, model, checkpoint)``, loaded one at a time in the order of ``files``.

    ``agree(ckpt)`` names what every member must share with the first (``{"classes": "Angry,
    ..."}``); the first member that differs stops it with one line naming both checkpoints, the
    first setting that differs and ``why`` it matters. Lazily: a member is loaded only when the
    one before it is done with, so K fold models never sit in memory at once.
    """
    first: tuple[Path, dict[str, str]] | None = None
    for path in files:
        model, ckpt = load_model(path)
        mine = agree(ckpt)
        if first is None:
            first = (path, mine)
        for key, value in mine.items():
            if value != first[1][key]:
                raise UserError(f"{path}: {key} {value}, but {first[1][key]} in {first[0]}; {why}")
        yield path, model, ckpt


def _classes_of(ckpt: Checkpoint) -> dict[str, str]:
    """What ``evaluate``'s members must share: the classes (each prepares its own test images)."""
    return {"classes": ",".join(ckpt.meta["classes"])}


def _config(ckpt: Checkpoint) -> TrainConfig:
    """A checkpoint's settings; a model-only checkpoint is taken as a default run's."""
    return TrainConfig.from_json(ckpt.meta["config"]) if "config" in ckpt.meta else TrainConfig()


def _test_images(path: Path, ckpt: Checkpoint, data: Path | None, whole: bool, home: Path,
                 cache_dir: Path | None, split_from: TrainConfig) -> TestImages:
    """The test set as this model sees it (its image size, face crops or fit): the run's own test
    split, ``data``'s test part (split with ``split_from``'s seed: the ensemble's first model's),
    or all of ``data``."""
    config = _config(ckpt)
    run_dir = path if path.is_dir() else path.parent
    if data is None:
        require_training_meta(ckpt, path, "name the run's test split; pass --data DATASET to "
                                          "evaluate on a dataset's test part")
        if config.test_data is None and not (run_dir / TEST_SPLIT_FILE).is_file():   # else: that folder, whole
            raise UserError(f"{run_dir}: no {TEST_SPLIT_FILE} beside the checkpoint, so the run's "
                            "test split is unknown; pass --data DATASET to evaluate on its test part")
        ds = apply_no_face(config, load_run_data(config, run_dir, home, cache_dir, test_only=True))
        return TestImages(ds.x_test, ds.y_test, ds.test_files, ds.root,
                          f"the run's test split ({len(ds.y_test)} images of {ds.root})")
    crop_faces = None if Path(data).is_file() else config.detector_settings()   # a CSV's rows are face crops
    if whole:
        source, pool = load_pool(data, ckpt.meta["image_size"], cache_dir, crop_faces, config.fit)
        keep = np.ones(len(pool.y), bool) if pool.faces is None or config.no_face == "keep" else pool.faces > 0
        files = [f for f, k in zip(pool.files, keep) if k]
        return TestImages(pool.x[keep], pool.y[keep], files, pool.root,
                          f"every image of {data} ({source}, {len(files)} images)")
    spec = DataSpec(data, seed=split_from.seed, test_fraction=split_from.test_fraction,
                    image_size=ckpt.meta["image_size"], cache_dir=cache_dir, test_only=True, crop_faces=crop_faces,
                    fit=config.fit)
    ds = apply_no_face(config, load_spec(spec))
    return TestImages(ds.x_test, ds.y_test, ds.test_files, ds.root,
                      f"the test set of {data} ({ds.source}, {len(ds.y_test)} images)")


def _probabilities(model: Sequential, ckpt: Checkpoint, x: np.ndarray, tta: str) -> np.ndarray:
    """(N, S, S) uint8 test images -> (N, K) float64 probabilities of the checkpoint's model."""
    mean = MeanSubtraction(ckpt.mean)
    # A block at a time: FER2013's test set is 198 MB as (N, 3, 48, 48) float32.
    inputs = lazy_network_input(x, mean, ckpt.meta["in_channels"])
    return predict_proba(model, inputs, tta, mean)


# Why predict's members must agree: each image is prepared once for all of them (size, fit, face
# crops), and a mix of inputs (channels, mean) is most likely another recipe's run typed by
# mistake. (evaluate prepares its test set per member and takes such a mix.)
_PREDICT_ALIKE = ("predict averages models that see the same input (the folds of a K-fold run, runs of one "
                  "recipe); predict with each run on its own")


def predict_runs(paths: Sequence[Path], images: Sequence[Path]) -> Prediction:
    """Class probabilities for image files from one run, or the mean softmax of an ensemble.

    Args:
        paths: run directories or checkpoint files; a K-fold run's directory stands for its
            folds' checkpoints (a model per fold, each trained on a different part of the data).
        images: image files, each prepared as the runs prepared theirs (:func:`load_image`):
            grayscale, their face crop or fit, their image size; a frame without a face is
            predicted whole, as ``--no-face keep`` trained.

    Returns:
        :class:`Prediction`: (len(images), K) float64 probabilities, for one model exactly its
        softmax (as ``evaluate`` computes it).

    Raises:
        UserError: one line: a folder among the images, an unreadable image or checkpoint, or
            members that differ in classes, image size, channels, mean, fit or face crops
            (naming the two checkpoints and the setting).
    """
    for image in images:   # checked before the model loads: a typo should fail fast
        if image.is_dir():
            raise UserError(f"{image}: is a folder; pass image files (e.g. {image}/*.png)")
    files = _model_files(paths)
    total, classes, found, x = None, [], [], None
    for path, model, ckpt in _members(files, _input_of, _PREDICT_ALIKE):
        if x is None:   # the members agree on the preparation: each image is read (and its face found) once
            size, crop_faces, fit = ckpt.meta["image_size"], detector_settings_of(ckpt.meta), fit_of(ckpt.meta)
            gray, found = zip(*(load_image(image, size, crop_faces, fit) for image in images))
            x, classes = np.stack(gray), list(ckpt.meta["classes"])
        p = _probabilities(model, ckpt, x, "none")
        total = p if total is None else total + p
    return Prediction(total / len(files), classes, list(found), files)


def _input_of(ckpt: Checkpoint) -> dict[str, str]:
    """What ``predict``'s members must share: the classes and everything that makes an image an input."""
    meta = ckpt.meta
    faces = detector_settings_of(meta)
    return {"classes": ",".join(meta["classes"]),
            "image size": f"{meta['image_size']}x{meta['image_size']}",
            "input channels": str(meta["in_channels"]),
            "mean": "per pixel" if np.ndim(ckpt.mean) == 2 else "scalar",
            "fit": fit_of(meta),
            "face crops": f"on ({faces.key()})" if faces is not None else "off"}


def predict_images(path: Path, images: Sequence[Path]) -> tuple[np.ndarray, list[str], list[bool | None]]:
    """One run's :func:`predict_runs` as a tuple: probabilities (len(images), K), the class names, and
    per image whether a face was found (None when the run used whole frames)."""
    result = predict_runs([path], images)
    return result.probabilities, result.classes, result.found
