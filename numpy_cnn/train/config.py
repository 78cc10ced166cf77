"""The settings of one training run: defaults are the paper's recipe.

A :class:`TrainConfig` is stored in every checkpoint (as JSON), so a resumed
run continues with exactly the settings it started with.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from numpy_cnn.nn.arch import DEFAULT_ARCH, build_model, check_arch
from numpy_cnn.data import CLASSES
from numpy_cnn.data.faces import DetectorSettings, require_cv2
from numpy_cnn.data.groups import check_rule
from numpy_cnn.errors import UserError
from numpy_cnn.nn.optim import DEFAULTS
from numpy_cnn.train.finetune import check_freeze

MEAN_MODES = ("scalar", "pixel")
NO_FACE_POLICIES = ("keep", "drop")   # a frame without a face: trained on whole, or left out
IN_CHANNELS = 3   # the paper copies the gray channel three times (its net was built for RGB)


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
        if problems:
            raise UserError("; ".join(problems))
        check_arch(self.arch, in_channels=IN_CHANNELS, image_size=self.image_size, num_classes=len(CLASSES))
        if self.crop_faces is not None:
            self.detector_settings()   # a bad setting is a one-line error, and so is a missing OpenCV
            require_cv2()
        if self.freeze is not None:   # the names must exist in this network: build it (no data needed)
            model = build_model(self.arch, IN_CHANNELS, self.image_size, len(CLASSES), rng=0)
            object.__setattr__(self, "freeze", ",".join(check_freeze(model, self.freeze.split(","))))

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


def detector_settings_of(meta: dict) -> DetectorSettings | None:
    """The face detector a checkpoint's run cropped its images with (None: whole frames), so
    ``evaluate``, ``predict``, ``trace`` and ``visualize`` prepare images the same way."""
    return TrainConfig.from_json(meta["config"]).detector_settings() if "config" in meta else None
