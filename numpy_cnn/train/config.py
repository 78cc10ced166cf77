"""The settings of one training run: defaults are the paper's recipe.

A :class:`TrainConfig` is stored in every checkpoint (as JSON), so a resumed
run continues with exactly the settings it started with.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..arch import DEFAULT_ARCH, build_model, check_arch
from ..data import CLASSES
from ..errors import UserError
from .finetune import check_freeze

MEAN_MODES = ("scalar", "pixel")
IN_CHANNELS = 3   # the paper copies the gray channel three times (its net was built for RGB)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and data options (paths as strings, so the config is plain JSON).

    ``data=None`` means the generated synthetic dataset. ``mean`` is the
    training mean subtracted from every input: one number (``"scalar"``) or
    an image (``"pixel"``). ``init_from`` and ``freeze`` fine-tune
    (:mod:`numpy_cnn.train.finetune`).
    """

    data: str | None = None
    test_data: str | None = None
    split_dir: str | None = None
    reuse_split: bool = False
    epochs: int = 200
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 4
    seed: int = 0
    rotation: float = 10.0
    augment: bool = True
    mean: str = "scalar"
    arch: str = DEFAULT_ARCH
    image_size: int = 48
    test_fraction: float = 0.2
    init_from: str | None = None   # a run folder or checkpoint.npz to start from (see finetune.py)
    freeze: str | None = None      # layers kept fixed, "conv1,conv2"; stored in the network's order

    def __post_init__(self) -> None:
        """Check every setting before anything is loaded or written: a mistake costs nothing.

        ``not x > 0`` style tests also reject NaN, and ``math.isfinite`` rejects
        ``inf``, which would otherwise turn the first step's weights into NaN.
        """
        problems = []
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
        if problems:
            raise UserError("; ".join(problems))
        check_arch(self.arch, in_channels=IN_CHANNELS, image_size=self.image_size, num_classes=len(CLASSES))
        if self.freeze is not None:   # the names must exist in this network: build it (no data needed)
            model = build_model(self.arch, IN_CHANNELS, self.image_size, len(CLASSES), rng=0)
            object.__setattr__(self, "freeze", ",".join(check_freeze(model, self.freeze.split(","))))

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
