"""Softmax cross-entropy, the loss of the classifier."""

from __future__ import annotations

import numpy as np

from .errors import UserError


def cross_entropy(logits: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the batch, and its gradient.

    logits: (N, K) float, target: (N,) int in [0, K) -> (loss, dlogits (N, K)).

    With ``p = softmax(z)``, ``L = -(1/N) sum_n log p[n, t_n]``. Computed as
    ``log p = z - logsumexp(z)`` with the row maximum subtracted first, so
    ``exp`` never overflows (log-sum-exp trick). The gradient is the classic
    ``dL/dz = (p - onehot(t)) / N``.
    """
    if logits.ndim != 2 or target.shape != (logits.shape[0],):
        raise UserError(f"cross_entropy: expected logits (N, K) and target (N,), "
                        f"got {logits.shape} and {target.shape}")
    n, k = logits.shape
    if not np.issubdtype(target.dtype, np.integer) or target.min(initial=0) < 0 or target.max(initial=0) >= k:
        raise UserError(f"cross_entropy: target must hold class indices in [0, {k}), got {target!r}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_p[rows, target].mean()
    grad = np.exp(log_p)
    grad[rows, target] -= 1
    grad /= n
    return float(loss), grad


class CrossEntropyLoss:
    """``nn.CrossEntropyLoss()`` with mean reduction: ``loss = criterion(logits, target)``,
    then ``criterion.backward()`` gives dL/dlogits (N, K)."""

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> float:
        loss, self._grad = cross_entropy(logits, target)
        return loss

    def backward(self) -> np.ndarray:
        return self._grad
