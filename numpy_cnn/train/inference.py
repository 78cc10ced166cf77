"""Use a trained checkpoint: Table 1 on a dataset, or class probabilities for single images.

Inputs are prepared exactly as in training (:func:`.loop.network_input`):
grayscale, cropped to the face when the run used ``--crop-faces`` (with the
detector settings stored in the checkpoint; ``--no-face drop`` drops the
same test frames), resized to the checkpoint's image size, scaled to [0, 1], minus
the *training* mean stored in the checkpoint, gray copied to 3 channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from numpy_cnn.data import TEST_SPLIT_FILE, DataSpec, MeanSubtraction, load_image, load_spec, to_float
from numpy_cnn.errors import UserError
from numpy_cnn.nn.loss import softmax
from numpy_cnn.train.checkpoint import load_model, require_training_meta
from numpy_cnn.train.config import TrainConfig, detector_settings_of
from numpy_cnn.train.metrics import confusion_matrix, per_class_table
from numpy_cnn.train.loop import network_input, predict_logits
from numpy_cnn.train.run_split import apply_no_face, load_run_data


def evaluate_checkpoint(path: Path, *, data: Path | None, home: Path,
                        cache_dir: Path | None) -> tuple[list[dict], np.ndarray, str]:
    """Run a checkpoint on a test set; return (Table 1 rows, confusion matrix, what was tested).

    Without ``data`` it is the run's own test split (``test.txt`` beside the
    checkpoint). With ``data``, the test part of that dataset as
    :func:`numpy_cnn.data.load_spec` defines it: its own test folder or
    CSV rows if it has them, else a stratified split with the run's seed.
    """
    _refuse_cv_run(path)
    model, ckpt = load_model(path)
    run_dir = path if path.is_dir() else path.parent
    if data is None:
        require_training_meta(ckpt, path, "name the run's test split; pass --data DATASET to "
                                          "evaluate on a dataset's test part")
        config = TrainConfig.from_json(ckpt.meta["config"])
        if config.test_data is None and not (run_dir / TEST_SPLIT_FILE).is_file():   # else: that folder, whole
            raise UserError(f"{run_dir}: no {TEST_SPLIT_FILE} beside the checkpoint, so the run's "
                            "test split is unknown; pass --data DATASET to evaluate on its test part")
        ds = apply_no_face(config, load_run_data(config, run_dir, home, cache_dir, test_only=True))
        what = f"the run's test split ({len(ds.y_test)} images of {ds.root})"
    else:
        # A model-only checkpoint is split like a default run (the settings only choose the test part).
        config = TrainConfig.from_json(ckpt.meta["config"]) if "config" in ckpt.meta else TrainConfig()
        crop_faces = None if Path(data).is_file() else config.detector_settings()   # a CSV's rows are face crops
        spec = DataSpec(data, seed=config.seed, test_fraction=config.test_fraction,
                        image_size=ckpt.meta["image_size"], cache_dir=cache_dir, test_only=True, crop_faces=crop_faces)
        ds = apply_no_face(config, load_spec(spec))
        what = f"the test set of {data} ({ds.source}, {len(ds.y_test)} images)"
    x = network_input(to_float(ds.x_test), MeanSubtraction(ckpt.mean), ckpt.meta["in_channels"])
    predicted = predict_logits(model, x).argmax(axis=1)
    confusion = confusion_matrix(ds.y_test, predicted, len(ckpt.meta["classes"]))
    return per_class_table(confusion, ckpt.meta["classes"]), confusion, what


def predict_images(path: Path, images: Sequence[Path]) -> tuple[np.ndarray, list[str], list[bool | None]]:
    """Class probabilities (len(images), K) for image files, the class names, and per image
    whether a face was found (None when the run used whole frames; a frame without a face
    is predicted whole, as ``--no-face keep`` trained)."""
    for image in images:   # checked before the model loads: a typo should fail fast
        if image.is_dir():
            raise UserError(f"{image}: is a folder; pass image files (e.g. {image}/*.png)")
    _refuse_cv_run(path)
    model, ckpt = load_model(path)
    size, crop_faces = ckpt.meta["image_size"], detector_settings_of(ckpt.meta)
    gray, found = zip(*(load_image(image, size, crop_faces) for image in images))
    x = network_input(to_float(np.stack(gray)), MeanSubtraction(ckpt.mean), ckpt.meta["in_channels"])
    return softmax(predict_logits(model, x)), list(ckpt.meta["classes"]), list(found)


def _refuse_cv_run(path: Path) -> None:
    """A K-fold run's top folder holds K models, not one: say which to use."""
    from numpy_cnn.train.kfold import CV_RESULTS, is_cv_run

    if path.is_dir() and is_cv_run(path):
        raise UserError(f"{path}: a cross-validation run holds one model per fold; pass {path / 'fold1'} "
                        f"(or another fold), or read the pooled results in {path / CV_RESULTS}")
