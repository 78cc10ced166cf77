"""Which images a run trains and tests on, and how a later command finds the same ones again.

A new run loads its dataset (:func:`new_run_spec`, :func:`numpy_cnn.data.load_spec`) and
writes the split it got to ``train.txt`` / ``test.txt`` in the run
directory; with ``--val-frac`` a validation part is then carved from the
training side (:func:`carve_validation`). Resuming or evaluating a run reads those files back (paths are
relative to the data folder), so it sees exactly the same images in the same
order even if the folder gained files since. When the test set came from
``--test-data`` its paths are relative to that folder instead, so such a run
is reloaded with the same arguments (the split is then fixed anyway).

A digest of the training pixels is kept in the checkpoint: a resumed run
whose data changed stops with a message instead of silently diverging.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from numpy_cnn.data import (CLASSES, GROUPS_FILE, TEST_SPLIT_FILE, TRAIN_SPLIT_FILE, DataSpec, Dataset, GroupRule,
                            Labelled, Listing, face_report, load_spec, validation_split, write_groups_file,
                            write_split_file)
from numpy_cnn.data.synthetic import SYNTHETIC_DATA, ensure_synthetic_dataset
from numpy_cnn.errors import UserError
from numpy_cnn.train.config import TrainConfig


def data_path(config: TrainConfig, home: Path) -> Path:
    """The dataset a config names; ``None`` means the synthetic set, generated under ``home`` on first use."""
    if config.data is not None:
        return Path(config.data)
    return ensure_synthetic_dataset(home / SYNTHETIC_DATA, seed=0)


def split_dir_of(config: TrainConfig, out: Path) -> Path:
    """Where a new run's ``--reuse-split`` reads train.txt and test.txt: ``--split-dir``, else ``out``."""
    return Path(config.split_dir) if config.split_dir else out


def reuses_split_in(config: TrainConfig, out: Path) -> bool:
    """True when a new run trains on split files already in its own ``out`` (they are the user's)."""
    # Resolved: --split-dir is stored absolute, --out may be relative.
    return config.reuse_split and split_dir_of(config, out).resolve() == out.resolve()


def new_run_spec(config: TrainConfig, out: Path, home: Path, cache_dir: Path | None) -> DataSpec:
    """What a new run loads: its data, split as the settings say (a new random split, or ``--reuse-split``)."""
    return DataSpec(data_path(config, home), test_data=config.test_data,
                    split_dir=split_dir_of(config, out) if config.reuse_split else None,
                    reuse_split=config.reuse_split, seed=config.seed,
                    test_fraction=config.test_fraction, image_size=config.image_size,
                    cache_dir=cache_dir, group_by=config.group_by, crop_faces=config.detector_settings(),
                    fit=config.fit)


def load_new_run_data(config: TrainConfig, out: Path, home: Path, cache_dir: Path | None) -> Dataset:
    """Load the data of a new run and record its split in ``out`` (written only after loading succeeded)."""
    spec = new_run_spec(config, out, home, cache_dir)
    ds = load_spec(spec)
    check_trainable(ds, Path(spec.split_dir) / TRAIN_SPLIT_FILE if config.reuse_split else spec.data)
    if not reuses_split_in(config, out):
        write_split_file(out / TRAIN_SPLIT_FILE, Listing(ds.train_files, ds.y_train))
        write_split_file(out / TEST_SPLIT_FILE, Listing(ds.test_files, ds.y_test))
    if config.group_by is not None:   # "-": a name the rule cannot read (a reused split or --test-data may hold some)
        rule = GroupRule(config.group_by)
        files = ds.train_files + ds.test_files
        write_groups_file(out / GROUPS_FILE, files, [rule.name(f) or "-" for f in files], rule.spec)
    return ds


def check_trainable(ds: Dataset, source: Path) -> None:
    """Refuse a training set a classifier cannot learn from: no images, or a single class.

    With one class the network learns a constant and Table 1 shows a
    meaningless 100%; ``source`` (the data, or the split file) is named.
    """
    present = np.unique(ds.y_train)
    if len(present) == 0:
        raise UserError(f"{source}: no training images; list some in it or pass a dataset that has them")
    if len(present) == 1:
        raise UserError(f"{source}: every training image is {CLASSES[present[0]]}; a classifier needs "
                        "at least two classes, so add images of the others")


def run_spec(config: TrainConfig, run_dir: Path, home: Path, cache_dir: Path | None, *,
             test_only: bool = False) -> DataSpec:
    """What a run's later command (resume, evaluate) loads: the images of its split files.

    A run with ``--test-data`` is reloaded from the same arguments instead (its split is fixed anyway).
    ``test_only``: decode only the test images (``x_train`` is empty), for evaluation.
    """
    if moved := config.moved_data():
        key = moved[0]
        raise UserError(f"{getattr(config, key)}: the run's data is not there any more; if it moved, "
                        f"pass its new place with --{key.replace('_', '-')}")
    return DataSpec(data_path(config, home), test_data=config.test_data, split_dir=run_dir,
                    reuse_split=config.test_data is None, seed=config.seed, test_fraction=config.test_fraction,
                    image_size=config.image_size, cache_dir=cache_dir, test_only=test_only,
                    crop_faces=config.detector_settings(), fit=config.fit)


def load_run_data(config: TrainConfig, run_dir: Path, home: Path, cache_dir: Path | None, *,
                  test_only: bool = False) -> Dataset:
    """The same train and test images a run used, from its split files (see the module docstring)."""
    return load_spec(run_spec(config, run_dir, home, cache_dir, test_only=test_only))


def apply_no_face(config: TrainConfig, ds: Dataset) -> Dataset:
    """The images a run trains and tests on: with ``--no-face drop``, those in which a face was found.

    Applied after the split files are written, so they hold the whole split,
    the same as without ``--crop-faces``: a reused split, a fold or an
    evaluation drops the same frames again (the crops are cached under the
    detector's settings, stored in the checkpoint), and ``results.json`` lists them.
    """
    return ds.without_faceless() if config.no_face == "drop" and ds.faces_test is not None else ds


def carve_validation(config: TrainConfig, ds: Dataset) -> tuple[Dataset, Labelled | None]:
    """With ``--val-frac``: the validation part carved from the training side of ``ds``
    (:func:`numpy_cnn.data.validation_split`, group-aware with ``--group-by``), and ``ds``
    without it; else ``ds`` and None.

    Carved after the split files are read or written (``train.txt`` keeps the whole
    training side): the carving is a pure function of that list, the seed and the
    fraction, so a resumed run, or a fold, carves the same images again.
    """
    if config.val_frac is None:
        return ds, None
    return validation_split(ds, config.val_frac, config.seed, config.group_by)


def face_summary(config: TrainConfig, ds: Dataset) -> dict | None:
    """:func:`numpy_cnn.data.faces.face_report` of a run's data (before any drop), or None without crops."""
    if config.crop_faces is None:
        return None
    return face_report(config.detector_settings(), config.no_face,
                       {"train": (ds.train_files, ds.faces_train), "test": (ds.test_files, ds.faces_test)})


def digest(x: np.ndarray) -> str:
    """A short fingerprint of an array's shape and bytes."""
    return hashlib.sha1(repr(x.shape).encode() + np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def check_same_data(ds: Dataset, expected_digest: str, run_dir: Path) -> None:
    if digest(ds.x_train) != expected_digest:
        raise UserError(f"{run_dir}: the training images differ from those the run started with "
                        "(files edited or data folder changed); restore them or start a new run")
