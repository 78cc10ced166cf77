"""The settings of one training run: defaults are the paper's recipe.

A :class:`TrainConfig` is stored in every checkpoint (as JSON), so a resumed
run continues with exactly the settings it started with.

Every rule about the settings lives here: each value, each pair of flags that
need or exclude each other (:meth:`TrainConfig.given_settings`, also where a
``--recipe`` file's settings meet the flags typed), and what ``--resume`` may
change (:meth:`TrainConfig.resumed`). Building a config has no side effects: it
makes no weights (``--freeze`` is checked against the arch spec's plan) and
imports no OpenCV (the trainer checks for it when a run starts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from numpy_cnn.data import CLASSES, FITS, DetectorSettings, check_rule
from numpy_cnn.errors import UserError
from numpy_cnn.nn.arch import DEFAULT_ARCH, check_arch, trainable_layer_names
from numpy_cnn.nn.optim import DEFAULTS
from numpy_cnn.train.finetune import check_freeze
from numpy_cnn.train.loop import TTA
from numpy_cnn.train.schedule import SCHEDULES

MEAN_MODES = ("scalar", "pixel")
NO_FACE_POLICIES = ("keep", "drop")   # a frame without a face: trained on whole, or left out
IN_CHANNELS = 3   # the default: the paper copies the gray channel three times (its net was built for RGB)
CHANNELS = (1, 3)
BALANCE_MODES = ("none", "sampler", "loss")   # class imbalance: nothing, a balanced sampler, class weights
KEEP_MODES = ("last", "best")                 # which epoch's weights a run keeps (best: by validation accuracy)
MAX_VAL_FRAC = 0.5
# Settings given as paths: stored absolute, so resuming from another folder finds them.
PATH_FIELDS = ("data", "test_data", "split_dir", "init_from")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and data options (paths as strings, so the config is plain JSON).

    ``data=None`` means the generated synthetic dataset. ``mean`` is the
    training mean subtracted from every input: one number (``"scalar"``) or
    an image (``"pixel"``). ``init_from`` and ``freeze`` fine-tune
    (:mod:`numpy_cnn.train.finetune`). ``crop_faces`` holds the face
    detector's settings (:class:`numpy_cnn.data.faces.DetectorSettings`, as a
    dict) when every image is cropped to its face, and ``no_face`` says what
    happens to a frame without one.
    """

    data: str | None = None
    test_data: str | None = None
    split_dir: str | None = None
    reuse_split: bool = False
    epochs: int = 200
    lr: float | None = None              # None: the optimizer's default (optim.DEFAULTS), 0.001 for SGD
    momentum: float = 0.9                # SGD's only
    weight_decay: float | None = None    # None: the optimizer's default, 0 for SGD and Adam, 0.01 for AdamW
    optimizer: str = "sgd"
    batch_size: int = 4
    seed: int = 0
    rotation: float = 10.0
    augment: bool = True
    mean: str = "scalar"
    arch: str = DEFAULT_ARCH
    image_size: int = 48
    test_fraction: float = 0.2
    # Honest evaluation (numpy_cnn/data/groups.py, numpy_cnn/train/kfold.py).
    group_by: str | None = None
    folds: int | None = None
    init_from: str | None = None   # a run folder or checkpoint.npz to start from (see finetune.py)
    freeze: str | None = None      # layers kept fixed, "conv1,conv2"; stored in the network's order
    # Face crops (numpy_cnn/data/faces.py): the detector settings, or None for whole frames.
    crop_faces: dict | None = None
    no_face: str = "keep"
    # The modern options (docs/training.md, "Recipes and the modern options"): each is off by
    # default, so the default run is the paper's, bit for bit.
    channels: int = IN_CHANNELS      # 1: the gray image once; 3: copied three times (the paper)
    fit: str = "stretch"             # a frame to a square: stretched whole, or its centred square cropped
    lr_schedule: str = "constant"    # per optimizer step (numpy_cnn/train/schedule.py)
    warmup: float = 0.0              # epochs of linear lr warm-up, counted in steps
    label_smoothing: float = 0.0
    shift: int = 0                   # augmentation beside flip and rotation: pixels,
    brightness: float = 0.0          # and factors in [1 - B, 1 + B] and [1 - C, 1 + C]
    contrast: float = 0.0
    balance: str = "none"            # class imbalance: none, sampler or loss (numpy_cnn/train/balance.py)
    val_frac: float | None = None    # a validation part carved from the training side
    keep: str = "last"               # the weights kept: the last epoch's, or the best validation accuracy's
    patience: int | None = None      # stop after this many epochs without a better validation accuracy
    tta: str = "none"                # test-time augmentation in the final test pass: none or flip

    def __post_init__(self) -> None:
        """Check every setting before anything is loaded or written: a mistake costs nothing.

        ``not x > 0`` style tests also reject NaN, and ``math.isfinite`` rejects
        ``inf``, which would otherwise turn the first step's weights into NaN.
        """
        problems = []
        if self.optimizer not in DEFAULTS:
            raise UserError(f"--optimizer must be one of {', '.join(DEFAULTS)}, got {self.optimizer!r}")
        _, lr, weight_decay = DEFAULTS[self.optimizer]
        for name, default in (("lr", lr), ("weight_decay", weight_decay)):
            if getattr(self, name) is None:   # frozen, so set it the way dataclasses do
                object.__setattr__(self, name, default)
        if self.epochs < 1:
            problems.append(f"--epochs must be >= 1, got {self.epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append(f"--lr must be a finite number > 0, got {self.lr}")
        if not (self.momentum >= 0 and math.isfinite(self.momentum)):
            problems.append(f"--momentum must be a finite number >= 0, got {self.momentum}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            problems.append(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}")
        if self.batch_size < 1:
            problems.append(f"--batch-size must be >= 1, got {self.batch_size}")
        if not 0 <= self.rotation <= 180:
            problems.append(f"--rotation must be between 0 and 180 degrees, got {self.rotation}")
        if self.seed < 0:   # numpy's SeedSequence takes only non-negative integers
            problems.append(f"--seed must be >= 0, got {self.seed}")
        if self.mean not in MEAN_MODES:
            problems.append(f"--mean must be one of {', '.join(MEAN_MODES)}, got {self.mean!r}")
        problems += self._evaluation_problems()
        if self.no_face not in NO_FACE_POLICIES:
            problems.append(f"--no-face must be one of {', '.join(NO_FACE_POLICIES)}, got {self.no_face!r}")
        elif self.no_face != "keep" and self.crop_faces is None:
            problems.append(f"--no-face {self.no_face} concerns face crops; add --crop-faces or drop --no-face")
        problems += self._input_problems() + self._recipe_problems() + self._selection_problems()
        if problems:
            raise UserError("; ".join(problems))
        check_arch(self.arch, in_channels=self.channels, image_size=self.image_size, num_classes=len(CLASSES))
        if self.crop_faces is not None:
            self.detector_settings()   # a bad setting is a one-line error (OpenCV: see trainer.require_tools)
        if self.freeze is not None:   # the names must exist in this network: its plan says (no weights made)
            valid = trainable_layer_names(self.arch, self.channels, self.image_size, len(CLASSES))
            object.__setattr__(self, "freeze", ",".join(check_freeze(valid, self.freeze.split(","))))

    def _evaluation_problems(self) -> list[str]:
        """``--group-by`` must be a known rule or a regex with one group; ``--folds`` needs >= 2
        folds and the images to deal into them (not a fixed test set)."""
        if self.group_by is not None:
            check_rule(self.group_by)
        if self.folds is None:
            return []
        problems = []
        if self.folds < 2:
            problems.append(f"--folds must be at least 2, got {self.folds} (one fold would test on nothing "
                            "the others train on); drop it for one split")
        if self.test_data is not None:
            problems.append("--folds tests every image of --data in turn, so a separate --test-data has no "
                            "place; drop one of them")
        if self.reuse_split:
            problems.append("--folds makes its own folds, so --reuse-split has no place; drop one of them")
        return problems

    def _input_problems(self) -> list[str]:
        """What the network sees: ``--channels``, ``--fit`` and the augmentation beside flip and rotation."""
        problems = []
        if self.channels not in CHANNELS:
            problems.append(f"--channels must be 1 or 3, got {self.channels}")
        if self.fit not in FITS:
            problems.append(f"--fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        elif self.fit != "stretch" and self.crop_faces is not None:
            problems.append(f"--fit {self.fit} concerns whole frames, and --crop-faces already cuts a square "
                            "around the face; drop --fit")
        if isinstance(self.shift, bool) or not isinstance(self.shift, int) or not 0 <= self.shift < self.image_size:
            problems.append(f"--shift must be a whole number of pixels from 0 to {self.image_size - 1} "
                            f"(below --image-size), got {self.shift}")
        for name in ("brightness", "contrast"):
            if not 0 <= getattr(self, name) < 1:   # a factor 1 - B must stay > 0
                problems.append(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        jitter = [f"--{name}" for name in ("shift", "brightness", "contrast") if getattr(self, name)]
        if not self.augment and jitter:
            problems.append(f"--no-augment turns every augmentation off, but {'/'.join(jitter)} is set; "
                            "set it to 0 or drop --no-augment")
        return problems

    def _recipe_problems(self) -> list[str]:
        """The training recipe: ``--lr-schedule``, ``--warmup``, ``--label-smoothing``, ``--balance``."""
        problems = []
        if self.lr_schedule not in SCHEDULES:
            problems.append(f"--lr-schedule must be one of {', '.join(SCHEDULES)}, got {self.lr_schedule!r}")
        if not (self.warmup >= 0 and math.isfinite(self.warmup)):
            problems.append(f"--warmup must be a number of epochs >= 0, got {self.warmup}")
        elif self.warmup and self.warmup >= self.epochs:
            problems.append(f"--warmup must be < --epochs (got {self.warmup} and {self.epochs}): the warm-up "
                            "would leave no epoch for the schedule")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.balance not in BALANCE_MODES:
            problems.append(f"--balance must be one of {', '.join(BALANCE_MODES)}, got {self.balance!r}")
        if self.tta not in TTA:
            problems.append(f"--tta must be one of {', '.join(TTA)}, got {self.tta!r}")
        return problems

    def _selection_problems(self) -> list[str]:
        """``--val-frac``, ``--keep`` and ``--patience``: the last two need a validation set."""
        problems = []
        if self.val_frac is not None and not 0 < self.val_frac <= MAX_VAL_FRAC:
            problems.append(f"--val-frac must be in (0, {MAX_VAL_FRAC}], got {self.val_frac}")
        if self.keep not in KEEP_MODES:
            problems.append(f"--keep must be one of {', '.join(KEEP_MODES)}, got {self.keep!r}")
        elif self.keep == "best" and self.val_frac is None:
            problems.append("--keep best needs --val-frac (the best epoch is chosen on validation images, "
                            "never on the test set); add --val-frac 0.1")
        if self.patience is not None:
            if self.patience < 1:
                problems.append(f"--patience must be >= 1 epoch, got {self.patience}")
            elif self.val_frac is None:
                problems.append("--patience needs --val-frac (a run stops when its validation accuracy stops "
                                "improving); add --val-frac 0.1")
        return problems

    @classmethod
    def given_settings(cls, flags: Mapping[str, object], recipe: Mapping[str, object] | None = None) -> dict:
        """The settings a command line gave, checked against each other and made storable.

        ``flags`` maps names to the values typed, ``None`` for a flag not given
        (argparse's namespace as a dict; names that are no setting are ignored).
        ``recipe`` holds the settings of a ``--recipe`` file
        (:func:`numpy_cnn.train.recipe.read_recipe`): each one a flag typed
        does not override. Returns ``{setting: value}`` for the settings given,
        paths made absolute (:data:`PATH_FIELDS`) and ``crop_faces=True`` made
        the face detector's default settings, stored in full: a new run's
        ``TrainConfig(**given)``, or a resumed run's :meth:`resumed`. Raises the
        one-line :class:`UserError` of a flag that the other flags leave without
        effect; each value is checked when the config is built.
        """
        typed = {f.name: flags[f.name] for f in fields(cls) if flags.get(f.name) is not None}
        given = {**_overridden(dict(recipe or {}), typed), **typed}
        if given.get("optimizer", "sgd") != "sgd" and "momentum" in given:
            raise UserError(f"--momentum is SGD's; {given['optimizer']} keeps its own moving averages "
                            "(betas 0.9, 0.999): drop --momentum")
        if given.get("split_dir") and not given.get("reuse_split"):   # else ignored: a new random split is made
            raise UserError(f"--split-dir {given['split_dir']} is read only with --reuse-split; add --reuse-split "
                            "to train on its train.txt/test.txt, or drop --split-dir")
        if given.get("crop_faces") is True:   # the flag means the detector's default settings, stored in full
            given["crop_faces"] = asdict(DetectorSettings())
        for key in PATH_FIELDS:   # absolute, so resuming from another folder finds them
            if key in given:
                given[key] = str(Path(given[key]).resolve())
        return given

    def resumed(self, given: Mapping[str, object], *, done: int, run: Path) -> TrainConfig:
        """These stored settings of the run in ``run``, continued with the settings ``given`` again.

        ``given`` is :meth:`given_settings`' output; ``done`` the epochs the run
        has trained. ``epochs`` may be raised (not below ``done``). Any other
        setting that differs from the stored value is an error: a resumed run
        continues the same experiment. The one exception is a data path
        (``data``, ``test_data``) whose stored folder is gone (:meth:`moved_data`):
        the data moved, and the run checks that its training images are still the same.
        """
        if given.get("epochs", done) < done:
            raise UserError(f"{run} has already trained {done} epochs; --epochs must be at least that")
        if self.lr_schedule != "constant" and given.get("epochs", self.epochs) != self.epochs:
            raise UserError(f"--epochs cannot change when resuming a run with --lr-schedule {self.lr_schedule}: "
                            f"its schedule spans the run's {self.epochs} epochs; start a new run with --out")
        allowed = {"epochs", *self.moved_data()}
        changed = [_describe_change(k, v, getattr(self, k)) for k, v in given.items()
                   if k not in allowed and v != getattr(self, k)]
        if changed:
            raise UserError(f"--resume continues the same run, but {'; '.join(changed)}; "
                            "drop those flags or start a new run with --out")
        return TrainConfig(**{**self.to_json(), **{k: v for k, v in given.items() if k in allowed}})

    def moved_data(self) -> list[str]:
        """The data settings (``"data"``, ``"test_data"``) whose stored path is gone: the data moved,
        so a resumed run may be given its new place."""
        return [key for key in ("data", "test_data")
                if getattr(self, key) is not None and not Path(getattr(self, key)).exists()]

    def detector_settings(self) -> DetectorSettings | None:
        """The face detector's settings, or None when whole frames are used."""
        if self.crop_faces is None:
            return None
        try:
            return DetectorSettings(**self.crop_faces)
        except TypeError as exc:   # a key from another version
            raise UserError(f"face detector settings {self.crop_faces} are not understood ({exc})") from None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> TrainConfig:
        """Rebuild from :meth:`to_json` output; unknown keys (from a newer version) are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"checkpoint settings hold unknown keys {unknown}; was it written by a newer version?")
        return cls(**values)


def _describe_change(key: str, given: object, stored: object) -> str:
    """``--lr 0.5 (the run used 0.001)``; on/off flags by the flag the user typed."""
    if key == "augment":
        return "--no-augment (the run used augmentation)"
    if key == "reuse_split":
        return "--reuse-split (the run made its own split)"
    if key == "crop_faces":
        return ("--crop-faces (the run used whole frames)" if stored is None
                else f"--crop-faces (the run used other detector settings: {stored})")
    return f"--{key.replace('_', '-')} {given} (the run used {stored})"


def _overridden(recipe: dict, typed: Mapping[str, object]) -> dict:
    """A recipe's settings less those the flags typed leave without effect: its ``momentum``
    when ``--optimizer`` names another than SGD, its shift and jitters under ``--no-augment``."""
    if typed.get("optimizer", "sgd") != "sgd":
        recipe.pop("momentum", None)
    if typed.get("augment") is False:
        recipe.update({name: 0 for name in ("shift", "brightness", "contrast") if name in recipe})
    return recipe


def fit_of(meta: dict) -> str:
    """How a checkpoint's run made its frames square (``"stretch"`` for a run from before ``--fit``,
    or a model-only checkpoint), so ``evaluate``, ``predict`` and the study tools do the same."""
    return meta.get("config", {}).get("fit", "stretch")


def detector_settings_of(meta: dict) -> DetectorSettings | None:
    """The face detector a checkpoint's run cropped its images with (None: whole frames), so
    ``evaluate``, ``predict``, ``trace`` and ``visualize`` prepare images the same way."""
    return TrainConfig.from_json(meta["config"]).detector_settings() if "config" in meta else None
