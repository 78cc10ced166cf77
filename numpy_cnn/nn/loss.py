"""Softmax cross-entropy, the loss of the classifier."""

from __future__ import annotations

import numpy as np

from numpy_cnn.nn._fast import kernels
from numpy_cnn.errors import UserError

METHODS = ("reference", "numba")


def softmax(logits: np.ndarray) -> np.ndarray:
    """(N, K) logits -> (N, K) probabilities (the row maximum is subtracted so exp cannot overflow)."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, target: np.ndarray,
                  method: str = "numba") -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the batch, and its gradient.

    logits: (N, K) float, target: (N,) int in [0, K) -> (loss, dlogits (N, K)).

    With ``p = softmax(z)``, ``L = -(1/N) sum_n log p[n, t_n]``. Computed as
    ``log p = z - logsumexp(z)`` with the row maximum subtracted first, so
    ``exp`` never overflows (log-sum-exp trick). The gradient is the classic
    ``dL/dz = (p - onehot(t)) / N``.

    ``method="reference"`` runs the NumPy lines below; ``"numba"`` (the
    default) the same formulas in one pass (:mod:`numpy_cnn.kernels.loss`),
    equal to rounding and ~10x faster on a batch of 4.
    """
    if logits.ndim != 2 or target.shape != (logits.shape[0],):
        raise UserError(f"cross_entropy: expected logits (N, K) and target (N,), "
                        f"got {logits.shape} and {target.shape}")
    n, k = logits.shape
    if target.dtype.kind not in "iu":
        raise _bad_target(target, k)
    if method == "numba":
        loss, grad, first_bad = kernels().cross_entropy(logits, target)
        if first_bad >= 0:
            raise _bad_target(target, k)
        return float(loss), grad
    if method != "reference":
        raise UserError(f"cross_entropy: method must be one of {METHODS}, got {method!r}")
    if target.min(initial=0) < 0 or target.max(initial=0) >= k:
        raise _bad_target(target, k)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_p[rows, target].mean()
    grad = np.exp(log_p)
    grad[rows, target] -= 1
    grad /= n
    return float(loss), grad


def _bad_target(target: np.ndarray, k: int) -> UserError:
    return UserError(f"cross_entropy: target must hold class indices in [0, {k}), got {target!r}")


class CrossEntropyLoss:
    """``nn.CrossEntropyLoss()`` with mean reduction: ``loss = criterion(logits, target)``,
    then ``criterion.backward()`` gives dL/dlogits (N, K)."""

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> float:
        loss, self._grad = cross_entropy(logits, target)
        return loss

    def backward(self) -> np.ndarray:
        return self._grad
