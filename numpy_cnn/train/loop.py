"""One epoch of SGD and batched evaluation: the hot path of training.

An epoch's randomness is drawn *before* its step loop; its images are built
a block at a time, as the steps reach them::

    x_train (N, H, W), uint8 or float in [0, 1]
      -> permute with the run's Generator (a new order every epoch)
      -> draw every image's flip and angle (the paper's augmentation)
    then for each block of about BLOCK_IMAGES images, when a step first needs it:
      -> to float, flip + rotate, minus the training mean, gray copied to C channels
      -> (block, C, H, W) float32; step s trains on images [s*B, (s+1)*B)

Building the whole epoch at once needed a (N, 3, H, W) float32 copy: 794 MB
for FER2013's 28,709 images (with the float copy of the training set, 2.16 GB
peak). A block of 512 is 14 MB, and it is still large enough that the
per-call costs of the augmentation kernel do not show at batch 4.

The draws are made up front, per chunk of AUGMENT_CHUNK images (flips, then
angles), exactly as when each chunk was augmented in turn: the same seed gives
the same epochs as before, whatever the block or batch size, and a Generator
restored from a checkpoint continues the same sequence. Augmentation runs the
numba kernel (:mod:`numpy_cnn.kernels.augment`), several times faster than
the NumPy reference (``docs/performance.md``, "The training loop").
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from numpy_cnn.data import MeanSubtraction, to_float, to_network_input
from numpy_cnn.data.augment import Draws, apply_augmentation, draw_augmentation, flip_rotate
from numpy_cnn.errors import UserError
from numpy_cnn.nn import loss as losses   # the background compile calls it by module: a test may patch ours
from numpy_cnn.nn.loss import cross_entropy, softmax
from numpy_cnn.nn.module import Module
from numpy_cnn.nn.optim import Optimizer
from numpy_cnn.train.balance import balanced_order

AUGMENT_CHUNK = 64
BLOCK_IMAGES = 512
EVAL_BATCH = 256
# The gradient norms are a diagnostic: sampling every 8th step costs a
# fraction of norming every step (docs/performance.md, "The training loop"),
# and the mean over an epoch barely changes.
GRAD_NORM_EVERY = 8


def network_input(x: np.ndarray, mean: MeanSubtraction, channels: int = 3) -> np.ndarray:
    """(N, H, W) float32 in [0, 1] -> (N, channels, H, W) float32 minus the training mean.

    The one definition of what the network sees, used by training, evaluation
    and prediction alike.
    """
    return to_network_input(mean(x), channels)


class EpochImages:
    """One epoch's training inputs, (N, C, H, W) float32, built a block at a time.

    Slicing ``epoch[i:j]`` gives images i..j-1 of the epoch's order, as an
    array; steps that go through the epoch in order build each image once.
    ``np.asarray(epoch)`` builds all of it (for tests and small sets).
    """

    def __init__(self, x: np.ndarray, order: np.ndarray, draws: Draws | None, mean: MeanSubtraction, channels: int):
        """``draws``: the augmentation of each image of the epoch's order (None: no augmentation)."""
        self._x, self._order, self._draws = x, order, draws
        self._mean, self._channels = mean, channels
        self.shape = (len(order), channels) + x.shape[1:]
        self._block, self._lo = np.empty((0,) + self.shape[1:], np.float32), 0   # the last block built

    dtype = np.dtype(np.float32)
    ndim = 4

    def __len__(self) -> int:
        return len(self._order)

    def build(self, lo: int, hi: int) -> np.ndarray:
        """Images lo..hi-1 of the epoch: (hi - lo, C, H, W) float32."""
        x = self._x[self._order[lo:hi]]
        x = to_float(x) if x.dtype == np.uint8 else np.asarray(x, np.float32)
        if self._draws is not None:   # flips and angles alone: flip_rotate, as always
            x = apply_augmentation(x, self._draws[lo:hi])
        return network_input(x, self._mean, self._channels)

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            return np.asarray(self)[index]
        lo, hi, _ = index.indices(len(self))
        hi = max(lo, hi)
        if not (self._lo <= lo and hi <= self._lo + len(self._block)):
            self._lo, self._block = lo, self.build(lo, min(len(self), lo + max(BLOCK_IMAGES, hi - lo)))
        return self._block[lo - self._lo:hi - self._lo]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.build(0, len(self))
        return out if dtype is None else out.astype(dtype)


def lazy_network_input(x: np.ndarray, mean: MeanSubtraction, channels: int = 3) -> EpochImages:
    """:func:`network_input` of (N, H, W) uint8 or [0, 1] float images, built a block at a time when sliced.

    For the test set: it is read in order every epoch, and keeping its
    (N, C, H, W) float32 form whole would cost 198 MB at FER2013's size.
    """
    return EpochImages(x, np.arange(len(x)), None, mean, channels)


