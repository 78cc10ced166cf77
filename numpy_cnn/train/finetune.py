"""Fine-tuning: start from another run's weights (``--init-from``) and keep layers fixed (``--freeze``).

The use: pretrain on a large set of faces (FER2013's 28,709 crops), then train
on a small one (SFEW's face crops) starting from those weights::

    python train_numpy.py --data fer2013_train --test-data fer2013_test --out runs/fer
    python train_numpy.py --data sfew_crops --init-from runs/fer --freeze conv1,conv2

``--init-from RUN`` (a run folder or its ``checkpoint.npz``) copies the weights
into the network the new run builds. The two networks must match layer for
layer; otherwise the error names the first layer that differs, with both
shapes. Only the weights come over. The new run computes its own training
mean on its own data, starts with empty momentum buffers and draws its own
batches from its own seed. Where the weights came from (the file, a digest
of its weights, and the source run's arch, epochs, data and test accuracy)
is stored in the checkpoint and in ``results.json``. A resumed fine-tuned run
continues from its own checkpoint and never reads the source again.

The source's test accuracy is the one its ``results.json`` reports, when that
file sits beside the checkpoint and belongs to it (same epoch, same settings).
Only there is it right for every run: with ``--val-frac`` the history holds
validation accuracies and the test set is scored once, at the end, on the kept
weights (``--keep best``: not the last epoch's); with ``--tta`` the final score
is the augmented one. Without that file (a checkpoint copied alone, a run
stopped before its end) the last epoch's test accuracy in the checkpoint's
history stands in, which a ``--val-frac`` run does not have. The origin record
says which (``test_accuracy_from``), and the log line too.

``--freeze conv1,conv2`` sets ``requires_grad = False`` on those layers'
parameters (names as ``summary`` prints them). A frozen parameter gets no
gradient, so the optimizer skips it: no weight decay and no momentum, and its
weights stay bit for bit the same. The gradients nothing needs are not computed:

* a frozen ``Linear`` skips its ``dW`` and ``db``. A frozen ``Conv2d`` with
  trainable layers below it must still pass ``dx`` down; the direct kernel
  computes ``dW`` in the same pass, so there ``dW`` is only dropped. A frozen
  ``BatchNorm`` there computes its two small gradients, which the optimizers skip;
* below the lowest trainable layer nothing learns: ``Sequential.backward``
  does not call those layers, and the lowest trainable layer skips its input
  gradient (``needs_input_grad = False``, as the first conv always does).
  With ``conv1,conv2`` frozen, backward runs fc3, fc2 and fc1 only.

A frozen BatchNorm keeps its weight and bias, but in training mode its running
statistics still follow the new data, as in PyTorch (``requires_grad`` does not
touch buffers): they are statistics of the inputs, not learnt weights.

Freezing without ``--init-from`` fixes the *random* initial weights. That is
allowed (a random-features baseline), and the run prints a warning.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from numpy_cnn.nn.arch import build_model
from numpy_cnn.train.checkpoint import Checkpoint, load_checkpoint
from numpy_cnn.errors import UserError
from numpy_cnn.nn.module import Sequential
from numpy_cnn.train.run_files import CHECKPOINT, RESULTS


# -- --freeze ----------------------------------------------------------------

def trainable_layers(model: Sequential) -> list[str]:
    """The names of the layers that have parameters (``conv1``, ``fc1``, ...): what can be frozen."""
    return [name for name, layer in model.named_children() if layer.parameters()]


def check_freeze(valid: Sequence[str], names: Iterable[str]) -> list[str]:
    """``names`` checked against ``valid`` and put in its order; a bad name is a one-line error.

    ``valid`` is the network's layers with parameters, in order: :func:`trainable_layers`
    of a model, or :func:`numpy_cnn.nn.arch.trainable_layer_names` of a spec (no weights made).
    Raises :class:`UserError` for an unknown name or one without parameters
    (listing the valid names), and for freezing every such layer.
    """
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        what = f"no layer with parameters is called {', '.join(unknown)}" if unknown else "no layer named"
        raise UserError(f"--freeze: {what}; name some of {','.join(valid)} (see python train_numpy.py summary)")
    if set(names) == set(valid):
        raise UserError(f"--freeze {','.join(valid)} freezes every layer, leaving nothing to train; "
                        f"leave at least one out (usually the last, {valid[-1]})")
    return [n for n in valid if n in names]


def freeze(model: Sequential, names: Iterable[str]) -> None:
    """Keep the named layers' parameters fixed and skip every gradient that then goes unused.

    Sets ``requires_grad = False`` on their parameters and ``needs_input_grad =
    False`` on the lowest layer still trained (nothing below it learns, so its
    input gradient would be thrown away). ``Sequential.backward`` then stops there.
    """
    for name in check_freeze(trainable_layers(model), names):
        for p in model[name].parameters():
            p.requires_grad = False
    lowest = model[model.backward_floor()]
    if hasattr(lowest, "needs_input_grad"):
        lowest.needs_input_grad = False


# -- --init-from ---------------------------------------------------------------

def weights_digest(state: Mapping[str, np.ndarray]) -> str:
    """A fingerprint of a state dict: names, shapes, dtypes and bytes, in order."""
    h = hashlib.sha1()
    for name, value in state.items():
        value = np.ascontiguousarray(value)
        h.update(f"{name} {value.shape} {value.dtype};".encode())
        h.update(value.tobytes())
    return h.hexdigest()[:16]


def init_from(model: Sequential, path: Path | str) -> dict:
    """Load the weights of the checkpoint at ``path`` (a run folder or its file) into ``model``.

    Returns the provenance stored with the new run: ``path`` (the checkpoint
    file, absolute), ``weights_digest`` (:func:`weights_digest` of its
    weights), and what the source's metadata tells of it (``arch``,
    ``epochs``, ``data``; ``None`` when it does not say, as in a model-only
    checkpoint), and its test score (:func:`source_test_accuracy`):
    ``test_accuracy``, ``test_accuracy_from`` (``"results.json"``,
    ``"history"`` or ``None``) and ``selection`` (``--val-frac``: which
    epoch's weights it kept; else ``None``).

    Raises:
        UserError: no checkpoint there, not a checkpoint, a network that differs
            (naming the first layer that does, with both shapes), or non-finite weights.
            ``model`` is unchanged then.
    """
    path = Path(path)
    file = path / CHECKPOINT if path.is_dir() else path
    try:
        source = load_checkpoint(file)
    except UserError as exc:
        raise UserError(f"--init-from {exc}") from None
    _check_same_network(model, source, file)
    broken = [name for name, value in source.model.items() if not np.isfinite(value).all()]
    if broken:
        raise UserError(f"--init-from {file}: {broken[0]} holds NaN or infinite weights; "
                        "use a checkpoint of a run that did not diverge")
    try:
        model.load_state_dict(source.model)   # checks every key and shape before changing anything
    except UserError as exc:
        raise UserError(f"--init-from {file}: {exc}") from None
    meta = source.meta
    data = meta.get("data", {})
    return {"path": str(file.resolve()), "weights_digest": weights_digest(source.model),
            "arch": meta.get("arch"), "epochs": meta.get("epoch"),
            "data": {"source": data.get("source"), "root": data.get("root")} if data else None,
            **source_test_accuracy(source, file)}


def source_test_accuracy(source: Checkpoint, file: Path) -> dict:
    """The test accuracy of the checkpoint ``source`` (read from ``file``), and where it was read.

    Returns ``{"test_accuracy": float | None, "test_accuracy_from": "results.json" | "history" | None,
    "selection": dict | None}``:

    * ``results.json`` beside ``file`` that belongs to it (the checkpoint's epoch and settings;
      a resumed run stopped early leaves the last session's file behind): its
      ``overall_test_accuracy``, the score of the weights the checkpoint holds, and its
      ``selection`` (``--val-frac``: ``keep``, ``kept_epoch``, ``best_val_accuracy``, ...);
    * else the last row of the checkpoint's history, ``test_acc``: the last epoch's weights,
      without TTA; ``None`` for a ``--val-frac`` run (its rows hold ``val_acc``) or a model-only checkpoint.
    """
    meta = source.meta
    results = _results_beside(file)
    belongs = (results is not None and meta.get("epoch") is not None
               and results.get("epochs") == meta["epoch"] and results.get("config") == meta.get("config"))
    if belongs and isinstance(results.get("overall_test_accuracy"), (int, float)):
        return {"test_accuracy": results["overall_test_accuracy"], "test_accuracy_from": RESULTS,
                "selection": results.get("selection")}
    accuracy = (meta.get("history") or [{}])[-1].get("test_acc")
    return {"test_accuracy": accuracy, "test_accuracy_from": None if accuracy is None else "history",
            "selection": None}


def _results_beside(file: Path) -> dict | None:
    """The ``results.json`` in ``file``'s folder, or None when there is none or it is unreadable
    (an origin record is a note: a broken file is no reason to refuse good weights)."""
    try:
        results = json.loads((file.parent / RESULTS).read_text())
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


def _check_same_network(model: Sequential, source: Checkpoint, file: Path) -> None:
    """Refuse weights of another network in one line naming the first layer that differs.

    With the source's arch spec in its metadata every layer is compared (a
    pool or ReLU in another place counts); without it, the layers that hold
    weights, by name and shape.
    """
    meta = source.meta
    if "arch" in meta:
        try:
            theirs = _layers(build_model(meta["arch"], meta.get("in_channels", 3), meta.get("image_size", 48),
                                         len(meta.get("classes", range(7))), rng=0))
        except (UserError, TypeError) as exc:
            raise UserError(f"--init-from {file}: its stored network cannot be rebuilt ({exc}); "
                            "use a checkpoint.npz written by train_numpy.py") from None
        ours = _layers(model)
        hint = f"train with --arch {meta['arch']} (the checkpoint's) or pretrain this network"
    else:
        theirs, ours = _weight_layers(source.model), _weight_layers(model.state_dict())
        hint = "train with the checkpoint's network or pretrain this one"
    end = "nothing (the network ends)"
    for i in range(max(len(ours), len(theirs))):
        there = theirs[i] if i < len(theirs) else end
        here = ours[i] if i < len(ours) else end
        if there != here:
            raise UserError(f"--init-from {file}: the network differs from this run's at layer {i + 1}: "
                            f"{there} in the checkpoint, {here} here; {hint}")


def _layers(model: Sequential) -> list[str]:
    """Every layer as ``"conv1 Conv2d(3, 6, kernel_size=(5, 5)) weight (6, 3, 5, 5), bias (6,)"``."""
    out = []
    for name, layer in model.named_children():
        shapes = _shapes((k, p.data) for k, p in layer.named_parameters())
        out.append(f"{name} {layer!r}" + (f" {shapes}" if shapes else ""))
    return out


def _weight_layers(state: Mapping[str, np.ndarray]) -> list[str]:
    """The layers a state dict holds, as ``"conv1 weight (6, 3, 5, 5), bias (6,)"``, in order."""
    layers: OrderedDict[str, list[tuple[str, np.ndarray]]] = OrderedDict()
    for key, value in state.items():
        layer, _, param = key.rpartition(".")
        layers.setdefault(layer, []).append((param, value))
    return [f"{layer} {_shapes(params)}" for layer, params in layers.items()]


def _shapes(params: Iterable[tuple[str, np.ndarray]]) -> str:
    return ", ".join(f"{name} {tuple(np.shape(value))}" for name, value in params)


# -- the trainer's one call ----------------------------------------------------

def prepare(model: Sequential, init_from_path: str | None, freeze_names: str | None, ckpt: Checkpoint | None,
            log: Callable[[str], None]) -> dict | None:
    """Apply ``--init-from`` (a new run only) and ``--freeze`` to the freshly built ``model``.

    ``init_from_path`` and ``freeze_names`` are the run's ``init_from`` and
    ``freeze`` settings (``"conv1,conv2"``), or ``None``. ``ckpt`` is the run's
    own checkpoint when it is resumed: its weights are already loaded, and its
    stored provenance is returned. Returns where the starting weights came
    from (see :func:`init_from`), or ``None``.
    """
    if ckpt is not None:
        origin = ckpt.meta.get("init_from")
    elif init_from_path:
        origin = init_from(model, init_from_path)
        log(f"init: weights of {origin['path']} ({_described(origin)})")
    else:
        origin = None
    if freeze_names:
        freeze(model, freeze_names.split(","))
        fixed = sum(p.data.size for p in model.parameters() if not p.requires_grad)
        total = sum(p.data.size for p in model.parameters())
        log(f"freeze: {freeze_names} ({fixed:,} of {total:,} parameters fixed)")
        if not init_from_path and ckpt is None:
            log(f"warning: --freeze without --init-from keeps {freeze_names} at their random initial weights")
    return origin


def _described(origin: dict) -> str:
    """What the source says of itself, e.g. ``"c6k5-...-relu, 30 epochs, test 72.9% from results.json,
    weights of epoch 21 (--keep best, best validation 70.1%)"`` or ``"..., test 72.9% at the last
    epoch, from its history"``."""
    parts = [origin["arch"] or "no arch stored"]
    if origin["epochs"] is not None:
        parts.append(f"{origin['epochs']} epochs")
    accuracy, where, selection = origin["test_accuracy"], origin["test_accuracy_from"], origin["selection"]
    if accuracy is None:
        parts.append(f"test accuracy unknown (no {RESULTS} of this checkpoint beside it)")
    elif where == RESULTS:
        kept = ""
        if selection:   # --val-frac: say which weights the score is of
            kept = (f", weights of epoch {selection['kept_epoch']} (--keep {selection['keep']}, "
                    f"best validation {100 * selection['best_val_accuracy']:.1f}%)")
        parts.append(f"test {100 * accuracy:.1f}% from {RESULTS}{kept}")
    else:
        parts.append(f"test {100 * accuracy:.1f}% at the last epoch, from its history")
    return ", ".join(parts)
