"""Checkpoints: one ``.npz`` file that PyTorch can read, written atomically, loaded without pickle.

Layout of ``checkpoint.npz`` (every entry a plain array)::

    conv1.weight, conv1.bias, ..., fc3.bias   the model, keyed like PyTorch's state_dict, with
                                              BatchNorm's buffers (bn1.running_mean, bn1.running_var,
                                              bn1.num_batches_tracked, an int64 0-d array)
    _optim.<i>.momentum_buffer                the optimizer's state, as its state_dict(): SGD's
    _optim.<i>.exp_avg, .exp_avg_sq, .step    momentum buffers, or Adam's/AdamW's moments and
                                              step counts (int64), under PyTorch's names
    _last.conv1.weight, ...                   with --keep best only: the last epoch's weights and
                                              buffers, which a resumed run trains on from (the
                                              model entries above are then the best epoch's)
    _mean                                     the training mean, shape () or (H, W)
    _meta                                     a 0-d string array holding JSON: arch spec,
                                              classes, image size, epoch, seed, hyper-
                                              parameters, the Generator's state, metrics

Entries whose name starts with ``_`` are training state, the rest is the
model. So in PyTorch, with a ``nn.Sequential(OrderedDict(...))`` built with
the same layer names::

    ckpt = np.load("runs/x/checkpoint.npz")
    net.load_state_dict({k: torch.from_numpy(ckpt[k]) for k in ckpt.files if not k.startswith("_")})

Writing goes to a temporary file in the same folder, then ``os.replace``
renames it over the old checkpoint: a crash or Ctrl-C leaves either the old
or the new file, never half of one. Loading uses ``allow_pickle=False``, so
a file that would need pickle (object arrays, which can run code) is refused.
"""

from __future__ import annotations

import json
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.nn.module import Sequential
from numpy_cnn.atomic import write_atomically

META_KEY = "_meta"
MEAN_KEY = "_mean"
OPTIM_PREFIX = "_optim."
LAST_PREFIX = "_last."


@dataclass
class Checkpoint:
    """Everything a run needs to continue or to predict.

    Attributes:
        model: parameter or buffer name -> array, in the model's ``state_dict`` order.
        meta: JSON-able settings and history (see the module docstring).
        mean: the training mean subtracted from inputs, float32 () or (H, W).
        optim: the optimizer's ``state_dict()``, empty for a model-only file.
        last: with ``--keep best``, the last epoch's state dict, which training continues
            from while ``model`` holds the best epoch's (:mod:`numpy_cnn.train.selection`);
            empty otherwise (``model`` is the last epoch's).
    """

    model: "OrderedDict[str, np.ndarray]"
    meta: dict[str, Any]
    mean: np.ndarray = field(default_factory=lambda: np.zeros((), np.float32))
    optim: dict[str, np.ndarray] = field(default_factory=dict)
    last: "OrderedDict[str, np.ndarray]" = field(default_factory=OrderedDict)

    def training_state(self) -> "OrderedDict[str, np.ndarray]":
        """The weights a resumed run continues training from: ``last`` if kept apart, else ``model``."""
        return self.last or self.model


def save_checkpoint(path: Path | str, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically (temporary file, then ``os.replace``)."""
    path = Path(path)
    bad = [k for k in ckpt.model if k.startswith("_")]
    if bad:
        raise UserError(f"model parameter names must not start with '_' (reserved), got {bad}")
    arrays: dict[str, np.ndarray] = dict(ckpt.model)
    arrays.update({OPTIM_PREFIX + k: v for k, v in ckpt.optim.items()})
    arrays.update({LAST_PREFIX + k: v for k, v in ckpt.last.items()})
    arrays[MEAN_KEY] = np.asarray(ckpt.mean, np.float32)
    arrays[META_KEY] = np.array(json.dumps(ckpt.meta))   # 0-d unicode array: no pickle needed
    write_atomically(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        UserError: the file is missing, not an ``.npz``, needs pickle, or has no metadata.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint there; give a run directory or its checkpoint.npz")
    if not zipfile.is_zipfile(path):   # else np.load would take it for a pickle
        raise UserError(f"{path}: not a readable checkpoint (not an .npz archive); use a "
                        "checkpoint.npz written by train_numpy.py")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise UserError(f"{path}: holds object arrays that only pickle can load; refusing it "
                            "(pickle can run code). Save plain numeric arrays instead") from None
        raise UserError(f"{path}: not a readable checkpoint ({exc}); use a checkpoint.npz "
                        "written by train_numpy.py") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc}); use a "
                        "checkpoint.npz written by train_numpy.py") from None
    if META_KEY not in arrays:
        raise UserError(f"{path}: has no {META_KEY} entry, so it is not a numpy_cnn checkpoint; "
                        "use a checkpoint.npz written by train_numpy.py")
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except ValueError:
        raise UserError(f"{path}: its {META_KEY} entry is not valid JSON; the file is damaged") from None
    mean = arrays.pop(MEAN_KEY, np.zeros((), np.float32))
    optim = {k[len(OPTIM_PREFIX):]: arrays.pop(k) for k in list(arrays) if k.startswith(OPTIM_PREFIX)}
    last = OrderedDict((k[len(LAST_PREFIX):], arrays.pop(k)) for k in list(arrays) if k.startswith(LAST_PREFIX))
    model = OrderedDict((k, v) for k, v in arrays.items() if not k.startswith("_"))
    return Checkpoint(model=model, meta=meta, mean=mean, optim=optim, last=last)


# What the trainer stores beyond the model, and needs to resume a run or find its test split.
TRAINING_META = ("config", "epoch", "history", "rng_state", "data")


def require_training_meta(ckpt: Checkpoint, path: Path | str, purpose: str) -> None:
    """Refuse a model-only checkpoint (written by hand or another tool) for ``purpose``.

    ``purpose`` completes "so it cannot ...", e.g. "be resumed; start a new run with --out".
    """
    missing = [key for key in TRAINING_META if key not in ckpt.meta]
    if missing:
        raise UserError(f"{path}: its metadata holds no training state ({', '.join(missing)}), "
                        f"so it cannot {purpose}")


def load_model(path: Path | str) -> tuple[Sequential, Checkpoint]:
    """Rebuild the network a checkpoint describes (from its arch spec) and load its weights.

    Raises:
        UserError: unreadable checkpoint, or weights that do not fit the spec.
    """
    from numpy_cnn.nn.arch import build_model

    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    try:
        model = build_model(meta["arch"], in_channels=meta["in_channels"],
                            image_size=meta["image_size"], num_classes=len(meta["classes"]))
    except KeyError as exc:
        raise UserError(f"{path}: metadata lacks {exc}; use a checkpoint.npz written by train_numpy.py") from None
    try:
        model.load_state_dict(ckpt.model)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return model, ckpt