def epoch_inputs(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, mean: MeanSubtraction, *,
                 channels: int = 3, rotation: float = 10.0, augment: bool = True, shift: int = 0,
                 brightness: float = 0.0, contrast: float = 0.0, balanced: bool = False
                 ) -> tuple[EpochImages, np.ndarray]:
    """One epoch's shuffled (and augmented) training inputs; all of its random draws are made here.

    Args:
        x: (N, H, W) training images, uint8 or float32 in [0, 1].
        y: (N,) int64 labels.
        rng: the run's Generator; this draws the order, then each chunk's flips and angles
            (and shifts, brightness and contrast factors when those are on).
        augment: the paper's flip and rotation (up to ``rotation`` degrees).
        shift: the largest random translation in pixels (see :mod:`numpy_cnn.data.augment`).
        brightness: the brightness jitter B (factors in [1-B, 1+B]).
        contrast: the contrast jitter C (factors in [1-C, 1+C]). At 0 (the default)
            these three draw nothing, so the epochs are exactly the paper's.
        balanced: draw the order with :func:`.balance.balanced_order` (N draws with
            replacement, classes equally likely) instead of a permutation.

    Returns:
        (x_epoch, y_epoch (N,) int64), in the new order. ``x_epoch`` slices like a
        (N, channels, H, W) float32 array (:class:`EpochImages`).
    """
    order = balanced_order(y, rng) if balanced else rng.permutation(len(y))
    draws = None
    if augment or shift or brightness or contrast:
        draws = Draws.concatenate([
            draw_augmentation(len(order[s:s + AUGMENT_CHUNK]), rng, flip_rotate=augment, max_degrees=rotation,
                              shift=shift, brightness=brightness, contrast=contrast)
            for s in range(0, len(order), AUGMENT_CHUNK)])
    return EpochImages(x, order, draws, mean, channels), y[order]


def compile_in_background(model: Module, optimizer: Optimizer, image_shape: tuple[int, int, int],
                          augment: bool = True, *, soft_loss: bool = False, jitter: bool = False) -> threading.Thread:
    """Start compiling the numba kernels a training step of this model needs, in a daemon thread.

    ``model`` and ``optimizer`` are throwaway copies (built like the run's);
    one step on two zero images of ``image_shape`` (C, H, W) and one
    augmentation make numba compile every kernel (or load it from its disk
    cache) while the main thread reads or generates the data. A fresh clone's
    first run spent 13 s compiling after the data was ready; much of that now
    overlaps. numba compiles under one lock, so the run's own warm-up simply
    waits for whatever is left. Any error is left for that warm-up to report.

    ``soft_loss`` (label smoothing or class weights on) and ``jitter`` (a shift,
    brightness or contrast on) compile the kernels those options use as well.
    """
    def work() -> None:
        try:
            x = np.zeros((2,) + tuple(image_shape), np.float32)
            options = {"label_smoothing": 0.1} if soft_loss else {}
            model.backward(losses.cross_entropy(model.forward(x), np.zeros(2, np.int64), **options)[1])
            optimizer.step()
            if augment:
                flip_rotate(x[:, 0], np.ones(2, bool), np.ones(2))
            if jitter:
                apply_augmentation(x[:, 0], Draws(np.ones(2, bool), np.ones(2), np.ones((2, 2), np.int64),
                                                  np.ones(2), np.ones(2)))
        except Exception:   # the warm-up in the main thread meets it again and reports it
            pass

    thread = threading.Thread(target=work, name="numba-compile", daemon=True)
    thread.start()
    return thread


class Diverged(ArithmeticError):
    """Training went NaN or infinite: the message says what (a step's loss, the weights) and where."""


@dataclass
class EpochStats:
    """Mean loss and accuracy over the epoch's training batches, and gradient norms per parameter."""

    loss: float
    accuracy: float
    grad_norms: dict[str, float]
    lr: float | None = None   # the lr of the epoch's last step, when a schedule set it


