"""One epoch of SGD and batched evaluation: the hot path of training.

An epoch is prepared *before* its step loop, so the loop itself only slices
contiguous batches out of one array and calls the model::

    x_train (N, H, W) in [0, 1]
      -> permute with the run's Generator (a new order every epoch)
      -> flip + rotate (the paper's augmentation), in chunks of AUGMENT_CHUNK images
      -> minus the training mean, gray copied to C channels
      -> x_epoch (N, C, H, W) float32; step s trains on x_epoch[s*B:(s+1)*B]

Augmentation runs the numba kernel (:mod:`numpy_cnn.kernels.augment`, ~5 ms
for 540 images); the NumPy reference took 35-65 ms. The chunks of 64 date
from the NumPy version (its temporaries stayed in cache: half the time of
one call over 540 images). With the kernel one call is no faster, and the
chunks keep the Generator's sequence of draws, so runs and checkpoints made
before the kernel continue identically.

All randomness (order, flips, angles) comes from the one Generator passed in,
so the same seed gives the same epoch, and a Generator restored from a
checkpoint continues the same sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data import MeanSubtraction, to_network_input
from ..data import augment as flip_and_rotate
from ..loss import cross_entropy
from ..module import Module
from ..optim import Optimizer

AUGMENT_CHUNK = 64
EVAL_BATCH = 256
# The gradient norms are a diagnostic: sampling every 8th step costs ~0.3 ms
# per epoch at batch 4 instead of ~5 ms for every step, and the mean over
# an epoch barely changes.
GRAD_NORM_EVERY = 8


def network_input(x: np.ndarray, mean: MeanSubtraction, channels: int = 3) -> np.ndarray:
    """(N, H, W) float32 in [0, 1] -> (N, channels, H, W) float32 minus the training mean.

    The one definition of what the network sees, used by training, evaluation
    and prediction alike.
    """
    return to_network_input(mean(x), channels)


def epoch_inputs(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, mean: MeanSubtraction, *,
                 channels: int = 3, rotation: float = 10.0, augment: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's shuffled (and augmented) training inputs.

    Args:
        x: (N, H, W) float32 training images in [0, 1].
        y: (N,) int64 labels.
        rng: the run's Generator; this draws the order, then flips and angles.

    Returns:
        (x_epoch (N, channels, H, W) float32, y_epoch (N,) int64), in the new order.
    """
    order = rng.permutation(len(y))
    out = np.empty((len(y), channels) + x.shape[1:], np.float32)
    for start in range(0, len(y), AUGMENT_CHUNK):
        chunk = x[order[start:start + AUGMENT_CHUNK]]
        if augment:
            chunk = flip_and_rotate(chunk, rng, rotation)
        out[start:start + len(chunk)] = network_input(chunk, mean, channels)
    return out, y[order]


class Diverged(ArithmeticError):
    """Training went NaN or infinite: the message says what (a step's loss, the weights) and where."""


@dataclass
class EpochStats:
    """Mean loss and accuracy over the epoch's training batches, and gradient norms per parameter."""

    loss: float
    accuracy: float
    grad_norms: dict[str, float]


def train_epoch(model: Module, optimizer: Optimizer, x: np.ndarray, y: np.ndarray,
                batch_size: int) -> EpochStats:
    """One pass of the optimizer over (x (N, C, H, W), y (N,)) in order, in batches of ``batch_size``.

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
    model.train()
    for step, start in enumerate(range(0, len(y), batch_size)):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        logits = model.forward(xb)
        loss, dlogits = cross_entropy(logits, yb)
        if not math.isfinite(loss):
            raise Diverged(f"loss became {loss} at step {step + 1}")
        model.backward(dlogits)
        optimizer.step()
        loss_sum += loss * len(yb)
        predicted[start:start + len(yb)] = logits.argmax(axis=1)
        if step % GRAD_NORM_EVERY == 0:
            # sqrt(g . g) is np.linalg.norm(g) for a flat view, with less overhead.
            grads_sum += [math.sqrt(np.vdot(p.grad, p.grad)) for _, p in named]
            grads_seen += 1
    broken = [name for name, p in named if not np.isfinite(p.data).all()]   # ~0.1 ms for the paper net
    if broken:
        raise Diverged(f"{broken[0]} became non-finite at step {step + 1}, the epoch's last")
    return EpochStats(loss=loss_sum / len(y), accuracy=float((predicted == y).mean()),
                      grad_norms={name: float(g / grads_seen) for (name, _), g in zip(named, grads_sum)})


def predict_logits(model: Module, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """(N, C, H, W) inputs -> (N, K) logits, forward only, in batches to bound memory.

    Runs in eval mode (and leaves the model in it), as every evaluation must: BatchNorm
    uses its running statistics and Dropout passes everything, so the answer depends
    on neither the batch nor chance, and nothing in the model changes.
    """
    model.eval()
    return np.concatenate([model.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def evaluate(model: Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(mean loss, accuracy, (N,) predicted classes) of the model on (x (N, C, H, W), y (N,))."""
    logits = predict_logits(model, x)
    loss, _ = cross_entropy(logits, y)
    predicted = logits.argmax(axis=1)
    return loss, float((predicted == y).mean()), predicted