def train_epoch(model: Module, optimizer: Optimizer, x: np.ndarray, y: np.ndarray,
                batch_size: int, *, schedule: Callable[[int], float] | None = None, first_step: int = 0,
                label_smoothing: float = 0.0, class_weight: np.ndarray | None = None,
                after_step: Callable[[], None] | None = None) -> EpochStats:
    """One pass of the optimizer over (x (N, C, H, W), y (N,)) in order, in batches of ``batch_size``.

    ``schedule`` (an :class:`.schedule.LRSchedule`, or any step -> lr function) sets
    ``optimizer.lr = schedule(first_step + s)`` before the epoch's step s; ``first_step``
    is the steps of the epochs before (``(epoch - 1) * steps_per_epoch(N, batch_size)``).
    ``label_smoothing`` and ``class_weight`` (K,) go to :func:`~numpy_cnn.nn.loss.cross_entropy`.
    ``after_step`` is called after every step (the trainer's
    :class:`~numpy_cnn.train.governor.ThreadGovernor` times the steps there).
    The defaults change nothing: no lr is set, and the loss is the plain one.

    Puts the model in training mode (BatchNorm uses and updates batch statistics,
    Dropout drops); :func:`predict_logits` puts it back in eval mode.

    The last batch may be smaller (as PyTorch's ``drop_last=False``). The loss
    is checked every step: a non-finite loss raises :class:`Diverged` before
    the step is taken, so the weights are never updated with it. The last
    step's update is checked by looking at the weights themselves: with one
    step per epoch (batch >= N) no later loss would catch it before the
    epoch is saved as good.
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]   # frozen: no grad
    grads_sum = np.zeros(len(named))
    grads_seen = 0
    predicted = np.empty(len(y), np.int64)
    loss_sum = 0.0
    # Only options that are on are passed: the default call is the plain cross_entropy(logits, target).
    options = {} if label_smoothing == 0 and class_weight is None else {
        "weight": class_weight, "label_smoothing": label_smoothing}
    model.train()
    for step, start in enumerate(range(0, len(y), batch_size)):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        logits = model.forward(xb)
        loss, dlogits = cross_entropy(logits, yb, **options)
        if not math.isfinite(loss):
            raise Diverged(f"loss became {loss} at step {step + 1}")
        model.backward(dlogits)
        if schedule is not None:
            optimizer.lr = schedule(first_step + step)
        optimizer.step()
        loss_sum += loss * len(yb)
        predicted[start:start + len(yb)] = logits.argmax(axis=1)
        if step % GRAD_NORM_EVERY == 0:
            # sqrt(g . g) is np.linalg.norm(g) for a flat view, with less overhead.
            grads_sum += [math.sqrt(np.vdot(p.grad, p.grad)) for _, p in named]
            grads_seen += 1
        if after_step is not None:
            after_step()
    broken = [name for name, p in named if not np.isfinite(p.data).all()]   # ~0.1 ms for the paper net
    if broken:
        raise Diverged(f"{broken[0]} became non-finite at step {step + 1}, the epoch's last")
    return EpochStats(loss=loss_sum / len(y), accuracy=float((predicted == y).mean()),
                      grad_norms={name: float(g / grads_seen) for (name, _), g in zip(named, grads_sum)},
                      lr=None if schedule is None else float(optimizer.lr))


def predict_logits(model: Module, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """(N, C, H, W) inputs -> (N, K) logits, forward only, in batches to bound memory.

    Runs in eval mode (and leaves the model in it), as every evaluation must: BatchNorm
    uses its running statistics and Dropout passes everything, so the answer depends
    on neither the batch nor chance, and nothing in the model changes.
    """
    model.eval()
    return np.concatenate([model.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


TTA = ("none", "flip")


def predict_proba(model: Module, x: np.ndarray, tta: str = "none", mean: MeanSubtraction | None = None,
                  batch_size: int = EVAL_BATCH) -> np.ndarray:
    """(N, C, H, W) network inputs -> (N, K) float64 class probabilities, in eval mode.

    ``tta="flip"`` (test-time augmentation) averages the softmax of each image and
    of its mirror image: ``(softmax(f(x)) + softmax(f(mirror(x)))) / 2``. The inputs
    are already minus the training mean; mirroring them is the mirror image's input
    when the mean is a scalar (``--mean scalar``). With a per-pixel mean, pass it
    as ``mean``: the mirror's input is then corrected to ``mirror(x_raw) - mean``.
    """
    if tta not in TTA:
        raise UserError(f"--tta must be one of {', '.join(TTA)}, got {tta!r}")
    probabilities = softmax(predict_logits(model, x, batch_size).astype(np.float64))
    if tta == "none":
        return probabilities
    model.eval()
    per_pixel = mean is not None and np.ndim(mean.mean) == 2
    # mirror(x_raw - m) + (mirror(m) - m) = mirror(x_raw) - m
    correction = (mean.mean[:, ::-1] - mean.mean) if per_pixel else None
    mirrored = []
    for i in range(0, len(x), batch_size):
        xb = np.ascontiguousarray(np.asarray(x[i:i + batch_size])[..., ::-1])
        mirrored.append(model.forward(xb if correction is None else xb + correction))
    return (probabilities + softmax(np.concatenate(mirrored).astype(np.float64))) / 2


def evaluate(model: Module, x: np.ndarray, y: np.ndarray, *, tta: str = "none",
             mean: MeanSubtraction | None = None) -> tuple[float, float, np.ndarray]:
    """(mean loss, accuracy, (N,) predicted classes) of the model on (x (N, C, H, W), y (N,)).

    The loss is the plain cross-entropy (no smoothing, no weights: a measure of the
    model that runs can compare). With ``tta="flip"`` (see :func:`predict_proba`) it is
    ``-mean log p[n, y_n]`` of the averaged probabilities, and the prediction their argmax.
    """
    if tta != "none":
        probabilities = predict_proba(model, x, tta, mean)
        predicted = probabilities.argmax(axis=1)
        with np.errstate(divide="ignore"):   # a probability of 0 is an infinite loss, as it should be
            loss = float(-np.log(probabilities[np.arange(len(y)), y]).mean()) if len(y) else float("nan")
        return loss, float((predicted == y).mean()), predicted
    logits = predict_logits(model, x)
    loss, _ = cross_entropy(logits, y)
    predicted = logits.argmax(axis=1)
    return loss, float((predicted == y).mean()), predicted
